//! Bad input: each case gives a located diagnostic, the rest of the build
//! completes, and `--strict` turns diagnostics into a failing exit code.

use crate::util::{Site, build, build_into, check_links, kiln};

fn assert_diagnostic(stderr: &str, needle: &str) {
    assert!(
        stderr.lines().any(|l| l.contains(needle)),
        "expected a diagnostic containing {needle:?} in:\n{stderr}"
    );
}

#[test]
fn missing_source_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let built = build(&dir.path().join("nope"), &[]);
    assert_eq!(built.code, 2);
    assert_diagnostic(&built.stderr, "does not exist");
}

#[test]
fn output_equal_to_or_containing_the_source_is_refused() {
    let site = Site::new().file("a.txt", "a");
    let same = build_into(site.path(), site.path(), &[]);
    assert_eq!(same.code, 2);
    assert_diagnostic(&same.stderr, "is the source directory");
    let parent = build_into(site.path(), site.path().parent().unwrap(), &["--force"]);
    assert_eq!(parent.code, 2);
    assert_diagnostic(&parent.stderr, "contains the source directory");
    assert!(site.path().join("a.txt").exists(), "nothing was touched");
}

#[test]
fn output_inside_the_source_is_skipped() {
    let site = Site::new().file("index.html", "<p>hi</p>");
    let out = site.path().join("dist");
    let first = build_into(site.path(), &out, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let second = build_into(site.path(), &out, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second
            .manifest()
            .files
            .keys()
            .all(|k| !k.starts_with("dist/"))
    );
}

#[test]
fn a_foreign_non_empty_output_is_refused_unless_forced() {
    let site = Site::new().file("index.html", "<p>hi</p>");
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("precious.txt"), "mine").unwrap();
    let refused = build_into(site.path(), out.path(), &[]);
    assert_eq!(refused.code, 2);
    assert_diagnostic(&refused.stderr, "--force");
    assert!(out.path().join("precious.txt").exists());
    let forced = build_into(site.path(), out.path(), &["--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert!(!out.path().join("precious.txt").exists());
}

#[test]
fn invalid_utf8_is_located_and_the_file_copied_unchanged() {
    let bad_css = b"a { color: red }\nb { content: \"\xff\" }\n".to_vec();
    let site = Site::new()
        .file(
            "index.html",
            "<link rel=stylesheet href=a.css><link rel=stylesheet href=b.css>",
        )
        .file("a.css", &bad_css)
        .file("b.css", "p { color: blue }")
        .file("c.js", b"let x = '\xfe';")
        .file("d.html", b"<p>\xc3</p>");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_diagnostic(&built.stderr, "a.css:2:15: warning: invalid UTF-8");
    assert_diagnostic(&built.stderr, "c.js:1:10: warning: invalid UTF-8");
    assert_diagnostic(&built.stderr, "d.html:1:4: warning: invalid UTF-8");
    let m = built.manifest();
    assert_eq!(built.read(&m.files["a.css"].output), bad_css);
    assert!(m.files["b.css"].hashed, "the rest of the build went on");
}

#[test]
fn syntax_errors_are_located_and_the_build_goes_on() {
    let site = Site::new()
        .file("index.html", "<script type=module src=app.js></script>")
        .file("app.js", "import './ok.js';\nlet = = 1;\n")
        .file("ok.js", "export {};\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0);
    assert_diagnostic(&built.stderr, "app.js:2:");
    let strict = build(site.path(), &["--strict"]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(
        strict.out.join("index.html").exists(),
        "strict still writes the build"
    );
}

#[test]
fn empty_files_and_awkward_names_work() {
    // Real (tiny) PNGs: a fake one would be reported as broken.
    let png = std::fs::read(crate::util::fixture_path("images/png/already-optimal.png")).unwrap();
    let site = Site::new()
        .file("empty.css", "")
        .file("img/a b#c?d%e.png", &png)
        .file("img/café.png", &png)
        .file(
            "index.html",
            "<link rel=stylesheet href=empty.css><img src=\"img/a%20b%23c%3Fd%25e.png\"><img src=\"img/caf%C3%A9.png\">\n<img src=\"img/café.png\">",
        )
        .file("s.css", "a { background: url(\"img/a%20b%23c%3Fd%25e.png\") }")
        .file("m.js", "export const u = new URL('./img/caf%C3%A9.png', import.meta.url);");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(!built.stderr.contains("warning"), "{}", built.stderr);
    let m = built.manifest();
    let awkward = m.files["img/a b#c?d%e.png"]
        .output
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    assert!(awkward.starts_with("a b#c?d%e."));
    let encoded = awkward
        .replace('%', "%25")
        .replace(' ', "%20")
        .replace('#', "%23")
        .replace('?', "%3F");
    assert!(
        built.text("index.html").contains(&format!("img/{encoded}")),
        "{}",
        built.text("index.html")
    );
    assert!(
        built
            .text(&m.files["s.css"].output)
            .contains(&format!("img/{encoded}"))
    );
    let cafe = m.files["img/café.png"]
        .output
        .rsplit('/')
        .next()
        .unwrap()
        .replace('é', "%C3%A9");
    assert!(built.text(&m.files["m.js"].output).contains(&cafe));
    assert_eq!(built.text("index.html").matches(&cafe).count(), 2);
    assert_eq!(m.files["empty.css"].bytes_out, 0);
    let (_, bad) = check_links(&built);
    assert!(bad.is_empty(), "{bad:#?}");
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_are_copied_with_a_warning() {
    use std::os::unix::ffi::OsStrExt;
    let site = Site::new().file("index.html", "<p>x</p>");
    let name = std::ffi::OsStr::from_bytes(b"latin1-\xe9.txt");
    std::fs::write(site.path().join(name), "bytes").unwrap();
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_diagnostic(&built.stderr, "not valid UTF-8");
    assert_eq!(std::fs::read(built.out.join(name)).unwrap(), b"bytes");
}

#[cfg(unix)]
#[test]
fn symlink_loops_escapes_and_unreadable_files_are_reported() {
    let site = Site::new()
        .file("index.html", "<img src=a.png>")
        .file("a.png", "png");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "s").unwrap();
    std::os::unix::fs::symlink(site.path(), site.path().join("loop")).unwrap();
    std::os::unix::fs::symlink(outside.path(), site.path().join("outside")).unwrap();
    std::os::unix::fs::symlink(
        site.path().join("gone.txt"),
        site.path().join("dangling.txt"),
    )
    .unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(site.path().join("fifo"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let built = build(site.path(), &[]);
    assert_eq!(
        built.code, 1,
        "an unreadable file is an error:\n{}",
        built.stderr
    );
    assert_diagnostic(&built.stderr, "loop");
    assert_diagnostic(&built.stderr, "outside the source directory");
    assert_diagnostic(&built.stderr, "dangling.txt: error: broken symbolic link");
    assert_diagnostic(&built.stderr, "fifo: warning: not a regular file");
    assert!(!built.out.join("outside/secret.txt").exists());
    let m = built.manifest();
    assert!(m.files["a.png"].hashed, "the rest of the build completed");
}

#[test]
fn references_to_missing_files_and_out_of_tree_paths_are_left_as_written() {
    let site = Site::new()
        .file("docs/index.html", "<p>\n<img src=\"../../etc/passwd.png\"> <img src=\"missing.png\"> <img src=\"ok.png\"></p>")
        .file("docs/ok.png", "png");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0);
    assert_diagnostic(
        &built.stderr,
        "index.html:2:11: warning: reference `../../etc/passwd.png` points outside the source directory",
    );
    assert_diagnostic(
        &built.stderr,
        "index.html:2:44: warning: reference `missing.png` does not match a file",
    );
    let html = built.text("docs/index.html");
    assert!(html.contains("src=\"../../etc/passwd.png\"") && html.contains("src=\"missing.png\""));
    // The good reference names the hashed file, relative as written.
    let ok = built.output_of("docs/ok.png");
    let name = ok.strip_prefix("docs/").expect("beside the page");
    assert_ne!(name, "ok.png", "the image got a hashed name");
    assert!(html.contains(&format!("src=\"{name}\"")), "{html}");
    let strict = build(site.path(), &["--strict"]);
    assert_eq!(strict.code, 1);
}

/// Under GitHub Actions, a diagnostic becomes an annotation on a file the
/// repository holds: the built file's own when git tracks it, else the
/// original source its source map names; the others go to a table in the job
/// summary instead of annotations that point at nothing.
#[test]
fn diagnostics_become_annotations_on_the_repository_s_files_in_actions() {
    let repo = tempfile::tempdir().unwrap();
    let root = repo.path();
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.email=ci@example.com", "-c", "user.name=ci"])
            .args(args)
            .current_dir(root)
            .status()
            .expect("git runs")
            .success();
        assert!(ok, "git {args:?}");
    };
    let write = |path: &str, text: &str| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(".gitignore", "dist/\nout/\n");
    write(
        "src/style.scss",
        ".a {\n  color: red;\n  background: url(missing.png);\n}\n",
    );
    write("site/index.html", "<img src=missing.png>");
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "init"]);
    // The bundler's output, ignored by git, with a map back to src/.
    write(
        "dist/style.css",
        ".a{color:red;background:url(missing.png)}\n/*# sourceMappingURL=style.css.map */\n",
    );
    write(
        "dist/style.css.map",
        r#"{"version":3,"sources":["../src/style.scss"],"names":[],"mappings":"AAAA,GACE,UACA"}"#,
    );
    write(
        "dist/index.html",
        "<link rel=stylesheet href=style.css><img src=gone.png>",
    );
    let summary = root.join("summary.md");
    let run_in = |cwd: &std::path::Path, src: &str, out: &str| {
        let output = kiln()
            .current_dir(cwd)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .args(["build", src, "-o", out, "--github", "-q", "--no-cache"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(0));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };

    let run = |src: &str, out: &str| run_in(root, src, out);

    let stderr = run("dist", "out/dist");
    let annotations: Vec<&str> = stderr.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(
        annotations,
        [
            "::warning file=src/style.scss,line=3,col=3::reference `missing.png` does not match a file in the source tree: left as written (in dist/style.css:1:29)"
        ],
        "{stderr}"
    );
    let table = std::fs::read_to_string(&summary).unwrap();
    assert!(
        table.contains("| warning | dist/index.html:1:46 | reference \\`gone.png\\`"),
        "{table}"
    );
    assert!(!table.contains("style.css:1:29"), "{table}");

    // A tracked source file is annotated where it is, named from the
    // repository's root also when kiln runs in a folder of it (`./index.html`).
    let stderr = run("site", "out/site");
    let expected = "::warning file=site/index.html,line=1,col=10::reference `missing.png`";
    assert!(stderr.lines().any(|l| l.starts_with(expected)), "{stderr}");
    let stderr = run_in(&root.join("site"), ".", "../out/from-site");
    assert!(stderr.lines().any(|l| l.starts_with(expected)), "{stderr}");
}

#[test]
fn a_hashed_name_that_collides_with_a_source_file_is_refused() {
    // Find the name kiln gives a.css, then add a source file of that name.
    let site = Site::new()
        .file("index.html", "<link rel=stylesheet href=a.css>")
        .file("a.css", "p{}");
    let hashed = build(site.path(), &[]).output_of("a.css");
    site.write(&hashed, "p{}");
    let built = build(site.path(), &["--hash", "all"]);
    assert_eq!(built.code, 2, "{}", built.stderr);
    assert_diagnostic(&built.stderr, "would both be written to");
    assert_diagnostic(&built.stderr, "a.css");
}
