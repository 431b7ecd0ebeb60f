//! `.zst` siblings (`[compress] zstd = true`): made where they pay, recorded
//! in the manifest, and chosen by `Accept-Encoding` in `kiln serve` and in a
//! real Caddy (`precompressed br zstd gzip`).

use crate::routes::Caddy;
use crate::serve::{Server, http};
use crate::util::{Site, build};

const ZSTD: &str = "[compress]\nzstd = true\n";

#[test]
fn zstd_siblings_are_opt_in_and_decode_to_the_file() {
    let site = Site::fixture("site");
    let plain = build(site.path(), &[]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(plain.manifest().files.values().all(|e| e.zstd.is_none()));
    assert!(
        !crate::util::tree(&plain.out)
            .keys()
            .any(|p| p.ends_with(".zst"))
    );

    let site = site.file("kiln.toml", ZSTD);
    let built = build(site.path(), &["--json"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let summary: serde_json::Value = serde_json::from_str(&built.stdout).unwrap();
    assert!(
        summary["work_ms"]["zstd"].as_f64().unwrap() > 0.0,
        "{summary:#}"
    );
    let manifest = built.manifest();
    let mut made = 0;
    for entry in manifest.files.values() {
        let sibling = built.out.join(format!("{}.zst", entry.output));
        match entry.zstd {
            Some(size) => {
                let bytes = std::fs::read(&sibling).unwrap();
                assert_eq!(bytes.len() as u64, size);
                let file = built.read(&entry.output);
                assert_eq!(zstd::bulk::decompress(&bytes, file.len()).unwrap(), file);
                // Where brotli pays, zstd at 19 pays too, and brotli 11 is smaller.
                assert!(
                    entry.brotli.is_some_and(|br| br <= size),
                    "{}",
                    entry.output
                );
                made += 1;
            }
            None => assert!(!sibling.exists(), "{}", sibling.display()),
        }
    }
    assert!(made >= 5, "{made} .zst siblings");

    // Turned off again: the siblings go.
    let site = site.file("kiln.toml", "");
    let again = crate::util::build_into(site.path(), &built.out, &[]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        !crate::util::tree(&built.out)
            .keys()
            .any(|p| p.ends_with(".zst"))
    );
}

#[test]
fn kiln_serve_and_caddy_choose_zstd_by_accept_encoding() {
    let site = Site::fixture("site").file("kiln.toml", ZSTD);
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let manifest = built.manifest();
    let css = manifest
        .files
        .values()
        .find(|e| e.output.ends_with(".css") && e.zstd.is_some())
        .expect("a stylesheet with a .zst");
    let url = format!("/{}", css.output);
    let server = Server::start(&built);
    let caddy = Caddy::start(&built.out);
    for (name, addr) in [("kiln serve", &server.addr), ("caddy", &caddy.addr)] {
        for (accept, encoding) in [
            ("zstd", Some("zstd")),
            ("gzip, zstd", Some("zstd")),
            ("br;q=1, zstd;q=0.5", Some("br")),
            ("zstd;q=1, br;q=0.5", Some("zstd")),
            ("zstd;q=0, gzip", Some("gzip")),
            ("identity", None),
        ] {
            let reply = http(addr, "GET", &url, &[("Accept-Encoding", accept)]);
            assert_eq!(reply.status, 200, "{name} {accept}");
            assert_eq!(
                reply.header("content-encoding"),
                encoding,
                "{name}: {accept}"
            );
            // Caddy sends no Vary on an identity reply; every encoded one has it.
            if encoding.is_some() || name == "kiln serve" {
                let vary = reply.header("vary").unwrap_or("").to_ascii_lowercase();
                assert!(vary.contains("accept-encoding"), "{name}: {accept}");
            }
            if encoding == Some("zstd") {
                let body = zstd::bulk::decompress(&reply.body, 1 << 20).unwrap();
                assert_eq!(body, built.read(&css.output), "{name}: {accept}");
            }
        }
    }
}

/// With `zstd` off, a `.zst` beside a file is a file of its own (a
/// bundler's, of other bytes): never served as the file's encoding.
#[test]
fn a_bundler_s_zst_is_not_served_when_kiln_made_none() {
    let site = Site::new()
        .file("index.html", "<script src=sw.js></script>")
        .file("sw.js", format!("self.x = {:?};\n", "y".repeat(400)))
        .file("sw.js.zst", "not the bytes of sw.js");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(built.out.join("sw.js.zst").is_file());
    assert!(!built.text("kiln-caddy.conf").contains("zstd"));
    let server = Server::start(&built);
    let caddy = Caddy::start(&built.out);
    for (name, addr) in [("kiln serve", &server.addr), ("caddy", &caddy.addr)] {
        let reply = http(addr, "GET", "/sw.js", &[("Accept-Encoding", "zstd")]);
        assert_eq!(reply.status, 200, "{name}");
        assert_eq!(reply.header("content-encoding"), None, "{name}");
        assert_eq!(reply.body, built.read("sw.js"), "{name}");
    }
}
