//! Manifests that bundlers write for server-side integrations: Vite's
//! `.vite/manifest.json` and `ssr-manifest.json` (read by Laravel, vite_ruby,
//! django-vite, Symfony), webpack's `asset-manifest.json` (Create React App)
//! and `manifest.json` (webpack-manifest-plugin), Parcel's
//! `parcel-manifest.json`.
//!
//! Their values name output files, which become [`RefKind::Manifest`]
//! references: rewritten when kiln renames the file, so that the manifest
//! always names a file of the output and its immutable name. Their keys are
//! source paths or logical names (`index.html`, `src/main.ts`, `main.js`),
//! never URLs, and are never read as references.
//!
//! Which values count, by where they sit:
//! - Vite: an entry's `file`, and the items of its `css` and `assets`;
//!   `imports` and `dynamicImports` hold keys, not files;
//! - `asset-manifest.json`: the values of `files`, the items of `entrypoints`;
//! - a flat map (`{"main.js": "/static/main.3f2a.js"}`): values that end in
//!   their key's extension;
//! - `ssr-manifest.json`: every item of every list.
//!
//! Relative values are relative to the build's root: to the folder holding
//! `.vite/` for a manifest inside it, else to the manifest's own folder.

use std::ops::Range;

use super::{Extracted, reference};
use crate::asset::RefKind;
use crate::diag::{Diagnostic, LineIndex};

/// What a JSON file named like a manifest is, from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// A web app manifest (`icons`, `start_url`…).
    WebApp,
    /// A bundler's manifest.
    Bundler,
}

/// Keys only a web app manifest has at its top level.
const WEB_APP_KEYS: &[&str] = &[
    "icons",
    "start_url",
    "display",
    "short_name",
    "theme_color",
    "background_color",
    "scope",
    "orientation",
    "screenshots",
    "shortcuts",
];

/// Whether the file at `path` may be a manifest at all (by name): only these
/// are parsed.
pub fn candidate(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        name,
        "manifest.json"
            | "asset-manifest.json"
            | "assets-manifest.json"
            | "ssr-manifest.json"
            | "parcel-manifest.json"
    ) || (in_vite_folder(path) && name.ends_with(".json"))
}

/// Whether the path lies in a `.vite/` folder, where Vite writes its manifests.
pub fn in_vite_folder(path: &str) -> bool {
    path.starts_with(".vite/") || path.contains("/.vite/")
}

/// What a candidate file is: a web app manifest has one of its keys at the
/// top level; anything else named like a manifest is a bundler's.
pub fn classify(path: &str, text: &str) -> ManifestKind {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name != "manifest.json" || in_vite_folder(path) {
        return ManifestKind::Bundler;
    }
    let top_keys = string_values_and_keys(text)
        .into_iter()
        .filter_map(|s| (s.path.len() == 1).then_some(s.path))
        .flatten()
        .filter_map(|k| match k {
            Key::Name(n) => Some(n),
            Key::Index(_) => None,
        });
    let mut web_app = false;
    for key in top_keys {
        web_app |= WEB_APP_KEYS.contains(&key.as_str());
    }
    if web_app {
        ManifestKind::WebApp
    } else {
        ManifestKind::Bundler
    }
}

/// The references of a bundler's manifest.
pub fn extract(path: &str, text: &str) -> Extracted {
    let mut found = Extracted::default();
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        found.diagnostics.push(
            Diagnostic::warning("", format!("invalid JSON: {e}"))
                .at(e.line() as u32, e.column() as u32),
        );
        return found;
    }
    let index = LineIndex::new(text.as_bytes());
    let name = path.rsplit('/').next().unwrap_or(path);
    let ssr = name == "ssr-manifest.json";
    let up = if in_vite_folder(path) { "../" } else { "" };
    for value in string_values_and_keys(text) {
        let Some(span) = value.span else { continue };
        let raw = &text[span.clone()];
        if raw.is_empty() || raw.contains('\\') || !names_a_file(&value.path, raw, ssr) {
            continue;
        }
        let url = if raw.starts_with('/') || crate::link::resolve::is_absolute(raw) {
            raw.to_owned()
        } else {
            format!("{up}{raw}")
        };
        found
            .refs
            .push(reference(&index, span, url, RefKind::Manifest));
    }
    found
}

/// Whether the string `value` at `path` names an output file.
fn names_a_file(path: &[Key], value: &str, ssr: bool) -> bool {
    use Key::{Index, Name};
    match path {
        [Name(_), Name(field)] if field == "file" => true,
        [Name(_), Name(field), Index(_)] if field == "css" || field == "assets" => true,
        [Name(files), Name(key)] if files == "files" => same_extension(key, value),
        [Name(entrypoints), Index(_)] if entrypoints == "entrypoints" => true,
        [Name(key)] => same_extension(key, value),
        [Name(_), Index(_)] => ssr,
        _ => false,
    }
}

/// A flat map's value names a file when it ends in its key's extension
/// (`main.js` → `/static/js/main.3f2a.js`); `{"version": "1.2"}` does not.
fn same_extension(key: &str, value: &str) -> bool {
    let ext = |s: &str| {
        let name = s.rsplit('/').next().unwrap_or(s);
        let name = crate::link::resolve::path_part(name);
        name.rsplit_once('.')
            .and_then(|(stem, ext)| (!stem.is_empty()).then_some(ext))
            .filter(|e| !e.is_empty())
            .map(str::to_ascii_lowercase)
    };
    ext(key).is_some_and(|k| ext(value).as_deref() == Some(k.as_str()))
}

/// A step into a JSON value: an object member or an array item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Name(String),
    Index(usize),
}

/// A string in a JSON text: where it sits, and its span when it is a value.
#[derive(Debug)]
struct JsonString {
    path: Vec<Key>,
    /// The contents (no quotes) of a string value; `None` for a key.
    span: Option<Range<usize>>,
}

/// Most levels of nesting whose strings are reported; deeper ones are
/// skipped (no manifest nests more), so a hostile file costs no memory.
const MAX_DEPTH: usize = 4;

/// Every string of a valid JSON text with the path to it. Keys are reported
/// too (with `span: None`), at the path of the member they name. Iterative:
/// nesting depth costs no stack.
fn string_values_and_keys(text: &str) -> Vec<JsonString> {
    enum Frame {
        Object { key: Option<String>, want_key: bool },
        Array { index: usize },
    }
    let bytes = text.as_bytes();
    let mut stack: Vec<Frame> = Vec::new();
    let mut out = Vec::new();
    let path_of = |stack: &[Frame]| -> Vec<Key> {
        stack
            .iter()
            .map(|f| match f {
                Frame::Object { key, .. } => Key::Name(key.clone().unwrap_or_default()),
                Frame::Array { index } => Key::Index(*index),
            })
            .collect()
    };
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' => stack.push(Frame::Object {
                key: None,
                want_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { want_key, .. }) = stack.last_mut() {
                    *want_key = false;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { want_key, .. }) => *want_key = true,
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(bytes.len());
                let shallow = stack.len() <= MAX_DEPTH;
                match stack.last_mut() {
                    Some(Frame::Object {
                        key,
                        want_key: true,
                    }) => {
                        *key = shallow.then(|| text[start..end].to_owned());
                        if shallow {
                            out.push(JsonString {
                                path: path_of(&stack),
                                span: None,
                            });
                        }
                    }
                    _ if shallow => out.push(JsonString {
                        path: path_of(&stack),
                        span: Some(start..end),
                    }),
                    _ => {}
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(path: &str, text: &str) -> Vec<String> {
        let found = extract(path, text);
        for r in &found.refs {
            assert!(r.url.ends_with(&text[r.span.clone()]), "{r:?}");
        }
        found.refs.into_iter().map(|r| r.url).collect()
    }

    #[test]
    fn vite_manifest_values_are_files_and_keys_are_not() {
        let vite = r#"{
  "_shared-B7PI925R.js": { "file": "assets/shared-B7PI925R.js", "name": "shared" },
  "index.html": {
    "file": "assets/index-CwOdOtxP.js",
    "name": "index",
    "src": "index.html",
    "isEntry": true,
    "imports": ["_shared-B7PI925R.js"],
    "dynamicImports": ["src/about.jsx"],
    "css": ["assets/index-D-l2U3Vf.css"],
    "assets": ["assets/hero-Bq9xZ2aK.png"]
  }
}"#;
        assert_eq!(
            urls(".vite/manifest.json", vite),
            [
                "../assets/shared-B7PI925R.js",
                "../assets/index-CwOdOtxP.js",
                "../assets/index-D-l2U3Vf.css",
                "../assets/hero-Bq9xZ2aK.png"
            ]
        );
        // Vite 4 wrote it at the root.
        assert_eq!(urls("manifest.json", vite)[0], "assets/shared-B7PI925R.js");
        assert_eq!(classify(".vite/manifest.json", vite), ManifestKind::Bundler);
        assert_eq!(classify("manifest.json", vite), ManifestKind::Bundler);
    }

    #[test]
    fn webpack_and_ssr_manifests() {
        let cra = r#"{"files": {"main.css": "/static/css/main.073c9b0a.css", "main.js": "/static/js/main.2f9b4b5a.js", "index.html": "/index.html", "version": "5"},
  "entrypoints": ["static/css/main.073c9b0a.css", "static/js/main.2f9b4b5a.js"]}"#;
        assert_eq!(
            urls("asset-manifest.json", cra),
            [
                "/static/css/main.073c9b0a.css",
                "/static/js/main.2f9b4b5a.js",
                "/index.html",
                "static/css/main.073c9b0a.css",
                "static/js/main.2f9b4b5a.js"
            ]
        );
        let flat = r#"{"main.js": "/build/main.3f2a11bb.js", "logo.svg": "/build/logo.5c1d.svg", "version": "1.2", "notes.txt": "see the README"}"#;
        assert_eq!(
            urls("build/manifest.json", flat),
            ["/build/main.3f2a11bb.js", "/build/logo.5c1d.svg"]
        );
        let ssr = r#"{"src/App.vue": ["/assets/App-CwOdOtxP.js", "/assets/App-D-l2U3Vf.css"], "node_modules/vue/index.js": []}"#;
        assert_eq!(
            urls(".vite/ssr-manifest.json", ssr),
            ["/assets/App-CwOdOtxP.js", "/assets/App-D-l2U3Vf.css"]
        );
    }

    #[test]
    fn web_app_manifests_are_told_apart() {
        let app = r#"{"name": "App", "icons": [{"src": "icon.png", "sizes": "192x192"}], "start_url": "/"}"#;
        assert_eq!(classify("manifest.json", app), ManifestKind::WebApp);
        assert!(candidate("static/manifest.json"));
        assert!(candidate(".vite/manifest.json"));
        assert!(!candidate("data/search.json"));
    }

    #[test]
    fn deep_or_broken_json_costs_nothing() {
        let deep = format!("{}\"x\"{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(urls("ssr-manifest.json", &deep).is_empty());
        let broken = extract("manifest.json", "{\"a.js\": ");
        assert!(broken.refs.is_empty() && broken.diagnostics.len() == 1);
    }
}
