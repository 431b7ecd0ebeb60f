//! `fixtures/site` end to end: every reference resolves, names are hashed
//! where they should be, the build is reproducible.

use crate::util::{Site, build, check_links, fixture_path, tree};

#[test]
fn every_local_reference_in_the_output_resolves_to_a_hashed_file() {
    let built = build(&fixture_path("site"), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        !built.stderr.contains("warning"),
        "fixture builds cleanly:\n{}",
        built.stderr
    );
    let (checked, bad) = check_links(&built);
    assert!(checked > 100, "the checker saw {checked} references");
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn what_gets_hashed_and_what_keeps_its_name() {
    let built = build(&fixture_path("site"), &[]);
    let m = built.manifest();
    let hashed = |p: &str| m.files[p].hashed;
    for p in [
        "css/main.css",
        "css/typography.css",
        "js/app.js",
        "js/lib/a.js",
        "js/lib/b.js",
        "img/team photo.jpg",
        "fonts/emberline-sans.ttf",
    ] {
        assert!(hashed(p), "{p} should be hashed");
        let out = &m.files[p].output;
        assert_ne!(out, p);
        assert!(built.out.join(out).is_file(), "{out}");
        assert!(built.out.join(p).is_file(), "original name kept for {p}");
    }
    for p in [
        "index.html",
        "robots.txt",
        "favicon.ico",
        ".well-known/security.txt",
        "site.webmanifest",
        "downloads/emberline-brochure.pdf",
        "sitemap.xml",
    ] {
        assert!(!hashed(p), "{p} keeps its name");
        assert_eq!(m.files[p].output, p);
    }
    // A file name with a space is percent-encoded where it is referenced.
    let team = m.files["img/team photo.jpg"]
        .output
        .rsplit('/')
        .next()
        .unwrap()
        .replace(' ', "%20");
    assert!(built.text("index.html").contains(&format!("img/{team}")));
    // Minified, the script no longer matches its source map, so the comment
    // goes with the other comments and the map is an ordinary file.
    let lib = built.text(&m.files["js/vendor/tiny-lib.js"].output);
    assert!(!lib.contains("sourceMappingURL"));
    assert!(!m.files["js/vendor/tiny-lib.js.map"].hashed);
}

#[test]
fn unminified_the_source_map_comment_follows_the_hashed_map() {
    let built = build(&fixture_path("site"), &["--no-minify"]);
    let m = built.manifest();
    let map = &m.files["js/vendor/tiny-lib.js.map"];
    assert!(map.hashed);
    let name = map.output.rsplit('/').next().unwrap();
    let lib = built.text(&m.files["js/vendor/tiny-lib.js"].output);
    assert!(lib.contains(&format!("sourceMappingURL={name}")));
    // Unminified, a page is its source with only file names changed.
    let source = std::fs::read_to_string(fixture_path("site/index.html")).unwrap();
    let page = built.text("index.html");
    assert_eq!(page.lines().count(), source.lines().count());
}

#[test]
fn two_builds_give_byte_identical_trees() {
    let a = build(&fixture_path("site"), &["--jobs", "1"]);
    let b = build(&fixture_path("site"), &["--jobs", "2"]);
    assert_eq!(a.code, 0);
    let (ta, tb) = (tree(&a.out), tree(&b.out));
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (path, bytes) in &ta {
        assert!(bytes == &tb[path], "{path} differs between builds");
    }
}

#[test]
fn a_base_path_site_resolves_root_relative_references() {
    let built = build(&fixture_path("base-path-site"), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(!built.stderr.contains("warning"), "{}", built.stderr);
    let m = built.manifest();
    assert_eq!(m.base, "/app/");
    let css = m.files["css/app.css"].output.clone();
    let dot = m.files["img/dot.png"].output.clone();
    assert!(built.text("index.html").contains(&format!("/app/{css}")));
    assert!(built.text(&css).contains(&format!("/app/{dot}")));
    let (_, bad) = check_links(&built);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn a_rebuild_replaces_the_previous_output_cleanly() {
    let site = Site::fixture("site");
    let out = tempfile::tempdir().unwrap();
    let first = crate::util::build_into(site.path(), out.path(), &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let old_css = first.output_of("css/main.css");
    std::fs::remove_file(site.path().join("downloads/emberline-brochure.pdf")).unwrap();
    site.write("css/typography.css", "h1 { letter-spacing: 0.01em }\n");
    let second = crate::util::build_into(site.path(), out.path(), &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        !out.path().join("downloads/emberline-brochure.pdf").exists(),
        "stale file removed"
    );
    assert!(
        !out.path().join(&old_css).exists(),
        "stale hashed file removed"
    );
    assert!(
        !out.path().join("downloads").exists(),
        "empty directory removed"
    );
    let files = tree(out.path());
    assert!(files.keys().all(|p| !p.contains(".kiln-tmp-")));
    let (_, bad) = check_links(&second);
    assert!(bad.is_empty(), "{bad:#?}");
}
