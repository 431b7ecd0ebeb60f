//! The link stage: resolve every reference, decide which files get hashed
//! names, and name them bottom-up over the asset graph so that a file's hash
//! covers the final names of everything it references. Then substitute the
//! final names into the bytes.
//!
//! A cycle (modules that import each other) is hashed as one unit: each member's
//! name derives from the hash of all members together.

pub mod graph;
pub mod hash;
pub mod picture;
pub mod resolve;
pub mod rewrite;

use std::collections::HashMap;
use std::ops::Range;

use crate::asset::{Asset, AssetKind, ImgTag, RefKind, Reference};
use crate::diag::Diagnostic;
use crate::glob::GlobList;
use crate::link::hash::{hashed_path, short_hash};
use crate::link::resolve::{Resolution, resolve};
use crate::link::rewrite::{Edit, apply, encode_file_name, file_name_range};
use crate::spill::{Blob, Bytes, Spill};
use crate::transform::variants::Format;
use serde::Deserialize;

/// A transformed file as the link stage receives it.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The transformed bytes, or `None` when they equal the source file's (not
    /// held in memory). Always `Some` when `refs` is not empty.
    pub bytes: Option<Blob>,
    /// blake3 of the transformed bytes.
    pub hash: blake3::Hash,
    /// Its references to files the link stage may rename ([`resolve_refs`]).
    pub refs: Vec<Resolved>,
    /// A source map kiln generated (named by the file it maps).
    pub generated_map: bool,
    /// An HTML document's `<img>` elements (positions in `bytes`).
    pub images: Vec<ImgTag>,
    /// A raster image's size as shown, in CSS pixels.
    pub dimensions: Option<(u32, u32)>,
    /// A variant kiln generated, at `<original path>.<format>`.
    pub generated_variant: bool,
}

/// A reference resolved to a file of the source tree: all the link stage
/// keeps of it once the URL is known to point there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Byte range of the URL as written, inside the transformed bytes.
    pub span: Range<usize>,
    pub kind: RefKind,
    /// The target's path in the source tree.
    pub target: String,
    /// Never rewritten ([`Reference::pinned`]).
    pub pinned: bool,
}

/// The files of the source tree by path, to resolve references against.
#[derive(Debug)]
pub struct Tree {
    kinds: HashMap<String, AssetKind>,
    /// Identifies the set of paths and kinds: a file's references resolve
    /// the same way against two trees with the same fingerprint.
    pub fingerprint: blake3::Hash,
}

impl Tree {
    pub fn new(assets: &[Asset]) -> Self {
        Tree::with_generated(assets, std::iter::empty())
    }

    /// The source files, and the files a build may generate beside them
    /// (source maps, image variants) where no source file has their path.
    /// A reference to a generated file that the build does not make in the
    /// end resolves to nothing, and is left as written.
    pub fn with_generated(
        assets: &[Asset],
        generated: impl IntoIterator<Item = (String, AssetKind)>,
    ) -> Self {
        let mut kinds: HashMap<String, AssetKind> =
            assets.iter().map(|a| (a.path.clone(), a.kind)).collect();
        for (path, kind) in generated {
            kinds.entry(path).or_insert(kind);
        }
        let mut sorted: Vec<(&String, &AssetKind)> = kinds.iter().collect();
        sorted.sort();
        let mut h = blake3::Hasher::new();
        for (path, kind) in sorted {
            h.update(path.as_bytes());
            h.update(&[0, *kind as u8]);
        }
        Tree {
            kinds,
            fingerprint: h.finalize(),
        }
    }

    /// The file a local URL path names: the path itself, a directory's
    /// `index.html`, or for links only, `path/index.html` or `path.html`.
    fn lookup(&self, path: &str, directory: bool, kind: RefKind) -> Option<(String, AssetKind)> {
        let find = |p: &str| self.kinds.get(p).map(|&k| (p.to_owned(), k));
        let index = if path.is_empty() {
            "index.html".to_owned()
        } else {
            format!("{path}/index.html")
        };
        if directory {
            return find(&index);
        }
        find(path).or_else(|| {
            (kind == RefKind::Navigation)
                .then(|| find(&index).or_else(|| find(&format!("{path}.html"))))
                .flatten()
        })
    }
}

/// Resolve the references of one file against the tree, with a warning for
/// each local URL that matches no file or leaves the tree. Only references
/// the link stage may rewrite are kept: a page is never renamed, so links to
/// pages (most references of a documentation site) are dropped here rather
/// than held until the whole tree is transformed.
pub fn resolve_refs(
    asset: &Asset,
    refs: Vec<Reference>,
    base: Option<&str>,
    tree: &Tree,
    site_base: &str,
) -> (Vec<Resolved>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let mut resolved = refs
        .into_iter()
        .filter_map(|r| {
            match resolve(&r.url, &asset.path, base, site_base) {
                Resolution::External => None,
                Resolution::Local { path, directory } => {
                    let found = tree.lookup(&path, directory, r.kind);
                    if found.is_none() && r.kind != RefKind::Manifest {
                        diagnostics.push(
                            Diagnostic::warning(
                                &asset.source,
                                format!("reference `{}` does not match a file in the source tree: left as written", r.url),
                            )
                            .at(r.line, r.col),
                        );
                    }
                    let (target, kind) = found?;
                    (kind != AssetKind::Html).then_some(Resolved {
                        span: r.span,
                        kind: r.kind,
                        target,
                        pinned: r.pinned,
                    })
                }
                Resolution::Escapes { .. } if r.kind == RefKind::Manifest => None,
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
            }
        })
        .collect::<Vec<_>>();
    // `collect` reuses the buffer of all references in place: most were
    // dropped, and the link stage holds this for every file of the tree.
    resolved.shrink_to_fit();
    (resolved, diagnostics)
}

/// A file with its final name and bytes.
#[derive(Debug)]
pub struct Linked {
    /// Output path relative to the output root.
    pub output: String,
    /// Whether `output` carries a content hash kiln gave it.
    pub hashed: bool,
    /// A hashed file is also written under its original name: with
    /// `keep_originals`, or because a reference that is never rewritten
    /// names it (from a fingerprinted or `immutable` file, or a pinned one).
    pub keep_original: bool,
    /// Final bytes, or `None` when identical to the source file; an error
    /// when they could not be read back from the spill file.
    pub bytes: Result<Option<Blob>, String>,
    /// blake3 of the final bytes.
    pub hash: blake3::Hash,
    /// A variant kiln generated: never `immutable` by glob, since its bytes
    /// change with kiln's options under the same name.
    pub generated_variant: bool,
}

/// Link all files. `processed[i]` belongs to `assets[i]`; their bytes are
/// held in `spill`, and so are the linked bytes.
pub fn link(
    assets: &[Asset],
    processed: Vec<Processed>,
    options: &LinkOptions,
    spill: &Spill,
) -> Vec<Linked> {
    let mut linker = Linker::new(assets, processed, options, spill);
    let mut linked = linker.take_linked();
    for (v, l) in linker.link_pages() {
        linked[v] = Some(l);
    }
    linked
        .into_iter()
        .map(|l| l.expect("every file is linked"))
        .collect()
}

/// The link stage in two steps. [`Linker::new`] names and links every file
/// but the pages; [`Linker::link_pages`] links the pages, in parallel.
///
/// Pages come last, and may come after the other files are written: a page is
/// never renamed (no other file's bytes depend on its name), so it is never
/// part of a cycle and nothing waits for it. `kiln watch` tells open pages to
/// swap an edited stylesheet before the pages are linked.
pub struct Linker<'a> {
    state: State<'a>,
    pages: Vec<usize>,
    /// Per file: it names a file with a hashed name (or a page offers an
    /// image's variants).
    names_hashed: Vec<bool>,
}

impl<'a> Linker<'a> {
    pub fn new(
        assets: &'a [Asset],
        processed: Vec<Processed>,
        options: &'a LinkOptions,
        spill: &'a Spill,
    ) -> Self {
        let targets = targets_of(assets, &processed);
        let variants = variants_of(assets, &processed);
        let mut hashed = hashed_set(assets, &processed, &targets, options);
        // A variant is named like the image it stands for, and hashed when the
        // image is `immutable` too: the image's name is fixed, the variant's bytes
        // change with kiln's options.
        for (origin, vs) in variants.iter().enumerate() {
            let fixed = options.hash != HashPolicy::None && is_fixed(&assets[origin], options);
            for &(_, v) in vs {
                hashed[v] = hashed[origin] || fixed;
            }
        }
        let dimensions: Vec<Option<(u32, u32)>> = processed.iter().map(|p| p.dimensions).collect();
        let keep_original = originals_kept(assets, &processed, &targets, &hashed, options);

        let edges: Vec<Vec<usize>> = targets
            .iter()
            .zip(&processed)
            .map(|(ts, p)| {
                let pictures = options.images.picture && !p.images.is_empty();
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
        let names_hashed = edges.iter().map(|e| !e.is_empty()).collect();

        let mut state = State {
            assets,
            targets,
            hashed,
            keep_original,
            options,
            spill,
            names: vec![None; assets.len()],
            variants,
            dimensions,
            slots: processed.into_iter().map(Some).collect(),
            linked: (0..assets.len()).map(|_| None).collect(),
        };
        let page: Vec<bool> = (0..assets.len())
            .map(|v| assets[v].kind == AssetKind::Html && !state.hashed[v])
            .collect();
        let pages: Vec<usize> = (0..assets.len()).filter(|&v| page[v]).collect();
        for component in graph::components(&edges) {
            let cyclic = component.len() > 1 || edges[component[0]].contains(&component[0]);
            if cyclic {
                let unit = unit_hash(
                    &component,
                    assets,
                    &state.slots,
                    &state.targets,
                    &state.names,
                    spill,
                );
                for &v in &component {
                    let mut h = blake3::Hasher::new();
                    h.update(unit.as_bytes());
                    h.update(assets[v].path.as_bytes());
                    state.names[v] = Some(hashed_path(
                        &assets[v].path,
                        &short_hash(&h.finalize(), options.hash_length),
                    ));
                }
                for &v in &component {
                    let (bytes, hash) = state.substitute(v);
                    state.linked[v] = Some(Linked {
                        output: state.names[v].clone().expect("named above"),
                        hashed: true,
                        keep_original: state.keep_original[v],
                        bytes,
                        hash,
                        generated_variant: false,
                    });
                }
            } else {
                let v = component[0];
                if page[v] || state.slots[v].as_ref().is_some_and(|p| p.generated_map) {
                    // A map is named by the file it maps, once that file's
                    // edits are known; pages come last.
                    continue;
                }
                if state.linked[v].is_none() {
                    state.link_acyclic(v);
                }
            }
        }
        for (v, &is_page) in page.iter().enumerate() {
            if state.linked[v].is_none() && !is_page {
                state.link_acyclic(v);
            }
        }
        Linker {
            state,
            pages,
            names_hashed,
        }
    }

    /// Whether file `v` names a file with a hashed name: written before that
    /// file, it could point at a missing one.
    pub fn names_hashed(&self, v: usize) -> bool {
        self.names_hashed[v]
    }

    /// Every file linked so far (all but the pages), by index.
    pub fn linked(&self) -> &[Option<Linked>] {
        &self.state.linked
    }

    /// Take every file linked so far (all but the pages), by index.
    pub fn take_linked(&mut self) -> Vec<Option<Linked>> {
        std::mem::take(&mut self.state.linked)
    }

    /// Link the pages, in parallel.
    pub fn link_pages(self) -> Vec<(usize, Linked)> {
        self.link_pages_with(|_, linked| linked)
    }

    /// Link the pages, in parallel, largest first, handing each to `then` as
    /// soon as it is linked (the emit stage writes it while its bytes are
    /// hot, and no page waits for all of them). Returns `then`'s results.
    pub fn link_pages_with<R: Send>(
        mut self,
        then: impl Fn(usize, Linked) -> R + Sync + Send,
    ) -> Vec<(usize, R)> {
        use rayon::prelude::*;
        let mut work: Vec<(usize, Processed)> = self
            .pages
            .iter()
            .map(|&v| {
                (
                    v,
                    self.state.slots[v].take().expect("pages are linked once"),
                )
            })
            .collect();
        work.sort_by_key(|(_, p)| std::cmp::Reverse(p.bytes.as_ref().map_or(0, Blob::len)));
        let state = &self.state;
        work.into_par_iter()
            .with_max_len(1)
            .map(|(v, p)| {
                let (bytes, hash) = state.final_bytes(v, p);
                let linked = Linked {
                    output: state.assets[v].path.clone(),
                    hashed: false,
                    keep_original: false,
                    bytes,
                    hash,
                    generated_variant: false,
                };
                (v, then(v, linked))
            })
            .collect()
    }
}

/// The link stage's working state.
struct State<'a> {
    assets: &'a [Asset],
    targets: Vec<Vec<Option<usize>>>,
    hashed: Vec<bool>,
    keep_original: Vec<bool>,
    options: &'a LinkOptions,
    spill: &'a Spill,
    names: Vec<Option<String>>,
    /// For each image, its generated variants.
    variants: Vec<Vec<(Format, usize)>>,
    /// For each raster image, its intrinsic size.
    dimensions: Vec<Option<(u32, u32)>>,
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
                &short_hash(&hash, self.options.hash_length),
            )
        } else {
            self.assets[v].path.clone()
        };
        self.names[v] = Some(output.clone());
        self.linked[v] = Some(Linked {
            output,
            hashed: self.hashed[v],
            keep_original: self.keep_original[v],
            bytes,
            hash,
            generated_variant,
        });
    }

    /// The final bytes of `v`: its references replaced by final names. A
    /// source map kiln generated for `v` is moved to match `v`'s edits and
    /// named first, since `v` then names it.
    fn substitute(&mut self, v: usize) -> (Result<Option<Blob>, String>, blake3::Hash) {
        let p = self.slots[v].take().expect("each file is linked once");
        let maps: Vec<usize> = p
            .refs
            .iter()
            .zip(&self.targets[v])
            .filter(|(r, _)| r.kind == RefKind::SourceMap)
            .filter_map(|(_, t)| *t)
            .filter(|&m| self.slots[m].as_ref().is_some_and(|p| p.generated_map))
            .collect();
        if let Some(blob) = p
            .bytes
            .as_ref()
            .filter(|_| !maps.is_empty() && !self.fixed(v))
        {
            let bytes = match self.spill.read(blob) {
                Ok(bytes) => bytes,
                Err(e) => return (Err(e.to_string()), p.hash),
            };
            for m in maps {
                let others = edits(&bytes, &p.refs, &self.targets[v], self.assets, &self.names);
                self.link_map(m, &bytes, &others);
            }
        }
        self.final_bytes(v, p)
    }

    /// An `immutable` or fingerprinted file keeps its name, so its bytes
    /// must not depend on other files' names: its references are not
    /// rewritten, and resolve through the original names kept beside hashed
    /// files.
    fn fixed(&self, v: usize) -> bool {
        is_fixed(&self.assets[v], self.options)
    }

    /// `p`'s bytes with the final names of its references (and, on a page,
    /// its images' `<picture>` and sizes), once those are all known.
    fn final_bytes(&self, v: usize, p: Processed) -> (Result<Option<Blob>, String>, blake3::Hash) {
        let Some(blob) = p.bytes else {
            return (Ok(None), p.hash);
        };
        if self.fixed(v) || p.refs.is_empty() {
            return (Ok(Some(blob)), p.hash);
        }
        let bytes = match self.spill.read(&blob) {
            Ok(bytes) => bytes,
            Err(e) => return (Err(e.to_string()), p.hash),
        };
        let mut edits = edits(&bytes, &p.refs, &self.targets[v], self.assets, &self.names);
        let images = &self.options.images;
        if !p.images.is_empty() && (images.picture || images.dimensions) {
            let known = crate::link::picture::Known {
                variants: &self.variants,
                dimensions: &self.dimensions,
                names: &self.names,
                picture: images.picture,
                dimensions_on: images.dimensions,
            };
            let spans: Vec<Range<usize>> = p.refs.iter().map(|r| r.span.clone()).collect();
            edits.extend(crate::link::picture::edits(
                &bytes,
                &p.images,
                &spans,
                &self.targets[v],
                &known,
            ));
            // Insertions keep their order among themselves (stable sort).
            edits.sort_by_key(|e| e.range.start);
        }
        if edits.is_empty() {
            drop(bytes);
            return (Ok(Some(blob)), p.hash);
        }
        let out = apply(&bytes, &edits);
        drop(bytes);
        self.spill.discard(blob);
        let hash = blake3::hash(&out);
        (Ok(Some(self.spill.hold(out))), hash)
    }

    /// Move a generated map's tokens by the edits about to be made to the file
    /// it maps, then name it.
    fn link_map(&mut self, m: usize, mapped: &[u8], edits: &[Edit]) {
        let p = self.slots[m].take().expect("each file is linked once");
        let json = match p.bytes.map(|b| self.spill.take(b)).transpose() {
            Ok(json) => json.map(Bytes::into_vec).unwrap_or_default(),
            Err(e) => {
                self.names[m] = Some(self.assets[m].path.clone());
                self.linked[m] = Some(Linked {
                    output: self.assets[m].path.clone(),
                    hashed: false,
                    keep_original: false,
                    bytes: Err(e.to_string()),
                    hash: p.hash,
                    generated_variant: false,
                });
                return;
            }
        };
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
            bytes: Some(self.spill.hold(moved)),
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

/// For each file, the index of each of its references' target (`None`: a
/// file that is not in the build, such as a source map generated for
/// another file).
fn targets_of(assets: &[Asset], processed: &[Processed]) -> Vec<Vec<Option<usize>>> {
    let by_path: HashMap<&str, usize> = assets
        .iter()
        .enumerate()
        .map(|(i, a)| (a.path.as_str(), i))
        .collect();
    processed
        .iter()
        .map(|p| {
            p.refs
                .iter()
                .map(|r| by_path.get(r.target.as_str()).copied())
                .collect()
        })
        .collect()
}

/// Which files get hashed names under the configured policy.
fn hashed_set(
    assets: &[Asset],
    processed: &[Processed],
    targets: &[Vec<Option<usize>>],
    options: &LinkOptions,
) -> Vec<bool> {
    let eligible = |a: &Asset| {
        a.kind != AssetKind::Html && !options.keep_names.is_match(&a.path) && !is_fixed(a, options)
    };
    match options.hash {
        HashPolicy::None => vec![false; assets.len()],
        HashPolicy::All => assets.iter().map(eligible).collect(),
        HashPolicy::Referenced => {
            let mut referenced = vec![false; assets.len()];
            for (i, (p, ts)) in processed.iter().zip(targets).enumerate() {
                // A fixed file's references are never rewritten: a hashed
                // name would serve nobody.
                if is_fixed(&assets[i], options) {
                    continue;
                }
                for (r, t) in p.refs.iter().zip(ts) {
                    if let Some(t) = *t
                        && t != i
                        && r.kind.fingerprints_target()
                        && !r.pinned
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

/// Whether a file keeps its name and the bytes its references have:
/// an `immutable` glob matches it, or a bundler fingerprinted its name.
pub fn is_fixed(asset: &Asset, options: &LinkOptions) -> bool {
    asset.fingerprinted || options.immutable.is_match(&asset.path)
}

/// For each file, whether it is also written under its original name: a
/// hashed file with `keep_originals`, or one that a reference which is never
/// rewritten names (from a fixed file, or pinned in a hydrated root).
fn originals_kept(
    assets: &[Asset],
    processed: &[Processed],
    targets: &[Vec<Option<usize>>],
    hashed: &[bool],
    options: &LinkOptions,
) -> Vec<bool> {
    let mut kept: Vec<bool> = hashed
        .iter()
        .map(|&h| h && options.keep_originals)
        .collect();
    for (v, (p, ts)) in processed.iter().zip(targets).enumerate() {
        let fixed = is_fixed(&assets[v], options);
        for (r, t) in p.refs.iter().zip(ts) {
            if let Some(t) = *t
                && (fixed || r.pinned)
            {
                kept[t] |= hashed[t];
            }
        }
    }
    kept
}

/// The edits that write the final names of renamed targets.
fn edits(
    bytes: &[u8],
    refs: &[Resolved],
    targets: &[Option<usize>],
    assets: &[Asset],
    names: &[Option<String>],
) -> Vec<Edit> {
    refs.iter()
        .zip(targets)
        .filter(|(r, _)| !r.pinned)
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
    spill: &Spill,
) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    for &v in component {
        let p = slots[v].as_ref().expect("not linked yet");
        h.update(assets[v].path.as_bytes());
        h.update(&[0]);
        match p.bytes.as_ref().map(|b| spill.read(b)) {
            Some(Ok(bytes)) => {
                let outside: Vec<Option<usize>> = targets[v]
                    .iter()
                    .map(|t| t.filter(|t| !component.contains(t)))
                    .collect();
                let partial = apply(&bytes, &edits(&bytes, &p.refs, &outside, assets, names));
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
            // Unreadable bytes fail the file at emit; its hash stands in.
            Some(Err(_)) | None => {
                h.update(p.hash.as_bytes());
            }
        }
    }
    h.finalize()
}

/// What the link stage does: which files get content-hashed names, how long
/// the hash is, and what it adds to `<img>` elements.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub hash: HashPolicy,
    /// Characters of the hash in file names. Default: 8.
    pub hash_length: usize,
    /// Files that keep their names whatever `hash` says.
    pub keep_names: GlobList,
    /// Files that keep their names and are served immutable (the user
    /// vouches that their names change with their bytes).
    pub immutable: GlobList,
    /// Also write hashed files under their original names. Default: true.
    pub keep_originals: bool,
    pub images: ImageTags,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            hash: HashPolicy::Referenced,
            hash_length: 8,
            keep_names: GlobList::new(DEFAULT_KEEP_NAMES).expect("default globs are valid"),
            immutable: GlobList::empty(),
            keep_originals: true,
            images: ImageTags::default(),
        }
    }
}

/// Files that keep their names whatever the hash policy says: URLs that other
/// software requests by name.
pub const DEFAULT_KEEP_NAMES: &[&str] = &[
    "favicon.ico",
    "apple-touch-icon*.png",
    "robots.txt",
    "humans.txt",
    "ads.txt",
    "app-ads.txt",
    "sitemap*.xml",
    ".well-known/**",
    "*.webmanifest",
    "manifest.json",
    "sw.js",
    "service-worker.js",
    "_headers",
    "_redirects",
    "CNAME",
];

/// Which files get content-hashed names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum HashPolicy {
    /// Files referenced from the tree (HTML, `keep_names` and unreferenced files keep their names).
    #[default]
    Referenced,
    /// Every file but HTML and `keep_names` (for backends that resolve names through a manifest).
    All,
    /// No file is renamed.
    None,
}

/// What the link stage adds to `<img>` elements once their images are known
/// (`[images]` in kiln.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageTags {
    /// Wrap an `<img>` whose images have variants in a `<picture>` that
    /// offers them. Default: true (only matters with `images.variants`).
    pub picture: bool,
    /// Give an `<img>` with neither `width` nor `height` its image's
    /// intrinsic size. Default: false: a page whose CSS sets an image's
    /// `width` or `max-width` without `height: auto` would show it stretched.
    pub dimensions: bool,
}

impl Default for ImageTags {
    fn default() -> Self {
        ImageTags {
            picture: true,
            dimensions: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(path: &str, kind: AssetKind) -> Asset {
        Asset {
            path: path.into(),
            source: format!("/src/{path}").into(),
            kind,
            size: 0,
            fingerprinted: false,
        }
    }

    fn reference(url: &str, kind: RefKind, at: usize) -> Reference {
        Reference {
            span: at..at + url.len(),
            url: url.into(),
            kind,
            line: 1,
            col: at as u32 + 1,
            pinned: false,
        }
    }

    #[test]
    fn resolving_keeps_what_may_be_renamed_and_warns_about_the_rest() {
        let tree = Tree::new(&[
            asset("docs/index.html", AssetKind::Html),
            asset("docs/intro.html", AssetKind::Html),
            asset("docs/guide/index.html", AssetKind::Html),
            asset("static/site.css", AssetKind::Css),
            asset("static/app.js", AssetKind::Js),
            asset("_sources/intro.txt", AssetKind::Text),
        ]);
        let page = asset("docs/index.html", AssetKind::Html);
        let refs = vec![
            reference("../static/site.css", RefKind::Embed, 10),
            reference("intro.html#usage", RefKind::Navigation, 40),
            reference("guide/", RefKind::Navigation, 60),
            reference("intro", RefKind::Navigation, 70),
            reference("../_sources/intro.txt", RefKind::Navigation, 80),
            reference("https://example.com/x.css", RefKind::Embed, 110),
            reference("missing.png", RefKind::Embed, 140),
            reference("../../outside.css", RefKind::Embed, 160),
            reference("/static/app.js", RefKind::Import, 190),
        ];
        let (kept, warnings) = resolve_refs(&page, refs, None, &tree, "/");
        // Pages are never renamed: the three links to pages are dropped;
        // a link to a file that is not a page may be rewritten (`--hash all`).
        let targets: Vec<(&str, RefKind, usize)> = kept
            .iter()
            .map(|r| (r.target.as_str(), r.kind, r.span.start))
            .collect();
        assert_eq!(
            targets,
            [
                ("static/site.css", RefKind::Embed, 10),
                ("_sources/intro.txt", RefKind::Navigation, 80),
                ("static/app.js", RefKind::Import, 190),
            ]
        );
        assert!(
            kept.capacity() == kept.len(),
            "no buffer of all references kept"
        );
        let messages: Vec<String> = warnings
            .iter()
            .map(|d| format!("{}:{}: {}", d.line.unwrap(), d.col.unwrap(), d.message))
            .collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].starts_with("1:141: reference `missing.png` does not match"));
        assert!(messages[1].starts_with("1:161: reference `../../outside.css` points outside"));
    }

    #[test]
    fn the_linker_knows_which_files_name_a_hashed_file() {
        let assets = [
            asset("img/logo.png", AssetKind::Png),
            asset("css/site.css", AssetKind::Css),
            asset("notes.txt", AssetKind::Text),
        ];
        let tree = Tree::new(&assets);
        let options = LinkOptions::default();
        let spill = Spill::memory();
        let css = b"a{background:url(../img/logo.png)}".to_vec();
        let url = reference("../img/logo.png", RefKind::Embed, 17);
        let (refs, warnings) = resolve_refs(&assets[1], vec![url], None, &tree, "/");
        assert!(warnings.is_empty() && refs.len() == 1);
        let processed = |bytes: Option<Vec<u8>>, refs: Vec<Resolved>| Processed {
            hash: blake3::hash(bytes.as_deref().unwrap_or_default()),
            bytes: bytes.map(|b| spill.hold(b)),
            refs,
            generated_map: false,
            images: Vec::new(),
            dimensions: None,
            generated_variant: false,
        };
        let linker = Linker::new(
            &assets,
            vec![
                processed(None, Vec::new()),
                processed(Some(css), refs),
                processed(Some(b"notes".to_vec()), Vec::new()),
            ],
            &options,
            &spill,
        );
        let names_hashed: Vec<bool> = (0..3).map(|v| linker.names_hashed(v)).collect();
        assert_eq!(names_hashed, [false, true, false]);
        let hashed: Vec<bool> = linker
            .linked()
            .iter()
            .map(|l| l.as_ref().unwrap().hashed)
            .collect();
        // Nothing names the stylesheet: it keeps its name, and names a
        // hashed file.
        assert_eq!(hashed, [true, false, false]);
    }

    #[test]
    fn generated_files_resolve_and_so_does_the_base_href() {
        let sources = [asset("js/app.js", AssetKind::Js)];
        let tree = Tree::new(&sources);
        let script = asset("js/app.js", AssetKind::Js);
        let map = || vec![reference("app.js.map", RefKind::SourceMap, 0)];
        let (kept, warnings) = resolve_refs(&script, map(), None, &tree, "/");
        assert!(kept.is_empty());
        assert_eq!(warnings.len(), 1);
        let generated = [("js/app.js.map".to_owned(), AssetKind::SourceMap)];
        let with_map = Tree::with_generated(&sources, generated);
        assert_ne!(with_map.fingerprint, tree.fingerprint);
        let (kept, warnings) = resolve_refs(&script, map(), None, &with_map, "/");
        assert_eq!(kept[0].target, "js/app.js.map");
        assert!(warnings.is_empty());

        // `<base href>` moves where a page's relative URLs point.
        let page = asset("index.html", AssetKind::Html);
        let refs = vec![reference("app.js", RefKind::Embed, 0)];
        let (kept, _) = resolve_refs(&page, refs, Some("/js/"), &tree, "/");
        assert_eq!(kept[0].target, "js/app.js");
    }
}
