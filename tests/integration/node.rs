//! Fidelity of minified JavaScript: every program in `fixtures/js-fidelity`
//! runs under Node before and after `kiln build`, with identical output.

use std::path::Path;
use std::process::{Command, Output};

use crate::util::{build, fixture_path};

fn node(file: &Path) -> Output {
    Command::new("node")
        .arg(file.file_name().unwrap())
        .current_dir(file.parent().unwrap())
        .output()
        .expect("node runs (bash tests/setup.sh installs it)")
}

#[test]
fn minified_programs_print_exactly_what_the_originals_print() {
    let source = fixture_path("js-fidelity");
    let built = build(&source, &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        !built.stderr.contains("warning"),
        "every fixture minifies:\n{}",
        built.stderr
    );
    let manifest = built.manifest();
    let mut programs = 0;
    let mut smaller = 0;
    for (path, entry) in &manifest.files {
        if entry.kind != kiln::asset::AssetKind::Js {
            continue;
        }
        let before = node(&source.join(path));
        assert!(
            before.status.success(),
            "{path} must run as written: {}",
            String::from_utf8_lossy(&before.stderr)
        );
        let after = node(&built.out.join(&entry.output));
        assert_eq!(
            String::from_utf8_lossy(&after.stdout),
            String::from_utf8_lossy(&before.stdout),
            "{path}: output differs after minification ({}); stderr: {}",
            entry.output,
            String::from_utf8_lossy(&after.stderr)
        );
        assert_eq!(after.status.code(), before.status.code(), "{path}");
        programs += 1;
        smaller += usize::from(entry.bytes_out < entry.bytes_in);
    }
    assert!(programs >= 20, "{programs} programs");
    assert!(
        smaller * 10 >= programs * 9,
        "only {smaller} of {programs} got smaller"
    );
}
