//! Fidelity in a real browser: headless Chromium renders every page of the
//! original and of the built site, and the screenshots must be identical,
//! with no new console errors and no failed requests. Needs `tests/setup.sh`
//! (node, Debian's chromium, the harness's npm packages).

use std::path::Path;

use crate::util::{artifacts, browser_harness, build, fixture_path};

/// Run `tests/browser/render-compare.mjs` and return its JSON report.
fn render_compare(original: &Path, built: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let artifacts = artifacts(&["render", name]);
    let mut args = vec![
        "--original".as_ref(),
        original.as_os_str(),
        "--built".as_ref(),
        built.as_os_str(),
        "--out".as_ref(),
        artifacts.as_os_str(),
    ];
    args.extend(extra.iter().map(|a| std::ffi::OsStr::new(*a)));
    browser_harness("render-compare.mjs", args)
}

/// What each `<img>` of a built page showed (`currentSrc`), as the harness
/// reports it.
fn built_images(page: &serde_json::Value) -> Vec<&str> {
    page["builtImages"]
        .as_array()
        .expect("the harness lists the images")
        .iter()
        .map(|v| v.as_str().expect("a URL"))
        .collect()
}

fn assert_identical(report: &serde_json::Value) {
    let pages = report["pages"].as_array().expect("pages");
    assert!(!pages.is_empty());
    for page in pages {
        assert_eq!(page["identical"], true, "{page:#}");
        assert_eq!(
            page["newConsoleErrors"].as_array().map(Vec::len),
            Some(0),
            "{page:#}"
        );
        assert_eq!(
            page["newFailedRequests"].as_array().map(Vec::len),
            Some(0),
            "{page:#}"
        );
    }
    assert_eq!(report["ok"], true, "{report:#}");
}

#[test]
fn the_built_site_renders_pixel_identically_in_chromium() {
    let built = build(&fixture_path("site"), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let report = render_compare(&fixture_path("site"), &built.out, "site", &[]);
    assert_eq!(report["pages"].as_array().map(Vec::len), Some(7));
    assert_identical(&report);
}

#[test]
fn a_site_under_a_base_path_renders_identically() {
    let built = build(&fixture_path("base-path-site"), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let report = render_compare(
        &fixture_path("base-path-site"),
        &built.out,
        "base-path-site",
        &["--base", "/app/"],
    );
    assert_identical(&report);
}

#[test]
fn a_bundled_stylesheet_renders_identically() {
    let site = crate::util::Site::fixture("site").file("kiln.toml", "[css]\nbundle = true\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        !built
            .text(&built.output_of("css/main.css"))
            .contains("@import")
    );
    let report = render_compare(&fixture_path("site"), &built.out, "site-bundled", &[]);
    assert_identical(&report);
}

/// Minified SVG renders like the original: images with and without a
/// viewBox and dimensions, an Inkscape and an Illustrator export, a sprite
/// used through `<use href="sprite.svg#id">`, gradients, clip paths, masks and
/// patterns referenced by ID, a CSS background, an `<object>`.
#[test]
fn minified_svg_renders_identically() {
    let built = build(&fixture_path("svg"), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        built.stderr.is_empty() || !built.stderr.contains("warning"),
        "{}",
        built.stderr
    );
    let m = built.manifest();
    let mut smaller = 0;
    for (source, entry) in &m.files {
        if source.ends_with(".svg") {
            let before = std::fs::metadata(fixture_path("svg").join(source))
                .unwrap()
                .len();
            assert!(entry.bytes_out <= before, "{source}");
            smaller += usize::from(entry.bytes_out < before);
        }
    }
    assert!(smaller >= 6, "{smaller} SVG files got smaller");
    let report = render_compare(&fixture_path("svg"), &built.out, "svg", &[]);
    assert_identical(&report);
}

/// Image variants in the browser: every PNG with a smaller lossless WebP is
/// offered through `<picture>` (inline, in a flex row, in a grid, scaled to
/// a column, with `srcset` by density and by width), Chromium loads the
/// WebP, and the page renders like the original: the layout to the pixel,
/// and each pixel's colour within 1/255. Chromium premultiplies alpha with
/// other rounding for WebP than for PNG, so semi-transparent pixels can
/// differ by one step; opaque images are exact (checked on a page of its
/// own). The image with an ICC profile stays as written; the author's own
/// `<picture>` gets a WebP source before its `<img>`.
#[test]
fn pages_with_picture_variants_render_identically() {
    let built = build(&fixture_path("picture"), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let exact = render_compare(
        &fixture_path("picture"),
        &built.out,
        "picture-opaque",
        &["--pages", "opaque.html"],
    );
    assert_identical(&exact);
    let opaque = built_images(&exact["pages"][0]);
    assert!(
        opaque.len() >= 3 && opaque.iter().all(|s| s.ends_with(".webp")),
        "{opaque:?}"
    );

    let report = render_compare(
        &fixture_path("picture"),
        &built.out,
        "picture",
        &["--pages", "index.html", "--tolerance", "1"],
    );
    assert_identical(&report);
    assert!(report["pages"][0]["maxChannelDiff"].as_u64().unwrap() <= 1);
    let shown = built_images(&report["pages"][0]);
    assert_eq!(shown.len(), 14, "{shown:?}");
    // The author's own <picture> gets a WebP source before its <img> too.
    let webp = shown.iter().filter(|s| s.ends_with(".webp")).count();
    assert_eq!(webp, 12, "{shown:?}");
    for (source, why) in [
        ("img/profiled.png", "an ICC profile: no variant"),
        ("img/photo.jpg", "a lossy WebP under the default score"),
    ] {
        let output = format!("/{}", built.output_of(source));
        assert!(
            shown.iter().any(|s| s.ends_with(&output)),
            "{why}: {output} not in {shown:?}"
        );
    }
}

/// AVIF variants in the browser: Chromium shows the AVIF of each opaque
/// image, the page keeps its size, and the screenshot, lossy as AVIF is,
/// scores at least the configured bar (SSIMULACRA2 90) against the original.
#[test]
fn pages_with_avif_variants_stay_above_the_perceptual_bar() {
    let site = crate::util::Site::fixture("picture")
        .file("kiln.toml", "[images]\nvariants = [\"avif\", \"webp\"]\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let report = render_compare(
        &fixture_path("picture"),
        &built.out,
        "picture-avif",
        &["--pages", "opaque.html"],
    );
    let page = &report["pages"][0];
    assert!(
        page["builtHeight"].is_null(),
        "the page changed size: {page:#}"
    );
    for list in ["newConsoleErrors", "newFailedRequests"] {
        assert_eq!(page[list].as_array().map(Vec::len), Some(0), "{page:#}");
    }
    let shown = built_images(page);
    assert!(
        shown.len() >= 3 && shown.iter().all(|s| s.ends_with(".avif")),
        "{shown:?}"
    );

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("render/picture-avif");
    let frame = |name: &str| {
        let img = image::open(shots.join(name)).unwrap().to_rgb8();
        let (w, h) = img.dimensions();
        let data = img
            .pixels()
            .map(|p| p.0.map(|c| f32::from(c) / 255.0))
            .collect();
        ssimulacra2::Rgb::new(
            data,
            w as usize,
            h as usize,
            ssimulacra2::TransferCharacteristic::SRGB,
            ssimulacra2::ColorPrimaries::BT709,
        )
        .unwrap()
    };
    let score = ssimulacra2::compute_frame_ssimulacra2(
        frame("opaque.original.png"),
        frame("opaque.built.png"),
    )
    .unwrap();
    assert!(score >= 90.0, "the page scores {score}");
}
