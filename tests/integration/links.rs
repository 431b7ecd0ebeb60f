//! The link checker of the tests reads references two ways: with kiln's own
//! extractor, and with a plain reader that shares no code with it. A
//! reference kiln fails to see is still checked.

use crate::util::{Site, build, check_links, check_links_with_kiln, naive_urls};

#[test]
fn the_plain_reader_finds_the_usual_forms() {
    let html = r#"<link rel=stylesheet href="css/a.css"><img src=img/b.png srcset="img/b.png 1x, img/b@2x.png 2x"><a href='../c/'>c</a><div data-src="no.png" style="background:url('d.svg')"><a href="https://x.org/e.png">"#;
    assert_eq!(
        naive_urls("html", html),
        [
            "img/b.png",
            "css/a.css",
            "../c/",
            "img/b.png",
            "img/b@2x.png",
            "d.svg"
        ]
    );
    let css =
        r#"@import "f.css";a{background:url(g.png)}b{background:url("data:image/png;base64,x")}"#;
    assert_eq!(naive_urls("css", css), ["g.png", "f.css"]);
    let js = r#"import a from"./h.js";import"./i.js";const j=()=>import("./j.js");import React from "react";"#;
    assert_eq!(naive_urls("js", js), ["./h.js", "./i.js", "./j.js"]);
}

#[test]
fn a_reference_kiln_does_not_see_is_still_checked() {
    // A custom element's `src`: kiln does not read it as a reference (it
    // neither rewrites nor warns), the plain reader does.
    let site = Site::new()
        .file("index.html", "<!doctype html><link rel=stylesheet href=site.css><model-viewer src=\"models/ship.glb\"></model-viewer>")
        .file("site.css", "body{margin:0}");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        !built.stderr.contains("ship.glb"),
        "kiln did not see it: {}",
        built.stderr
    );
    let (_, by_kiln) = check_links_with_kiln(&built);
    assert!(by_kiln.is_empty(), "{by_kiln:?}");
    let (_, bad) = check_links(&built);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(
        (bad[0].url.as_str(), bad[0].file.as_str()),
        ("models/ship.glb", "index.html")
    );

    // With the model there, nothing is wrong.
    let site = site.file("models/ship.glb", "glTF");
    let built = build(site.path(), &[]);
    let (checked, bad) = check_links(&built);
    assert!(bad.is_empty() && checked >= 2, "{bad:?}");
}
