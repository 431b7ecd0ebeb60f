//! CSS targets from the project's browserslist configuration, in every form
//! browserslist reads, found from the source folder upwards. The minified
//! stylesheet shows the targets: a translucent colour is written `rgba(…)`
//! for Safari 9, which lacks 8-digit hex colours, and `#00000080` for
//! Chrome 120.

use std::path::Path;

use crate::util::{Built, kiln};

const CSS: &str = ".a {\n  color: rgb(0 0 0 / 50%);\n}\n";

/// A project folder with `dist/` (the source) and the given files at its root.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dist")).unwrap();
    std::fs::write(dir.path().join("dist/a.css"), CSS).unwrap();
    std::fs::write(
        dir.path().join("dist/index.html"),
        "<link rel=stylesheet href=a.css>",
    )
    .unwrap();
    for (path, text) in files {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

/// Build `dist/` from outside the project, with `env` set and the
/// browserslist variables of this process's environment cleared.
fn build(dir: &Path, env: &[(&str, &str)]) -> Built {
    let out = dir.join("out");
    let mut command = kiln();
    command
        .current_dir(std::env::temp_dir())
        .env_remove("BROWSERSLIST")
        .env_remove("BROWSERSLIST_CONFIG")
        .env_remove("BROWSERSLIST_ENV")
        .env_remove("NODE_ENV")
        .envs(env.iter().copied())
        .arg("build")
        .arg(dir.join("dist"))
        .arg("-o")
        .arg(&out)
        .arg("--no-cache");
    Built::from_output(&out, command.output().unwrap())
}

/// Whether the build targets old Safari (else Chrome 120).
fn legacy(built: &Built) -> bool {
    assert_eq!(built.code, 0, "{}", built.stderr);
    let css = built.text(&built.output_of("a.css"));
    match css.as_str() {
        ".a{color:rgba(0,0,0,.5)}" => true,
        ".a{color:#00000080}" => false,
        other => panic!("unexpected output: {other}\n{}", built.stderr),
    }
}

#[test]
fn package_json_string_array_and_environments() {
    let p = project(&[("package.json", r#"{"browserslist": "safari 9"}"#)]);
    assert!(legacy(&build(p.path(), &[])));
    let p = project(&[("package.json", r#"{"browserslist": ["chrome 120"]}"#)]);
    assert!(!legacy(&build(p.path(), &[])));
    let p = project(&[(
        "package.json",
        r#"{"browserslist": {"production": ["chrome 120"], "legacy": ["safari 9"]}}"#,
    )]);
    // `production` unless BROWSERSLIST_ENV (or NODE_ENV) says otherwise.
    assert!(!legacy(&build(p.path(), &[])));
    assert!(legacy(&build(p.path(), &[("BROWSERSLIST_ENV", "legacy")])));
    assert!(legacy(&build(p.path(), &[("NODE_ENV", "legacy")])));
}

#[test]
fn browserslistrc_sections_and_the_environment_variables() {
    let p = project(&[(
        ".browserslistrc",
        "# comment\n[production]\nchrome 120\n\n[legacy]\nsafari 9\n",
    )]);
    assert!(!legacy(&build(p.path(), &[])));
    assert!(legacy(&build(p.path(), &[("BROWSERSLIST_ENV", "legacy")])));
    // BROWSERSLIST wins over any file.
    assert!(legacy(&build(p.path(), &[("BROWSERSLIST", "safari 9")])));
}

#[test]
fn kiln_toml_wins_and_without_any_configuration_the_defaults_apply() {
    let p = project(&[("package.json", r#"{"browserslist": "safari 9"}"#)]);
    std::fs::write(
        p.path().join("dist/kiln.toml"),
        "[css]\ntargets = \"chrome 120\"\n",
    )
    .unwrap();
    assert!(!legacy(&build(p.path(), &[])));
    // No configuration anywhere above the source: kiln's own defaults, as
    // before (a package.json without the key is no configuration).
    let p = project(&[("package.json", r#"{"name": "x"}"#)]);
    assert!(!legacy(&build(p.path(), &[])));
}

#[test]
fn a_bad_query_names_the_file() {
    let p = project(&[(".browserslistrc", "not a browser 99\n")]);
    let built = build(p.path(), &[]);
    assert_eq!(built.code, 2, "{}", built.stderr);
    assert!(
        built.stderr.contains(".browserslistrc") && built.stderr.contains("browserslist:"),
        "{}",
        built.stderr
    );
}
