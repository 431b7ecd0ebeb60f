//! `kiln-manifest.json`, the contract with everything downstream (deploy,
//! backends, budgets), and the adapters that backends read: a flat
//! `rev-manifest.json`, Django's `staticfiles.json` and Propshaft's
//! `.manifest.json`. All are serialised with sorted keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::asset::AssetKind;
use crate::emit::compress::CompressOptions;
use crate::routes::Routes;

/// Other manifests, at the output root, for the backends that read them.
pub const REV_MANIFEST_FILE: &str = "rev-manifest.json";
pub const DJANGO_FILE: &str = "staticfiles.json";
pub const PROPSHAFT_FILE: &str = ".manifest.json";

/// The HTML size report written into the output directory (never deployed:
/// it is not in the manifest).
pub const REPORT_FILE: &str = "kiln-report.html";

/// File name of kiln's own manifest, at the root of the output directory.
pub const MANIFEST_FILE: &str = "kiln-manifest.json";
/// Where a build for a host that publishes every file (`--host netlify`,
/// `cloudflare-pages`) keeps the manifests and the report: a folder beside
/// the output, named after it (`dist` → `dist.kiln`).
pub fn meta_dir_beside(out: &std::path::Path) -> std::path::PathBuf {
    // From the path as resolved (`dist` a link to `www`: `www.kiln`), so that
    // every command finds the same folder.
    let out = crate::emit::paths::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    match out.file_name() {
        Some(name) => out.with_file_name(format!("{}.kiln", name.to_string_lossy())),
        None => out.join(".kiln"),
    }
}

/// The manifest of the build in `out`: in it, or else in the folder beside it
/// ([`meta_dir_beside`]); the first when neither exists.
pub fn manifest_file(out: &std::path::Path) -> std::path::PathBuf {
    let inside = out.join(MANIFEST_FILE);
    if inside.is_file() {
        return inside;
    }
    let beside = meta_dir_beside(out).join(MANIFEST_FILE);
    if beside.is_file() { beside } else { inside }
}

/// Version of the manifest schema (see `docs/manifest.md`).
pub const SCHEMA_VERSION: u32 = 1;

/// The whole build, by source path.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub schema: u32,
    pub generator: String,
    /// URL path the site is served under.
    pub base: String,
    /// The precompression settings the variants were made with.
    pub compression: CompressOptions,
    /// Every source file, by its path relative to the source root.
    pub files: BTreeMap<String, FileEntry>,
    /// Redirects, rewrites and the fallback (`[routes]` and `_redirects`).
    #[serde(default, skip_serializing_if = "Routes::is_empty")]
    pub routes: Routes,
}

/// One source file and what became of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Path of the output, relative to the output root.
    pub output: String,
    pub kind: AssetKind,
    /// `Content-Type`, with `charset=utf-8` for text.
    pub content_type: String,
    /// `Cache-Control` for `output`.
    pub cache_control: String,
    /// Whether `output` carries a content hash.
    pub hashed: bool,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Size of `output + ".gz"`, when that variant was kept.
    pub gzip: Option<u64>,
    /// Size of `output + ".br"`, when that variant was kept.
    pub brotli: Option<u64>,
    /// Size of `output + ".zst"`, when that variant was made (`[compress] zstd`) and kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zstd: Option<u64>,
    /// blake3 of the output bytes, hex.
    pub blake3: String,
    /// Subresource integrity (`sha384-…`) of the output bytes.
    pub integrity: String,
    /// Other paths with the same bytes (the original name of a hashed file).
    #[serde(default)]
    pub aliases: Vec<Alias>,
    /// For a variant kiln generated (`images.variants`), the source path of
    /// the image it stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_of: Option<String>,
    /// Written for a backend to read from the output directory (`private`
    /// globs, `.vite/**` by default), never served or deployed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
    /// Response headers from `[[headers]]` rules besides Content-Type and
    /// Cache-Control, by lower-case name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// A second copy of an output under another path, with its own cache policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Alias {
    pub path: String,
    pub cache_control: String,
}

/// One file to serve: an output or an alias, with its headers.
#[derive(Debug, Clone, Copy)]
pub struct Served<'a> {
    pub path: &'a str,
    pub source: &'a str,
    pub entry: &'a FileEntry,
    pub cache_control: &'a str,
}

impl Manifest {
    /// A manifest with no files.
    pub fn empty(base: &str) -> Manifest {
        Manifest {
            schema: SCHEMA_VERSION,
            generator: crate::generator(),
            base: base.to_owned(),
            compression: Default::default(),
            files: Default::default(),
            routes: Routes::default(),
        }
    }

    /// Parse a manifest read from `origin` (a path or a deploy target, for errors).
    pub fn parse(origin: &str, bytes: &[u8]) -> crate::Result<Manifest> {
        let invalid = |message: String| {
            crate::Error::io(
                std::path::Path::new(origin),
                std::io::Error::new(std::io::ErrorKind::InvalidData, message),
            )
        };
        let manifest: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not a kiln manifest: {e}")))?;
        if manifest.schema != SCHEMA_VERSION {
            return Err(invalid(format!(
                "manifest schema {} (this kiln reads {SCHEMA_VERSION})",
                manifest.schema
            )));
        }
        Ok(manifest)
    }

    /// The manifest of the build in `out`.
    pub fn read(out: &std::path::Path) -> crate::Result<Manifest> {
        let path = manifest_file(out);
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => crate::Error::NotABuild(out.to_path_buf()),
            _ => crate::Error::io(&path, e),
        })?;
        serde_json::from_str(&text).map_err(|e| {
            crate::Error::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })
    }

    /// Every path served, sorted: outputs and aliases (not private files).
    pub fn served(&self) -> Vec<Served<'_>> {
        let mut out: Vec<Served<'_>> = self
            .files
            .iter()
            .filter(|(_, entry)| !entry.private)
            .flat_map(|(source, entry)| {
                std::iter::once(Served {
                    path: &entry.output,
                    source,
                    entry,
                    cache_control: &entry.cache_control,
                })
                .chain(entry.aliases.iter().map(move |a| Served {
                    path: &a.path,
                    source,
                    entry,
                    cache_control: &a.cache_control,
                }))
            })
            .collect();
        out.sort_by(|a, b| a.path.cmp(b.path));
        out
    }

    /// The outputs of private files: kept out of what is served.
    pub fn private_paths(&self) -> impl Iterator<Item = &str> {
        self.files
            .values()
            .filter(|e| e.private)
            .map(|e| e.output.as_str())
    }

    /// Pretty JSON with sorted keys and a final newline.
    pub fn to_json(&self) -> String {
        sorted_json(self)
    }

    /// A flat `{ source: output }` map of renamed files (the gulp-rev format).
    pub fn rev_manifest(&self) -> String {
        sorted_json(&self.renamed())
    }

    /// Django's `ManifestStaticFilesStorage` format.
    pub fn django(&self) -> String {
        #[derive(Serialize)]
        struct Staticfiles<'a> {
            paths: BTreeMap<&'a str, &'a str>,
            version: &'static str,
        }
        // Django raises for a file missing from the manifest, so list every
        // asset, renamed or not.
        let paths = self
            .files
            .iter()
            .filter(|(_, e)| e.kind != AssetKind::Html)
            .map(|(s, e)| (s.as_str(), e.output.as_str()))
            .collect();
        sorted_json(&Staticfiles {
            paths,
            version: "1.1",
        })
    }

    /// Propshaft's `.manifest.json`: every asset with its digested path and integrity.
    pub fn propshaft(&self) -> String {
        #[derive(Serialize)]
        struct Entry<'a> {
            digested_path: &'a str,
            integrity: &'a str,
        }
        let map: BTreeMap<&str, Entry<'_>> = self
            .files
            .iter()
            .filter(|(_, e)| e.kind != AssetKind::Html)
            .map(|(s, e)| {
                (
                    s.as_str(),
                    Entry {
                        digested_path: &e.output,
                        integrity: &e.integrity,
                    },
                )
            })
            .collect();
        sorted_json(&map)
    }

    fn renamed(&self) -> BTreeMap<&str, &str> {
        self.files
            .iter()
            .filter(|(s, e)| **s != e.output)
            .map(|(s, e)| (s.as_str(), e.output.as_str()))
            .collect()
    }
}

/// Serialise through `serde_json::Value`, whose maps are sorted.
fn sorted_json<T: Serialize>(value: &T) -> String {
    let value = serde_json::to_value(value).expect("manifest types serialise");
    let mut s = serde_json::to_string_pretty(&value).expect("values serialise");
    s.push('\n');
    s
}

/// Manifests for unit tests elsewhere (budgets, diff).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An entry of `raw` bytes with these variants, the rest empty.
    pub fn entry(
        kind: AssetKind,
        blake3: &str,
        raw: u64,
        gzip: Option<u64>,
        brotli: Option<u64>,
    ) -> FileEntry {
        FileEntry {
            output: String::new(),
            kind,
            content_type: String::new(),
            cache_control: String::new(),
            hashed: false,
            bytes_in: raw,
            bytes_out: raw,
            gzip,
            brotli,
            zstd: None,
            blake3: blake3.to_owned(),
            integrity: String::new(),
            aliases: Vec::new(),
            variant_of: None,
            private: false,
            headers: Default::default(),
        }
    }

    /// A manifest holding these files.
    pub fn manifest(files: &[(&str, FileEntry)]) -> Manifest {
        let mut m = Manifest::empty("/");
        for (path, e) in files {
            m.files.insert((*path).to_owned(), e.clone());
        }
        m
    }
}

/// Which manifest and header formats are written besides `kiln-manifest.json`
/// (the defaults of `--host all`; each host preset has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputFormats {
    pub rev_manifest: bool,
    pub django: bool,
    pub propshaft: bool,
    pub headers: bool,
    pub nginx: bool,
    /// `kiln-caddy.conf`.
    pub caddy: bool,
    /// `.htaccess` (off by default: it changes any Apache serving the folder).
    pub apache: bool,
    /// `_redirects`, when the site has routes.
    pub redirects: bool,
    /// `kiln-cloudfront-function.js`, when the site has routes.
    pub cloudfront_function: bool,
}

impl Default for OutputFormats {
    fn default() -> Self {
        OutputFormats {
            rev_manifest: true,
            django: true,
            propshaft: true,
            headers: true,
            nginx: true,
            caddy: true,
            apache: false,
            redirects: true,
            cloudfront_function: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_schema_is_refused() {
        let mut m = Manifest::empty("/");
        assert!(Manifest::parse("m.json", m.to_json().as_bytes()).is_ok());
        m.schema = 7;
        let e = Manifest::parse("m.json", m.to_json().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("schema 7"), "{e}");
        assert!(Manifest::parse("m.json", b"{}").is_err());
    }

    fn entry(output: &str, kind: AssetKind) -> FileEntry {
        FileEntry {
            output: output.into(),
            kind,
            content_type: "text/css; charset=utf-8".into(),
            cache_control: "public".into(),
            hashed: true,
            bytes_in: 10,
            bytes_out: 9,
            gzip: None,
            brotli: Some(5),
            zstd: None,
            blake3: "00".into(),
            integrity: "sha384-x".into(),
            aliases: vec![Alias {
                path: "a.css".into(),
                cache_control: "short".into(),
            }],
            variant_of: None,
            private: false,
            headers: Default::default(),
        }
    }

    #[test]
    fn adapters_list_renamed_files() {
        let mut files = BTreeMap::new();
        files.insert("a.css".to_string(), entry("a.h.css", AssetKind::Css));
        let mut page = entry("i.html", AssetKind::Html);
        page.aliases.clear();
        files.insert("i.html".to_string(), page);
        let m = Manifest {
            schema: SCHEMA_VERSION,
            generator: "kiln test".into(),
            base: "/".into(),
            compression: CompressOptions::default(),
            files,
            routes: Routes::default(),
        };
        assert_eq!(m.rev_manifest(), "{\n  \"a.css\": \"a.h.css\"\n}\n");
        assert!(m.django().contains("\"version\": \"1.1\""));
        assert!(m.propshaft().contains("digested_path"));
        assert!(!m.propshaft().contains("i.html"));
        let served: Vec<&str> = m.served().iter().map(|s| s.path).collect();
        assert_eq!(served, ["a.css", "a.h.css", "i.html"]);
        let back: Manifest = serde_json::from_str(&m.to_json()).unwrap();
        assert_eq!(back, m);
    }
}
