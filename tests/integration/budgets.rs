//! Size budgets, `--compare-to`, `kiln diff`, the HTML report and the GitHub
//! step outputs, through the real binary.

use std::path::Path;

use crate::util::{Site, build, build_into, kiln};

fn budgets(dir: &Path, text: &str) -> String {
    let path = dir.join("budgets.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn an_exceeded_budget_names_the_file_and_exits_4_unless_told_not_to_fail() {
    let site = Site::fixture("site");
    let dir = tempfile::tempdir().unwrap();
    let file = budgets(
        dir.path(),
        "[[budget]]\npath = \"js/**/*.js\"\nmax_brotli = 100\n\n[[budget]]\nkind = \"css\"\nmax_total_gzip = \"50kB\"\n",
    );
    let built = build(site.path(), &["--budgets", &file]);
    assert_eq!(built.code, 4, "{}\n{}", built.stdout, built.stderr);
    assert!(built.stdout.contains("FAIL js/**/*.js"), "{}", built.stdout);
    assert!(built.stdout.contains("js/app.js"), "{}", built.stdout);
    assert!(
        built.stdout.contains("budget(s) exceeded"),
        "{}",
        built.stdout
    );
    // The output is complete all the same: budgets judge a build, they do not stop it.
    assert!(built.out.join("index.html").is_file());

    let built = build(
        site.path(),
        &["--budgets", &file, "--no-fail-on-budget", "--json"],
    );
    assert_eq!(built.code, 0, "{}", built.stderr);
    let summary = json(&built.stdout);
    let outcomes = summary["budgets"]["outcomes"].as_array().unwrap();
    let failed: Vec<_> = outcomes.iter().filter(|o| o["ok"] == false).collect();
    assert!(!failed.is_empty());
    for o in &failed {
        assert!(o["actual"].as_f64().unwrap() > 100.0, "{o}");
        assert!(o["path"].as_str().unwrap().starts_with("js/"), "{o}");
    }
    // The CSS total is within its limit and reported as such.
    assert!(
        outcomes
            .iter()
            .any(|o| o["rule"] == "kind=css" && o["scope"] == "total" && o["ok"] == true)
    );
    // With --json, the budget table goes to stderr.
    assert!(built.stderr.contains("budgets:"), "{}", built.stderr);

    let generous = budgets(
        dir.path(),
        "[[budget]]\npath = \"js/**\"\nmax_brotli = \"1MB\"\n",
    );
    let built = build(site.path(), &["--budgets", &generous]);
    assert_eq!(built.code, 0, "{}", built.stderr);
}

#[test]
fn budgets_in_kiln_toml_are_checked_and_bad_ones_point_at_the_line() {
    let site =
        Site::fixture("site").file("kiln.toml", "[[budget]]\nkind = \"html\"\nmax_raw = 10\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 4, "{}", built.stdout);
    assert!(built.stdout.contains("FAIL kind=html"), "{}", built.stdout);

    site.write(
        "kiln.toml",
        "[[budget]]\nkind = \"html\"\nmax_raw = \"ten\"\n",
    );
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 2, "{}", built.stderr);
    assert!(
        built.stderr.contains("kiln.toml:3:") && built.stderr.contains("budget.max_raw"),
        "{}",
        built.stderr
    );
}

#[test]
fn growth_is_measured_against_the_previous_build_or_the_baseline() {
    let site = Site::fixture("site");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let file = budgets(
        dir.path(),
        "[[budget]]\nkind = \"js\"\nmax_growth = \"5%\"\n",
    );
    let first = build_into(site.path(), &out, &["--budgets", &file]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("no baseline"), "{}", first.stdout);
    let baseline = dir.path().join("baseline");
    std::fs::rename(&out, &baseline).unwrap();
    build_into(site.path(), &out, &[]);

    // Grow the JS by a few kilobytes of code that minification cannot remove.
    let mut big = String::from("export const table = [");
    for i in 0..600 {
        big.push_str(&format!("\"entry-{i}-{}\",", i * 7919 % 1000));
    }
    big.push_str("];\n");
    site.write("js/table.js", big);
    let grown = build_into(site.path(), &out, &["--budgets", &file, "--json"]);
    assert_eq!(grown.code, 4, "{}", grown.stderr);
    let summary = json(&grown.stdout);
    let growth = &summary["budgets"]["outcomes"][0];
    assert_eq!(growth["scope"], "growth");
    assert!(growth["actual"].as_f64().unwrap() > 5.0, "{growth}");

    // Against the original build, with the diff in the summary.
    let compared = build_into(
        site.path(),
        &out,
        &[
            "--budgets",
            &file,
            "--json",
            "--compare-to",
            baseline.to_str().unwrap(),
        ],
    );
    assert_eq!(compared.code, 4);
    let summary = json(&compared.stdout);
    let files = summary["diff"]["files"].as_array().unwrap();
    assert_eq!(files[0]["path"], "js/table.js");
    assert_eq!(files[0]["status"], "added");
    assert!(
        summary["diff"]["kinds"]["js"]["new"]["brotli"].as_u64()
            > summary["diff"]["kinds"]["js"]["old"]["brotli"].as_u64()
    );

    // A baseline that does not exist is a usage error, before any work.
    let missing = build(
        site.path(),
        &["--compare-to", "/nonexistent/kiln-manifest.json"],
    );
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("--compare-to"),
        "{}",
        missing.stderr
    );
}

#[test]
fn kiln_diff_compares_outputs_manifests_and_a_deployed_directory() {
    let site = Site::fixture("site");
    let before = build(site.path(), &[]);
    site.write("css/extra.css", ".extra{color:rebeccapurple}\n");
    site.write(
        "css/main.css",
        format!(
            "{}\n.grown{{margin:1px 2px 3px 4px;padding:5px}}\n",
            std::fs::read_to_string(site.path().join("css/main.css")).unwrap()
        ),
    );
    std::fs::remove_file(site.path().join("js/legacy.js")).unwrap();
    let after = build(site.path(), &[]);

    let run = |old: &str, new: &str| {
        let output = kiln().args(["diff", old, new, "--json"]).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        json(&String::from_utf8_lossy(&output.stdout))
    };
    let diff = run(before.out.to_str().unwrap(), after.out.to_str().unwrap());
    let status = |path: &str| {
        diff["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .map(|f| f["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("css/extra.css").as_deref(), Some("added"));
    assert_eq!(status("css/main.css").as_deref(), Some("changed"));
    assert_eq!(status("js/legacy.js").as_deref(), Some("removed"));
    assert_eq!(
        status("index.html").as_deref(),
        Some("changed"),
        "it links the new CSS name"
    );
    assert_eq!(status("robots.txt"), None, "unchanged files are left out");

    // The same from the manifest file, and the text form.
    let manifest = before.out.join("kiln-manifest.json");
    let same = |other: &serde_json::Value| {
        ["files", "kinds", "total"]
            .iter()
            .all(|key| other[key] == diff[key])
    };
    assert!(same(&run(
        manifest.to_str().unwrap(),
        after.out.to_str().unwrap()
    )));
    let text = kiln()
        .args(["diff"])
        .arg(&before.out)
        .arg(&after.out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("changed,") && text.contains("css/extra.css"),
        "{text}"
    );

    // A deployed directory holds the manifest of its last deploy.
    let www = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", www.path().display());
    let deployed = kiln()
        .args(["deploy"])
        .arg(&before.out)
        .args(["--to", &target])
        .output()
        .unwrap();
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let from_target = run(&target, after.out.to_str().unwrap());
    assert!(same(&from_target));
    assert_eq!(from_target["old"], target.as_str());
    // --compare-to a target works inside a build.
    let built = build(site.path(), &["--compare-to", &target]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        built.stdout.contains(&format!("size changes: {target}")),
        "{}",
        built.stdout
    );

    // An empty target is not an error for --compare-to (the first deploy),
    // but `kiln diff` needs two builds.
    let empty = tempfile::tempdir().unwrap();
    let empty_target = format!("dir:{}", empty.path().display());
    let built = build(site.path(), &["--compare-to", &empty_target]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        built.stderr.contains("no earlier kiln deploy"),
        "{}",
        built.stderr
    );
    let output = kiln()
        .args(["diff", &empty_target])
        .arg(&after.out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn github_outputs_and_job_summary() {
    let site = Site::fixture("site");
    let dir = tempfile::tempdir().unwrap();
    let outputs = dir.path().join("output");
    let summary = dir.path().join("summary.md");
    std::fs::write(&outputs, "earlier=step\n").unwrap();
    let file = budgets(
        dir.path(),
        "[[budget]]\npath = \"**/*.css\"\nmax_gzip = 10\n",
    );
    let before = build(site.path(), &[]);
    let out = dir.path().join("out");
    let output = kiln()
        .args(["build"])
        .arg(site.path())
        .arg("-o")
        .arg(&out)
        .args([
            "--github",
            "--no-fail-on-budget",
            "--budgets",
            &file,
            "--compare-to",
        ])
        .arg(&before.out)
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&outputs).unwrap();
    let values: std::collections::BTreeMap<&str, &str> =
        text.lines().filter_map(|l| l.split_once('=')).collect();
    assert_eq!(values["earlier"], "step", "appended, not overwritten");
    assert_eq!(values["budget-status"], "fail");
    let manifest: kiln::emit::manifest::Manifest =
        serde_json::from_slice(&std::fs::read(out.join("kiln-manifest.json")).unwrap()).unwrap();
    assert_eq!(values["files"], manifest.files.len().to_string());
    let brotli: u64 = manifest
        .files
        .values()
        .map(|e| e.brotli.unwrap_or(e.bytes_out))
        .sum();
    assert_eq!(values["bytes-brotli"], brotli.to_string());
    assert!(values["manifest"].ends_with("kiln-manifest.json"));
    assert!(Path::new(values["report"]).is_file());
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| css |"), "{md}");
    assert!(md.contains("### Budgets: fail"), "{md}");
    assert!(md.contains("❌"), "{md}");
    assert!(md.contains("### Size changes against"), "{md}");

    // Deploy outputs.
    let www = tempfile::tempdir().unwrap();
    std::fs::write(&outputs, "").unwrap();
    let deploy = |expect: &str| {
        let output = kiln()
            .args(["deploy"])
            .arg(&out)
            .arg("--to")
            .arg(format!("dir:{}", www.path().display()))
            .arg("--github")
            .env("GITHUB_OUTPUT", &outputs)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(&outputs).unwrap();
        assert!(
            text.contains(&format!("deploy-status={expect}\n")),
            "{text}"
        );
        text
    };
    let first = deploy("deployed");
    assert!(!first.contains("files-uploaded=0\n"), "{first}");
    let second = deploy("unchanged");
    assert!(
        second.ends_with("files-uploaded=0\nfiles-deleted=0\ndeploy-status=unchanged\n"),
        "{second}"
    );
}

#[test]
fn the_report_is_self_contained_kept_by_rebuilds_and_can_be_turned_off() {
    let site = Site::fixture("site");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let built = build_into(site.path(), &out, &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let html = std::fs::read_to_string(out.join("kiln-report.html")).unwrap();
    // The data is the build's: every source file, and no raw `<` that could end the script.
    let start = html
        .find(r#"<script id="kiln-data" type="application/json">"#)
        .unwrap();
    let rest = &html[start..];
    let data = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    assert!(!data.contains('<'));
    let data: serde_json::Value = serde_json::from_str(data).unwrap();
    let manifest = built.manifest();
    assert_eq!(
        data["files"].as_array().unwrap().len(),
        manifest.files.len()
    );
    assert_eq!(data["output"], "out");
    // Nothing in it reaches the network (the SVG namespace is a name, not a fetch).
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_ns.contains("http://") && !without_ns.contains("https://"));
    // Not part of the site: neither in the manifest nor in the headers.
    assert!(
        manifest
            .files
            .values()
            .all(|e| e.output != "kiln-report.html")
    );
    assert!(
        !std::fs::read_to_string(out.join("_headers"))
            .unwrap()
            .contains("kiln-report")
    );

    // A rebuild keeps it; the same build in another directory writes the same bytes.
    let again = build_into(site.path(), &out, &[]);
    assert_eq!(again.code, 0);
    assert_eq!(
        std::fs::read_to_string(out.join("kiln-report.html")).unwrap(),
        html
    );
    let elsewhere = tempfile::tempdir().unwrap();
    build_into(site.path(), &elsewhere.path().join("out"), &[]);
    assert_eq!(
        std::fs::read_to_string(elsewhere.path().join("out/kiln-report.html")).unwrap(),
        html
    );

    // --no-report removes the stale one.
    let off = build_into(site.path(), &out, &["--no-report"]);
    assert_eq!(off.code, 0);
    assert!(!out.join("kiln-report.html").exists());
}

/// The report in headless Chromium: opened from disk, no request, no console
/// error, the treemap and the table render, sorting and filtering work, the
/// failing budget and the diff show. The screenshot is kept as an artifact.
#[test]
fn the_report_renders_in_chromium() {
    let site = Site::fixture("site");
    let dir = tempfile::tempdir().unwrap();
    let before = build(site.path(), &[]);
    site.write("css/extra.css", ".extra{color:rebeccapurple}\n");
    let file = budgets(
        dir.path(),
        "[[budget]]\npath = \"css/**\"\nmax_brotli = 100\n",
    );
    let out = dir.path().join("out");
    let built = build_into(
        site.path(),
        &out,
        &[
            "--budgets",
            &file,
            "--no-fail-on-budget",
            "--json",
            "--compare-to",
        ]
        .into_iter()
        .chain([before.out.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    assert_eq!(built.code, 0, "{}", built.stderr);
    let summary = json(&built.stdout);
    let failing = summary["budgets"]["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["ok"] == false)
        .count();
    assert!(failing > 0);
    let files = built.manifest().files.len();
    let artifacts = crate::util::artifacts(&["report"]);
    let report = out.join("kiln-report.html");
    let (files, failing) = (files.to_string(), failing.to_string());
    let result = crate::util::browser_harness(
        "report.mjs",
        [
            "--report".as_ref(),
            report.as_os_str(),
            "--out".as_ref(),
            artifacts.as_os_str(),
            "--expect-files".as_ref(),
            files.as_ref(),
            "--expect-budget-fail".as_ref(),
            failing.as_ref(),
            "--expect-diff".as_ref(),
        ],
    );
    assert_eq!(result["ok"], true, "{result:#}");
    assert!(artifacts.join("report.png").is_file());
}

#[test]
fn a_source_file_named_like_the_report_wins_with_a_warning() {
    let site = Site::new()
        .file("index.html", "<p>hello</p>")
        .file("kiln-report.html", "<p>my own report page</p>");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(
        built.stderr.contains("the size report is not written"),
        "{}",
        built.stderr
    );
    assert!(
        built
            .text("kiln-report.html")
            .contains("my own report page")
    );
}

#[cfg(unix)]
#[test]
fn json_stays_json_with_a_file_name_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt;
    let site = Site::new().file("index.html", "<img src=missing.png>");
    let name = std::ffi::OsStr::from_bytes(b"bad\xff.txt");
    std::fs::write(site.path().join(name), "x").unwrap();
    let built = build(site.path(), &["--json"]);
    let summary = json(&built.stdout);
    assert!(
        summary["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["path"].as_str().unwrap().contains("bad\u{fffd}.txt")),
        "{summary:#}"
    );
}
