//! Real framework builds (`fixtures/frameworks/built/`, made by
//! `fixtures/frameworks/regenerate.sh`) through `kiln build --strict`: no
//! diagnostic, no name hashed twice, every fingerprinted file immutable, the
//! framework's manifests naming files that exist, and in headless Chromium
//! (`tests/browser/framework-check.mjs`) the same pixels, text and DOM after
//! hydration, no hydration mismatch, and the same client-side navigation.

use std::path::{Path, PathBuf};

use kiln::emit::manifest::Manifest;
use kiln::glob::GlobList;

use crate::util::{Built, artifacts, browser_harness, build, fixture_path};

fn corpus() -> PathBuf {
    fixture_path("frameworks")
}

/// The site's entry in `fixtures/frameworks/sites.json`.
fn entry(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(corpus().join("sites.json")).expect("sites.json");
    let sites: serde_json::Value = serde_json::from_str(&text).expect("sites.json parses");
    sites[name].clone()
}

/// Build a site of the corpus with `--strict`, and check what can be checked
/// without a browser.
fn build_site(name: &str) -> Built {
    let source = corpus().join("built").join(name);
    let built = build(&source, &["--strict"]);
    assert_eq!(built.code, 0, "{name}: {}", built.stderr);
    assert!(
        !built.stderr.contains("warning") && !built.stderr.contains("error"),
        "{name}: {}",
        built.stderr
    );
    let manifest = built.manifest();
    let site = entry(name);
    let globs: Vec<&str> = site["fingerprinted"]
        .as_array()
        .unwrap_or_else(|| panic!("{name}: sites.json lists its fingerprinted files"))
        .iter()
        .map(|g| g.as_str().expect("a glob"))
        .collect();
    let fingerprinted = GlobList::new(&globs).expect("valid globs");
    let mut seen = 0;
    for (source, file) in &manifest.files {
        if fingerprinted.is_match(source) {
            seen += 1;
            assert_eq!(
                &file.output, source,
                "{name}: a bundler's name was hashed again"
            );
            assert!(
                file.cache_control.contains("immutable"),
                "{name}: {source} is served {}",
                file.cache_control
            );
        } else if file.output != *source {
            // Renamed by kiln: only files the framework did not fingerprint.
            assert!(file.hashed, "{name}: {source}");
        }
    }
    assert_eq!(
        seen > 0,
        !globs.is_empty(),
        "{name}: the fingerprinted globs match files"
    );
    check_framework_manifests(name, &built, &manifest);
    built
}

/// Every file a framework manifest names exists in the output, under an
/// immutable name; `.vite/` is written but not served.
fn check_framework_manifests(name: &str, built: &Built, manifest: &Manifest) {
    let Some(vite) = manifest.files.get(".vite/manifest.json") else {
        return;
    };
    assert!(vite.private, "{name}: .vite/ is private");
    assert!(
        !manifest
            .served()
            .iter()
            .any(|s| s.path.starts_with(".vite/")),
        "{name}: .vite/ is not served"
    );
    let text = built.text(".vite/manifest.json");
    let entries: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let mut named = 0;
    for chunk in entries.as_object().expect("an object").values() {
        let files = std::iter::once(&chunk["file"])
            .chain(chunk["css"].as_array().into_iter().flatten())
            .chain(chunk["assets"].as_array().into_iter().flatten())
            .filter_map(|f| f.as_str());
        for file in files {
            named += 1;
            let served = manifest
                .served()
                .into_iter()
                .find(|s| s.path == file)
                .unwrap_or_else(|| panic!("{name}: the Vite manifest names {file}, not served"));
            assert!(served.cache_control.contains("immutable"), "{name}: {file}");
            assert!(built.out.join(file).is_file(), "{name}: {file}");
        }
    }
    assert!(named > 0, "{name}: the Vite manifest names files");
}

/// Run the browser harness on the framework's output and kiln's.
fn framework_check(name: &str, built: &Path) -> serde_json::Value {
    let original = corpus().join("built").join(name);
    let sites = corpus().join("sites.json");
    let artifacts = artifacts(&["frameworks", name]);
    browser_harness(
        "framework-check.mjs",
        [
            "--original".as_ref(),
            original.as_os_str(),
            "--built".as_ref(),
            built.as_os_str(),
            "--sites".as_ref(),
            sites.as_os_str(),
            "--name".as_ref(),
            name.as_ref(),
            "--out".as_ref(),
            artifacts.as_os_str(),
        ],
    )
}

fn assert_behaves_like_the_original(name: &str) {
    let built = build_site(name);
    let report = framework_check(name, &built.out);
    let site = entry(name);
    let pages = report["pages"].as_array().expect("pages");
    assert_eq!(
        pages.len(),
        site["pages"].as_array().map_or(0, Vec::len),
        "{report:#}"
    );
    let navigation = report["navigation"].as_array().map_or(0, Vec::len);
    assert_eq!(
        navigation,
        site["navigation"].as_array().map_or(0, Vec::len),
        "{report:#}"
    );
    assert_eq!(report["ok"], true, "{name}: {report:#}");
}

#[test]
fn vite_react() {
    assert_behaves_like_the_original("vite-react");
}

#[test]
fn vite_vue() {
    assert_behaves_like_the_original("vite-vue");
}

#[test]
fn vite_svelte() {
    assert_behaves_like_the_original("vite-svelte");
}

#[test]
fn vitepress() {
    assert_behaves_like_the_original("vitepress");
}

#[test]
fn astro() {
    assert_behaves_like_the_original("astro");
}

#[test]
fn sveltekit() {
    assert_behaves_like_the_original("sveltekit");
}

#[test]
fn next_app_router() {
    assert_behaves_like_the_original("next");
}

#[test]
fn next_pages_router() {
    assert_behaves_like_the_original("next-pages");
}

#[test]
fn next_webpack() {
    assert_behaves_like_the_original("next-webpack");
}

#[test]
fn sphinx() {
    assert_behaves_like_the_original("sphinx");
}
