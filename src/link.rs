//! The link stage: resolve every reference, decide which files get hashed
//! names, and name them bottom-up over the asset graph so that a file's hash
//! covers the final names of everything it references. Then substitute the
//! final names into the bytes.
//!
//! A cycle (modules that import each other) is hashed as one unit: each member's
//! name derives from the hash of all members together.

use std::collections::HashMap;

use crate::asset::{Asset, AssetKind, RefKind, Reference};
use crate::config::{Config, HashPolicy};
use crate::diag::Diagnostic;
use crate::graph;
use crate::hash::{hashed_path, short_hash};
use crate::resolve::{Resolution, resolve};
use crate::rewrite::{Edit, apply, encode_file_name, file_name_range};

/// A transformed file as the link stage receives it.
#[derive(Debug)]
pub struct Processed {
    /// The transformed bytes, or `None` when they equal the source file's (not
    /// held in memory). Always `Some` when `refs` is not empty.
    pub bytes: Option<Vec<u8>>,
    /// blake3 of the transformed bytes.
    pub hash: blake3::Hash,
    pub refs: Vec<Reference>,
    /// An HTML document's `<base href>`.
    pub base: Option<String>,
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
}

/// Link all files. `processed[i]` belongs to `assets[i]`.
pub fn link(
    assets: &[Asset],
    processed: Vec<Processed>,
    config: &Config,
) -> (Vec<Linked>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let targets = resolve_all(assets, &processed, config, &mut diagnostics);
    let hashed = hashed_set(assets, &processed, &targets, config);

    let edges: Vec<Vec<usize>> = targets
        .iter()
        .map(|ts| {
            let mut e: Vec<usize> = ts
                .iter()
                .flatten()
                .copied()
                .filter(|&t| hashed[t])
                .collect();
            e.sort_unstable();
            e.dedup();
            e
        })
        .collect();

    let mut names: Vec<Option<String>> = vec![None; assets.len()];
    let mut slots: Vec<Option<Processed>> = processed.into_iter().map(Some).collect();
    let mut linked: Vec<Option<Linked>> = (0..assets.len()).map(|_| None).collect();

    for component in graph::components(&edges) {
        let cyclic = component.len() > 1 || edges[component[0]].contains(&component[0]);
        if cyclic {
            let unit = unit_hash(&component, assets, &slots, &targets, &names);
            for &v in &component {
                let mut h = blake3::Hasher::new();
                h.update(unit.as_bytes());
                h.update(assets[v].path.as_bytes());
                names[v] = Some(hashed_path(
                    &assets[v].path,
                    &short_hash(&h.finalize(), config.hash_length),
                ));
            }
            for &v in &component {
                let p = slots[v].take().expect("each file is linked once");
                let (bytes, hash) = substitute(
                    config.immutable.is_match(&assets[v].path),
                    p,
                    &targets[v],
                    assets,
                    &names,
                );
                linked[v] = Some(Linked {
                    output: names[v].clone().expect("named above"),
                    hashed: true,
                    bytes,
                    hash,
                });
            }
        } else {
            let v = component[0];
            let p = slots[v].take().expect("each file is linked once");
            let (bytes, hash) = substitute(
                config.immutable.is_match(&assets[v].path),
                p,
                &targets[v],
                assets,
                &names,
            );
            let output = if hashed[v] {
                hashed_path(&assets[v].path, &short_hash(&hash, config.hash_length))
            } else {
                assets[v].path.clone()
            };
            names[v] = Some(output.clone());
            linked[v] = Some(Linked {
                output,
                hashed: hashed[v],
                bytes,
                hash,
            });
        }
    }
    let linked = linked
        .into_iter()
        .map(|l| l.expect("every file is in a component"))
        .collect();
    (linked, diagnostics)
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

fn substitute(
    frozen: bool,
    p: Processed,
    targets: &[Option<usize>],
    assets: &[Asset],
    names: &[Option<String>],
) -> (Option<Vec<u8>>, blake3::Hash) {
    let Some(bytes) = p.bytes else {
        return (None, p.hash);
    };
    if frozen {
        // An `immutable` file keeps its name, so it must keep its bytes too:
        // its references still resolve through the original names kept beside
        // hashed files.
        return (Some(bytes), p.hash);
    }
    let edits = edits(&bytes, &p.refs, targets, assets, names);
    if edits.is_empty() {
        return (Some(bytes), p.hash);
    }
    let out = apply(&bytes, &edits);
    let hash = blake3::hash(&out);
    (Some(out), hash)
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
            }
            None => {
                h.update(p.hash.as_bytes());
            }
        }
    }
    h.finalize()
}
