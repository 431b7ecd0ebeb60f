//! The content-addressed cache: transform results keyed by the input bytes,
//! the options that affect the transform and kiln's version; precompressed
//! variants keyed by the final bytes and the compression options.
//!
//! Entries are written atomically (temporary file + rename) and carry a
//! checksum: a damaged or truncated entry is discarded and rebuilt. Builds
//! running at once may share a cache: one key always has the same content,
//! and a rename never leaves half a file. Reading an entry refreshes its
//! modification time, which `prune` uses as "last used".

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::asset::{AssetKind, Reference};
use crate::diag::Diagnostic;
use crate::emit::compress::Variants;
use crate::transform::variants::{Format, Variant};
use crate::transform::{TransformOptions, Transformed};

/// Default location, relative to the working directory.
pub const DEFAULT_DIR: &str = ".kiln-cache";
const MAGIC: &[u8; 6] = b"KILNC1";

/// A cache key: 32 bytes of blake3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(blake3::Hash);

/// The cache, with hit and miss counters for the build's summary.
#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    hits: AtomicUsize,
    misses: AtomicUsize,
}

#[derive(Serialize, Deserialize)]
struct TransformHeader {
    refs: Vec<Reference>,
    diagnostics: Vec<Diagnostic>,
    base: Option<String>,
    has_map: bool,
    images: Vec<crate::asset::ImgTag>,
    /// The format of each variant blob, after the bytes and the map.
    variants: Vec<Format>,
}

#[derive(Serialize, Deserialize)]
struct VariantsHeader {
    gzip: bool,
    brotli: bool,
    #[serde(default)]
    zstd: bool,
}

impl Cache {
    pub fn open(root: impl Into<PathBuf>) -> Cache {
        Cache {
            root: root.into(),
            hits: AtomicUsize::new(0),
            misses: AtomicUsize::new(0),
        }
    }

    /// (hits, misses) so far.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// The key of a transform: everything its result depends on.
    pub fn transform_key(
        kind: AssetKind,
        path: &str,
        input: &blake3::Hash,
        input_map: Option<&str>,
        options: &TransformOptions,
    ) -> Key {
        let mut h = blake3::Hasher::new();
        h.update(b"transform\0");
        h.update(code_identity().as_bytes());
        h.update(b"\0");
        h.update(kind.name().as_bytes());
        h.update(b"\0");
        // The transform looks at the file name (`.mjs`, `manifest.json`, the
        // name of a source map) and at whether it lies in a `.vite/` folder
        // (a bundler manifest's values are relative to its parent), never at
        // the rest of the directory.
        h.update(path.rsplit('/').next().unwrap_or(path).as_bytes());
        if crate::transform::bundler_manifest::in_vite_folder(path) {
            h.update(b"\0.vite/");
        }
        h.update(b"\0");
        h.update(relevant_options(kind, options).as_bytes());
        h.update(b"\0");
        h.update(input.as_bytes());
        if let Some(map) = input_map {
            h.update(blake3::hash(map.as_bytes()).as_bytes());
        }
        Key(h.finalize())
    }

    /// The key of the precompressed variants of some final bytes.
    pub fn variants_key(
        bytes: &blake3::Hash,
        options: &crate::emit::compress::CompressOptions,
    ) -> Key {
        let mut h = blake3::Hasher::new();
        h.update(b"variants\0");
        h.update(code_identity().as_bytes());
        h.update(format!("{options:?}").as_bytes());
        h.update(bytes.as_bytes());
        Key(h.finalize())
    }

    pub fn get_transform(&self, key: &Key) -> Option<Transformed> {
        let found = self.read(key, "transform").and_then(|(header, mut blobs)| {
            let header: TransformHeader = serde_json::from_slice(&header).ok()?;
            let variant_blobs = blobs.split_off(blobs.len().checked_sub(header.variants.len())?);
            let variants = header
                .variants
                .into_iter()
                .zip(variant_blobs)
                .map(|(format, bytes)| Variant { format, bytes })
                .collect();
            let map = if header.has_map {
                Some(blobs.pop()?)
            } else {
                None
            };
            Some(Transformed {
                bytes: blobs.pop()?,
                refs: header.refs,
                diagnostics: header.diagnostics,
                base: header.base,
                map,
                images: header.images,
                variants,
            })
        });
        self.count(found.is_some());
        found
    }

    pub fn put_transform(&self, key: &Key, t: &Transformed) {
        let header = TransformHeader {
            refs: t.refs.clone(),
            diagnostics: t.diagnostics.clone(),
            base: t.base.clone(),
            has_map: t.map.is_some(),
            images: t.images.clone(),
            variants: t.variants.iter().map(|v| v.format).collect(),
        };
        let mut blobs: Vec<&[u8]> = vec![&t.bytes];
        if let Some(map) = &t.map {
            blobs.push(map);
        }
        blobs.extend(t.variants.iter().map(|v| v.bytes.as_slice()));
        self.write(
            key,
            "transform",
            &serde_json::to_vec(&header).expect("headers serialise"),
            &blobs,
        );
    }

    pub fn get_variants(&self, key: &Key) -> Option<Variants> {
        let found = self.read(key, "variants").and_then(|(header, blobs)| {
            let header: VariantsHeader = serde_json::from_slice(&header).ok()?;
            let mut blobs = blobs.into_iter();
            Some(Variants {
                gzip: if header.gzip {
                    Some(blobs.next()?)
                } else {
                    None
                },
                brotli: if header.brotli {
                    Some(blobs.next()?)
                } else {
                    None
                },
                zstd: if header.zstd {
                    Some(blobs.next()?)
                } else {
                    None
                },
            })
        });
        self.count(found.is_some());
        found
    }

    pub fn put_variants(&self, key: &Key, v: &Variants) {
        let header = VariantsHeader {
            gzip: v.gzip.is_some(),
            brotli: v.brotli.is_some(),
            zstd: v.zstd.is_some(),
        };
        let blobs: Vec<&[u8]> = v
            .gzip
            .iter()
            .chain(v.brotli.iter())
            .chain(v.zstd.iter())
            .map(Vec::as_slice)
            .collect();
        self.write(
            key,
            "variants",
            &serde_json::to_vec(&header).expect("headers serialise"),
            &blobs,
        );
    }

    fn count(&self, hit: bool) {
        let counter = if hit { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn path(&self, key: &Key, kind: &str) -> PathBuf {
        let hex = key.0.to_hex();
        self.root.join(kind).join(&hex[..2]).join(&hex[2..])
    }

    /// An entry's header and blobs, or `None` when it is missing or damaged
    /// (a damaged entry is removed).
    fn read(&self, key: &Key, kind: &str) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
        let path = self.path(key, kind);
        let data = fs::read(&path).ok()?;
        match decode(&data) {
            Some(entry) => {
                let _ = fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                Some(entry)
            }
            None => {
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Write an entry atomically. A cache that cannot be written is not an
    /// error: the build goes on without it.
    fn write(&self, key: &Key, kind: &str, header: &[u8], blobs: &[&[u8]]) {
        let path = self.path(key, kind);
        let Some(dir) = path.parent() else { return };
        let data = encode(header, blobs);
        let _ = fs::create_dir_all(dir).and_then(|()| {
            let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
            tmp.write_all(&data)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        });
    }
}

/// What identifies the code that made an entry: kiln's version and the
/// running executable's size and modification time, so that a rebuilt kiln
/// (same version, other minifier) never reads entries an older build wrote.
fn code_identity() -> &'static blake3::Hash {
    static IDENTITY: std::sync::OnceLock<blake3::Hash> = std::sync::OnceLock::new();
    IDENTITY.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        if let Ok(meta) = std::env::current_exe().and_then(fs::metadata) {
            h.update(&meta.len().to_le_bytes());
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            h.update(&modified.unwrap_or_default().as_nanos().to_le_bytes());
        }
        h.finalize()
    })
}

/// The options that can change the transform of a file of this kind, so
/// that changing the CSS targets does not invalidate every script.
fn relevant_options(kind: AssetKind, o: &TransformOptions) -> String {
    match kind {
        AssetKind::Css => format!("{:?} {}", o.css, o.sourcemaps),
        AssetKind::Js => format!("{:?} {} {}", o.js, o.sourcemaps, o.module),
        AssetKind::Html => format!("{:?}", o.html),
        AssetKind::Json | AssetKind::WebManifest | AssetKind::SourceMap | AssetKind::Xml => {
            format!("{}", o.json)
        }
        AssetKind::Png => format!("{:?} {:?}", o.png, o.variants),
        AssetKind::Jpeg => format!("jpeg {} {:?} {:?}", o.jpeg, o.jpeg_lossy, o.variants),
        AssetKind::Svg => format!("svg {}", o.svg),
        _ => String::new(),
    }
}

/// `MAGIC, header length, blob count, blob lengths (u64 LE), header, blobs,
/// blake3 of all that`.
fn encode(header: &[u8], blobs: &[&[u8]]) -> Vec<u8> {
    let total: usize = blobs.iter().map(|b| b.len()).sum();
    let mut out =
        Vec::with_capacity(MAGIC.len() + 16 + 8 * blobs.len() + header.len() + total + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&(blobs.len() as u64).to_le_bytes());
    for b in blobs {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    }
    out.extend_from_slice(header);
    for b in blobs {
        out.extend_from_slice(b);
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn decode(data: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let body_len = data.len().checked_sub(32)?;
    let (body, sum) = data.split_at(body_len);
    if blake3::hash(body).as_bytes() != sum || !body.starts_with(MAGIC) {
        return None;
    }
    let mut at = MAGIC.len();
    let mut next_u64 = || -> Option<usize> {
        let bytes: [u8; 8] = body.get(at..at + 8)?.try_into().ok()?;
        at += 8;
        usize::try_from(u64::from_le_bytes(bytes)).ok()
    };
    let header_len = next_u64()?;
    let count = next_u64()?;
    if count > 16 {
        return None;
    }
    let lens: Option<Vec<usize>> = (0..count).map(|_| next_u64()).collect();
    let lens = lens?;
    let header = body.get(at..at.checked_add(header_len)?)?.to_vec();
    at += header_len;
    let mut blobs = Vec::with_capacity(count);
    for len in lens {
        blobs.push(body.get(at..at.checked_add(len)?)?.to_vec());
        at += len;
    }
    (at == body.len()).then_some((header, blobs))
}

/// What `kiln cache stats` prints.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Stats {
    pub transform_entries: u64,
    pub transform_bytes: u64,
    pub variants_entries: u64,
    pub variants_bytes: u64,
}

/// Count the entries and bytes under a cache directory.
pub fn stats(root: &Path) -> Stats {
    let mut s = Stats::default();
    for (path, size, _) in entries(root) {
        if path.starts_with(root.join("transform")) {
            s.transform_entries += 1;
            s.transform_bytes += size;
        } else {
            s.variants_entries += 1;
            s.variants_bytes += size;
        }
    }
    s
}

/// Remove the least recently used entries until the cache holds at most
/// `max_bytes`. Returns (entries removed, bytes freed).
pub fn prune(root: &Path, max_bytes: u64) -> (u64, u64) {
    let mut all = entries(root);
    let mut total: u64 = all.iter().map(|(_, size, _)| size).sum();
    all.sort_by_key(|(_, _, used)| *used);
    let (mut removed, mut freed) = (0, 0);
    for (path, size, _) in all {
        if total <= max_bytes {
            break;
        }
        if fs::remove_file(&path).is_ok() {
            total -= size;
            removed += 1;
            freed += size;
        }
    }
    (removed, freed)
}

fn entries(root: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    for kind in ["transform", "variants"] {
        let walker = ignore::WalkBuilder::new(root.join(kind))
            .standard_filters(false)
            .hidden(false)
            .build();
        for entry in walker.flatten() {
            if let Ok(meta) = entry.metadata()
                && meta.is_file()
            {
                let used = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                out.push((entry.into_path(), meta.len(), used));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path());
        let key = Key(blake3::hash(b"k"));
        let t = Transformed {
            bytes: b"body{}".to_vec(),
            map: Some(b"{}".to_vec()),
            base: Some("/x/".into()),
            ..Transformed::default()
        };
        assert!(cache.get_transform(&key).is_none());
        cache.put_transform(&key, &t);
        let back = cache.get_transform(&key).unwrap();
        assert_eq!(
            (back.bytes, back.map, back.base),
            (t.bytes.clone(), t.map.clone(), t.base.clone())
        );
        assert_eq!(cache.counts(), (1, 1));
        // Truncate the entry: it is detected, removed, and reported as a miss.
        let path = cache.path(&key, "transform");
        let data = fs::read(&path).unwrap();
        fs::write(&path, &data[..data.len() - 5]).unwrap();
        assert!(cache.get_transform(&key).is_none());
        assert!(!path.exists());
        // A flipped byte too.
        cache.put_transform(&key, &t);
        let mut data = fs::read(&path).unwrap();
        data[10] ^= 1;
        fs::write(&path, &data).unwrap();
        assert!(cache.get_transform(&key).is_none());
    }

    #[test]
    fn a_vite_manifest_and_the_same_bytes_elsewhere_are_two_entries() {
        let input = blake3::hash(b"{}");
        let options = TransformOptions::default();
        let key = |path| Cache::transform_key(AssetKind::Json, path, &input, None, &options);
        assert_ne!(key(".vite/manifest.json").0, key("manifest.json").0);
        assert_eq!(key("a/manifest.json").0, key("manifest.json").0);
    }

    #[test]
    fn prune_removes_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path());
        for i in 0..4u8 {
            let v = Variants {
                gzip: Some(vec![i; 1000]),
                brotli: None,
                zstd: None,
            };
            cache.put_variants(&Key(blake3::hash(&[i])), &v);
            let path = cache.path(&Key(blake3::hash(&[i])), "variants");
            let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1000 + u64::from(i));
            fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        let before = stats(dir.path());
        assert_eq!(before.variants_entries, 4);
        let (removed, _) = prune(dir.path(), before.variants_bytes / 2);
        assert_eq!(removed, 2);
        assert!(
            cache.get_variants(&Key(blake3::hash(&[0]))).is_none(),
            "oldest went"
        );
        assert!(
            cache.get_variants(&Key(blake3::hash(&[3]))).is_some(),
            "newest stayed"
        );
    }
}
