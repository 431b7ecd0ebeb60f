//! The shape of `src/`, checked: the dependency direction written down in
//! docs/architecture.md ("Layers"), and no import cycle between files.
//!
//! Every `crate::a::b` path in a library file (comments and unit tests
//! aside) is an edge from that file's module to the deepest module the path
//! names; `super::` paths are resolved the same way. The binary (`main.rs`,
//! `cli.rs`) uses only the library's public API and is left out. Unit tests
//! (`#[cfg(test)]` to the end of the file, where clippy keeps them) may use
//! anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules by layer, lowest first: a module's layer is that of the longest
/// entry naming it or a module it is in. A module may use any lower layer,
/// and its own layer only where `SAME_LAYER` says so.
const LAYERS: &[&[&str]] = &[
    // Leaves: types every stage shares, how a URL names a file (the
    // transforms read URLs as the link stage will), and the site's routes.
    &[
        "error",
        "diag",
        "glob",
        "units",
        "asset",
        "spill",
        "link::resolve",
        "link::rewrite",
        "routes",
    ],
    // The stages, each with its own options.
    &["scan", "transform", "link", "emit", "cache"],
    // Budgets (rules and their check), deploy, and progress events.
    &["report::budget", "deploy", "progress"],
    // `kiln.toml` and flags, composed into each stage's options.
    &["config"],
    // The stages in order, and the watch's session.
    &["pipeline"],
    // What reads a finished build, and what runs builds again.
    &["report", "dev"],
];

/// Uses allowed within one layer (entries of `LAYERS`), in this direction.
/// Each is a later stage reading an earlier stage's output types, or the
/// routes' parser reporting through diagnostics.
const SAME_LAYER: &[(&str, &str)] = &[
    ("link", "transform"),
    ("emit", "link"),
    ("emit", "transform"),
    ("cache", "transform"),
    ("cache", "emit"),
    ("dev", "report"),
    ("routes", "diag"),
];

fn rs_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rs_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// `src/emit/output.rs` → `["emit", "output"]`; `src/link/mod.rs` → `["link"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The module paths a file names: each `crate::…` or `super::…` path cut at
/// the first segment that is not a module of the crate.
fn uses(text: &str, me: &[String], modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut found = BTreeSet::new();
    for line in text.lines().take_while(|l| l.trim() != "#[cfg(test)]") {
        let code = line.split("//").next().unwrap_or("");
        let bytes = code.as_bytes();
        for (start, _) in code.match_indices("::") {
            // The first segment of a path: the identifier before this `::`,
            // not itself after another `::`.
            let head_start = code[..start]
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            if head_start >= 2 && &bytes[head_start - 2..head_start] == b"::" {
                continue;
            }
            let head = &code[head_start..start];
            let mut path: Vec<String> = match head {
                "crate" => Vec::new(),
                "super" => me[..me.len().saturating_sub(1)].to_vec(),
                _ => continue,
            };
            let mut rest = &code[start + 2..];
            loop {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let segment = &rest[..end];
                if segment == "super" {
                    path.pop();
                } else {
                    let mut deeper = path.clone();
                    deeper.push(segment.to_owned());
                    if !modules.contains(&deeper) {
                        break;
                    }
                    path = deeper;
                }
                match rest[end..].strip_prefix("::") {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            if !path.is_empty() && path != me {
                found.insert(path);
            }
        }
    }
    found
}

fn graph() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.retain(|f| {
        !matches!(
            f.file_name().and_then(|n| n.to_str()),
            Some("main.rs" | "cli.rs")
        )
    });
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    files
        .iter()
        .map(|f| {
            let me = module_of(&src, f);
            let text = std::fs::read_to_string(f).expect("readable");
            let used = uses(&text, &me, &modules);
            (me, used)
        })
        .collect()
}

/// The `LAYERS` entry a module falls under, and its layer.
fn layer(module: &[String]) -> Option<(&'static str, usize)> {
    let name = module.join("::");
    LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, entries)| entries.iter().map(move |e| (*e, i)))
        .filter(|(e, _)| name == *e || name.starts_with(&format!("{e}::")))
        .max_by_key(|(e, _)| e.len())
}

#[test]
fn every_module_is_in_a_layer() {
    let missing: Vec<String> = graph()
        .keys()
        .filter(|m| !m.is_empty() && layer(m).is_none())
        .map(|m| m.join("::"))
        .collect();
    assert!(
        missing.is_empty(),
        "add these to LAYERS and docs/architecture.md: {missing:?}"
    );
}

#[test]
fn dependencies_point_down_the_layers() {
    let mut wrong = Vec::new();
    for (from, used) in graph() {
        let Some((a, la)) = layer(&from) else {
            continue;
        };
        for to in used {
            let Some((b, lb)) = layer(&to) else { continue };
            let allowed = lb < la || a == b || (lb == la && SAME_LAYER.contains(&(a, b)));
            if !allowed {
                wrong.push(format!("{} → {}", from.join("::"), to.join("::")));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "uses against the layers of docs/architecture.md:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_import_cycles_between_files() {
    let graph = graph();
    // Tarjan's strongly connected components, iteratively small enough to recurse.
    struct State<'a> {
        graph: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on_stack: BTreeSet<&'a Vec<String>>,
        cycles: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Vec<String>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let Some((w, _)) = s.graph.get_key_value(w) else {
                continue;
            };
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.join("::"));
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.cycles.push(component);
            }
        }
    }
    let mut state = State {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        cycles: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    assert!(state.cycles.is_empty(), "import cycles: {:?}", state.cycles);
}

/// The checker itself: it sees `crate::` and `super::` paths, cuts them at
/// the module, and ignores comments.
#[test]
fn the_checker_reads_paths_as_rust_does() {
    let modules: BTreeSet<Vec<String>> = [
        vec!["emit"],
        vec!["emit", "output"],
        vec!["emit", "manifest"],
        vec!["link"],
    ]
    .into_iter()
    .map(|m| m.into_iter().map(String::from).collect())
    .collect();
    let me: Vec<String> = vec!["emit".into(), "output".into()];
    let text = "use crate::link::{Linked, Tree};\n\
                use super::manifest::Manifest;\n\
                // crate::config is only named in a comment\n\
                let x = crate::emit::output::absolute(p);\n\
                let y = a::crate::link::b;\n";
    let got: Vec<String> = uses(text, &me, &modules)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(got, ["emit::manifest", "link"]);
}
