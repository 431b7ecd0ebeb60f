//! Routes: redirects, rewrites and the SPA fallback, as Netlify's
//! `_redirects` writes them and as `[routes]` in kiln.toml does.
//!
//! A rule maps a URL path pattern to a target:
//! - `/old /new` (301 by default), `/a /b 302`, `307`, `308`: a redirect;
//! - `/app/* /app/index.html 200`: a rewrite, served from the target with 200;
//! - `/gone /gone.html 404` (or `410`): the target's bytes with that status.
//!
//! Patterns hold `:name` placeholders (one path segment) and a final `*`
//! (the rest of the path, as `:splat` in the target). A rule applies only
//! where no file is served, unless forced (`301!`), as on Netlify. Rules are
//! tried in order, the first match wins; the fallback comes last.
//!
//! Every host gets the same rules: `kiln serve`, `_redirects` (Netlify,
//! Cloudflare Pages), nginx (`location @kiln_routes`), Caddy (one `route`),
//! Apache (mod_rewrite in `.htaccess`, when asked for) and a CloudFront
//! Function for S3 origins (docs/hosting.md says where each one differs).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::diag::Diagnostic;

/// The Netlify file, read from the source root and written to the output.
pub const REDIRECTS_FILE: &str = "_redirects";
/// The CloudFront Function for S3 origins, written when the site has routes.
pub const CLOUDFRONT_FUNCTION_FILE: &str = "kiln-cloudfront-function.js";

/// What a captured value has encoded when it goes into a target.
const CAPTURE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Statuses a rule may have.
const STATUSES: &[u16] = &[200, 301, 302, 303, 307, 308, 404, 410, 451];

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// URL path pattern, from `/`.
    pub from: String,
    /// URL path (with `:name` and `:splat`) or absolute URL.
    pub to: String,
    #[serde(default = "default_status")]
    pub status: u16,
    /// Applies even where a file is served.
    #[serde(default)]
    pub force: bool,
}

fn default_status() -> u16 {
    301
}

/// The site's routes: rules in order, then the fallback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    /// Output path (relative to the output root) served with 200 for any
    /// URL under the base that nothing else answers: `index.html` for an SPA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// What a request path resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Answer `status` with `Location: location`.
    Redirect { status: u16, location: String },
    /// Serve the file at URL path `path` with `status`.
    Rewrite { status: u16, path: String },
}

impl Rule {
    /// Check a rule as written; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if !self.from.starts_with('/') {
            return Err(format!(
                "`{}`: a pattern is a URL path from `/` (domain rules are not supported)",
                self.from
            ));
        }
        if let Some(i) = self.from.find('*')
            && i + 1 != self.from.len()
        {
            return Err(format!("`{}`: `*` may only end a pattern", self.from));
        }
        if !STATUSES.contains(&self.status) {
            return Err(format!(
                "status {} (one of {})",
                self.status,
                STATUSES
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let external = is_external(&self.to);
        if !external && !self.to.starts_with('/') {
            return Err(format!(
                "`{}`: a target is a URL path from `/` or an http(s) URL",
                self.to
            ));
        }
        if external && !self.is_redirect() {
            return Err(format!(
                "`{}`: status {} with an external URL is a proxy, which a static origin cannot do",
                self.to, self.status
            ));
        }
        let whole_name = |n: &str| {
            n.starts_with(|c: char| c.is_ascii_alphabetic())
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if let Some(bad) = self
            .from
            .split('/')
            .find(|seg| seg.strip_prefix(':').is_some_and(|n| !whole_name(n)))
        {
            return Err(format!(
                "`{bad}` in `{}`: a placeholder is a whole segment, `:name`",
                self.from
            ));
        }
        for name in placeholders(&self.to) {
            if name != "splat" && !placeholders(&self.from).any(|n| n == name) {
                return Err(format!(
                    "`:{name}` in `{}` is not in `{}`",
                    self.to, self.from
                ));
            }
        }
        if self.to.contains(":splat") && !self.from.ends_with('*') {
            return Err(format!(
                "`:splat` in `{}` needs a `*` in `{}`",
                self.to, self.from
            ));
        }
        Ok(())
    }

    pub fn is_redirect(&self) -> bool {
        (301..=308).contains(&self.status)
    }

    /// The values of the pattern's placeholders (and `splat`) for `path`.
    /// A trailing slash does not matter, but a splat keeps it.
    fn captures(&self, path: &str) -> Option<Vec<(&str, String)>> {
        match self.from.strip_suffix('*') {
            // `/news/*` matches `/news` too, with an empty splat.
            Some(prefix) => match_segments(prefix, true, path).or_else(|| {
                (prefix.ends_with('/') && !path.ends_with('/'))
                    .then(|| match_segments(prefix, true, &format!("{path}/")))
                    .flatten()
            }),
            None => match_segments(trim_slash(&self.from), false, trim_slash(path)),
        }
    }

    /// The target with the captured values substituted.
    fn target(&self, captures: &[(&str, String)]) -> String {
        let mut out = self.to.clone();
        // Longest names first: `:id` must not eat the start of `:idx`.
        let mut sorted: Vec<&(&str, String)> = captures.iter().collect();
        sorted.sort_by_key(|(name, _)| std::cmp::Reverse(name.len()));
        for (name, value) in sorted {
            // Captured from a decoded path: encoded again, so that a `?`,
            // `#` or `%` in a name stays part of the path.
            let value = percent_encoding::utf8_percent_encode(value, CAPTURE).to_string();
            out = out.replace(&format!(":{name}"), &value);
        }
        out
    }
}

/// Match `path` segment by segment against `pattern` (with its final `*`
/// removed when `splat`).
fn match_segments<'p>(pattern: &'p str, splat: bool, path: &str) -> Option<Vec<(&'p str, String)>> {
    let mut out = Vec::new();
    let mut rest = path;
    let segments: Vec<&str> = pattern.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let (head, tail) = if last && splat {
            let tail = rest.strip_prefix(segment)?;
            out.push(("splat", tail.to_owned()));
            return Some(out);
        } else if last {
            if rest.contains('/') {
                return None;
            }
            (rest, "")
        } else {
            rest.split_once('/')?
        };
        match segment.strip_prefix(':') {
            Some(name) if !head.is_empty() => out.push((name, head.to_owned())),
            None if *segment == head => {}
            _ => return None,
        }
        rest = tail;
    }
    Some(out)
}

/// A path without its trailing slash, `/` itself kept.
fn trim_slash(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

fn is_external(to: &str) -> bool {
    to.starts_with("http://") || to.starts_with("https://")
}

/// The `:name`s of a pattern or target (a name starts with a letter, so the
/// `:` of `https://` or of a port is none).
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split(':')
        .skip(1)
        .map(|rest| {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|name| name.starts_with(|c: char| c.is_ascii_alphabetic()))
}

impl Routes {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.fallback.is_none()
    }

    /// Resolve a request for URL path `path` (percent-decoded, with the base)
    /// on a site whose base is `base`; `served` says whether a file answers
    /// a URL path. `None`: serve as usual.
    pub fn resolve(&self, base: &str, path: &str, served: impl Fn(&str) -> bool) -> Option<Route> {
        let exists = served(path);
        for rule in &self.rules {
            if exists && !rule.force {
                continue;
            }
            let Some(captures) = rule.captures(path) else {
                continue;
            };
            let target = rule.target(&captures);
            return Some(if rule.is_redirect() {
                Route::Redirect {
                    status: rule.status,
                    location: target,
                }
            } else {
                Route::Rewrite {
                    status: rule.status,
                    path: target,
                }
            });
        }
        match &self.fallback {
            Some(page) if !exists && path.starts_with(base) => Some(Route::Rewrite {
                status: 200,
                path: format!("{base}{page}"),
            }),
            _ => None,
        }
    }

    /// The rules as `_redirects` lines (the fallback as `/* page 200`).
    pub fn netlify(&self, base: &str) -> String {
        let mut out = String::new();
        for rule in &self.rules {
            out.push_str(&format!(
                "{} {} {}{}\n",
                rule.from,
                rule.to,
                rule.status,
                if rule.force { "!" } else { "" }
            ));
        }
        if let Some(page) = &self.fallback {
            out.push_str(&format!("{base}* {base}{page} 200\n"));
        }
        out
    }

    /// nginx directives for the `server` block: forced rules at its level,
    /// the others in `location @kiln_routes`, reached when no file answers.
    pub fn nginx(&self, base: &str, not_found_page: Option<&str>) -> String {
        // Locations as the rules wrote them (`/news/`), not made absolute.
        let mut out =
            String::from("# Routes: kiln.toml [routes] and _redirects.\nabsolute_redirect off;\n");
        if let Some(page) = not_found_page {
            out.push_str(&format!("error_page 404 {};\n", nginx_string(page)));
        }
        for rule in self.rules.iter().filter(|r| r.force) {
            out.push_str(&nginx_rule(rule, ""));
        }
        out.push_str(&format!(
            "location {} {{\n    try_files $uri $uri/index.html @kiln_routes;\n}}\n\
             location @kiln_routes {{\n",
            nginx_string(base)
        ));
        for rule in self.rules.iter().filter(|r| !r.force) {
            out.push_str(&nginx_rule(rule, "    "));
        }
        if let Some(page) = &self.fallback {
            out.push_str(&format!(
                "    rewrite {} {} last;\n",
                nginx_string(&format!("^{}", regex_escape(base))),
                nginx_string(&format!("{base}{page}"))
            ));
        }
        out.push_str("    return 404;\n}\n");
        out
    }
}

impl Routes {
    /// Caddyfile directives for a `route` block, in the rules' order: each
    /// rule a named matcher (a regex on the path; `not file` unless forced)
    /// and a `redir`, `rewrite` or `respond`; then the fallback as
    /// `try_files`.
    pub fn caddy(&self, base: &str) -> String {
        let mut out = String::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let name = format!("kiln_r{i}");
            let (regex, names) = pattern_regex(&rule.from);
            let mut target = rule.to.clone();
            let mut sorted: Vec<(usize, &String)> = names.iter().enumerate().collect();
            sorted.sort_by_key(|(_, n)| std::cmp::Reverse(n.len()));
            for (g, n) in sorted {
                target = target.replace(&format!(":{n}"), &format!("{{re.{name}.{}}}", g + 1));
            }
            let matcher = |suffix: &str, extra: &str| {
                let mut m = format!(
                    "\t@{name}{suffix} {{\n\t\tpath_regexp {name} {}\n",
                    caddy_string(&regex)
                );
                if !rule.force {
                    m.push_str("\t\tnot file {path} {path}/index.html\n");
                }
                m.push_str(extra);
                m.push_str("\t}\n");
                m
            };
            if rule.is_redirect() && !target.contains('?') {
                // The request's query goes along (Caddy 2.6 has no `{?query}`).
                out.push_str(&matcher("_q", "\t\texpression {query} != \"\"\n"));
                out.push_str(&format!(
                    "\tredir @{name}_q {} {}\n",
                    caddy_string(&format!("{target}?{{query}}")),
                    rule.status
                ));
            }
            out.push_str(&matcher("", ""));
            if rule.is_redirect() {
                out.push_str(&format!(
                    "\tredir @{name} {} {}\n",
                    caddy_string(&target),
                    rule.status
                ));
            } else if rule.status == 200 {
                out.push_str(&format!("\trewrite @{name} {}\n", caddy_string(&target)));
            } else {
                out.push_str(&format!("\trespond @{name} {}\n", rule.status));
            }
        }
        if let Some(page) = &self.fallback {
            // `try_files` takes no matcher: the base is a matcher of its own.
            out.push_str(&format!(
                "\t@kiln_fallback {{\n\t\tpath {}\n\t\tnot file {{path}} {{path}}/index.html\n\t}}\n\trewrite @kiln_fallback {}\n",
                caddy_string(&format!("{base}*")),
                caddy_string(&format!("{base}{page}"))
            ));
        }
        out
    }
}

impl Routes {
    /// mod_rewrite directives for the `.htaccess` kiln writes at the output
    /// root (`emit/apache.rs`), in the rules' order (Apache keeps it,
    /// forced or not): each rule is a regex on `%{REQUEST_URI}` (decoded,
    /// with the base), skipped where a file or a directory's `index.html`
    /// answers unless forced; a redirect keeps the request's query unless the
    /// target has one (mod_rewrite's default); `200` is an internal rewrite;
    /// `404`/`410`/`451` answer their status with the target's page through
    /// an `ErrorDocument` chosen by the same regex. Then the fallback, under
    /// the base. Only the request as received is routed: a rewrite's target,
    /// an error page or a subrequest is served as it is.
    ///
    /// What Apache cannot say as kiln does:
    /// - a redirect's `Location` is absolute (`http://host/…`, from the
    ///   request's `Host`): mod_rewrite always makes it so;
    /// - captured values are percent-encoded again for space, `"#%<>?{}` and
    ///   the backquote only: other bytes (a UTF-8 letter) go into the
    ///   `Location` as they were decoded;
    /// - a rule with more than 9 placeholders cannot name the 10th (`%1`–`%9`):
    ///   it is left out, with a comment;
    /// - a `404`/`410`/`451` rule whose target has placeholders reaches its
    ///   page through an environment variable, which holds the captures
    ///   decoded (a `?` or `%` in them is read again as URL syntax).
    pub fn apache(&self, base: &str) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut out = String::from(
            "# Routes (kiln.toml [routes] and _redirects), in order, for the request as received\n\
             # (not for a rewrite's target, an error page or a subrequest).\n\
             RewriteCond %{ENV:REDIRECT_STATUS} ^$\n\
             RewriteCond %{IS_SUBREQ} false\n\
             RewriteRule ^ - [E=KILN_ROUTE:1]\n\
             # A file, or a directory's index.html, answers the path: only forced rules apply.\n\
             RewriteCond %{ENV:KILN_ROUTE} =1\n\
             RewriteCond %{REQUEST_FILENAME} -f [OR]\n\
             RewriteCond %{REQUEST_FILENAME}/index.html -f\n\
             RewriteRule ^ - [E=KILN_FILE:1]\n",
        );
        // (status, pattern regex, ErrorDocument target) of the status rules.
        let mut pages: Vec<(u16, String, String)> = Vec::new();
        for rule in &self.rules {
            let (regex, names) = pattern_regex_with(&rule.from, apache_regex_escape);
            let comment: String = format!(
                "{} {} {}{}",
                rule.from,
                rule.to,
                rule.status,
                if rule.force { "!" } else { "" }
            )
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
            let Some((target, captures)) = apache_target(&rule.to, &names, URL_KEEP) else {
                out.push_str(&format!(
                    "# {comment}: left out, Apache names at most 9 captures\n"
                ));
                continue;
            };
            out.push_str(&format!(
                "# {comment}\nRewriteCond %{{ENV:KILN_ROUTE}} =1\n"
            ));
            if !rule.force {
                out.push_str("RewriteCond %{ENV:KILN_FILE} !=1\n");
            }
            out.push_str(&format!("RewriteCond %{{REQUEST_URI}} {regex}\n"));
            // Captures percent-encoded again (`B=`), as `kiln serve` does.
            let escape = format!("BNP,B={APACHE_CAPTURE}");
            if rule.is_redirect() {
                out.push_str(&format!(
                    "RewriteRule ^ {target} '[NE,{escape},R={},L]'\n",
                    rule.status
                ));
            } else if rule.status == 200 {
                out.push_str(&format!("RewriteRule ^ {target} '[{escape},L]'\n"));
            } else if captures {
                // `ErrorDocument` takes a value from `/` as a path, so the
                // variable holds the rest.
                let (page, _) =
                    apache_target(&rule.to, &names, APACHE_FLAG_KEEP).unwrap_or((target, captures));
                let page = page.strip_prefix('/').unwrap_or(&page);
                out.push_str(&format!(
                    "RewriteRule ^ - '[R={},E=KILN_PAGE:{page},L]'\n",
                    rule.status
                ));
                pages.push((rule.status, regex, "/%{reqenv:KILN_PAGE}".to_owned()));
            } else {
                out.push_str(&format!("RewriteRule ^ - [R={},L]\n", rule.status));
                pages.push((rule.status, regex, apache_error_document(&rule.to)));
            }
        }
        if let Some(page) = &self.fallback {
            let target = apache_substitution(
                &percent_encoding::utf8_percent_encode(&format!("{base}{page}"), URL_KEEP)
                    .to_string(),
            );
            out.push_str(&format!(
                "# The fallback: any other path under the base.\n\
                 RewriteCond %{{ENV:KILN_ROUTE}} =1\n\
                 RewriteCond %{{ENV:KILN_FILE}} !=1\n\
                 RewriteCond %{{REQUEST_URI}} ^{}\n\
                 RewriteRule ^ {target} [L]\n",
                apache_regex_escape(base)
            ));
        }
        if !pages.is_empty() {
            // The first matching rule answered: its page is merged last.
            out.push_str("# The pages of the 404/410/451 rules.\n");
            for (status, regex, page) in pages.iter().rev() {
                out.push_str(&format!(
                    "<If \"%{{REQUEST_URI}} =~ m#{regex}#\">\nErrorDocument {status} {page}\n</If>\n"
                ));
            }
        }
        out
    }
}

/// What a URL or URL path keeps unencoded in a `Location` or a rewritten
/// request (`kiln serve`), and in the literal text of a target for Apache:
/// everything but controls, space and `"<>`{}`.
pub(crate) const URL_KEEP: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// In a rewrite flag's value, also what ends a flag (`,`) or the quoted
/// flags (`'`).
const APACHE_FLAG_KEEP: &percent_encoding::AsciiSet = &URL_KEEP.add(b',').add(b'\'');

/// In an `ErrorDocument` target, also `\`.
const APACHE_PAGE_KEEP: &percent_encoding::AsciiSet = &APACHE_FLAG_KEEP.add(b'\\');

/// What mod_rewrite's `B=` flag encodes in a captured value: [`CAPTURE`]
/// (control characters aside, which Apache refuses in a request anyway).
const APACHE_CAPTURE: &str = " \"#%<>?`{}";

/// A rule's target as a mod_rewrite substitution: the literal text
/// percent-encoded by `keep` and escaped, each `:name` as `%N` (the group of
/// the pattern's regex in the last `RewriteCond`). `None` when a name is
/// past the 9th group; the flag says whether a capture is used.
fn apache_target(
    to: &str,
    names: &[String],
    keep: &'static percent_encoding::AsciiSet,
) -> Option<(String, bool)> {
    // Longest names first: `:id` must not eat the start of `:idx`.
    let mut sorted: Vec<(usize, &String)> = names.iter().enumerate().collect();
    sorted.sort_by_key(|(_, name)| std::cmp::Reverse(name.len()));
    let mut out = String::new();
    let mut literal = String::new();
    let mut used = false;
    let mut rest = to;
    let flush = |literal: &mut String, out: &mut String| {
        out.push_str(&apache_substitution(
            &percent_encoding::utf8_percent_encode(literal, keep).to_string(),
        ));
        literal.clear();
    };
    while let Some(c) = rest.chars().next() {
        if c == ':'
            && let Some((group, name)) = sorted
                .iter()
                .find(|(_, name)| rest[1..].starts_with(name.as_str()))
        {
            if *group >= 9 {
                return None;
            }
            flush(&mut literal, &mut out);
            out.push_str(&format!("%{}", group + 1));
            rest = &rest[1 + name.len()..];
            used = true;
            continue;
        }
        literal.push(c);
        rest = &rest[c.len_utf8()..];
    }
    flush(&mut literal, &mut out);
    Some((out, used))
}

/// Text taken literally in a mod_rewrite substitution: `\`, `$` and `%`
/// escaped (they start backreferences and variables).
fn apache_substitution(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '$' | '%') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A local URL path as an `ErrorDocument` target (an expression: `$` is
/// escaped, `\` and what would split or quote it percent-encoded).
pub(crate) fn apache_error_document(path: &str) -> String {
    percent_encoding::utf8_percent_encode(path, APACHE_PAGE_KEEP)
        .to_string()
        .replace('$', "\\$")
}

/// A regex matching `text` literally, for Apache's config files (mod_rewrite
/// conditions and `<If>` expressions): letters, digits and `/_-~` as they
/// are, `.` as `\.`, every other byte as `\xHH`. It holds no space, quote,
/// `#` (the expression's delimiter) or doubled backslash, which Apache's
/// config reader would take as its own.
pub fn apache_regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'_' | b'-' | b'~' => {
                out.push(b as char)
            }
            b'.' => out.push_str("\\."),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// A double-quoted Apache config argument (Apache's reader unescapes `\\`
/// and `\"` inside quotes).
pub fn apache_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Routes {
    /// A CloudFront Function (viewer request, `cloudfront-js-2.0`) applying
    /// the routes in front of an S3 origin, which has no routing of its own.
    /// `indexes` are the URL paths of the build's directories with an
    /// `index.html` (`/`, `/about/`). A function cannot list the bucket: a
    /// path "exists" when it is such a directory or its last segment has an
    /// extension (docs/hosting.md).
    pub fn cloudfront_function(&self, base: &str, indexes: &[String]) -> String {
        let rules: Vec<serde_json::Value> = self
            .rules
            .iter()
            .map(|rule| {
                let (regex, names) = pattern_regex(&rule.from);
                serde_json::json!({
                    "re": regex,
                    "names": names,
                    "to": rule.to,
                    "status": rule.status,
                    "force": rule.force,
                })
            })
            .collect();
        let indexes: serde_json::Map<String, serde_json::Value> = indexes
            .iter()
            .map(|d| (d.clone(), serde_json::Value::from(1)))
            .collect();
        let fallback = self.fallback.as_ref().map(|page| format!("{base}{page}"));
        format!(
            "{}var RULES = {};\nvar INDEXES = {};\nvar FALLBACK = {};\nvar BASE = {};\n{}",
            CLOUDFRONT_HEADER,
            serde_json::Value::from(rules),
            serde_json::Value::from(indexes),
            serde_json::json!(fallback),
            serde_json::json!(base),
            CLOUDFRONT_HANDLER
        )
    }
}

const CLOUDFRONT_HEADER: &str = "// Generated by kiln: this build's routes as a CloudFront Function
// (event type viewer-request, runtime cloudfront-js-2.0), for an S3 origin.
// aws cloudfront create-function --name kiln-routes \\
//   --function-config Comment=kiln,Runtime=cloudfront-js-2.0 \\
//   --function-code fileb://kiln-cloudfront-function.js
";

const CLOUDFRONT_HANDLER: &str = r#"
function exists(uri) {
  if (INDEXES[uri] || INDEXES[uri + "/"]) return true;
  var last = uri.substring(uri.lastIndexOf("/") + 1);
  return last.indexOf(".") !== -1;
}

function query(qs) {
  var parts = [];
  for (var name in qs) {
    var entry = qs[name];
    var values = entry.multiValue ? entry.multiValue : [entry];
    for (var i = 0; i < values.length; i++) {
      parts.push(values[i].value === "" ? name : name + "=" + values[i].value);
    }
  }
  return parts.join("&");
}

var REASONS = { 301: "Moved Permanently", 302: "Found", 303: "See Other",
  307: "Temporary Redirect", 308: "Permanent Redirect", 404: "Not Found", 410: "Gone",
  451: "Unavailable For Legal Reasons" };

function handler(event) {
  var request = event.request;
  var uri = request.uri;
  var present = exists(uri);
  for (var i = 0; i < RULES.length; i++) {
    var rule = RULES[i];
    if (present && !rule.force) continue;
    var match = new RegExp(rule.re).exec(uri);
    if (!match) continue;
    var to = rule.to;
    var order = rule.names.map(function (name, g) { return [name, g + 1]; });
    order.sort(function (a, b) { return b[0].length - a[0].length; });
    for (var j = 0; j < order.length; j++) {
      to = to.split(":" + order[j][0]).join(match[order[j][1]] || "");
    }
    if (rule.status >= 301 && rule.status <= 308) {
      var qs = query(request.querystring || {});
      if (qs && to.indexOf("?") === -1) to += "?" + qs;
      return { statusCode: rule.status, statusDescription: REASONS[rule.status],
        headers: { location: { value: to } } };
    }
    if (rule.status === 200) {
      request.uri = to;
      return request;
    }
    return { statusCode: rule.status, statusDescription: REASONS[rule.status] };
  }
  if (INDEXES[uri]) {
    request.uri = uri + "index.html";
  } else if (INDEXES[uri + "/"]) {
    request.uri = uri + "/index.html";
  } else if (!present && FALLBACK && uri.indexOf(BASE) === 0) {
    request.uri = FALLBACK;
  }
  return request;
}
"#;

/// A quoted Caddyfile token (Caddy's lexer unescapes `\"` only: a
/// backslash stays as written).
pub fn caddy_string(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

/// One rule as nginx directives (a regex on `$uri`, captures as `$1`…).
fn nginx_rule(rule: &Rule, indent: &str) -> String {
    let (regex, names) = pattern_regex(&rule.from);
    let mut target = rule.to.clone();
    let mut sorted: Vec<(usize, &String)> = names.iter().enumerate().collect();
    sorted.sort_by_key(|(_, name)| std::cmp::Reverse(name.len()));
    for (i, name) in sorted {
        target = target.replace(&format!(":{name}"), &format!("${}", i + 1));
    }
    if rule.is_redirect() {
        format!(
            "{indent}if ($uri ~ {}) {{\n{indent}    return {} {};\n{indent}}}\n",
            nginx_string(&regex),
            rule.status,
            nginx_string(&if target.contains('?') {
                target.clone()
            } else {
                format!("{target}$is_args$args")
            })
        )
    } else if rule.status == 200 {
        format!(
            "{indent}rewrite {} {} last;\n",
            nginx_string(&regex),
            nginx_string(&target)
        )
    } else {
        // nginx cannot serve a file's bytes with an error status from a
        // rewrite; the status alone is sent (with the error page).
        format!(
            "{indent}if ($uri ~ {}) {{\n{indent}    return {};\n{indent}}}\n",
            nginx_string(&regex),
            rule.status
        )
    }
}

/// A pattern as an anchored regex, and the names of its groups in order.
fn pattern_regex(from: &str) -> (String, Vec<String>) {
    pattern_regex_with(from, regex_escape)
}

/// [`pattern_regex`] with the literal parts escaped by `escape`.
fn pattern_regex_with(from: &str, escape: fn(&str) -> String) -> (String, Vec<String>) {
    let (pattern, splat) = match from.strip_suffix('*') {
        Some(prefix) => (prefix, true),
        // `/old/` and `/old` are one pattern, as in `resolve`.
        None => (trim_slash(from), false),
    };
    let mut regex = String::from("^");
    let mut names = Vec::new();
    let segments: Vec<&str> = pattern.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            if splat && i + 1 == segments.len() && segment.is_empty() {
                // `/news/*`: the slash is optional, so `/news` matches too.
                regex.push_str("(?:/");
                names.push("splat".to_owned());
                regex.push_str("(.*))?");
                return (regex + "$", names);
            }
            regex.push('/');
        }
        match segment.strip_prefix(':') {
            Some(name) => {
                names.push(name.to_owned());
                regex.push_str("([^/]+)");
            }
            None => regex.push_str(&escape(segment)),
        }
    }
    if splat {
        names.push("splat".to_owned());
        regex.push_str("(.*)");
    } else {
        regex.push_str("/?");
    }
    (regex + "$", names)
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn nginx_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Parse a `_redirects` file. Lines kiln cannot apply (conditions, query
/// matches, proxies, domain rules) are warnings naming their line; the file
/// still goes to the hosts that read it, as written.
pub fn parse_redirects(path: &Path, text: &str) -> (Vec<Rule>, Vec<Diagnostic>) {
    let mut rules = Vec::new();
    let mut diagnostics = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_no = n as u32 + 1;
        let content = line.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let col = (line.len() - line.trim_start().len()) as u32 + 1;
        let warn = |message: String| Diagnostic::warning(path, message).at(line_no, col);
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [from, to, rest @ ..] = fields.as_slice() else {
            diagnostics.push(warn(format!(
                "`{content}`: a rule is `FROM TO [STATUS]`; skipped"
            )));
            continue;
        };
        let (status, conditions) = match rest.split_first() {
            Some((s, more)) if s.trim_end_matches('!').parse::<u16>().is_ok() => (Some(*s), more),
            _ => (None, rest),
        };
        if !conditions.is_empty() || to.contains('=') {
            diagnostics.push(warn(format!(
                "`{}`: conditions and query matches are left to the host; kiln serve skips this rule",
                conditions.join(" ")
            )));
            continue;
        }
        let rule = Rule {
            from: (*from).to_owned(),
            to: (*to).to_owned(),
            status: status.map_or(301, |s| s.trim_end_matches('!').parse().unwrap_or(301)),
            force: status.is_some_and(|s| s.ends_with('!')),
        };
        match rule.validate() {
            Ok(()) => rules.push(rule),
            Err(message) => {
                diagnostics.push(warn(format!("{message}; kiln serve skips this rule")))
            }
        }
    }
    (rules, diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(from: &str, to: &str, status: u16) -> Rule {
        Rule {
            from: from.into(),
            to: to.into(),
            status,
            force: false,
        }
    }

    fn routes(rules: Vec<Rule>, fallback: Option<&str>) -> Routes {
        Routes {
            rules,
            fallback: fallback.map(str::to_owned),
        }
    }

    #[test]
    fn placeholders_and_splats_fill_the_target() {
        let r = routes(
            vec![
                rule("/news/*", "/blog/:splat", 301),
                rule("/posts/:year/:slug", "/blog/:year-:slug", 308),
                rule("/app/*", "/app/index.html", 200),
            ],
            None,
        );
        let none = |_: &str| false;
        let redirect = |status, location: &str| {
            Some(Route::Redirect {
                status,
                location: location.into(),
            })
        };
        assert_eq!(
            r.resolve("/", "/news/a/b", none),
            redirect(301, "/blog/a/b")
        );
        assert_eq!(r.resolve("/", "/news", none), redirect(301, "/blog/"));
        assert_eq!(r.resolve("/", "/news/", none), redirect(301, "/blog/"));
        assert_eq!(r.resolve("/", "/news/a/", none), redirect(301, "/blog/a/"));
        assert_eq!(r.resolve("/", "/newsroom", none), None);
        assert_eq!(
            r.resolve("/", "/posts/2024/hello/", none),
            redirect(308, "/blog/2024-hello")
        );
        assert_eq!(r.resolve("/", "/posts/2024", none), None);
        assert_eq!(r.resolve("/", "/posts/2024/a/b", none), None);
        assert_eq!(
            r.resolve("/", "/app/settings/profile", none),
            Some(Route::Rewrite {
                status: 200,
                path: "/app/index.html".into()
            })
        );
    }

    #[test]
    fn files_shadow_rules_unless_forced_and_the_fallback_comes_last() {
        let mut forced = rule("/old.html", "/new.html", 301);
        forced.force = true;
        let r = routes(
            vec![rule("/about", "/team", 302), forced],
            Some("index.html"),
        );
        let exists = |p: &str| p == "/about" || p == "/old.html" || p == "/a.js";
        assert_eq!(r.resolve("/", "/about", exists), None);
        assert_eq!(
            r.resolve("/", "/old.html", exists),
            Some(Route::Redirect {
                status: 301,
                location: "/new.html".into()
            })
        );
        assert_eq!(r.resolve("/", "/a.js", exists), None);
        assert_eq!(
            r.resolve("/", "/deep/link", exists),
            Some(Route::Rewrite {
                status: 200,
                path: "/index.html".into()
            })
        );
        // Under a base, only its own paths fall back.
        assert_eq!(
            r.resolve("/docs/", "/docs/x", |_| false),
            Some(Route::Rewrite {
                status: 200,
                path: "/docs/index.html".into()
            })
        );
        assert_eq!(r.resolve("/docs/", "/x", |_| false), None);
    }

    #[test]
    fn a_redirects_file_parses_with_warnings_for_what_kiln_cannot_do() {
        let text = "# comment\n\n/a /b\n/c   /d   302!  # trailing\n/e /f 200 Country=us\n\
                    /store id=:id /blog/:id 301\nnot-a-path /x\n/p https://example.com/:x 200\n/only\n\
                    /g https://example.com/g 308\n";
        let (rules, diagnostics) = parse_redirects(Path::new("_redirects"), text);
        assert_eq!(
            rules,
            [
                rule("/a", "/b", 301),
                Rule {
                    force: true,
                    ..rule("/c", "/d", 302)
                },
                rule("/g", "https://example.com/g", 308),
            ]
        );
        let lines: Vec<(u32, &str)> = diagnostics
            .iter()
            .map(|d| (d.line.unwrap_or(0), d.message.as_str()))
            .collect();
        assert_eq!(lines.len(), 5, "{lines:?}");
        assert_eq!(lines[0].0, 5);
        assert!(lines[0].1.contains("Country=us"), "{lines:?}");
        assert_eq!(lines[1].0, 6);
        assert_eq!(lines[2].0, 7);
        assert!(lines[2].1.contains("URL path from `/`"), "{lines:?}");
        assert_eq!(lines[3].0, 8);
        assert!(lines[3].1.contains("proxy"), "{lines:?}");
        assert_eq!(lines[4].0, 9);
    }

    #[test]
    fn trailing_slashes_and_encoded_captures() {
        let r = routes(
            vec![
                rule("/old/", "/new/", 301),
                rule("/files/*", "/dl/:splat", 200),
            ],
            None,
        );
        let none = |_: &str| false;
        assert_eq!(
            r.resolve("/", "/old", none),
            Some(Route::Redirect {
                status: 301,
                location: "/new/".into()
            })
        );
        assert_eq!(pattern_regex("/old/"), ("^/old/?$".into(), vec![]));
        // A decoded `?` in a name stays in the path.
        assert_eq!(
            r.resolve("/", "/files/a?b c.txt", none),
            Some(Route::Rewrite {
                status: 200,
                path: "/dl/a%3Fb%20c.txt".into()
            })
        );
    }

    #[test]
    fn rules_are_checked() {
        assert!(
            rule("/blog/:slug.html", "/p/:slug", 301)
                .validate()
                .is_err()
        );
        assert!(rule("/a/*/b", "/x", 301).validate().is_err());
        assert!(rule("/a", "/x", 299).validate().is_err());
        assert!(rule("/a", "x", 301).validate().is_err());
        assert!(rule("/a/:id", "/x/:other", 301).validate().is_err());
        assert!(rule("/a", "/x/:splat", 301).validate().is_err());
        assert!(rule("/a/:id/*", "/x/:id/:splat", 301).validate().is_ok());
    }

    #[test]
    fn nginx_regexes_match_what_kiln_serve_matches() {
        assert_eq!(
            pattern_regex("/news/*"),
            ("^/news(?:/(.*))?$".into(), vec!["splat".into()])
        );
        assert_eq!(
            pattern_regex("/p/:year/:slug"),
            (
                "^/p/([^/]+)/([^/]+)/?$".into(),
                vec!["year".into(), "slug".into()]
            )
        );
        assert_eq!(pattern_regex("/a.html"), ("^/a\\.html/?$".into(), vec![]));
        let text = routes(
            vec![rule("/p/:year/:slug", "/blog/:year-:slug", 301)],
            Some("index.html"),
        )
        .nginx("/", Some("/404.html"));
        assert!(
            text.contains("return 301 \"/blog/$1-$2$is_args$args\";"),
            "{text}"
        );
        assert!(
            text.contains("rewrite \"^/\" \"/index.html\" last;"),
            "{text}"
        );
        assert!(text.contains("error_page 404 \"/404.html\";"), "{text}");
    }

    #[test]
    fn apache_rules_keep_their_order_and_escape_what_apache_reads() {
        let mut forced = rule("/old.html", "/new page.html#top", 308);
        forced.force = true;
        let ten = (1..=10).map(|i| format!("/:p{i}")).collect::<String>();
        let r = routes(
            vec![
                rule("/p/:year/:slug", "/blog/:year-:slug?from=$old%", 301),
                forced,
                rule("/gone", "/410 page.html", 410),
                rule("/legal/:id", "/legal/:id,x.html", 451),
                rule("/app/*", "/app/index.html", 200),
                rule(&ten, "/x:p10", 302),
                rule("/a b", "https://example.com/", 302),
            ],
            Some("index.html"),
        );
        let text = r.apache("/");
        let order: Vec<usize> = [
            "# /p/:year/:slug",
            "# /old.html",
            "# /gone",
            "# /legal/:id",
            "# /app/*",
            "left out, Apache names at most 9 captures",
            "# /a b",
            "# The fallback",
        ]
        .iter()
        .map(|s| text.find(s).unwrap_or_else(|| panic!("{s}: {text}")))
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(
            text.contains(
                "RewriteCond %{ENV:KILN_FILE} !=1\n\
                 RewriteCond %{REQUEST_URI} ^/p/([^/]+)/([^/]+)/?$\n\
                 RewriteRule ^ /blog/%1-%2?from=\\$old\\% '[NE,BNP,B= \"#%<>?`{},R=301,L]'\n"
            ),
            "{text}"
        );
        // Forced: no file check.
        assert!(
            text.contains(
                "# /old.html /new page.html#top 308!\nRewriteCond %{ENV:KILN_ROUTE} =1\n\
                 RewriteCond %{REQUEST_URI} ^/old\\.html/?$\n\
                 RewriteRule ^ /new\\%20page.html#top '[NE,"
            ),
            "{text}"
        );
        assert!(text.contains("RewriteRule ^ - [R=410,L]\n"), "{text}");
        assert!(
            text.contains("RewriteRule ^ - '[R=451,E=KILN_PAGE:legal/%1\\%2Cx.html,L]'\n"),
            "{text}"
        );
        assert!(
            text.contains("RewriteRule ^ /app/index.html '[BNP,"),
            "{text}"
        );
        assert!(
            text.contains("RewriteCond %{REQUEST_URI} ^/a\\x20b/?$\n"),
            "{text}"
        );
        assert!(
            text.contains("RewriteRule ^ https://example.com/ '[NE,BNP,B= \"#%<>?`{},R=302,L]'"),
            "{text}"
        );
        // The pages of the status rules, the first rule's merged last.
        let legal = text
            .find("<If \"%{REQUEST_URI} =~ m#^/legal/([^/]+)/?$#\">\nErrorDocument 451 /%{reqenv:KILN_PAGE}\n</If>")
            .unwrap_or_else(|| panic!("{text}"));
        let gone = text
            .find("<If \"%{REQUEST_URI} =~ m#^/gone/?$#\">\nErrorDocument 410 /410%20page.html\n</If>")
            .unwrap_or_else(|| panic!("{text}"));
        assert!(legal < gone, "{text}");
        assert_eq!(Routes::default().apache("/"), "");
    }

    #[test]
    fn netlify_lines_round_trip() {
        let mut forced = rule("/x", "/y", 302);
        forced.force = true;
        let r = routes(
            vec![rule("/a/*", "/b/:splat", 301), forced],
            Some("index.html"),
        );
        let text = r.netlify("/");
        assert_eq!(text, "/a/* /b/:splat 301\n/x /y 302!\n/* /index.html 200\n");
        let (parsed, diagnostics) = parse_redirects(Path::new("_redirects"), &text);
        assert!(diagnostics.is_empty());
        assert_eq!(parsed[..2], r.rules[..]);
    }
}
