//! `[[headers]]` rules: response headers by glob, in the manifest, in
//! `_headers` (after the source's own file), from `kiln serve`, and from a
//! real nginx, a real Caddy and a real Apache running the generated files.

use crate::apache::Apache;
use crate::routes::{Caddy, Nginx};
use crate::serve::{Reply, Server, http};
use crate::util::{Site, build};

const CONFIG: &str = r#"
[outputs]
apache = true

[[headers]]
for = "**/*.html"
values = { "Content-Security-Policy" = "default-src 'self'", "X-Frame-Options" = "DENY" }

[[headers]]
for = "downloads/*.pdf"
values = { "Content-Disposition" = "attachment" }

[[headers]]
for = "feed"
values = { "Content-Type" = "application/feed+json" }

[[headers]]
for = "/index.html"   # anchored: only the top page (kiln.toml's glob rules)
values = { "X-Frame-Options" = "SAMEORIGIN" }
"#;

fn site() -> Site {
    Site::new()
        .file("kiln.toml", CONFIG)
        .file("_headers", "/*\n  X-Robots-Tag: noindex\n")
        .file(
            "index.html",
            "<!doctype html><title>home</title><p>home</p>",
        )
        .file(
            "about/index.html",
            "<!doctype html><title>about</title><p>about</p>",
        )
        .file("downloads/guide.pdf", "%PDF-1.4 not really")
        .file("feed", r#"{"version": "https://jsonfeed.org/version/1.1"}"#)
}

fn check(name: &str, get: &dyn Fn(&str) -> Reply) {
    let about = get("/about/");
    assert_eq!(about.status, 200, "{name}");
    assert_eq!(
        about.header("content-security-policy"),
        Some("default-src 'self'"),
        "{name}"
    );
    assert_eq!(about.header("x-frame-options"), Some("DENY"), "{name}");
    // A later rule wins.
    assert_eq!(
        get("/").header("x-frame-options"),
        Some("SAMEORIGIN"),
        "{name}"
    );
    let pdf = get("/downloads/guide.pdf");
    assert_eq!(
        pdf.header("content-disposition"),
        Some("attachment"),
        "{name}"
    );
    assert_eq!(pdf.header("content-security-policy"), None, "{name}");
    // A content type for a name without an extension.
    assert_eq!(
        get("/feed").header("content-type"),
        Some("application/feed+json"),
        "{name}"
    );
}

#[test]
fn header_rules_reach_the_manifest_headers_file_kiln_serve_and_nginx() {
    let site = site();
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    assert_eq!(
        m.files["about/index.html"].headers["content-security-policy"],
        "default-src 'self'"
    );
    assert_eq!(m.files["feed"].content_type, "application/feed+json");
    assert!(!m.files.contains_key("_headers"));
    // The source's own rules first, as written; then kiln's, per file.
    let headers = built.text("_headers");
    assert!(
        headers.starts_with("/*\n  X-Robots-Tag: noindex\n"),
        "{headers}"
    );
    assert!(
        headers.contains("/about/\n  Cache-Control: public, max-age=0, must-revalidate, stale-if-error=86400\n  content-security-policy: default-src 'self'\n  x-frame-options: DENY\n"),
        "{headers}"
    );

    let server = Server::start(&built);
    check("kiln serve", &|path| server.get(path, &[]));
    let nginx = Nginx::start(&built.out);
    check("nginx", &|path| http(&nginx.addr, "GET", path, &[]));
    let caddy = Caddy::start(&built.out);
    check("caddy", &|path| http(&caddy.addr, "GET", path, &[]));
    let apache = Apache::start(&built.out, "/");
    check("apache", &|path| apache.get(path, &[]));
}

#[test]
fn a_bad_header_rule_is_a_configuration_error() {
    for (values, message) in [
        (r#"{ "Bad Name" = "x" }"#, "`Bad Name` is not a header name"),
        (r#"{ "X-A" = "a\nb" }"#, "control character"),
        (r#"{ "Content-Encoding" = "br" }"#, "is kiln's to set"),
    ] {
        let site = Site::new()
            .file(
                "kiln.toml",
                format!("[[headers]]\nfor = \"*\"\nvalues = {values}\n"),
            )
            .file("index.html", "<p>x</p>");
        let built = build(site.path(), &[]);
        assert_eq!(built.code, 2, "{}", built.stderr);
        assert!(
            built.stderr.contains("kiln.toml:3:") && built.stderr.contains(message),
            "{}",
            built.stderr
        );
    }
}
