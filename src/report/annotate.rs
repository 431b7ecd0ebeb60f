//! GitHub annotations that land on the pull request's files. A diagnostic
//! names a file of the built site (`dist/assets/index-abc.js:1:48213`),
//! which is not in the repository, so an annotation on it points at nothing.
//! Where the file has a source map, the position is followed back to the
//! original source (`src/App.tsx:12:5`); an annotation goes on a file only if
//! the repository holds it, and every other diagnostic goes into a table of
//! the job summary.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use base64::Engine;

use crate::diag::Diagnostic;

/// Source maps larger than this are not read for an annotation.
const MAX_MAP: u64 = 64 << 20;

/// Where a diagnostic should be shown: its own position, or the original
/// source's when a source map knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub line: Option<u32>,
    pub col: Option<u32>,
    /// Whether the place came from a source map.
    pub mapped: bool,
}

/// The place of each diagnostic: through the source map of its file when it
/// has a position and a map that reaches an existing file, else its own.
/// Each file's map is read once, however many diagnostics it has.
pub fn places(diagnostics: &[Diagnostic]) -> Vec<Place> {
    let mut maps: HashMap<&Path, Option<Map>> = HashMap::new();
    diagnostics
        .iter()
        .map(|d| {
            let own = Place {
                path: d.path.clone(),
                line: d.line,
                col: d.col,
                mapped: false,
            };
            let (Some(line), Some(col)) = (d.line, d.col) else {
                return own;
            };
            maps.entry(&d.path)
                .or_insert_with(|| read_map(&d.path))
                .as_ref()
                .and_then(|map| position_in(map, line, col))
                .unwrap_or(own)
        })
        .collect()
}

/// A file's source map and the folder its sources are relative to.
type Map = (swc_sourcemap::DecodedMap, PathBuf);

/// The original position of 1-based `line:col` in `file`, by its source map
/// (the `sourceMappingURL` comment, inline or a file, else `file.map`).
pub fn original_position(file: &Path, line: u32, col: u32) -> Option<Place> {
    position_in(&read_map(file)?, line, col)
}

fn position_in((map, map_dir): &Map, line: u32, col: u32) -> Option<Place> {
    let token = map.lookup_token(line.checked_sub(1)?, col.checked_sub(1)?)?;
    if token.get_dst_line() != line - 1 {
        return None;
    }
    let source = resolve_source(map_dir, token.get_source()?)?;
    source.is_file().then(|| Place {
        path: source,
        line: Some(token.get_src_line() + 1),
        col: Some(token.get_src_col() + 1),
        mapped: true,
    })
}

fn read_map(file: &Path) -> Option<Map> {
    let dir = file.parent().unwrap_or(Path::new("")).to_path_buf();
    let url = map_url(file);
    if let Some(data) = url.as_deref().and_then(|u| u.strip_prefix("data:")) {
        let (_, payload) = data.split_once(";base64,")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .ok()?;
        return Some((swc_sourcemap::decode_slice(&bytes).ok()?, dir));
    }
    let path = match url {
        Some(u) if !u.contains("://") => dir.join(u.split(['?', '#']).next().unwrap_or("")),
        _ => {
            let mut name = file.as_os_str().to_owned();
            name.push(".map");
            PathBuf::from(name)
        }
    };
    if std::fs::metadata(&path).ok()?.len() > MAX_MAP {
        return None;
    }
    let bytes = std::fs::read(&path).ok()?;
    let map_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    Some((swc_sourcemap::decode_slice(&bytes).ok()?, map_dir))
}

/// The `sourceMappingURL` of a file: its last one (an inline map can be
/// megabytes long, so the whole file is read, up to the map limit).
fn map_url(file: &Path) -> Option<String> {
    if std::fs::metadata(file).ok()?.len() > MAX_MAP {
        return None;
    }
    let bytes = std::fs::read(file).ok()?;
    let tail = String::from_utf8_lossy(&bytes);
    let at = tail.rfind("sourceMappingURL=")?;
    let url = tail[at + "sourceMappingURL=".len()..]
        .split(|c: char| c.is_whitespace() || c == '*')
        .next()?;
    (!url.is_empty()).then(|| url.to_owned())
}

/// A map's source as a path: relative to the map, `file://` absolute, or a
/// bundler's `webpack://project/./src/x.js` taken from its project root.
fn resolve_source(map_dir: &Path, source: &str) -> Option<PathBuf> {
    let joined = if let Some(abs) = source.strip_prefix("file://") {
        PathBuf::from(abs)
    } else if let Some((_, rest)) = source.split_once("://") {
        // `webpack://name/./src/x.js`: the first segment names the project.
        let rest = rest.split_once('/').map_or("", |(_, r)| r);
        PathBuf::from(rest)
    } else {
        map_dir.join(source)
    };
    Some(normalise(&joined))
}

/// `path` without `.` components, and with each `..` taking away the name
/// before it (never another `..`, nor the root).
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(".."),
            },
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` relative to the working directory `cwd`, when it lies under it.
/// (`./x.css` is `x.css`, as git names it.)
pub fn relative_to(path: &Path, cwd: &Path) -> Option<PathBuf> {
    if path.is_relative() {
        let rel = normalise(path);
        return (!rel.starts_with("..")).then_some(rel);
    }
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    path.strip_prefix(cwd).ok().map(Path::to_path_buf)
}

/// What GitHub is told about the diagnostics, at their [`places`]:
/// annotations on files the repository holds (`in_repo`, given paths
/// relative to `cwd`), and a
/// Markdown table of the others for the job summary (empty when there is
/// none). `prefix` is where `cwd` lies in the repository (`git rev-parse
/// --show-prefix`): GitHub places an annotation by its path from the root.
pub fn github(
    diagnostics: &[Diagnostic],
    places: &[Place],
    cwd: &Path,
    prefix: &Path,
    in_repo: &dyn Fn(&Path) -> bool,
) -> (Vec<String>, String) {
    let mut annotations = Vec::new();
    let mut rows = Vec::new();
    for (d, p) in diagnostics.iter().zip(places) {
        match relative_to(&p.path, cwd).filter(|rel| in_repo(rel)) {
            Some(rel) => {
                let mut shown = Diagnostic {
                    path: prefix.join(rel),
                    line: p.line,
                    col: p.col,
                    ..d.clone()
                };
                if p.mapped {
                    shown.message = format!("{} (in {})", d.message, position(d));
                }
                annotations.push(shown.github_annotation());
            }
            None => rows.push(d),
        }
    }
    let mut table = String::new();
    if !rows.is_empty() {
        table.push_str(
            "\n### Diagnostics on built files\n\nThese files are not in the repository, so no annotation can point at them.\n\n| | file | message |\n| --- | --- | --- |\n",
        );
        for d in rows {
            table.push_str(&format!(
                "| {} | {} | {} |\n",
                d.severity,
                cell(&position(d)),
                cell(&d.message)
            ));
        }
    }
    (annotations, table)
}

/// Text for a Markdown table cell: on one line, with nothing that ends the
/// cell or reads as Markdown or HTML.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\r' | '\n' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// `path:line:col` as the diagnostic prints it.
fn position(d: &Diagnostic) -> String {
    let mut s = d.path.display().to_string();
    if let Some(line) = d.line {
        s.push_str(&format!(":{line}"));
        if let Some(col) = d.col {
            s.push_str(&format!(":{col}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dist/app.js` (one minified line) mapped to `src/app.ts`: column 13 of
    /// the bundle is line 3, column 5 of the source.
    fn project(comment: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::create_dir_all(dir.path().join("dist")).unwrap();
        std::fs::write(dir.path().join("src/app.ts"), "a\nb\n    bad()\n").unwrap();
        let map = r#"{"version":3,"sources":["../src/app.ts"],"names":[],"mappings":"AAAA,YAEI"}"#;
        std::fs::write(dir.path().join("dist/app.js.map"), map).unwrap();
        let inline = format!(
            "data:application/json;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(map)
        );
        let comment = comment.replace("INLINE", &inline);
        std::fs::write(
            dir.path().join("dist/app.js"),
            format!("var a=1;bad();\n{comment}\n"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_position_follows_the_map_to_the_source() {
        for comment in [
            "//# sourceMappingURL=app.js.map",
            "//# sourceMappingURL=INLINE",
            "",
        ] {
            let dir = project(comment);
            let got = original_position(&dir.path().join("dist/app.js"), 1, 14).unwrap();
            assert_eq!(got.path, dir.path().join("src/app.ts"), "{comment}");
            assert_eq!((got.line, got.col), (Some(3), Some(5)), "{comment}");
            // Before the mapped segment: the first line of the source.
            let first = original_position(&dir.path().join("dist/app.js"), 1, 3).unwrap();
            assert_eq!((first.line, first.col), (Some(1), Some(1)));
            // A line the map does not cover.
            assert_eq!(
                original_position(&dir.path().join("dist/app.js"), 2, 1),
                None
            );
        }
    }

    #[test]
    fn annotations_go_on_repository_files_and_the_rest_in_a_table() {
        let dir = project("//# sourceMappingURL=app.js.map");
        std::fs::write(dir.path().join("dist/style.css"), "a{b:url(x.png)}").unwrap();
        let diagnostics = [
            Diagnostic::warning(dir.path().join("dist/app.js"), "unresolved `bad`").at(1, 14),
            Diagnostic::warning(dir.path().join("dist/style.css"), "unresolved `x.png`").at(1, 9),
            Diagnostic::error(dir.path().join("src/app.ts"), "a | b"),
        ];
        let in_repo = |p: &Path| p.starts_with("src");
        let (annotations, table) = github(
            &diagnostics,
            &places(&diagnostics),
            dir.path(),
            Path::new(""),
            &in_repo,
        );
        assert_eq!(
            annotations,
            [
                format!(
                    "::warning file=src/app.ts,line=3,col=5::unresolved `bad` (in {}:1:14)",
                    dir.path().join("dist/app.js").display()
                ),
                "::error file=src/app.ts::a | b".to_owned(),
            ]
        );
        assert!(table.contains("| warning | /"), "{table}");
        assert!(
            table.contains("dist/style.css:1:9 | unresolved \\`x.png\\` |"),
            "{table}"
        );
        assert_eq!(
            table.matches("\n| warning").count() + table.matches("\n| error").count(),
            1
        );
        let none: [Diagnostic; 0] = [];
        assert_eq!(
            github(&none, &[], dir.path(), Path::new(""), &in_repo),
            (vec![], String::new())
        );
        // Run from a folder of the repository: the annotation names the file
        // from the repository's root.
        let (annotations, _) = github(
            &diagnostics[2..],
            &places(&diagnostics[2..]),
            dir.path(),
            Path::new("web"),
            &in_repo,
        );
        assert_eq!(annotations, ["::error file=web/src/app.ts::a | b"]);
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b\\|c\n<x> `y`"), "a\\|b\\\\\\|c &lt;x&gt; \\`y\\`");
        let root = Path::new("/");
        assert_eq!(
            relative_to(Path::new("./dist/../x.css"), root),
            Some(PathBuf::from("x.css"))
        );
        assert_eq!(relative_to(Path::new("../x.css"), root), None);
    }

    #[test]
    fn an_inline_map_far_from_the_end_is_found() {
        let dir = project("");
        let js = dir.path().join("dist/app.js");
        // A map of 12 KB inline: its comment starts far from the file's end.
        let map = format!(
            r#"{{"version":3,"sources":["../src/app.ts"],"names":[],"mappings":"AAAA,YAEI","x_pad":"{}"}}"#,
            "p".repeat(12_000)
        );
        std::fs::remove_file(dir.path().join("dist/app.js.map")).unwrap();
        std::fs::write(
            &js,
            format!(
                "var a=1;bad();\n//# sourceMappingURL=data:application/json;base64,{}\n",
                base64::engine::general_purpose::STANDARD.encode(map)
            ),
        )
        .unwrap();
        let got = original_position(&js, 1, 14).unwrap();
        assert_eq!((got.line, got.col), (Some(3), Some(5)));
    }

    #[test]
    fn sources_resolve_like_bundlers_write_them() {
        let dir = Path::new("/repo/dist/assets");
        assert_eq!(
            resolve_source(dir, "../../src/App.tsx"),
            Some(PathBuf::from("/repo/src/App.tsx"))
        );
        assert_eq!(
            resolve_source(dir, "webpack://app/./src/x.js"),
            Some(PathBuf::from("src/x.js"))
        );
        assert_eq!(
            resolve_source(dir, "file:///repo/src/y.js"),
            Some(PathBuf::from("/repo/src/y.js"))
        );
        // A `..` never cancels another.
        assert_eq!(
            resolve_source(Path::new("../dist"), "../../src/app.ts"),
            Some(PathBuf::from("../../src/app.ts"))
        );
    }
}
