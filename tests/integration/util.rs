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

fn copy_dir(from: &Path, to: &Path) {
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

/// The result of running `kiln build`.
pub struct Built {
    pub out: PathBuf,
    _out_dir: Option<TempDir>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Built {
    pub fn manifest(&self) -> Manifest {
        let text =
            std::fs::read_to_string(self.out.join("kiln-manifest.json")).expect("manifest written");
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
    let output = cmd.output().unwrap();
    Built {
        out: out.to_path_buf(),
        _out_dir: None,
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
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
pub fn check_links(built: &Built) -> (usize, Vec<BadLink>) {
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
