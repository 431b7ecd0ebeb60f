//! Minification end to end: outputs are smaller, broken inputs are kept as
//! written with a located diagnostic, and pathological inputs neither crash
//! nor hang the build.

use crate::util::{Site, build, check_links};

#[test]
fn broken_files_are_emitted_unchanged_with_a_located_diagnostic() {
    let css = "a { color: red }\n.b[ { color: blue }\n";
    let js = "let ok = 1;\nlet = = 2;\n";
    let site = Site::new()
        .file(
            "index.html",
            "<link rel=stylesheet href=a.css><script src=a.js></script>",
        )
        .file("a.css", css)
        .file("a.js", js)
        .file("good.css", "a {\n  color: #ff0000;\n}\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // lightningcss reports the unclosed selector where the input ends.
    assert!(
        built
            .stderr
            .contains("a.css:3:1: warning: CSS: Unexpected end of input: file kept as written"),
        "{}",
        built.stderr
    );
    assert!(
        built
            .stderr
            .contains("a.js:2:7: warning: JavaScript syntax error"),
        "{}",
        built.stderr
    );
    let m = built.manifest();
    assert_eq!(built.text(&m.files["a.css"].output), css);
    assert_eq!(built.text(&m.files["a.js"].output), js);
    assert_eq!(built.text("good.css"), "a{color:red}");
    assert_eq!(build(site.path(), &["--strict"]).code, 1);
}

#[test]
fn already_minified_files_never_grow() {
    // swc would print `console.log(1);`, one byte more.
    let code = "console.log(1)";
    let site = Site::new()
        .file("x.min.js", code)
        .file("y.min.css", "a{color:red}");
    let built = build(site.path(), &[]);
    assert_eq!(built.text("x.min.js"), code);
    assert_eq!(built.text("y.min.css"), "a{color:red}");
}

#[test]
fn ten_thousand_levels_of_nesting_do_not_overflow_the_stack() {
    let n = 10_000;
    let site = Site::new()
        .file(
            "deep.js",
            format!(
                "var x = {}1{};\nconsole.log(x);\n",
                "[".repeat(n),
                "]".repeat(n)
            ),
        )
        .file(
            "deep.css",
            format!(
                "{}b{{color:blue}}{}",
                "@media screen{".repeat(n),
                "}".repeat(n)
            ),
        )
        .file(
            "nest.css",
            format!("{}color:red{}", ".a{".repeat(n), "}".repeat(n)),
        )
        .file(
            "deep.html",
            format!(
                "<title>x</title>{}hi{}",
                "<div>".repeat(n),
                "</div>".repeat(n)
            ),
        )
        .file("deep.json", format!("{}{}", "[".repeat(n), "]".repeat(n)));
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(built.manifest().files.len(), 5);
}

#[test]
fn a_large_script_is_minified() {
    // 5 MB of distinct functions; the benchmark covers 50 MB (see README).
    let mut js = String::new();
    for i in 0..60_000 {
        js.push_str(&format!(
            "function handler_{i}(event) {{ var total = event.value + {i}; return total * 2; }}\n"
        ));
    }
    assert!(js.len() > 5_000_000);
    let site = Site::new().file("big.js", &js);
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let out = built.manifest().files["big.js"].bytes_out as usize;
    assert!(out < js.len() * 3 / 4, "{out} of {}", js.len());
}

#[test]
fn minify_can_be_turned_off_per_kind_and_per_glob() {
    let site = Site::new()
        .file(
            "kiln.toml",
            "[css]\nenabled = false\n[js]\nskip = [\"vendor/**\"]\n",
        )
        .file("a.css", "a {\n  color: #ff0000;\n}\n")
        .file("a.js", "var  long_name = 1 ;\n")
        .file("vendor/v.js", "var  long_name = 1 ;\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.text("a.css"), "a {\n  color: #ff0000;\n}\n");
    assert_eq!(built.text("vendor/v.js"), "var  long_name = 1 ;\n");
    assert_eq!(built.text("a.js"), "var long_name=1;");
}

#[test]
fn the_minified_fixture_site_still_links_up() {
    let built = build(&crate::util::fixture_path("site"), &[]);
    let (checked, bad) = check_links(&built);
    assert!(checked > 100);
    assert!(bad.is_empty(), "{bad:#?}");
    let m = built.manifest();
    let total_in: u64 = m
        .files
        .values()
        .filter(|e| e.kind.is_text())
        .map(|e| e.bytes_in)
        .sum();
    let total_out: u64 = m
        .files
        .values()
        .filter(|e| e.kind.is_text())
        .map(|e| e.bytes_out)
        .sum();
    assert!(total_out < total_in, "{total_out} < {total_in}");
}

#[test]
fn pages_decide_that_an_import_free_script_is_a_module() {
    // Top-level await is a syntax error in a classic script: only the page's
    // `type="module"` tells kiln this file is a module.
    let tla = "const response = await Promise.resolve({ greeting: 'hello' });\nconst longLocalName = response.greeting;\nconsole.log(longLocalName);\n";
    let site = Site::new()
        .file(
            "index.html",
            "<script type=\"module\" src=\"app.js\"></script>",
        )
        .file("app.js", tla);
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let out = built.text(&built.output_of("app.js"));
    assert!(
        out.len() < tla.len() && !out.contains("longLocalName"),
        "{out}"
    );
}

#[test]
fn css_bundle_inlines_imports_and_rebases_their_urls() {
    let site = Site::fixture("site").file("kiln.toml", "[css]\nbundle = true\n");
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    let main = built.text(&m.files["css/main.css"].output);
    assert!(!main.contains("@import"), "{main}");
    // The imported sheet's rules are in main.css now, where the import was:
    // its font stack (written in no other stylesheet) comes before main.css's
    // own first rule.
    let typography = std::fs::read_to_string(site.path().join("css/typography.css")).unwrap();
    let own = std::fs::read_to_string(site.path().join("css/main.css")).unwrap();
    assert!(typography.contains("DejaVu Sans") && !own.contains("DejaVu Sans"));
    let inlined = main.find("DejaVu Sans").expect("the import was inlined");
    let own_first = main
        .find("@font-face")
        .expect("main.css's own rules are kept");
    assert!(inlined < own_first, "{main}");
    let (_, bad) = check_links(&built);
    assert!(bad.is_empty(), "{bad:#?}");
    // Imports in a stylesheet that imports one outside the tree stay as written.
    let evil = Site::new()
        .file("kiln.toml", "[css]\nbundle = true\n")
        .file("a.css", "@import \"../outside.css\";\na { color: red }\n");
    let built = build(evil.path(), &[]);
    assert!(
        built.stderr.contains("a.css: warning: CSS bundle"),
        "{}",
        built.stderr
    );
    assert!(built.text("a.css").contains("@import"));
}
