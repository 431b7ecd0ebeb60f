//! Host presets (`--host`, `host = "…"` in kiln.toml): what each host reads
//! and nothing it rejects. A preset only changes defaults; `[outputs]` and
//! `[compress]` keys written in kiln.toml still win.
//!
//! | host               | host files                   | .br/.gz | kiln's own files      |
//! |--------------------|------------------------------|---------|-----------------------|
//! | `all` (default)    | every one but `.htaccess`    | yes     | in the output         |
//! | `netlify`          | `_headers` (wildcards), `_redirects` | no | beside: `OUT.kiln/` |
//! | `cloudflare-pages` | `_headers` (≤ 100 rules), `_redirects` | no | beside: `OUT.kiln/` |
//! | `s3`               | CloudFront Function          | yes     | in the output         |
//! | `nginx`            | `kiln-nginx.conf`            | yes     | in the output         |
//! | `caddy`            | `kiln-caddy.conf`            | yes     | in the output         |
//! | `apache`           | `.htaccess`                  | yes     | in the output         |
//!
//! Netlify and Cloudflare Pages compress on their own and count every file
//! of the published folder against their limits, so the siblings are not
//! made and the manifests and the report go to a folder beside the output
//! ([`crate::emit::manifest::meta_dir_beside`]).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::emit::headers::url_path;
use crate::emit::manifest::{Manifest, OutputFormats, Served};

/// The host the output is written for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Host {
    /// Every host file (but `.htaccess`), the siblings, kiln's files in the output.
    #[default]
    All,
    Netlify,
    CloudflarePages,
    S3,
    Nginx,
    Caddy,
    Apache,
}

/// The `Cache-Control` Netlify and Cloudflare Pages send when no `_headers`
/// rule sets one: a file with exactly this policy needs no rule.
pub const PAGES_DEFAULT_CACHE: &str = "public, max-age=0, must-revalidate";

/// Header rules Cloudflare Pages reads from `_headers`; the rest are ignored.
pub const PAGES_RULE_LIMIT: usize = 100;

impl Host {
    /// The files this host reads, before `[outputs]`.
    pub fn outputs(self) -> OutputFormats {
        let all = OutputFormats::default();
        let none = OutputFormats {
            headers: false,
            nginx: false,
            caddy: false,
            redirects: false,
            cloudfront_function: false,
            apache: false,
            ..all
        };
        match self {
            Host::All => all,
            Host::Netlify | Host::CloudflarePages => OutputFormats {
                headers: true,
                redirects: true,
                ..none
            },
            Host::S3 => OutputFormats {
                cloudfront_function: true,
                ..none
            },
            Host::Nginx => OutputFormats {
                nginx: true,
                ..none
            },
            Host::Caddy => OutputFormats {
                caddy: true,
                ..none
            },
            Host::Apache => OutputFormats {
                apache: true,
                ..none
            },
        }
    }

    /// Whether the `.br`/`.gz` siblings are made (before `[compress]`).
    pub fn precompress(self) -> bool {
        !self.compresses_itself()
    }

    /// Hosts that compress responses themselves and publish every file of
    /// the folder: no siblings, kiln's own files kept beside the output, a
    /// `_headers` of wildcard rules, and HTML left to the host's default
    /// policy ([`PAGES_DEFAULT_CACHE`]).
    pub fn compresses_itself(self) -> bool {
        matches!(self, Host::Netlify | Host::CloudflarePages)
    }

    /// The most `_headers` rules the host reads, if it has a limit.
    pub fn rule_limit(self) -> Option<usize> {
        (self == Host::CloudflarePages).then_some(PAGES_RULE_LIMIT)
    }

    pub fn name(self) -> &'static str {
        match self {
            Host::All => "all",
            Host::Netlify => "netlify",
            Host::CloudflarePages => "cloudflare-pages",
            Host::S3 => "s3",
            Host::Nginx => "nginx",
            Host::Caddy => "caddy",
            Host::Apache => "apache",
        }
    }
}

/// A `_headers` of wildcard rules for hosts that apply every matching rule
/// and join a header set twice with commas (Netlify, Cloudflare Pages): for
/// each header name, a folder whose files all send the same value gets one
/// `/folder/*` rule, and the other files an exact rule each, so that no two
/// rules setting the same header ever match one URL. A `Cache-Control` equal
/// to `host_default` needs no rule. Rules for the same URL pattern are one
/// block. Returns the text and its number of rules.
pub fn wildcard_headers(manifest: &Manifest, host_default: &str) -> (String, usize) {
    let mut root = Folder::default();
    for served in manifest.served() {
        let mut folder = &mut root;
        let mut segments: Vec<&str> = served.path.split('/').collect();
        let name = segments.pop().unwrap_or_default();
        for segment in segments {
            folder = folder.folders.entry(segment.to_owned()).or_default();
        }
        folder
            .files
            .push((name.to_owned(), headers_of(&served, host_default)));
    }
    let mut names: Vec<&str> = Vec::new();
    root.names(&mut names);
    names.sort_unstable();
    names.dedup();
    let mut rules: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for name in names {
        root.rules(name, &manifest.base, "", &mut rules);
    }
    let mut out = String::from(
        "# Generated by kiln: Cache-Control (and [[headers]]) where the host's default is not right.\n",
    );
    for (pattern, headers) in &rules {
        out.push_str(pattern);
        out.push('\n');
        for (name, value) in headers {
            out.push_str(&format!("  {name}: {value}\n"));
        }
    }
    (out, rules.len())
}

/// The headers a served file needs from `_headers`.
fn headers_of(served: &Served<'_>, host_default: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    if served.cache_control != host_default {
        headers.push(("Cache-Control".into(), served.cache_control.to_owned()));
    }
    headers.extend(served.entry.headers.clone());
    headers
}

/// A folder of the output: its files (name, headers) and its sub-folders.
#[derive(Default)]
struct Folder {
    files: Vec<(String, Vec<(String, String)>)>,
    folders: BTreeMap<String, Folder>,
}

impl Folder {
    fn names<'a>(&'a self, out: &mut Vec<&'a str>) {
        for (_, headers) in &self.files {
            out.extend(headers.iter().map(|(n, _)| n.as_str()));
        }
        for folder in self.folders.values() {
            folder.names(out);
        }
    }

    /// `Some(value)` when every file below sends the same value of `name`
    /// (`Some(None)`: none sends it).
    fn uniform(&self, name: &str) -> Option<Option<&str>> {
        let mut values = self
            .files
            .iter()
            .map(|(_, headers)| Some(value(headers, name)))
            .chain(self.folders.values().map(|f| f.uniform(name)));
        let first = values.next().unwrap_or(Some(None))?;
        values.all(|v| v == Some(first)).then_some(first)
    }

    /// The rules setting `name` for this folder (at `path`, `dir/` or empty).
    fn rules(
        &self,
        name: &str,
        base: &str,
        path: &str,
        out: &mut BTreeMap<String, Vec<(String, String)>>,
    ) {
        let mut add = |pattern: String, value: &str| {
            out.entry(pattern)
                .or_default()
                .push((name.to_owned(), value.to_owned()));
        };
        match self.uniform(name) {
            Some(None) => return,
            Some(Some(v)) => {
                add(format!("{}*", url_path(base, path)), v);
                return;
            }
            None => {}
        }
        for (file, headers) in &self.files {
            let Some(v) = value(headers, name) else {
                continue;
            };
            for url in urls(base, &format!("{path}{file}")) {
                add(url, v);
            }
        }
        for (folder, inner) in &self.folders {
            inner.rules(name, base, &format!("{path}{folder}/"), out);
        }
    }
}

fn value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The URLs these hosts answer for an output path: itself, a folder's
/// `index.html` at `folder/` and a page at its name without `.html`
/// (Netlify's and Cloudflare Pages' pretty URLs).
fn urls(base: &str, path: &str) -> Vec<String> {
    let url = url_path(base, path);
    let mut out = Vec::new();
    if let Some(dir) = url.strip_suffix("index.html").filter(|d| d.ends_with('/')) {
        out.push(dir.to_owned());
    } else if let Some(page) = url.strip_suffix(".html") {
        out.push(page.to_owned());
    }
    out.push(url);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_write_only_what_their_host_reads() {
        let pages = Host::CloudflarePages.outputs();
        assert!(pages.headers && pages.redirects);
        assert!(!pages.nginx && !pages.caddy && !pages.cloudfront_function);
        assert!(!Host::CloudflarePages.precompress());
        assert_eq!(Host::CloudflarePages.rule_limit(), Some(100));
        assert_eq!(Host::Netlify.rule_limit(), None);
        let nginx = Host::Nginx.outputs();
        assert!(nginx.nginx && !nginx.headers && !nginx.caddy && !nginx.redirects);
        assert!(Host::Nginx.precompress());
        let apache = Host::Apache.outputs();
        assert!(apache.apache && !apache.nginx && !apache.headers);
        assert!(!Host::All.outputs().apache, ".htaccess is opt-in");
        let s3 = Host::S3.outputs();
        assert!(s3.cloudfront_function && !s3.headers && !s3.nginx);
        assert_eq!(Host::All.outputs(), OutputFormats::default());
        // The backends' manifests are written for every host.
        for host in [Host::Netlify, Host::S3, Host::Apache] {
            assert!(host.outputs().rev_manifest && host.outputs().django);
        }
    }

    use crate::asset::AssetKind;
    use crate::emit::manifest::{FileEntry, Manifest};

    fn entry(output: &str, kind: AssetKind, cache: &str, headers: &[(&str, &str)]) -> FileEntry {
        FileEntry {
            output: output.into(),
            kind,
            content_type: "text/plain".into(),
            cache_control: cache.into(),
            hashed: false,
            bytes_in: 1,
            bytes_out: 1,
            gzip: None,
            brotli: None,
            zstd: None,
            blake3: "00".into(),
            integrity: String::new(),
            aliases: Vec::new(),
            variant_of: None,
            private: false,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    const IMMUTABLE: &str = "public, max-age=31536000, immutable";

    fn site(base: &str) -> Manifest {
        let frame = [("x-frame-options", "DENY")];
        let mut m = Manifest::empty(base);
        let mut add = |path: &str, e: FileEntry| {
            m.files.insert(path.to_owned(), e);
        };
        add(
            "index.html",
            entry("index.html", AssetKind::Html, PAGES_DEFAULT_CACHE, &frame),
        );
        add(
            "about.html",
            entry("about.html", AssetKind::Html, PAGES_DEFAULT_CACHE, &frame),
        );
        add(
            "guide/index.html",
            entry(
                "guide/index.html",
                AssetKind::Html,
                PAGES_DEFAULT_CACHE,
                &frame,
            ),
        );
        add(
            "guide/intro.html",
            entry(
                "guide/intro.html",
                AssetKind::Html,
                PAGES_DEFAULT_CACHE,
                &frame,
            ),
        );
        add(
            "assets/app.js",
            entry("assets/app-1a2b.js", AssetKind::Js, IMMUTABLE, &frame),
        );
        add(
            "assets/a b.css",
            entry("assets/a b-3c4d.css", AssetKind::Css, IMMUTABLE, &frame),
        );
        add(
            "assets/fonts/x.woff2",
            entry(
                "assets/fonts/x-5e6f.woff2",
                AssetKind::Other,
                IMMUTABLE,
                &frame,
            ),
        );
        add(
            "favicon.ico",
            entry(
                "favicon.ico",
                AssetKind::Ico,
                "public, max-age=3600",
                &frame,
            ),
        );
        add(
            "robots.txt",
            entry("robots.txt", AssetKind::Other, PAGES_DEFAULT_CACHE, &frame),
        );
        m
    }

    /// Which rules set `name` for `url`, by the hosts' matching (a final `*`
    /// matches any rest).
    fn matching<'a>(text: &'a str, url: &str, name: &str) -> Vec<&'a str> {
        let mut found = Vec::new();
        let mut current = "";
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some(header) = line.strip_prefix("  ") {
                let (n, v) = header.split_once(": ").unwrap();
                let hit = match current.strip_suffix('*') {
                    Some(prefix) => url.starts_with(prefix),
                    None => current == url,
                };
                if hit && n == name {
                    found.push(v);
                }
            } else {
                current = line;
            }
        }
        found
    }

    #[test]
    fn wildcard_rules_cover_every_file_once_per_header() {
        let m = site("/");
        let (text, count) = wildcard_headers(&m, PAGES_DEFAULT_CACHE);
        // Every file sends the same X-Frame-Options: one rule for the site.
        assert!(text.contains("/*\n  x-frame-options: DENY\n"), "{text}");
        // The hashed folder is one rule; the mixed root has exact ones.
        assert!(
            text.contains("/assets/*\n  Cache-Control: public, max-age=31536000, immutable\n"),
            "{text}"
        );
        assert!(
            text.contains("/favicon.ico\n  Cache-Control: public, max-age=3600\n"),
            "{text}"
        );
        assert_eq!(count, 3, "{text}");
        for (url, cache) in [
            ("/assets/app-1a2b.js", Some(IMMUTABLE)),
            ("/assets/a%20b-3c4d.css", Some(IMMUTABLE)),
            ("/assets/fonts/x-5e6f.woff2", Some(IMMUTABLE)),
            ("/favicon.ico", Some("public, max-age=3600")),
            ("/", None),
            ("/about", None),
            ("/guide/", None),
            ("/robots.txt", None),
        ] {
            assert_eq!(
                matching(&text, url, "Cache-Control"),
                Vec::from_iter(cache),
                "{url}"
            );
            assert_eq!(matching(&text, url, "x-frame-options"), ["DENY"], "{url}");
        }
    }

    #[test]
    fn pages_and_folders_answer_at_their_pretty_urls() {
        let mut m = site("/docs/");
        // One page with a policy of its own: its folder is no longer uniform.
        m.files.get_mut("guide/intro.html").unwrap().cache_control = "no-store".into();
        m.files.get_mut("index.html").unwrap().cache_control = "no-store".into();
        let (text, _) = wildcard_headers(&m, PAGES_DEFAULT_CACHE);
        for url in [
            "/docs/guide/intro",
            "/docs/guide/intro.html",
            "/docs/",
            "/docs/index.html",
        ] {
            assert_eq!(
                matching(&text, url, "Cache-Control"),
                ["no-store"],
                "{url}\n{text}"
            );
        }
        for url in ["/docs/guide/", "/docs/about"] {
            assert!(
                matching(&text, url, "Cache-Control").is_empty(),
                "{url}\n{text}"
            );
        }
        assert!(text.contains("/docs/assets/*\n"), "{text}");
    }

    #[test]
    fn names_are_the_config_spelling() {
        for host in [
            Host::All,
            Host::Netlify,
            Host::CloudflarePages,
            Host::S3,
            Host::Nginx,
            Host::Caddy,
            Host::Apache,
        ] {
            let parsed: Host =
                serde_json::from_value(serde_json::Value::from(host.name())).unwrap();
            assert_eq!(parsed, host);
        }
    }
}
