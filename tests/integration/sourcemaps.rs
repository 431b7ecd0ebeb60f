//! Source maps (`--sourcemaps`): every minified JS and CSS file gets a map,
//! named by its hash and pointed at by the file, chained to the input's own
//! map, and accurate after kiln's edits (URLs put back, names hashed).

use crate::util::{Built, Site, build, fixture_path};

/// The map an output file points at, parsed.
fn map_of(built: &Built, output: &str) -> swc_sourcemap::SourceMap {
    let text = built.text(output);
    let url = text
        .rsplit("sourceMappingURL=")
        .next()
        .unwrap()
        .trim_end_matches(" */")
        .trim();
    let dir = output.rsplit_once('/').map_or("", |(d, _)| d);
    let path = if dir.is_empty() {
        url.to_owned()
    } else {
        format!("{dir}/{url}")
    };
    swc_sourcemap::SourceMap::from_slice(&built.read(&path)).expect("the map parses")
}

/// 0-based line and UTF-16 column of the first occurrence of `needle`.
fn position(text: &str, needle: &str) -> (u32, u32) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} in {text}"));
    let before = &text[..at];
    let line = before.matches('\n').count() as u32;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].encode_utf16().count() as u32)
}

#[test]
fn tokens_after_rewritten_references_still_map_to_their_source() {
    // Comments make the sources long enough that minified output plus the
    // map comment is smaller (kiln never makes a file larger).
    let app = "import { helper } from \"./lib/helper.js\";\n\n/* The entry point: it calls the helper with a marker, then\n   appends another marker, so that the test can find both. */\nexport function main() {\n  return helper(\"FIRST_MARKER\") + \"SECOND_MARKER\";\n}\nmain();\n";
    let css = "/* Stylesheet for the source map test: the rules below are found by\n   their selectors in the minified output. */\n.é😀é::before { content: \"x\" }\n.a {\n  background: url(img/dot.png);\n}\n\n.marker {\n  color: red;\n}\n";
    let site = Site::new()
        .file(
            "index.html",
            "<link rel=stylesheet href=a.css><script type=module src=app.js></script>",
        )
        .file("app.js", app)
        .file("lib/helper.js", "export const helper = (x) => x;\n")
        .file("a.css", css)
        .file("img/dot.png", b"\x89PNG dot");
    let built = build(site.path(), &["--sourcemaps"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();

    let js_out = &m.files["app.js"].output;
    let js = built.text(js_out);
    assert!(
        js.contains(
            &m.files["lib/helper.js"]
                .output
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        ),
        "{js}"
    );
    let map = map_of(&built, js_out);
    let (line, col) = position(&js, "\"SECOND_MARKER\"");
    let token = map.lookup_token(line, col).expect("a token");
    assert_eq!(token.get_src(), position(app, "\"SECOND_MARKER\""), "{js}");
    assert_eq!(
        map.get_source(0).map(|s| s.to_string()),
        Some("app.js".into())
    );
    assert_eq!(
        map.get_source_contents(0).map(|s| s.to_string()),
        Some(app.to_owned())
    );
    assert!(m.files["app.js.map"].hashed);

    let css_out = &m.files["a.css"].output;
    let min = built.text(css_out);
    let map = map_of(&built, css_out);
    let (line, col) = position(&min, ".marker");
    let token = map.lookup_token(line, col).expect("a token");
    assert_eq!(token.get_src(), position(css, ".marker"), "{min}");
}

#[test]
fn maps_chain_to_the_input_map() {
    let built = build(&fixture_path("site"), &["--sourcemaps"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    let map = map_of(&built, &m.files["js/vendor/tiny-lib.js"].output);
    assert_eq!(
        map.get_source(0).map(|s| s.to_string()),
        Some("webpack://tiny-lib/./src/tiny-lib.js".into()),
        "the new map points at the original sources"
    );
    // The input map is replaced by the chained one, under its own hashed name.
    let entry = &m.files["js/vendor/tiny-lib.js.map"];
    assert!(entry.hashed);
    assert_eq!(
        built.read(&entry.output),
        built.read(&entry.aliases[0].path)
    );
    let (_, bad) = crate::util::check_links(&built);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn in_a_cycle_a_changed_map_renames_the_file_that_points_at_it() {
    let a = |comment: &str| {
        format!(
            "// {comment}: a long comment that the minifier drops, so only the map changes.\nimport {{ b }} from './b.js';\nexport const a = () => b() + 1;\n"
        )
    };
    let site = Site::new()
        .file("index.html", "<script type=module src=a.js></script>")
        .file("a.js", a("first"))
        .file("b.js", "import { a } from './a.js';\nexport const b = () => 41;\nexport const again = () => a();\n");
    let first = build(site.path(), &["--sourcemaps"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    site.write("a.js", a("second"));
    let second = build(site.path(), &["--sourcemaps"]);
    let (m1, m2) = (first.manifest(), second.manifest());
    assert_eq!(
        first.read(&m1.files["a.js"].output).len(),
        second.read(&m2.files["a.js"].output).len()
    );
    assert_ne!(
        m1.files["a.js.map"].output, m2.files["a.js.map"].output,
        "the map changed"
    );
    assert_ne!(
        m1.files["a.js"].output, m2.files["a.js"].output,
        "a hashed name never hides other bytes"
    );
}

/// A page may link a generated file directly (a "view the map" link, a
/// debugging page): it resolves, like a source file, and gets the final name.
#[test]
fn a_page_linking_a_generated_map_gets_its_final_name() {
    let site = Site::new()
        .file(
            "index.html",
            "<!doctype html><script src=app.js></script><a href=app.js.map>map</a>",
        )
        .file(
            "app.js",
            "// A comment long enough that the minified file is smaller.\nexport function run(value) {\n  return value + 1;\n}\nrun(41);\n",
        );
    let built = build(site.path(), &["--sourcemaps"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(!built.stderr.contains("does not match"), "{}", built.stderr);
    let map = built.output_of("app.js.map");
    assert_ne!(map, "app.js.map");
    assert!(
        built.text("index.html").contains(&format!("href={map}")),
        "{}",
        built.text("index.html")
    );
}
