//! Names a bundler already fingerprinted: `index-CwOdOtxP.js` (Vite, Rollup,
//! esbuild), `main.2f9b4b5a.js` (webpack, Parcel), `guide.md.BxYz1a2b.lean.js`
//! (VitePress), and whole folders whose framework hashes every file in them
//! (`_next/static/`, `_app/immutable/`, `_astro/`, `_nuxt/`). Such a file is
//! already content-addressed: kiln keeps its name and serves it immutable.
//!
//! Detection reads paths only, never bytes. A false positive is the costly
//! mistake (a file edited in place under a name served `immutable` stays
//! stale in caches for a year), a miss only costs a second hash in the name.
//! So a name counts only with strong evidence:
//!
//! 1. it lies in a folder that a framework reserves for fingerprinted files;
//! 2. or it carries a token that cannot be a word: hexadecimal of 8 to 64
//!    digits mixing letters and digits, or 8 characters of Rollup's
//!    base64url alphabet switching between character classes at least three
//!    times (`CwOdOtxP`, `D-l2U3Vf`; not `SemiBold`, `jquery-3`);
//! 3. or it carries a weaker token (`peo4xbtq`: not all lowercase letters,
//!    not all digits, not a capitalised word) and a sibling in the same
//!    folder has a strong token of the same shape (a bundler names a folder's
//!    files alike), or the same name without the token sits beside it (the
//!    original that kiln, Django and Propshaft keep next to a hashed copy).
//!
//! The token sits where bundlers put it: a whole `.`-separated segment
//! before the extension (`[name].[hash].js`, `[hash].js`), or after the last
//! `-`/`_` of such a segment (`[name]-[hash].js`).

use std::collections::{HashMap, HashSet};

/// Folders whose every file a framework names by content (or by build, in a
/// folder of its own), with the subfolders of them that it does not.
const FRAMEWORK_FOLDERS: &[(&str, &[&str])] = &[
    // Next.js: chunks, CSS and media by content; `<buildId>/` per build.
    ("_next/static/", &[]),
    // SvelteKit: `_app/version.json` and `_app/env.js` sit outside.
    ("_app/immutable/", &[]),
    // Astro's `build.assets` folder.
    ("_astro/", &[]),
    // Nuxt: `builds/latest.json` and `builds/meta/` change under one name.
    ("_nuxt/", &["_nuxt/builds/"]),
];

/// How a token is written, which decides its shape for the sibling rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Alphabet {
    Hex,
    Base64,
}

/// A hash-like token in a file name, and where it sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    /// The byte before the token (`.`, `-`, `_`), or 0 at the start.
    separator: u8,
    len: usize,
    alphabet: Alphabet,
    /// Counted from the end: the token's dot segment (0: just before the
    /// extension).
    segment_from_end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    shape: Shape,
    strong: bool,
    /// Byte range of the token and its separator in the file name.
    start: usize,
    end: usize,
}

/// For each path (relative, `/`-separated), whether its name was already
/// fingerprinted by a bundler.
pub fn detect(paths: &[&str]) -> Vec<bool> {
    let tokens: Vec<Option<Token>> = paths.iter().map(|p| token(file_name(p))).collect();
    // Strong shapes per folder, and every path, for the sibling rules.
    let mut strong: HashMap<(&str, Shape), usize> = HashMap::new();
    for (p, t) in paths.iter().zip(&tokens) {
        if let Some(t) = t.filter(|t| t.strong) {
            *strong.entry((folder(p), t.shape)).or_default() += 1;
        }
    }
    let all: HashSet<&str> = paths.iter().copied().collect();
    paths
        .iter()
        .zip(&tokens)
        .map(|(p, t)| {
            if in_framework_folder(p) {
                return true;
            }
            let Some(t) = t else { return false };
            if t.strong {
                return true;
            }
            let siblings = strong.get(&(folder(p), t.shape)).copied().unwrap_or(0);
            siblings > 0 || all.contains(without_token(p, t).as_str())
        })
        .collect()
}

fn folder(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Whether the path lies in a framework's fingerprinted folder, at the root
/// or under a base folder (`docs/_astro/…`).
fn in_framework_folder(path: &str) -> bool {
    FRAMEWORK_FOLDERS.iter().any(|(folder, except)| {
        let at = if path.starts_with(folder) {
            Some(0)
        } else {
            path.find(&format!("/{folder}")).map(|i| i + 1)
        };
        at.is_some_and(|i| !except.iter().any(|e| path[i..].starts_with(e)))
    })
}

/// The path without the token and its separator: `a/main.2eqjqy4o.css` →
/// `a/main.css`.
fn without_token(path: &str, t: &Token) -> String {
    let name_at = path.len() - file_name(path).len();
    let (start, end) = (name_at + t.start, name_at + t.end);
    format!("{}{}", &path[..start], &path[end..])
}

/// The most hash-like token of a file name, if any.
fn token(name: &str) -> Option<Token> {
    // Dot segments, each with its byte offset; the last is the extension.
    let mut segments = Vec::new();
    let mut at = 0;
    for s in name.split('.') {
        segments.push((at, s));
        at += s.len() + 1;
    }
    if segments.len() < 2 {
        return None;
    }
    let mut best: Option<Token> = None;
    let count = segments.len() - 1;
    for (i, &(offset, segment)) in segments[..count].iter().enumerate() {
        let segment_from_end = count - 1 - i;
        let mut candidates = Vec::with_capacity(2);
        // The whole segment: `[name].[hash]` or `[hash]` (not a dotfile's name).
        if !segment.is_empty() {
            let (separator, start) = if i == 0 { (0, 0) } else { (b'.', offset - 1) };
            candidates.push((segment, separator, start));
        }
        // After the last `-` or `_` of the segment: `[name]-[hash]`. Rollup's
        // base64url hash may itself hold `-` and `_`, so its 8 characters are
        // also taken from the end.
        if let Some(cut) = segment.rfind(['-', '_']).filter(|&c| c > 0) {
            candidates.push((&segment[cut + 1..], segment.as_bytes()[cut], offset + cut));
        }
        if segment.len() > 9 && matches!(segment.as_bytes()[segment.len() - 9], b'-' | b'_') {
            let cut = segment.len() - 9;
            candidates.push((&segment[cut + 1..], segment.as_bytes()[cut], offset + cut));
        }
        for (text, separator, start) in candidates {
            let Some((alphabet, strong)) = classify(text) else {
                continue;
            };
            // A whole segment at the start has no separator to remove.
            let end = if separator == 0 {
                offset + text.len() + 1
            } else {
                start + 1 + text.len()
            };
            let t = Token {
                shape: Shape {
                    separator,
                    len: text.len(),
                    alphabet,
                    segment_from_end,
                },
                strong,
                start,
                end,
            };
            if best.is_none_or(|b| t.strong && !b.strong) {
                best = Some(t);
            }
        }
    }
    best
}

/// Whether a token looks like a hash, and how strongly.
fn classify(t: &str) -> Option<(Alphabet, bool)> {
    let b = t.as_bytes();
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let lower = b.iter().filter(|c| c.is_ascii_lowercase()).count();
    let upper = b.iter().filter(|c| c.is_ascii_uppercase()).count();
    let hex = b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if hex && (8..=64).contains(&b.len()) && digits > 0 && digits < b.len() {
        return Some((Alphabet::Hex, true));
    }
    let base64 = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'));
    if !base64 || b.len() != 8 {
        return None;
    }
    let all_digits = digits == b.len();
    let all_lower = lower == b.len();
    if all_digits || all_lower || is_word(t) {
        return None;
    }
    let strong = transitions(b) >= 3 && (digits > 0 || upper > 0) && lower + upper > 0;
    Some((Alphabet::Base64, strong))
}

/// Capitalised words, CamelCase and ALL CAPS: `Regular`, `SemiBold`, `README`.
fn is_word(t: &str) -> bool {
    let b = t.as_bytes();
    if !b.iter().all(u8::is_ascii_alphabetic) {
        return false;
    }
    if b.iter().all(u8::is_ascii_uppercase) {
        return true;
    }
    // Every capital starts a run of lowercase letters.
    b.last().is_some_and(u8::is_ascii_lowercase)
        && b.windows(2)
            .all(|w| !(w[0].is_ascii_uppercase() && w[1].is_ascii_uppercase()))
}

/// How often consecutive characters change class (lower, upper, digit, other).
fn transitions(b: &[u8]) -> usize {
    let class = |c: &u8| match c {
        b'a'..=b'z' => 0,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    b.windows(2)
        .filter(|w| class(&w[0]) != class(&w[1]))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprinted<'a>(paths: &[&'a str]) -> Vec<&'a str> {
        let found = detect(paths);
        paths
            .iter()
            .zip(found)
            .filter(|(_, f)| *f)
            .map(|(p, _)| *p)
            .collect()
    }

    #[test]
    fn bundler_names_are_recognised() {
        let names = [
            // Vite / Rollup, with `-` and `_` inside the hash.
            "assets/index-CwOdOtxP.js",
            "assets/index-D-l2U3Vf.css",
            "assets/vendor_lib-B_x9Qz1a.js",
            // VitePress, with its lean chunks.
            "assets/guide_index.md.BxYz1a2B.js",
            "assets/guide_index.md.BxYz1a2B.lean.js",
            "assets/chunks/theme.CCkh3xfh.js",
            // webpack, Parcel, Docusaurus, CRA.
            "static/js/main.2f9b4b5a.js",
            "static/css/main.073c9b0a.chunk.css",
            "assets/js/935f2afb.e3f1c0a2.js",
            "dist/app.5d41402abc4b2a76b9719d911017c592.js",
            // esbuild's default.
            "out/chunk-5FNKB3YE.js",
            // Source maps follow their file.
            "assets/index-CwOdOtxP.js.map",
            // A hash as the whole name (SvelteKit, Nuxt chunks).
            "js/Bq9xZ2aK.js",
        ];
        assert_eq!(fingerprinted(&names), names);
    }

    #[test]
    fn framework_folders_count_whole() {
        let paths = [
            "_next/static/chunks/webpack.js",
            "_next/static/abcBuildId/_buildManifest.js",
            "docs/_astro/client.js",
            "_app/immutable/entry/start.js",
            "_app/version.json",
            "_nuxt/entry.js",
            "_nuxt/builds/latest.json",
            "_nuxt/builds/meta/6f1a.json",
            "my_astro/x.js",
        ];
        assert_eq!(
            fingerprinted(&paths),
            [
                "_next/static/chunks/webpack.js",
                "_next/static/abcBuildId/_buildManifest.js",
                "docs/_astro/client.js",
                "_app/immutable/entry/start.js",
                "_nuxt/entry.js",
            ]
        );
    }

    #[test]
    fn words_versions_and_dates_are_not_hashes() {
        let names = [
            "fonts/Inter-SemiBold.woff2",
            "fonts/Roboto-Regular.woff2",
            "fonts/OpenSans-Semibold.ttf",
            "js/jquery-3.7.1.min.js",
            "js/bootstrap.bundle.min.js",
            "img/photo-20240101.jpg",
            "img/logo-original.png",
            "docs/README-DOCUMENT.md",
            "css/material.css",
            "js/polyfill-es2015ab.js",
            "downloads/report-v1234567.pdf",
            "img/deadbeef.png",
            ".well-known/security.txt",
        ];
        assert!(
            fingerprinted(&names).is_empty(),
            "{:?}",
            fingerprinted(&names)
        );
    }

    #[test]
    fn weak_tokens_need_a_sibling() {
        // Alone, `peo4xbtq` could be a word-like name.
        assert!(fingerprinted(&["a/main.peo4xbtq.css"]).is_empty());
        // Beside its original (kiln's own output, Django's collectstatic).
        assert_eq!(
            fingerprinted(&["a/main.css", "a/main.peo4xbtq.css"]),
            ["a/main.peo4xbtq.css"]
        );
        // Beside a strongly hashed file of the same shape (a bundler folder).
        assert_eq!(
            fingerprinted(&["assets/index-CwOdOtxP.js", "assets/logo-abcdwxy4.svg"]),
            ["assets/index-CwOdOtxP.js", "assets/logo-abcdwxy4.svg"]
        );
        // Not when the sibling's token sits elsewhere.
        assert_eq!(
            fingerprinted(&["assets/index.CwOdOtxP.js", "assets/logo-abcdwxy4.svg"]),
            ["assets/index.CwOdOtxP.js"]
        );
    }
}
