//! A bundler's output in small trees: names it fingerprinted keep their names
//! and are immutable, their references keep working without rewriting, its
//! manifests name the final files, `.vite/` is not served, and a hydrated
//! root keeps its URLs.

use crate::util::{Site, build, check_links, fixture_path};

/// A real PNG image.
fn png() -> Vec<u8> {
    std::fs::read(fixture_path("images/png/gray.png")).expect("fixture")
}

/// A Vite build in miniature: fingerprinted chunks that import each other and
/// name a `public/` file by its original name.
fn vite_site() -> Site {
    Site::new()
        .file(
            "index.html",
            r#"<!doctype html><html><head><link rel="icon" href="/vite.svg"><script type="module" src="/assets/index-CwOdOtxP.js"></script><link rel="stylesheet" href="/assets/index-D-l2U3Vf.css"></head><body><div id="root"></div></body></html>"#,
        )
        .file(
            "assets/index-CwOdOtxP.js",
            "const about = () => import('./about-B_x9Qz1a.js');\nconsole.log(about);\n",
        )
        .file("assets/about-B_x9Qz1a.js", "export default 'about';\n")
        .file(
            "assets/index-D-l2U3Vf.css",
            "@font-face { font-family: Inter; src: url(/fonts/inter.woff2) }\nbody { font-family: Inter }\n",
        )
        .file("fonts/inter.woff2", b"wOF2 a font")
        .file("vite.svg", r#"<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"><rect width="2" height="2"/></svg>"#)
        .file(
            ".vite/manifest.json",
            r#"{
  "index.html": {"file": "assets/index-CwOdOtxP.js", "name": "index", "src": "index.html", "isEntry": true,
                 "dynamicImports": ["src/about.js"], "css": ["assets/index-D-l2U3Vf.css"]},
  "src/about.js": {"file": "assets/about-B_x9Qz1a.js", "name": "about", "src": "src/about.js", "isDynamicEntry": true},
  "src/legacy.js": {"file": "assets/legacy.js", "src": "src/legacy.js"}
}"#,
        )
        .file("assets/legacy.js", "console.log('not fingerprinted');\n")
}

#[test]
fn fingerprinted_names_are_kept_immutable_and_never_hashed_twice() {
    let site = vite_site().file("kiln.toml", "keep_originals = false\n");
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    for path in [
        "assets/index-CwOdOtxP.js",
        "assets/about-B_x9Qz1a.js",
        "assets/index-D-l2U3Vf.css",
    ] {
        let entry = &m.files[path];
        assert_eq!(entry.output, path);
        assert!(entry.hashed, "{path}: its name carries a content hash");
        assert!(entry.cache_control.contains("immutable"), "{path}");
    }
    // The stylesheet is fingerprinted: its reference to the font is not
    // rewritten, so the font is not hashed for it either.
    assert_eq!(m.files["fonts/inter.woff2"].output, "fonts/inter.woff2");
    assert!(
        built
            .text("assets/index-D-l2U3Vf.css")
            .contains("/fonts/inter.woff2")
    );
    // The page names the icon by its hashed name; nothing else needs the
    // original, so with keep_originals off it is not written.
    let icon = &m.files["vite.svg"];
    assert!(built.text("index.html").contains(&icon.output));
    assert!(icon.aliases.is_empty());
    let (checked, bad) = check_links(&built);
    assert!(checked >= 5 && bad.is_empty(), "{checked} {bad:?}");
}

#[test]
fn a_fixed_file_keeps_the_original_names_it_uses() {
    // The font is hashed for the page that preloads it; the fingerprinted
    // stylesheet still names the original, which is written too although
    // keep_originals is off.
    let site = vite_site()
        .file("kiln.toml", "keep_originals = false\n")
        .file(
            "about.html",
            r#"<link rel="preload" as="font" href="/fonts/inter.woff2" crossorigin>"#,
        );
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let font = &built.manifest().files["fonts/inter.woff2"];
    assert_ne!(font.output, "fonts/inter.woff2");
    assert_eq!(font.aliases.len(), 1);
    assert!(built.out.join("fonts/inter.woff2").is_file());
    assert!(built.text("about.html").contains(&font.output));
    let (_, bad) = check_links(&built);
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn building_a_build_again_hashes_nothing_twice() {
    let first = build(vite_site().path(), &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let hashed: Vec<String> = first
        .manifest()
        .files
        .values()
        .filter(|e| e.hashed)
        .map(|e| e.output.clone())
        .collect();
    let second = build(&first.out, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let m = second.manifest();
    for output in &hashed {
        assert_eq!(&m.files[output].output, output, "hashed again");
        assert!(m.files[output].cache_control.contains("immutable"));
    }
}

#[test]
fn the_vite_manifest_names_final_files_and_is_not_served() {
    let built = build(vite_site().path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    let entry = &m.files[".vite/manifest.json"];
    assert!(entry.private);
    assert!(m.served().iter().all(|s| !s.path.starts_with(".vite/")));
    let text = built.text(".vite/manifest.json");
    // Keys are source paths and stay; values name the output.
    assert!(text.contains(r#""src/about.js""#), "{text}");
    assert!(
        text.contains(r#""file":"assets/index-CwOdOtxP.js""#),
        "{text}"
    );
    // A file the manifest names gets an immutable name, and the manifest
    // follows it.
    let legacy = &m.files["assets/legacy.js"];
    assert_ne!(legacy.output, "assets/legacy.js");
    assert!(text.contains(&format!("\"{}\"", legacy.output)), "{text}");
    assert!(!built.text("_headers").contains(".vite"));
}

#[test]
fn a_web_app_manifest_named_manifest_json_is_still_one() {
    let site = Site::new()
        .file(
            "index.html",
            r#"<link rel="manifest" href="/manifest.json">"#,
        )
        .file(
            "manifest.json",
            r#"{"name": "App", "start_url": "/", "icons": [{"src": "icon.png", "sizes": "1x1"}]}"#,
        )
        .file("icon.png", png());
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let icon = built.output_of("icon.png");
    assert_ne!(icon, "icon.png");
    assert!(built.text("manifest.json").contains(&icon));
}

#[test]
fn urls_in_a_hydrated_root_stay_as_written_and_keep_working() {
    let site = Site::new()
        .file("kiln.toml", "keep_originals = false\n")
        .file(
            "index.html",
            "<html><head><link rel=\"icon\" href=\"/logo.png\"></head><body><div id=\"app\"><!--[--><img src=\"/logo.png\"> <p>a   b</p><!--]--></div><p>c   d</p></body></html>",
        )
        .file("logo.png", png());
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let page = built.text("index.html");
    let logo = built.output_of("logo.png");
    assert!(page.contains(&format!("href=\"/{logo}\"")), "{page}");
    assert!(
        page.contains(
            "<div id=\"app\"><!--[--><img src=\"/logo.png\"> <p>a   b</p><!--]--></div><p>c d</p>"
        ),
        "{page}"
    );
    assert!(
        built.out.join("logo.png").is_file(),
        "the pinned URL resolves"
    );
}
