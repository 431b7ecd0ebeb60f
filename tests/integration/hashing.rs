//! A file's name changes exactly when its bytes, or the final name of
//! something it references, change.

use crate::util::{Site, build};

fn site() -> Site {
    Site::new()
        .file("index.html", r#"<link rel="stylesheet" href="css/site.css"><script type="module" src="js/main.js"></script><img src="img/logo.png">"#)
        .file("css/site.css", "body { background: url(../img/bg.png) }\n")
        .file("img/bg.png", b"\x89PNG background")
        .file("img/logo.png", b"\x89PNG logo")
        .file("js/main.js", "import { a } from './a.js';\nconsole.log(a);\n")
        .file("js/a.js", "import { b } from './b.js';\nexport const a = () => b;\n")
        .file("js/b.js", "import { a } from './a.js';\nexport const b = 1;\n")
}

fn names(site: &Site) -> std::collections::BTreeMap<String, String> {
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    built
        .manifest()
        .files
        .into_iter()
        .map(|(k, v)| (k, v.output))
        .collect()
}

#[test]
fn a_changed_image_renames_the_css_that_uses_it_and_nothing_else() {
    let site = site();
    let before = names(&site);
    site.write("img/bg.png", b"\x89PNG background, recoloured");
    let after = names(&site);
    let changed: Vec<&str> = before
        .iter()
        .filter(|(k, v)| after[*k] != **v)
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(changed, ["css/site.css", "img/bg.png"]);
}

#[test]
fn a_module_cycle_is_hashed_as_one_unit() {
    let site = site();
    let before = names(&site);
    site.write(
        "js/b.js",
        "import { a } from './a.js';\nexport const b = 2;\n",
    );
    let after = names(&site);
    for p in ["js/a.js", "js/b.js", "js/main.js"] {
        assert_ne!(before[p], after[p], "{p} must be renamed");
    }
    for p in ["css/site.css", "img/bg.png", "img/logo.png", "index.html"] {
        assert_eq!(before[p], after[p], "{p} must keep its name");
    }
}

#[test]
fn unchanged_input_gives_unchanged_names() {
    let site = site();
    assert_eq!(names(&site), names(&site));
}

#[test]
fn hash_policies() {
    let site = site().file("unreferenced.txt", "hello");
    let all = build(site.path(), &["--hash", "all"]).manifest();
    assert!(all.files["unreferenced.txt"].hashed);
    assert!(!all.files["index.html"].hashed);
    let none = build(site.path(), &["--hash", "none"]).manifest();
    assert!(none.files.values().all(|e| !e.hashed));
    let referenced = build(site.path(), &[]).manifest();
    assert!(!referenced.files["unreferenced.txt"].hashed);
    assert!(referenced.files["img/logo.png"].hashed);
}

#[test]
fn immutable_globs_keep_names_with_a_long_cache() {
    let site = site().file("kiln.toml", "immutable = [\"js/**\"]\n");
    let built = build(site.path(), &[]);
    let m = built.manifest();
    assert_eq!(m.files["js/a.js"].output, "js/a.js");
    assert!(m.files["js/a.js"].cache_control.contains("immutable"));
}
