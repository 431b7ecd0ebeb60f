//! Test helpers: temporary source trees (`Site`), running the real binary
//! (`build`), reading output trees, and a link checker.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use kiln::emit::manifest::Manifest;
use tempfile::TempDir;

/// A temporary source tree, built one file at a time.
pub struct Site {
    dir: TempDir,
}

impl Site {
    pub fn new() -> Site {
        Site {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A copy of `fixtures/<name>`.
    pub fn fixture(name: &str) -> Site {
        let site = Site::new();
        copy_dir(&fixture_path(name), site.path());
        site
    }

    pub fn file(self, path: &str, contents: impl AsRef<[u8]>) -> Site {
        self.write(path, contents);
        self
    }

    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let full = self.dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Start `command` with stdout piped; return the child and its first line
/// (where a server says its address).
pub fn spawn_first_line(command: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawns");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().expect("piped"))
        .read_line(&mut line)
        .expect("a first line");
    (child, line)
}

/// Run `tests/browser/<script>` under node with `args`, and return the JSON
/// object it prints on stdout. The browser tests need `bash tests/setup.sh`
/// (node, Debian's chromium, the harness's npm packages).
pub fn browser_harness<I, S>(script: &str, args: I) -> serde_json::Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        harness.join("node_modules").is_dir() && Path::new("/usr/bin/chromium").exists(),
        "the browser tests need `bash tests/setup.sh` (node, chromium, tests/browser/node_modules)"
    );
    let output = std::process::Command::new("node")
        .arg(harness.join(script))
        .args(args)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{script}: output is not JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Where a browser test keeps its screenshots: `CARGO_TARGET_TMPDIR/<parts…>`.
pub fn artifacts(parts: &[&str]) -> PathBuf {
    parts
        .iter()
        .fold(PathBuf::from(env!("CARGO_TARGET_TMPDIR")), |p, part| {
            p.join(part)
        })
}

pub fn kiln() -> Command {
    let mut cmd = Command::cargo_bin("kiln").expect("kiln binary");
    cmd.env_remove("GITHUB_ACTIONS").env_remove("CI");
    cmd
}

/// A kiln command under test, in the manner of ripgrep's `TestCommand`: each
/// way to run it says what must hold, so a test cannot read the output of a
/// command that failed by accident.
pub struct TestCommand {
    cmd: Command,
}

impl TestCommand {
    /// `kiln ARGS…`, without GitHub Actions' environment.
    pub fn new<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> TestCommand {
        let mut cmd = kiln();
        cmd.args(args);
        TestCommand { cmd }
    }

    pub fn arg(&mut self, arg: impl AsRef<std::ffi::OsStr>) -> &mut TestCommand {
        self.cmd.arg(arg);
        self
    }

    /// Run it; it must exit 0. Its standard output.
    pub fn stdout(&mut self) -> String {
        let output = self.cmd.output().expect("kiln runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "kiln failed ({}):\n{stderr}",
            output.status
        );
        String::from_utf8(output.stdout).expect("stdout is UTF-8")
    }

    /// Run it; it must exit with `code`. Its standard error.
    pub fn fails_with(&mut self, code: i32) -> String {
        let output = self.cmd.output().expect("kiln runs");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        stderr
    }
}

/// The result of running `kiln build`.
pub struct Built {
    pub out: PathBuf,
    _out_dir: Option<TempDir>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Built {
    /// What a `kiln build` into `out` that ran as `output` left.
    pub fn from_output(out: &Path, output: std::process::Output) -> Built {
        Built {
            out: out.to_path_buf(),
            _out_dir: None,
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn manifest(&self) -> Manifest {
        let path = kiln::emit::manifest::manifest_file(&self.out);
        let text = std::fs::read_to_string(path).expect("manifest written");
        serde_json::from_str(&text).expect("manifest parses")
    }

    pub fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.out.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    pub fn text(&self, path: &str) -> String {
        String::from_utf8(self.read(path)).unwrap()
    }

    /// Output path of a source file.
    pub fn output_of(&self, source: &str) -> String {
        self.manifest().files[source].output.clone()
    }
}

/// `kiln build SRC -o <fresh temp dir> ARGS...`
pub fn build(src: &Path, args: &[&str]) -> Built {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut built = build_into(src, &out, args);
    built._out_dir = Some(dir);
    built
}

/// `kiln build SRC -o OUT ARGS...`
pub fn build_into(src: &Path, out: &Path, args: &[&str]) -> Built {
    // Tests are hermetic: each build gets an empty cache unless the test
    // brings its own.
    let cache = tempfile::tempdir().unwrap();
    let mut cmd = kiln();
    cmd.arg("build").arg(src).arg("-o").arg(out).args(args);
    if !args
        .iter()
        .any(|a| a.starts_with("--cache-dir") || *a == "--no-cache")
    {
        cmd.arg("--cache-dir").arg(cache.path());
    }
    Built::from_output(out, cmd.output().unwrap())
}

/// Every file under `root` with its bytes, by `/`-separated relative path.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// A broken or stale reference found by [`check_links`].
#[derive(Debug)]
#[expect(dead_code, reason = "read through Debug in assertion messages")]
pub struct BadLink {
    pub file: String,
    pub url: String,
    pub problem: &'static str,
}

/// Check every local reference in the HTML, CSS, JS and manifests of a built
/// tree: it must resolve to a file that exists in the output, and a loading
/// reference must name the hashed file, never the original name kept beside it.
/// Two readers find the references: kiln's own extractor, and
/// [`naive_links`], which shares no code with it, so a reference kiln fails
/// to see is still checked.
pub fn check_links(built: &Built) -> (usize, Vec<BadLink>) {
    let (checked, mut bad) = check_links_with_kiln(built);
    let (naive_checked, naive_bad) = naive_links(&built.out, &built.manifest().base);
    for b in naive_bad {
        if !bad.iter().any(|k| k.file == b.file && k.url == b.url) {
            bad.push(b);
        }
    }
    (checked.max(naive_checked), bad)
}

/// The value at the start of `rest` (after `attr=` or `url(`): quoted, or
/// up to whitespace, `>` or `)`.
fn value_after(rest: &str) -> Option<String> {
    let rest = rest.trim_start();
    let (quote, body) = match rest.chars().next()? {
        q @ ('"' | '\'') => (Some(q), &rest[1..]),
        _ => (None, rest),
    };
    let end = body
        .find(|c: char| match quote {
            Some(q) => c == q,
            None => c.is_whitespace() || c == '>' || c == ')',
        })
        .unwrap_or(body.len());
    Some(body[..end].trim().to_owned())
}

/// The local URLs of a file as a plain reader sees them, by the file's
/// extension: in HTML, the value of every `src=`, `href=` and `srcset=`
/// attribute (each `srcset` candidate) and every `url(…)`; in CSS, every
/// `url(…)` and `@import` string; in scripts, every string after `from`,
/// `import` or `import(`. No parser: a quote, or whitespace, `>` or `)` for
/// an unquoted value, ends a value.
pub fn naive_urls(kind: &str, text: &str) -> Vec<String> {
    let mut urls = Vec::new();
    let quoted_after = |marker: &str| -> Vec<String> {
        text.match_indices(marker)
            .filter_map(|(i, _)| {
                let rest = text[i + marker.len()..].trim_start();
                rest.starts_with(['"', '\''])
                    .then(|| value_after(rest))
                    .flatten()
            })
            .collect()
    };
    if kind == "html" {
        for attr in ["src=", "href=", "srcset="] {
            for (i, _) in text.match_indices(attr) {
                // `data-src=`, `xlink:href=` are not this attribute, and
                // `<base href>` is where URLs resolve, not one of them.
                let before = text[..i].chars().next_back();
                let tag = text[..i].rsplit_once('<').map_or("", |(_, t)| t);
                if before.is_some_and(|c| !c.is_whitespace()) || tag.starts_with("base ") {
                    continue;
                }
                let Some(v) = value_after(&text[i + attr.len()..]) else {
                    continue;
                };
                if attr == "srcset=" {
                    urls.extend(
                        v.split(',')
                            .filter_map(|c| c.split_whitespace().next())
                            .map(str::to_owned),
                    );
                } else {
                    urls.push(v);
                }
            }
        }
    }
    if matches!(kind, "html" | "css") {
        for (i, _) in text.match_indices("url(") {
            urls.extend(value_after(&text[i + 4..]));
        }
    }
    if kind == "css" {
        urls.extend(quoted_after("@import"));
    }
    if matches!(kind, "js" | "mjs") {
        for marker in ["from", "import", "import("] {
            urls.extend(
                quoted_after(marker)
                    .into_iter()
                    // Relative specifiers only, naming a file.
                    .filter(|u| u.starts_with(['.', '/']) && !u.ends_with('/')),
            );
        }
    }
    urls.retain(|u| {
        !u.is_empty()
            && !u.contains("://")
            && !u.starts_with("//")
            && !u.starts_with('#')
            && !u.contains(['$', '{', '}', '<', '>', '+', '`', '\\'])
            && !["data:", "mailto:", "tel:", "javascript:", "about:", "blob:"]
                .iter()
                .any(|s| u.starts_with(s))
    });
    urls
}

/// Check the references [`naive_urls`] finds in every HTML, CSS and JS file
/// of `out`, served under `base`: each must name a file of the output (a
/// directory's `index.html`, or `x.html` for `x`, for pages).
pub fn naive_links(out: &Path, base: &str) -> (usize, Vec<BadLink>) {
    let files = tree(out);
    let mut checked = 0;
    let mut bad = Vec::new();
    for (path, bytes) in &files {
        let kind = path.rsplit('.').next().unwrap_or("");
        if !matches!(kind, "html" | "css" | "js" | "mjs") {
            continue;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            continue;
        };
        // Relative URLs resolve against the page's folder, or its `<base href>`.
        let mut dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_owned();
        if kind == "html"
            && let Some(at) = text.find("<base ")
        {
            let tag = &text[at..text[at..].find('>').map_or(text.len(), |end| at + end)];
            if let Some(href) = tag.find("href=").and_then(|h| value_after(&tag[h + 5..])) {
                dir = match href.strip_prefix(base) {
                    Some(rest) => rest.trim_end_matches('/').to_owned(),
                    None => format!("{dir}/{href}").trim_end_matches('/').to_owned(),
                };
            }
        }
        for url in naive_urls(kind, text) {
            let bare = url.split(['?', '#']).next().unwrap_or("");
            if bare.is_empty() {
                continue;
            }
            let decoded = percent_decode(bare);
            let joined = if decoded.starts_with('/') {
                match decoded.strip_prefix(base) {
                    Some(rest) => rest.to_owned(),
                    // Outside the site: not this output's to check.
                    None => continue,
                }
            } else {
                format!("{dir}/{decoded}")
            };
            let mut parts: Vec<&str> = Vec::new();
            for segment in joined.split('/') {
                match segment {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    s => parts.push(s),
                }
            }
            let target = parts.join("/");
            checked += 1;
            let exists = |p: &str| files.contains_key(p);
            let found = exists(&target)
                || exists(format!("{target}/index.html").trim_start_matches('/'))
                || exists(&format!("{target}.html"))
                || (target.is_empty() && exists("index.html"));
            if !found {
                bad.push(BadLink {
                    file: path.clone(),
                    url,
                    problem: "missing (plain reader)",
                });
            }
        }
    }
    (checked, bad)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(h, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// [`check_links`] through kiln's own extractor.
pub fn check_links_with_kiln(built: &Built) -> (usize, Vec<BadLink>) {
    use kiln::link::resolve::{Resolution, resolve};
    let manifest = built.manifest();
    let aliases: std::collections::HashSet<&str> = manifest
        .files
        .values()
        .flat_map(|e| e.aliases.iter().map(|a| a.path.as_str()))
        .collect();
    let mut checked = 0;
    let mut bad = Vec::new();
    for (source, entry) in &manifest.files {
        let bytes = built.read(&entry.output);
        let t = kiln::transform::transform(entry.kind, source, bytes, None, &Default::default());
        // A bundler's fingerprinted file keeps its name and its references
        // as written.
        let fixed = entry.hashed && entry.output == *source;
        for r in &t.refs {
            match resolve(&r.url, &entry.output, t.base.as_deref(), &manifest.base) {
                Resolution::Local { path, directory } => {
                    checked += 1;
                    let index = if path.is_empty() {
                        "index.html".to_owned()
                    } else {
                        format!("{path}/index.html")
                    };
                    let exists = |p: &str| built.out.join(p).is_file();
                    let found = if directory {
                        exists(&index)
                    } else {
                        exists(&path)
                            || (r.kind == kiln::asset::RefKind::Navigation
                                && (exists(&index) || exists(&format!("{path}.html"))))
                    };
                    if !found {
                        bad.push(BadLink {
                            file: entry.output.clone(),
                            url: r.url.clone(),
                            problem: "missing",
                        });
                    } else if r.kind.fingerprints_target()
                        && !r.pinned
                        && !fixed
                        && aliases.contains(path.as_str())
                    {
                        bad.push(BadLink {
                            file: entry.output.clone(),
                            url: r.url.clone(),
                            problem: "not rewritten to the hashed name",
                        });
                    }
                }
                Resolution::Escapes { .. } => bad.push(BadLink {
                    file: entry.output.clone(),
                    url: r.url.clone(),
                    problem: "escapes",
                }),
                Resolution::External => {}
            }
        }
    }
    (checked, bad)
}
