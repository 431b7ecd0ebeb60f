//! What the build writes besides the files: precompressed variants,
//! manifests and header rules, all agreeing with the tree.

use std::io::Read;

use base64::Engine;
use sha2::Digest;

use crate::util::{build, fixture_path, tree};

#[test]
fn precompressed_variants_decode_to_the_exact_output_bytes() {
    let built = build(&fixture_path("site"), &[]);
    let files = tree(&built.out);
    let mut seen = 0;
    for (path, bytes) in &files {
        if let Some(original) = path.strip_suffix(".gz") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == files[original], "{path}");
            assert!(bytes.len() < files[original].len());
            seen += 1;
        } else if let Some(original) = path.strip_suffix(".br") {
            let mut out = Vec::new();
            brotlic::DecompressorReader::new(&bytes[..])
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == files[original], "{path}");
            seen += 1;
        }
    }
    assert!(seen > 20, "{seen} variants");
    // Images are not precompressed; tiny files neither.
    assert!(!files.contains_key("img/hero.png.gz"));
    assert!(!files.contains_key("robots.txt.gz"));
}

#[test]
fn the_manifest_agrees_with_the_tree() {
    let built = build(&fixture_path("site"), &[]);
    let m = built.manifest();
    assert_eq!(m.schema, 1);
    let files = tree(&built.out);
    let sources = tree(&fixture_path("site"));
    assert_eq!(
        m.files.keys().collect::<Vec<_>>(),
        sources.keys().collect::<Vec<_>>(),
        "every source file is listed"
    );
    for (source, e) in &m.files {
        let bytes = &files[&e.output];
        assert_eq!(e.bytes_out, bytes.len() as u64, "{source}");
        assert_eq!(e.bytes_in, sources[source].len() as u64, "{source}");
        assert_eq!(
            e.blake3,
            blake3::hash(bytes).to_hex().to_string(),
            "{source}"
        );
        let sri = format!(
            "sha384-{}",
            base64::engine::general_purpose::STANDARD.encode(sha2::Sha384::digest(bytes))
        );
        assert_eq!(e.integrity, sri, "{source}");
        assert_eq!(
            e.gzip,
            files
                .get(&format!("{}.gz", e.output))
                .map(|b| b.len() as u64),
            "{source}"
        );
        assert_eq!(
            e.brotli,
            files
                .get(&format!("{}.br", e.output))
                .map(|b| b.len() as u64),
            "{source}"
        );
        for alias in &e.aliases {
            assert!(
                files[&alias.path] == *bytes,
                "alias {} has the same bytes",
                alias.path
            );
        }
        if e.kind == kiln::asset::AssetKind::Css {
            assert_eq!(e.content_type, "text/css; charset=utf-8");
        }
    }
    // Every file in the tree is accounted for.
    let served: std::collections::HashSet<String> = m
        .served()
        .iter()
        .flat_map(|s| {
            [
                s.path.to_owned(),
                format!("{}.gz", s.path),
                format!("{}.br", s.path),
            ]
        })
        .collect();
    let generated = [
        "kiln-manifest.json",
        "rev-manifest.json",
        "staticfiles.json",
        ".manifest.json",
        "_headers",
        "kiln-nginx.conf",
        "kiln-caddy.conf",
        "kiln-report.html",
    ];
    for path in files.keys() {
        assert!(
            served.contains(path) || generated.contains(&path.as_str()),
            "unlisted output {path}"
        );
    }
}

#[test]
fn backend_manifests_agree_with_kiln_manifest() {
    let built = build(&fixture_path("site"), &[]);
    let m = built.manifest();
    let rev: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&built.read("rev-manifest.json")).unwrap();
    let django: serde_json::Value =
        serde_json::from_slice(&built.read("staticfiles.json")).unwrap();
    let propshaft: serde_json::Value =
        serde_json::from_slice(&built.read(".manifest.json")).unwrap();
    let renamed = m.files.iter().filter(|(s, e)| **s != e.output).count();
    assert!(renamed > 10);
    assert_eq!(rev.len(), renamed);
    for (source, output) in &rev {
        assert_eq!(&m.files[source].output, output);
        assert_eq!(django["paths"][source], *output);
        assert_eq!(propshaft[source]["digested_path"], *output);
        assert_eq!(propshaft[source]["integrity"], m.files[source].integrity);
    }
    assert_eq!(django["version"], "1.1");
    // Django raises for unlisted files, so unrenamed assets map to themselves.
    assert_eq!(django["paths"]["robots.txt"], "robots.txt");
    assert!(django["paths"].get("index.html").is_none());
}

#[test]
fn header_rules_follow_the_cache_policy() {
    let built = build(&fixture_path("site"), &[]);
    let m = built.manifest();
    let headers = built.text("_headers");
    let rule = |url: &str| {
        let at = headers
            .find(&format!("{url}\n"))
            .unwrap_or_else(|| panic!("no rule for {url}"));
        headers[at..].lines().nth(1).unwrap().trim().to_owned()
    };
    let css = &m.files["css/main.css"].output;
    assert_eq!(
        rule(&format!("/{css}")),
        "Cache-Control: public, max-age=31536000, immutable"
    );
    assert_eq!(rule("/css/main.css"), "Cache-Control: public, max-age=3600");
    assert_eq!(
        rule("/about/"),
        "Cache-Control: public, max-age=0, must-revalidate, stale-if-error=86400"
    );
    assert_eq!(
        rule("/about/index.html"),
        "Cache-Control: public, max-age=0, must-revalidate, stale-if-error=86400"
    );
    assert_eq!(rule("/robots.txt"), "Cache-Control: public, max-age=3600");
    let team = &m.files["img/team photo.jpg"].output;
    assert!(headers.contains(&format!("/{}\n", team.replace(' ', "%20"))));
    let nginx = built.text("kiln-nginx.conf");
    assert!(nginx.contains("gzip_static on;") && nginx.contains("brotli_static on;"));
    assert!(nginx.contains(&format!(
        "location = \"/{css}\" {{\n    types {{ }}\n    default_type \"text/css; charset=utf-8\";\n    add_header Cache-Control \"public, max-age=31536000, immutable\" always;\n}}"
    )));
}

#[test]
fn cache_rules_and_output_formats_are_configurable() {
    let site = crate::util::Site::fixture("site").file(
        "kiln.toml",
        "[cache_control]\nhtml = \"no-cache\"\nrules = [{ glob = \"downloads/**\", value = \"public, max-age=60\" }]\n[outputs]\nnginx = false\ncaddy = false\ndjango = false\n",
    );
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    assert_eq!(m.files["index.html"].cache_control, "no-cache");
    assert_eq!(
        m.files["downloads/emberline-brochure.pdf"].cache_control,
        "public, max-age=60"
    );
    assert!(!built.out.join("kiln-nginx.conf").exists());
    assert!(!built.out.join("kiln-caddy.conf").exists());
    assert!(!built.out.join("staticfiles.json").exists());
    assert!(
        !m.files.contains_key("kiln.toml"),
        "the config file is not part of the site"
    );
}

#[test]
fn manifest_and_headers_snapshot() {
    let site = crate::util::Site::new()
        .file(
            "index.html",
            "<link rel=stylesheet href=\"css/a.css\"><a href=\"notes.txt\">notes</a>\n",
        )
        .file(
            "css/a.css",
            "body { background: url(../img/dot.png) }\n".repeat(20),
        )
        .file("img/dot.png", b"\x89PNG dot")
        .file("notes.txt", "plain notes\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let manifest = built
        .text("kiln-manifest.json")
        .replace(env!("CARGO_PKG_VERSION"), "VERSION");
    insta::assert_snapshot!("manifest", manifest);
    insta::assert_snapshot!("headers", built.text("_headers"));
}

/// A bundler's own precompressed copies in the source (vite-plugin-compression)
/// are replaced by kiln's: never served stale, never listed as files.
#[test]
fn precompressed_copies_in_the_source_are_replaced_by_kiln_s() {
    use crate::util::Site;
    let site = Site::new()
        .file("index.html", "<script src=\"app.js\"></script>")
        .file("app.js", "console.log('the current build, long enough to be worth compressing: ' + 'x'.repeat(300));\n".repeat(4))
        .file("app.js.gz", b"stale gzip from an older bundle".as_slice())
        .file("app.js.br", b"stale brotli".as_slice())
        .file("data.bin.gz", b"a gzip file on its own".as_slice())
        .file("release.tar", b"an archive kiln does not compress".as_slice())
        .file("release.tar.gz", b"its gzip download".as_slice());
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    assert!(!m.files.contains_key("app.js.gz") && !m.files.contains_key("app.js.br"));
    // A .gz without its plain file is an ordinary file, and so is one beside a
    // file kiln would not compress (a download of its own).
    assert!(m.files.contains_key("data.bin.gz"));
    assert!(m.files.contains_key("release.tar.gz"));
    assert_eq!(built.read("release.tar.gz"), b"its gzip download");
    let files = tree(&built.out);
    for (path, bytes) in &files {
        let own_file = m.files.values().any(|e| &e.output == path);
        if let Some(plain) = path
            .strip_suffix(".gz")
            .filter(|p| files.contains_key(*p) && !own_file)
        {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut out)
                .unwrap();
            assert!(out == files[plain], "{path}");
        }
    }
    assert!(
        files
            .keys()
            .any(|p| p.starts_with("app.") && p.ends_with(".js.gz"))
    );
}
