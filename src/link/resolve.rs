//! Reference resolution: which file in the tree, if any, a URL written inside
//! another file points at. Pure string work on URL paths; no file system.
//!
//! Rules: external URLs (`https:`, `data:`, `mailto:`, `//host`), fragment-only
//! and query-only URLs are not local. Root-relative paths resolve against the
//! site root at the configured `base` path; relative ones against the referrer
//! (or the document's `<base href>`). Percent-encoding is decoded before the
//! lookup, `\` is read as `/` as browsers do, and dot segments are normalised:
//! a path that climbs above the site root is reported, never followed.

use percent_encoding::percent_decode_str;

/// Where a reference points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Not a file of this site (another origin, `data:`, `#fragment`, a bare
    /// module specifier…): left alone, silently.
    External,
    /// A path relative to the source root. `directory` is true when the URL
    /// names a directory (it ends in `/`), to be served by its `index.html`.
    Local { path: String, directory: bool },
    /// A local path that climbs above the site root or lies outside `base`.
    Escapes { path: String },
}

/// Resolve `url`, found in the file at `referrer` (a source-relative path),
/// for a site served under `site_base` (`/` or `/docs/`). `doc_base` is the
/// referrer's `<base href>` if it has one.
pub fn resolve(url: &str, referrer: &str, doc_base: Option<&str>, site_base: &str) -> Resolution {
    let url = url.trim();
    if url.is_empty() || url.starts_with('#') || url.starts_with('?') || is_absolute(url) {
        return Resolution::External;
    }
    let path = path_part(url);
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| path.to_owned())
        .replace('\\', "/");
    let referrer_url = format!("{site_base}{referrer}");
    let base_url = match doc_base {
        Some(b) if is_absolute(b.trim()) => return Resolution::External,
        Some(b) => join(&referrer_url, &path_part(b.trim()).replace('\\', "/")),
        None => referrer_url,
    };
    let joined = join(&base_url, &decoded);
    let (normalised, climbed_out) = normalise(&joined);
    let directory = normalised.ends_with('/');
    match normalised.strip_prefix(site_base) {
        Some(rel) if !climbed_out => Resolution::Local {
            path: rel.trim_end_matches('/').to_owned(),
            directory,
        },
        Some(_) | None if normalised == site_base.trim_end_matches('/') && !climbed_out => {
            Resolution::Local {
                path: String::new(),
                directory: true,
            }
        }
        _ => Resolution::Escapes { path: normalised },
    }
}

/// Whether the URL names a scheme (`https:`, `data:`, `mailto:`) or is
/// protocol-relative (`//host/…`).
pub fn is_absolute(url: &str) -> bool {
    if url.starts_with("//") || url.starts_with("\\\\") {
        return true;
    }
    let Some(colon) = url.find(':') else {
        return false;
    };
    let scheme = &url[..colon];
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The URL without its query and fragment.
pub fn path_part(url: &str) -> &str {
    match url.find(['?', '#']) {
        Some(i) => &url[..i],
        None => url,
    }
}

/// Join a (relative or root-relative) path onto the URL path `base`.
fn join(base: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_owned();
    }
    let dir = match base.rfind('/') {
        Some(i) => &base[..=i],
        None => "/",
    };
    format!("{dir}{path}")
}

/// Remove `.` and `..` segments; report whether `..` climbed above the root.
fn normalise(path: &str) -> (String, bool) {
    let mut segments: Vec<&str> = Vec::new();
    let mut climbed_out = false;
    let mut directory = path.ends_with('/');
    for segment in path.split('/').skip(1) {
        directory = false;
        match segment {
            "." => directory = true,
            ".." => {
                directory = true;
                if segments.pop().is_none() {
                    climbed_out = true;
                }
            }
            "" => {}
            s => segments.push(s),
        }
    }
    if path.ends_with('/') {
        directory = true;
    }
    let mut out = format!("/{}", segments.join("/"));
    if directory && !out.ends_with('/') {
        out.push('/');
    }
    (out, climbed_out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(path: &str) -> Resolution {
        Resolution::Local {
            path: path.into(),
            directory: false,
        }
    }

    fn dir(path: &str) -> Resolution {
        Resolution::Local {
            path: path.into(),
            directory: true,
        }
    }

    #[test]
    fn externals_are_left_alone() {
        for url in [
            "https://x.example/a.png",
            "//cdn.example/a.js",
            "data:image/png;base64,AA",
            "mailto:a@b.example",
            "#top",
            "?page=2",
            "",
            "javascript:void(0)",
        ] {
            assert_eq!(
                resolve(url, "a/b.html", None, "/"),
                Resolution::External,
                "{url}"
            );
        }
    }

    #[test]
    fn relative_and_root_relative() {
        assert_eq!(
            resolve("img/a.png", "blog/p.html", None, "/"),
            local("blog/img/a.png")
        );
        assert_eq!(
            resolve("../img/a.png?v=1#x", "blog/p.html", None, "/"),
            local("img/a.png")
        );
        assert_eq!(
            resolve("/img/a.png", "blog/p.html", None, "/"),
            local("img/a.png")
        );
        assert_eq!(resolve("./", "blog/p.html", None, "/"), dir("blog"));
        assert_eq!(resolve("../about/", "blog/p.html", None, "/"), dir("about"));
        assert_eq!(resolve("/", "blog/p.html", None, "/"), dir(""));
        assert_eq!(resolve("..", "blog/p.html", None, "/"), dir(""));
    }

    #[test]
    fn percent_encoding_and_backslashes() {
        assert_eq!(
            resolve("team%20photo.jpg", "p.html", None, "/"),
            local("team photo.jpg")
        );
        assert_eq!(
            resolve("caf%C3%A9.png", "p.html", None, "/"),
            local("café.png")
        );
        assert_eq!(
            resolve("img\\a.png", "p.html", None, "/"),
            local("img/a.png")
        );
        assert_eq!(resolve("50%25.png", "p.html", None, "/"), local("50%.png"));
    }

    #[test]
    fn base_paths() {
        assert_eq!(
            resolve("/app/css/a.css", "index.html", None, "/app/"),
            local("css/a.css")
        );
        assert_eq!(
            resolve("css/a.css", "index.html", None, "/app/"),
            local("css/a.css")
        );
        assert!(matches!(
            resolve("/other/a.css", "index.html", None, "/app/"),
            Resolution::Escapes { .. }
        ));
        assert_eq!(resolve("/app/", "x/index.html", None, "/app/"), dir(""));
    }

    #[test]
    fn document_base_href() {
        assert_eq!(
            resolve("a.html", "docs/ref/index.html", Some("/docs/"), "/"),
            local("docs/a.html")
        );
        assert_eq!(
            resolve("a.html", "docs/ref/index.html", Some("../"), "/"),
            local("docs/a.html")
        );
        assert_eq!(
            resolve("a.html", "x.html", Some("https://cdn.example/"), "/"),
            Resolution::External
        );
    }

    #[test]
    fn climbing_out_is_reported() {
        assert!(matches!(
            resolve("../../secret.txt", "a/b.html", None, "/"),
            Resolution::Escapes { .. }
        ));
        assert!(matches!(
            resolve("/../etc/passwd", "b.html", None, "/"),
            Resolution::Escapes { .. }
        ));
    }
}
