//! The link stage: resolve every reference, decide which files get hashed
//! names, and name them bottom-up over the asset graph so that a file's hash
//! covers the final names of everything it references. Then substitute the
//! final names into the bytes.
//!
//! A cycle (modules that import each other) is hashed as one unit: each member's
//! name derives from the hash of all members together.

use std::collections::HashMap;

use crate::asset::{Asset, AssetKind, ImgTag, RefKind, Reference};
use crate::config::{Config, HashPolicy};
use crate::diag::Diagnostic;
use crate::graph;
use crate::hash::{hashed_path, short_hash};
use crate::resolve::{Resolution, resolve};
use crate::rewrite::{Edit, apply, encode_file_name, file_name_range};
use crate::transform::variants::Format;

/// A transformed file as the link stage receives it.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The transformed bytes, or `None` when they equal the source file's (not
    /// held in memory). Always `Some` when `refs` is not empty.
    pub bytes: Option<Vec<u8>>,
    /// blake3 of the transformed bytes.
    pub hash: blake3::Hash,
    pub refs: Vec<Reference>,
    /// An HTML document's `<base href>`.
    pub base: Option<String>,
    /// A source map kiln generated (named by the file it maps).
    pub generated_map: bool,
    /// An HTML document's `<img>` elements (positions in `bytes`).
    pub images: Vec<ImgTag>,
    /// A raster image's size as shown, in CSS pixels.
    pub dimensions: Option<(u32, u32)>,
    /// A variant kiln generated, at `<original path>.<format>`.
    pub generated_variant: bool,
}

/// A file with its final name and bytes.
#[derive(Debug)]
pub struct Linked {
    /// Output path relative to the output root.
    pub output: String,
    /// Whether `output` carries a content hash.
    pub hashed: bool,
    /// Final bytes, or `None` when identical to the source file.
    pub bytes: Option<Vec<u8>>,
    /// blake3 of the final bytes.
    pub hash: blake3::Hash,
    /// A variant kiln generated: never `immutable` by glob, since its bytes
    /// change with kiln's options under the same name.
    pub generated_variant: bool,
}

/// Link all files. `processed[i]` belongs to `assets[i]`.
pub fn link(
    assets: &[Asset],
    processed: Vec<Processed>,
    config: &Config,
) -> (Vec<Linked>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let targets = resolve_all(assets, &processed, config, &mut diagnostics);
    let variants = variants_of(assets, &processed);
    let mut hashed = hashed_set(assets, &processed, &targets, config);
    // A variant is named like the image it stands for, and hashed when the
    // image is `immutable` too: the image's name is fixed, the variant's bytes
    // change with kiln's options.
    for (origin, vs) in variants.iter().enumerate() {
        let fixed =
            config.hash != HashPolicy::None && config.immutable.is_match(&assets[origin].path);
        for &(_, v) in vs {
            hashed[v] = hashed[origin] || fixed;
        }
    }
    let dimensions: Vec<Option<(u32, u32)>> = processed.iter().map(|p| p.dimensions).collect();

    let edges: Vec<Vec<usize>> = targets
        .iter()
        .zip(&processed)
        .map(|(ts, p)| {
            let pictures = config.images.picture && !p.images.is_empty();
            let mut e: Vec<usize> = ts
                .iter()
                .flatten()
                .copied()
                .filter(|&t| hashed[t])
                // A page that offers an image's variants names them, hashed
                // or not (a variant references nothing: no cycle).
                .chain(
                    ts.iter()
                        .flatten()
                        .filter(|_| pictures)
                        .flat_map(|&t| variants[t].iter().map(|&(_, v)| v)),
                )
                .collect();
            e.sort_unstable();
            e.dedup();
            e
        })
        .collect();

    let mut state = State {
        assets,
        targets: &targets,
        hashed: &hashed,
        config,
        names: vec![None; assets.len()],
        variants: &variants,
        dimensions: &dimensions,
        slots: processed.into_iter().map(Some).collect(),
        linked: (0..assets.len()).map(|_| None).collect(),
    };
    for component in graph::components(&edges) {
        let cyclic = component.len() > 1 || edges[component[0]].contains(&component[0]);
        if cyclic {
            let unit = unit_hash(&component, assets, &state.slots, &targets, &state.names);
            for &v in &component {
                let mut h = blake3::Hasher::new();
                h.update(unit.as_bytes());
                h.update(assets[v].path.as_bytes());
                state.names[v] = Some(hashed_path(
                    &assets[v].path,
                    &short_hash(&h.finalize(), config.hash_length),
                ));
            }
            for &v in &component {
                let (bytes, hash) = state.substitute(v);
                state.linked[v] = Some(Linked {
                    output: state.names[v].clone().expect("named above"),
                    hashed: true,
                    bytes,
                    hash,
                    generated_variant: false,
                });
            }
        } else {
            let v = component[0];
            if state.slots[v].as_ref().is_some_and(|p| p.generated_map) {
                // Named by the file it maps, once that file's edits are known.
                continue;
            }
            if state.linked[v].is_none() {
                state.link_acyclic(v);
            }
        }
    }
    for v in 0..assets.len() {
        if state.linked[v].is_none() {
            state.link_acyclic(v);
        }
    }
    let linked = state
        .linked
        .into_iter()
        .map(|l| l.expect("every file is linked"))
        .collect();
    (linked, diagnostics)
}

/// The link stage's working state.
struct State<'a> {
    assets: &'a [Asset],
    targets: &'a [Vec<Option<usize>>],
    hashed: &'a [bool],
    config: &'a Config,
    names: Vec<Option<String>>,
    /// For each image, its generated variants.
    variants: &'a [Vec<(Format, usize)>],
    /// For each raster image, its intrinsic size.
    dimensions: &'a [Option<(u32, u32)>],
    slots: Vec<Option<Processed>>,
    linked: Vec<Option<Linked>>,
}

impl State<'_> {
    /// Name a file outside any cycle from the hash of its final bytes.
    fn link_acyclic(&mut self, v: usize) {
        let generated_variant = self.slots[v].as_ref().is_some_and(|p| p.generated_variant);
        let (bytes, hash) = self.substitute(v);
        let output = if self.hashed[v] {
            hashed_path(
                &self.assets[v].path,
                &short_hash(&hash, self.config.hash_length),
            )
        } else {
            self.assets[v].path.clone()
        };
        self.names[v] = Some(output.clone());
        self.linked[v] = Some(Linked {
            output,
            hashed: self.hashed[v],
            bytes,
            hash,
            generated_variant,
        });
    }

    /// The final bytes of `v`: its references replaced by final names. A
    /// source map kiln generated for `v` is moved to match `v`'s edits and
    /// named first, since `v` then names it.
    fn substitute(&mut self, v: usize) -> (Option<Vec<u8>>, blake3::Hash) {
        let p = self.slots[v].take().expect("each file is linked once");
        let Some(bytes) = p.bytes else {
            return (None, p.hash);
        };
        if self.config.immutable.is_match(&self.assets[v].path) {
            // An `immutable` file keeps its name, so it must keep its bytes too:
            // its references still resolve through the original names kept beside
            // hashed files.
            return (Some(bytes), p.hash);
        }
        let maps: Vec<usize> = p
            .refs
            .iter()
            .zip(&self.targets[v])
            .filter(|(r, _)| r.kind == RefKind::SourceMap)
            .filter_map(|(_, t)| *t)
            .filter(|&m| self.slots[m].as_ref().is_some_and(|p| p.generated_map))
            .collect();
        for m in maps {
            let others = edits(&bytes, &p.refs, &self.targets[v], self.assets, &self.names);
            self.link_map(m, &bytes, &others);
        }
        let mut edits = edits(&bytes, &p.refs, &self.targets[v], self.assets, &self.names);
        let images = &self.config.images;
        if !p.images.is_empty() && (images.picture || images.dimensions) {
            let known = crate::picture::Known {
                variants: self.variants,
                dimensions: self.dimensions,
                names: &self.names,
                picture: images.picture,
                dimensions_on: images.dimensions,
            };
            edits.extend(crate::picture::edits(
                &bytes,
                &p.images,
                &p.refs,
                &self.targets[v],
                &known,
            ));
            // Insertions keep their order among themselves (stable sort).
            edits.sort_by_key(|e| e.range.start);
        }
        if edits.is_empty() {
            return (Some(bytes), p.hash);
        }
        let out = apply(&bytes, &edits);
        let hash = blake3::hash(&out);
        (Some(out), hash)
    }

    /// Move a generated map's tokens by the edits about to be made to the file
    /// it maps, then name it.
    fn link_map(&mut self, m: usize, mapped: &[u8], edits: &[Edit]) {
        let p = self.slots[m].take().expect("each file is linked once");
        let json = p.bytes.unwrap_or_default();
        let width = |b: &[u8]| String::from_utf8_lossy(b).encode_utf16().count() as i64;
        let shifts: Vec<(usize, i64)> = edits
            .iter()
            .map(|e| {
                (
                    e.range.start,
                    width(e.text.as_bytes()) - width(&mapped[e.range.clone()]),
                )
            })
            .collect();
        let text = String::from_utf8_lossy(mapped);
        let moved = swc_sourcemap::SourceMap::from_slice(&json)
            .map(|map| {
                let shifted =
                    crate::transform::sourcemap::shift(&map, &text, Default::default(), &shifts);
                crate::transform::sourcemap::to_json(&shifted)
            })
            .unwrap_or(json);
        self.slots[m] = Some(Processed {
            hash: blake3::hash(&moved),
            bytes: Some(moved),
            ..p
        });
        self.link_acyclic(m);
    }
}

/// For each file, the variants generated for it: `<path>.<format>` files
/// marked as generated.
fn variants_of(assets: &[Asset], processed: &[Processed]) -> Vec<Vec<(Format, usize)>> {
    let by_path: HashMap<&str, usize> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a.path.as_str(), i))
        .collect();
    let mut variants = vec![Vec::new(); assets.len()];
    for (i, (a, p)) in assets.iter().zip(processed).enumerate() {
        if !p.generated_variant {
            continue;
        }
        let origin = a.path.rsplit_once('.').and_then(|(o, _)| by_path.get(o));
        if let (Some(&o), Some(format)) = (origin, Format::of_path(&a.path)) {
            variants[o].push((format, i));
        }
    }
    for vs in &mut variants {
        vs.sort();
    }
    variants
}

/// For each file, the target of each of its references (`None`: not local, or unresolved).
fn resolve_all(
    assets: &[Asset],
    processed: &[Processed],
    config: &Config,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Vec<Option<usize>>> {
    let by_path: HashMap<&str, usize> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a.path.as_str(), i))
        .collect();
    let lookup = |path: &str, directory: bool, kind: RefKind| -> Option<usize> {
        let index = if path.is_empty() {
            "index.html".to_owned()
        } else {
            format!("{path}/index.html")
        };
        if directory {
            return by_path.get(index.as_str()).copied();
        }
        by_path.get(path).copied().or_else(|| {
            (kind == RefKind::Navigation)
                .then(|| {
                    by_path
                        .get(index.as_str())
                        .or_else(|| by_path.get(format!("{path}.html").as_str()))
                })
                .flatten()
                .copied()
        })
    };
    assets
        .iter()
        .zip(processed)
        .map(|(asset, p)| {
            p.refs
                .iter()
                .map(|r| match resolve(&r.url, &asset.path, p.base.as_deref(), &config.base) {
                    Resolution::External => None,
                    Resolution::Local { path, directory } => {
                        let target = lookup(&path, directory, r.kind);
                        if target.is_none() {
                            diagnostics.push(
                                Diagnostic::warning(
                                    &asset.source,
                                    format!("reference `{}` does not match a file in the source tree: left as written", r.url),
                                )
                                .at(r.line, r.col),
                            );
                        }
                        target
                    }
                    Resolution::Escapes { .. } => {
                        diagnostics.push(
                            Diagnostic::warning(
                                &asset.source,
                                format!("reference `{}` points outside the source directory: left as written, not followed", r.url),
                            )
                            .at(r.line, r.col),
                        );
                        None
                    }
                })
                .collect()
        })
        .collect()
}

/// Which files get hashed names under the configured policy.
fn hashed_set(
    assets: &[Asset],
    processed: &[Processed],
    targets: &[Vec<Option<usize>>],
    config: &Config,
) -> Vec<bool> {
    let eligible = |a: &Asset| {
        a.kind != AssetKind::Html
            && !config.keep_names.is_match(&a.path)
            && !config.immutable.is_match(&a.path)
    };
    match config.hash {
        HashPolicy::None => vec![false; assets.len()],
        HashPolicy::All => assets.iter().map(eligible).collect(),
        HashPolicy::Referenced => {
            let mut referenced = vec![false; assets.len()];
            for (i, (p, ts)) in processed.iter().zip(targets).enumerate() {
                for (r, t) in p.refs.iter().zip(ts) {
                    if let Some(t) = *t
                        && t != i
                        && r.kind.fingerprints_target()
                    {
                        referenced[t] = true;
                    }
                }
            }
            assets
                .iter()
                .zip(referenced)
                .map(|(a, r)| r && eligible(a))
                .collect()
        }
    }
}

/// The edits that write the final names of renamed targets.
fn edits(
    bytes: &[u8],
    refs: &[Reference],
    targets: &[Option<usize>],
    assets: &[Asset],
    names: &[Option<String>],
) -> Vec<Edit> {
    refs.iter()
        .zip(targets)
        .filter_map(|(r, t)| {
            let t = (*t)?;
            let name = names[t].as_deref()?;
            if name == assets[t].path {
                return None;
            }
            let raw = std::str::from_utf8(&bytes[r.span.clone()]).ok()?;
            let range = file_name_range(raw);
            if range.is_empty() {
                return None;
            }
            let file_name = name.rsplit('/').next().unwrap_or(name);
            Some(Edit {
                range: r.span.start + range.start..r.span.start + range.end,
                text: encode_file_name(file_name),
            })
        })
        .collect()
}

/// One hash over all members of a cycle: their paths and their bytes with the
/// references that leave the cycle already substituted.
fn unit_hash(
    component: &[usize],
    assets: &[Asset],
    slots: &[Option<Processed>],
    targets: &[Vec<Option<usize>>],
    names: &[Option<String>],
) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    for &v in component {
        let p = slots[v].as_ref().expect("not linked yet");
        h.update(assets[v].path.as_bytes());
        h.update(&[0]);
        match &p.bytes {
            Some(bytes) => {
                let outside: Vec<Option<usize>> = targets[v]
                    .iter()
                    .map(|t| t.filter(|t| !component.contains(t)))
                    .collect();
                let partial = apply(bytes, &edits(bytes, &p.refs, &outside, assets, names));
                h.update(blake3::hash(&partial).as_bytes());
                // A generated map is named after the cycle: its content must
                // count here, or a change to it alone would keep the names.
                for m in p
                    .refs
                    .iter()
                    .zip(&targets[v])
                    .filter_map(|(r, t)| t.filter(|_| r.kind == RefKind::SourceMap))
                {
                    if let Some(map) = slots[m].as_ref().filter(|p| p.generated_map) {
                        h.update(map.hash.as_bytes());
                    }
                }
            }
            None => {
                h.update(p.hash.as_bytes());
            }
        }
    }
    h.finalize()
}
