//! `kiln watch`: the real binary watching a temporary tree while the test
//! edits, adds, deletes and renames files and folders; the live-reload event
//! stream of `--serve`; Ctrl-C. Waits poll the output with a generous limit
//! that only guards against a hang: nothing here is timed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kiln::emit::manifest::Manifest;

use crate::util::Site;

/// How long any one wait may take before the test fails as hung.
const HANG: Duration = Duration::from_secs(120);

/// A running `kiln watch`, killed when dropped.
pub struct Watcher {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    /// `line` looks at output from here on.
    mark: usize,
    pub out: PathBuf,
    pub addr: Option<String>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Watcher {
    pub fn start(src: &Path, extra: &[&str]) -> Watcher {
        let out_dir = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("out");
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kiln"))
            .arg("watch")
            .arg(src)
            .arg("-o")
            .arg(&out)
            .arg("--cache-dir")
            .arg(cache.path())
            .args(extra)
            .env_remove("CI")
            .env_remove("GITHUB_ACTIONS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // stdout and stderr in one ordered-enough stream of lines.
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for stream in [
            Box::new(stdout) as Box<dyn Read + Send>,
            Box::new(stderr) as Box<dyn Read + Send>,
        ] {
            let sender = sender.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if sender.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let mut watcher = Watcher {
            child,
            lines,
            seen: Vec::new(),
            mark: 0,
            out,
            addr: None,
            _dirs: (out_dir, cache),
        };
        watcher.line(|l| l.starts_with("kiln: watching"));
        watcher.addr = watcher
            .seen
            .iter()
            .find_map(|l| l.split("serving at http://").nth(1))
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned);
        watcher
    }

    /// Look only at output from now on. stdout and stderr are read apart, so
    /// lines of one rebuild can arrive in either order: `line` searches
    /// everything since the mark.
    pub fn mark(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        self.mark = self.seen.len();
    }

    /// Wait for a line of output since the mark that satisfies `want`; return it.
    pub fn line(&mut self, want: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen[self.mark..].iter().find(|l| want(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + HANG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(_) => panic!("no such line; output so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// Wait until `check` holds on the output (rebuilds happen meanwhile).
    pub fn until(&mut self, what: &str, check: impl Fn(&Path) -> bool) {
        let deadline = Instant::now() + HANG;
        while !check(&self.out) {
            if Instant::now() > deadline {
                panic!("never: {what}; output so far:\n{}", self.seen.join("\n"));
            }
            while let Ok(line) = self.lines.try_recv() {
                self.seen.push(line);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn manifest(&self) -> Manifest {
        manifest(&self.out)
    }

    /// Ctrl-C, and the exit status.
    pub fn interrupt(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args(["-INT", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + HANG;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(line);
                }
                return (status, std::mem::take(&mut self.seen));
            }
            assert!(Instant::now() < deadline, "kiln watch ignored Ctrl-C");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn manifest(out: &Path) -> Manifest {
    // The manifest is replaced atomically, so a read never sees half of it.
    let text = std::fs::read_to_string(out.join("kiln-manifest.json")).unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|_| Manifest::empty("/"))
}

/// The output path of `source` in the current manifest.
fn output_of(out: &Path, source: &str) -> Option<String> {
    manifest(out).files.get(source).map(|e| e.output.clone())
}

pub fn small_site() -> Site {
    Site::new()
        .file(
            "index.html",
            "<!doctype html><html><head><meta charset=utf-8><title>Watch</title>\
             <link rel=stylesheet href=\"css/site.css\"></head>\
             <body><h1 id=title>Before</h1><p class=note>note</p>\
             <script type=module src=\"js/app.js\"></script></body></html>\n",
        )
        .file(
            "css/site.css",
            "body { background: rgb(250, 250, 250); }\n.note { color: rgb(10, 20, 30); }\n\
             h1 { font: bold 2rem/1.2 system-ui, sans-serif; margin: 0 0 1rem; }\n\
             p { max-width: 60ch; line-height: 1.5; margin: 0 auto 1rem auto; }\n\
             a { color: rgb(0, 80, 160); text-decoration: underline; }\n\
             a:hover, a:focus { color: rgb(0, 40, 80); text-decoration: none; }\n\
             nav ul { display: flex; gap: 1rem; list-style: none; padding: 0; }\n\
             footer { border-top: 1px solid rgb(220, 220, 220); padding: 1rem 0; }\n",
        )
        .file(
            "js/app.js",
            "document.getElementById('title').dataset.ran = 'yes';\n",
        )
        .file("extra/notes.txt", "plain text\n")
}

#[test]
fn rebuilds_on_edit_add_delete_and_rename() {
    let site = small_site();
    let src = site.path();
    let mut w = Watcher::start(src, &[]);
    let css_before = output_of(&w.out, "css/site.css").unwrap();
    assert!(w.out.join(&css_before).is_file());

    // Edit a stylesheet: a new hashed name, the page points at it, the old one goes.
    w.mark();
    site.write("css/site.css", "body { background: rgb(1, 2, 3); }\n");
    w.until("the edited stylesheet is renamed", |out| {
        output_of(out, "css/site.css").is_some_and(|o| o != css_before)
    });
    let css_after = output_of(&w.out, "css/site.css").unwrap();
    let page = std::fs::read_to_string(w.out.join("index.html")).unwrap();
    assert!(page.contains(&css_after), "{page}");
    assert!(
        std::fs::read_to_string(w.out.join(&css_after))
            .unwrap()
            .contains("#010203")
    );
    w.until("the old stylesheet is removed", |out| {
        !out.join(&css_before).exists()
    });
    w.line(|l| l.contains("css/site.css → rebuilt"));

    // Add a page in a new folder, then delete it.
    site.write(
        "docs/new.html",
        "<!doctype html><title>New</title><p>new page</p>\n",
    );
    w.until("the new page is built", |out| {
        out.join("docs/new.html").is_file()
    });
    std::fs::remove_file(src.join("docs/new.html")).unwrap();
    w.until("the deleted page is removed", |out| {
        !out.join("docs/new.html").exists() && output_of(out, "docs/new.html").is_none()
    });

    // Rename a folder.
    std::fs::rename(src.join("extra"), src.join("moved")).unwrap();
    w.until("the renamed folder is rebuilt", |out| {
        out.join("moved/notes.txt").is_file() && !out.join("extra/notes.txt").exists()
    });

    // Save by rename, as editors that write atomically do, next to a swap file.
    site.write("css/.site.css.swp", "swap");
    site.write(
        "css/site.css___jb_tmp___",
        "body { background: rgb(4, 5, 6); }\n",
    );
    std::fs::rename(
        src.join("css/site.css___jb_tmp___"),
        src.join("css/site.css"),
    )
    .unwrap();
    w.until("the file saved by rename is rebuilt", |out| {
        output_of(out, "css/site.css")
            .and_then(|o| std::fs::read_to_string(out.join(o)).ok())
            .is_some_and(|css| css.contains("#040506"))
    });
    let m = w.manifest();
    assert!(
        !m.files
            .keys()
            .any(|k| k.contains(".swp") || k.contains("jb_tmp")),
        "editor files leaked into the build: {:?}",
        m.files.keys().collect::<Vec<_>>()
    );

    let (status, lines) = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", lines.join("\n"));
    assert!(lines.iter().any(|l| l == "kiln: stopped"), "{lines:?}");
}

/// Files a watch keeps in the output under temporary names: the outputs its
/// rebuilds displaced, waiting to be reused ([`kiln::emit::Retired`]).
/// Names only: a running watch may move any of them meanwhile.
fn temporaries(out: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
            } else if entry
                .file_name()
                .to_string_lossy()
                .starts_with(kiln::emit::TEMP_PREFIX)
            {
                let rel = path.strip_prefix(out).unwrap().to_string_lossy();
                found.push(rel.replace('\\', "/"));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn errors_are_reported_and_cleared_while_watching() {
    let site = small_site();
    let mut w = Watcher::start(site.path(), &[]);

    w.mark();
    site.write(
        "js/app.js",
        "document.getElementById('title').dataset.ran = ;\n",
    );
    let diagnostic = w.line(|l| l.contains("app.js:1:"));
    assert!(diagnostic.contains("syntax error"), "{diagnostic}");
    w.line(|l| l.contains("js/app.js → rebuilt") && l.contains("1 warnings"));

    // Another edit while the problem stays: it is counted, not printed again.
    w.mark();
    let start = w.seen.len();
    site.write("notes.txt", "an unrelated file\n");
    w.line(|l| l.contains("notes.txt → rebuilt") && l.contains("1 warnings"));
    // A barrier on stderr: a new problem, printed after whatever the last
    // rebuild printed there (lines of one stream arrive in order).
    site.write("js/barrier.js", "let = ;\n");
    w.line(|l| l.contains("barrier.js:1:"));
    let barrier = start
        + w.seen[start..]
            .iter()
            .position(|l| l.contains("barrier.js:1:"))
            .expect("seen");
    assert!(
        !w.seen[start..barrier]
            .iter()
            .any(|l| l.contains("app.js:1:")),
        "{:?}",
        &w.seen[start..barrier]
    );
    w.mark();
    std::fs::remove_file(site.path().join("js/barrier.js")).unwrap();
    w.line(|l| l.contains("barrier.js → rebuilt") && l.contains("1 warnings"));

    // The watch goes on: a fix clears the diagnostic.
    w.mark();
    site.write("js/app.js", "document.title = 'fixed';\n");
    w.line(|l| l.contains("1 earlier problem(s) fixed"));
    w.line(|l| l.contains("js/app.js → rebuilt") && l.contains("0 warnings, 0 errors"));
    let out = w.out.clone();
    let js = output_of(&out, "js/app.js").unwrap();
    assert!(
        std::fs::read_to_string(out.join(js))
            .unwrap()
            .contains("fixed")
    );

    // A broken kiln.toml is reported and the last good configuration stays.
    w.mark();
    site.write("kiln.toml", "[compress]\ngzip = maybe\n");
    w.line(|l| l.contains("kiln.toml") && l.starts_with("error:"));
    w.line(|l| l.contains("build failed; still watching"));
    let css = output_of(&w.out, "css/site.css").unwrap();
    assert!(w.out.join(format!("{css}.gz")).is_file());
    site.write("kiln.toml", "[compress]\ngzip = false\n");
    w.until("the new configuration applies", |out| {
        !out.join(format!("{css}.gz")).exists() && out.join(format!("{css}.br")).exists()
    });
    w.line(|l| l.contains("kiln.toml → rebuilt"));
}

/// Read server-sent events from `path` until `stop` says enough.
pub struct EventStream {
    reader: BufReader<TcpStream>,
}

impl EventStream {
    pub fn open(addr: &str) -> EventStream {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(HANG)).unwrap();
        write!(
            stream,
            "GET /__kiln/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut events = EventStream {
            reader: BufReader::new(stream),
        };
        events.next_named("ready");
        events
    }

    /// The next event (name, data), skipping keep-alive comments and chunk sizes.
    pub fn next(&mut self) -> (String, String) {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            assert!(
                self.reader.read_line(&mut line).unwrap() > 0,
                "event stream closed"
            );
            let line = line.trim_end();
            if let Some(n) = line.strip_prefix("event: ") {
                name = n.to_owned();
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = d.to_owned();
            } else if line.is_empty() && !name.is_empty() {
                return (name, data);
            }
        }
    }

    pub fn next_named(&mut self, want: &str) -> String {
        loop {
            let (name, data) = self.next();
            if name == want {
                return data;
            }
        }
    }
}

fn get(addr: &str, method: &str, path: &str) -> (String, Vec<u8>) {
    request(addr, method, path, "")
}

/// A request with `extra` header lines; the lowercased head and the body.
fn request(addr: &str, method: &str, path: &str, extra: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept-Encoding: br, gzip\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    (
        String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn serve_sends_css_swaps_and_reloads() {
    let site = small_site();
    let mut w = Watcher::start(site.path(), &["--serve", "127.0.0.1:0"]);
    let addr = w.addr.clone().expect("a serving line");

    // Pages get the reload script in responses, never in the output.
    let (head, body) = get(&addr, "GET", "/");
    let body = String::from_utf8(body).unwrap();
    assert!(
        body.contains(
            "<script src=\"/__kiln/live.js\" data-kiln-build=\"0\" async></script></body>"
        ),
        "{body}"
    );
    assert!(!head.contains("content-encoding"), "{head}");
    assert!(
        !std::fs::read_to_string(w.out.join("index.html"))
            .unwrap()
            .contains("__kiln")
    );
    let (head_only, _) = get(&addr, "HEAD", "/");
    assert!(
        head_only.contains(&format!("content-length: {}", body.len())),
        "{head_only}"
    );
    // A live page names its build, so it is never revalidated: no validators,
    // no-store, and a conditional request still gets the whole page.
    assert!(
        !head.contains("etag:") && !head.contains("last-modified:"),
        "{head}"
    );
    assert!(head.contains("cache-control: no-store"), "{head}");
    let (conditional, again) = request(
        &addr,
        "GET",
        "/",
        "If-None-Match: *\r\nIf-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT\r\n",
    );
    assert!(conditional.starts_with("http/1.1 200"), "{conditional}");
    assert_eq!(again, body.as_bytes());
    let (_, script) = get(&addr, "GET", "/__kiln/live.js");
    assert!(String::from_utf8(script).unwrap().contains("EventSource"));
    // Other files are served as built, precompressed.
    let css = output_of(&w.out, "css/site.css").unwrap();
    let (css_head, _) = get(&addr, "GET", &format!("/{css}"));
    assert!(css_head.contains("content-encoding: br"), "{css_head}");

    let mut events = EventStream::open(&addr);
    site.write("css/site.css", "body { background: rgb(7, 8, 9); }\n");
    // An editor's save may arrive as two changes: read swaps until the new bytes.
    let mut first_old = None;
    let new = loop {
        let swaps: Vec<(String, String)> = serde_json::from_str(&events.next_named("css")).unwrap();
        assert_eq!(swaps.len(), 1, "{swaps:?}");
        let (old, new) = swaps.into_iter().next().unwrap();
        first_old.get_or_insert(old);
        let bytes = std::fs::read_to_string(w.out.join(new.trim_start_matches('/')));
        if bytes.is_ok_and(|b| b.contains("#070809")) {
            break new;
        }
    };
    assert_eq!(first_old, Some(format!("/{css}")));
    // The swap is sent before the pages are rewritten and the variants made:
    // the stylesheet it names is already served.
    let (swapped_head, swapped) = request(&addr, "GET", &new, "Accept-Encoding: identity\r\n");
    assert!(swapped_head.starts_with("http/1.1 200"), "{swapped_head}");
    assert!(String::from_utf8_lossy(&swapped).contains("#070809"));

    site.write(
        "index.html",
        std::fs::read_to_string(site.path().join("index.html"))
            .unwrap()
            .replace("Before", "After"),
    );
    events.next_named("reload");
    let (_, body) = get(&addr, "GET", "/");
    assert!(String::from_utf8(body).unwrap().contains("After"));

    // Diagnostics reach the page, and a fix clears them.
    site.write("js/app.js", "let = ;\n");
    let problems = loop {
        let problems: Vec<String> =
            serde_json::from_str(&events.next_named("diagnostics")).unwrap();
        if !problems.is_empty() {
            break problems;
        }
    };
    assert!(
        problems.len() == 1 && problems[0].contains("app.js:1:"),
        "{problems:?}"
    );
    w.mark();
    site.write("js/app.js", "document.title = 'ok';\n");
    loop {
        let problems: Vec<String> =
            serde_json::from_str(&events.next_named("diagnostics")).unwrap();
        if problems.is_empty() {
            break;
        }
        assert!(problems[0].contains("app.js:1:"), "{problems:?}");
    }
    w.line(|l| l.contains("js/app.js → rebuilt"));
}

#[test]
fn an_open_page_follows_edits_in_chromium() {
    let site = small_site();
    let w = Watcher::start(site.path(), &["--serve", "127.0.0.1:0"]);
    let addr = w.addr.clone().expect("a serving line");
    let url = format!("http://{addr}/");
    let report = crate::util::browser_harness(
        "live-reload.mjs",
        [
            "--url".as_ref(),
            url.as_ref(),
            "--src".as_ref(),
            site.path().as_os_str(),
        ],
    );
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{report:#}");
    for step in steps {
        assert_eq!(step["ok"], true, "{report:#}");
    }
    drop(w);
}

/// What `kiln watch` does on a rebuild, through the library: outputs first
/// with the missing gzip/brotli variants deferred, then the variants. Once
/// done, or done over two rounds after an interruption, the output is the
/// same tree, byte for byte, as an ordinary build's.
#[test]
fn deferred_compression_finishes_as_the_same_tree_as_a_normal_build() {
    use crate::util::tree;
    let site = Site::fixture("site");
    let cache = tempfile::tempdir().unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let config = |out: &str| {
        let mut c = kiln::Config::new(site.path(), dirs.path().join(out));
        c.cache_dir = Some(cache.path().to_path_buf());
        c
    };
    // The watch's first build: complete.
    let watched = config("watched");
    let session = kiln::pipeline::Session::watching();
    kiln::pipeline::build(&watched, &kiln::progress::Silent).unwrap();

    // An edit every page depends on, rebuilt with deferral.
    site.write(
        "css/main.css",
        format!(
            "{}\n.kiln-deferred{{margin:0 auto;padding:1px}}\n",
            std::fs::read_to_string(site.path().join("css/main.css")).unwrap()
        ),
    );
    let mut outcome = kiln::pipeline::rebuild(&watched, &session, &kiln::progress::Silent).unwrap();
    assert!(outcome.pending.len() >= 7, "{:?}", outcome.pending);
    assert!(outcome.pending.iter().any(|p| p == "index.html"));
    let manifest = outcome.manifest.clone();
    for source in &outcome.pending {
        let entry = &manifest.files[source];
        assert_eq!((entry.gzip, entry.brotli), (None, None), "{source}");
        // A page's integrity waits with its variants.
        if source.ends_with(".html") {
            assert!(entry.integrity.is_empty(), "{source}");
        }
        // No stale variant of an earlier build is left to be served.
        assert!(
            !watched.output.join(format!("{}.br", entry.output)).exists(),
            "{source}"
        );
    }
    // Interrupted after the first batch: the rest stays pending.
    let mut asked = 0;
    let finished = kiln::pipeline::compress_pending(&watched, &session, &mut outcome, || {
        asked += 1;
        true
    })
    .unwrap();
    let left = outcome.pending.len();
    assert!(
        finished > 0 && asked == 1 && left > 0,
        "{finished} {asked} {left}"
    );
    // The next deferred rebuild (nothing changed) finds the same files missing.
    let mut next = kiln::pipeline::rebuild(&watched, &session, &kiln::progress::Silent).unwrap();
    assert_eq!(next.pending.len(), left);
    // Finished this time: the pages get their integrity.
    kiln::pipeline::compress_pending(&watched, &session, &mut next, || false).unwrap();
    assert!(next.pending.is_empty());
    let finished_integrity: Vec<(String, String)> = next
        .manifest
        .files
        .iter()
        .map(|(p, e)| (p.clone(), e.integrity.clone()))
        .collect();
    // Left so (the watch stopped), then an ordinary build into the same
    // output (a restarted watch, a `kiln build`): it must not trust the
    // entries left without variants.
    let last = kiln::pipeline::build(&watched, &kiln::progress::Silent).unwrap();
    assert!(last.pending.is_empty());

    let normal = config("normal");
    let built = kiln::pipeline::build(&normal, &kiln::progress::Silent).unwrap();
    for (path, integrity) in &finished_integrity {
        assert_eq!(*integrity, built.manifest.files[path].integrity, "{path}");
    }
    let (a, b) = (tree(&watched.output), tree(&normal.output));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        if path != "kiln-report.html" {
            assert!(bytes == &b[path], "{path} differs");
        }
    }
}

/// A variant the deferred compression cannot write (a directory in its
/// way) is left out of the manifest; the page still gets its integrity.
#[test]
fn a_variant_that_cannot_be_written_keeps_the_integrity() {
    let site = Site::fixture("site");
    let dirs = tempfile::tempdir().unwrap();
    let session = kiln::pipeline::Session::watching();
    let mut config = kiln::Config::new(site.path(), dirs.path().join("out"));
    config.cache_dir = None;
    kiln::pipeline::build(&config, &kiln::progress::Silent).unwrap();
    site.write(
        "css/main.css",
        format!(
            "{}\n.kiln-blocked{{margin:0 auto}}\n",
            std::fs::read_to_string(site.path().join("css/main.css")).unwrap()
        ),
    );
    let mut outcome = kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert!(outcome.pending.iter().any(|p| p == "index.html"));
    std::fs::create_dir(config.output.join("index.html.gz")).unwrap();
    kiln::pipeline::compress_pending(&config, &session, &mut outcome, || false).unwrap();
    let entry = &outcome.manifest.files["index.html"];
    assert_eq!(entry.gzip, None);
    assert!(entry.brotli.is_some());
    let page = std::fs::read(config.output.join("index.html")).unwrap();
    assert_eq!(entry.integrity, kiln::pipeline::integrity(&page));
    // What the manifest on disk says too.
    assert_eq!(manifest(&config.output).files["index.html"], *entry);
}

/// A stylesheet that keeps its name (`hash = none`), rebuilt with deferral:
/// when the early swap goes out, its old `.gz`/`.br` are already gone, so a
/// client asking for gzip cannot get the old rules.
#[test]
fn a_deferred_rebuild_leaves_no_stale_variant_for_the_early_swap() {
    struct Check<'a> {
        out: &'a Path,
        seen: std::sync::atomic::AtomicUsize,
    }
    impl kiln::progress::Progress for Check<'_> {
        fn stage(&self, _: kiln::progress::Stage, _: usize) {}
        fn advance(&self) {}
        fn assets_written(&self, outputs: &[(&str, &kiln::emit::manifest::FileEntry)]) {
            for (source, entry) in outputs {
                if *source == "css/main.css" {
                    for suffix in [".gz", ".br"] {
                        let sibling = self.out.join(format!("{}{suffix}", entry.output));
                        assert!(!sibling.exists(), "stale {}", sibling.display());
                    }
                    self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    }
    let site = Site::fixture("site");
    let dirs = tempfile::tempdir().unwrap();
    let mut config = kiln::Config::new(site.path(), dirs.path().join("out"));
    config.cache_dir = Some(dirs.path().join("cache"));
    config.link.hash = kiln::link::HashPolicy::None;
    kiln::pipeline::build(&config, &kiln::progress::Silent).unwrap();
    assert!(config.output.join("css/main.css.gz").is_file());
    // Large enough to be worth compressing, new to the cache: deferred.
    let rules: String = (0..40)
        .map(|i| format!(".rule-{i}{{margin:{i}px auto;color:rgb({i},2,3)}}\n"))
        .collect();
    site.write("css/main.css", rules);
    let check = Check {
        out: &config.output,
        seen: Default::default(),
    };
    let session = kiln::pipeline::Session::watching();
    let outcome = kiln::pipeline::rebuild(&config, &session, &check).unwrap();
    assert_eq!(check.seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(outcome.pending.iter().any(|p| p == "css/main.css"));
}

/// `kiln watch` finishes the variants of a rebuild that touched many pages,
/// though its own reads of the source raise file events meanwhile.
#[test]
fn watch_finishes_the_variants_of_a_large_rebuild() {
    let site = Site::new().file("css/site.css", "body { color: rgb(1, 2, 3); }\n");
    for i in 0..60 {
        let text: String = (0..200)
            .map(|j| format!("<p>Paragraph {j} of page {i}, with some words to compress.</p>"))
            .collect();
        site.write(
            &format!("page-{i}.html"),
            format!(
                "<!doctype html><link rel=stylesheet href=css/site.css><title>{i}</title>{text}"
            ),
        );
    }
    let mut w = Watcher::start(site.path(), &[]);
    let before = output_of(&w.out, "css/site.css").unwrap();
    site.write("css/site.css", "body { color: rgb(4, 5, 6); margin: 0; }\n");
    w.until("every page compressed after the rebuild", |out| {
        let m = manifest(out);
        m.files["css/site.css"].output != before
            && m.files
                .values()
                .filter(|e| e.content_type.starts_with("text/html"))
                .all(|e| e.brotli.is_some() && out.join(format!("{}.br", e.output)).is_file())
    });
}

/// The watch's memory of the previous build: an unchanged file is not read
/// or looked up again, a file changed behind its back is seen all the same, a
/// new session does not trust outputs by size, and the result is the same
/// tree as an ordinary build's.
#[test]
fn the_watch_memory_skips_unchanged_files_and_sees_every_change() {
    use crate::util::tree;
    let site = Site::fixture("site");
    let dirs = tempfile::tempdir().unwrap();
    let session = kiln::pipeline::Session::default();
    let memo = &session.memo;
    let mut config = kiln::Config::new(site.path(), dirs.path().join("out"));
    config.cache_dir = Some(dirs.path().join("cache"));
    kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert!(memo.len() > 20);

    // Nothing changed: every transform result comes from memory. What is
    // still looked up in the cache is a variants entry or two (files whose
    // compression did not pay, which are checked rather than trusted).
    let again = kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    let lookups = again.cache_hits + again.cache_misses;
    assert!(again.cache_misses == 0 && lookups < 5, "{lookups}");
    assert_eq!(again.files_written, 0);

    // Changed behind the watch's back, same size and modification time: the
    // change time (and inode) give it away.
    let path = site.path().join("robots.txt");
    let before = std::fs::read_to_string(&path).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
    let swapped: String = before
        .chars()
        .map(|c| if c == 'a' { 'b' } else { c })
        .collect();
    assert_ne!(swapped, before);
    std::fs::write(&path, &swapped).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert_eq!(
        std::fs::read_to_string(config.output.join("robots.txt")).unwrap(),
        swapped
    );

    // What the watcher reports is looked up again.
    memo.forget(&["robots.txt".to_owned()]);
    let redone = kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert_eq!(redone.cache_hits + redone.cache_misses, lookups + 1);
    // The root (a lost event) forgets everything.
    memo.forget(&[".".to_owned()]);
    assert!(memo.is_empty());
    kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();

    // A new session (a new memory) does not trust outputs by size: one changed
    // while no watch ran, at the same size, is rewritten.
    let robots = config.output.join("robots.txt");
    let good = std::fs::read(&robots).unwrap();
    std::fs::write(&robots, vec![b'X'; good.len()]).unwrap();
    let fresh = kiln::pipeline::Session::default();
    kiln::pipeline::rebuild(&config, &fresh, &kiln::progress::Silent).unwrap();
    assert_eq!(std::fs::read(&robots).unwrap(), good);

    // An ordinary edit (new modification time) is seen without being reported.
    site.write("css/main.css", "body{color:rgb(9,9,9)}\n");
    kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    let mut plain = kiln::Config::new(site.path(), dirs.path().join("plain"));
    plain.cache_dir = None;
    kiln::pipeline::build(&plain, &kiln::progress::Silent).unwrap();
    // The files the watch's builds displaced wait for reuse until it ends.
    memo.remove_spares();
    let (a, b) = (tree(&config.output), tree(&plain.output));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (path, bytes) in &a {
        assert!(bytes == &b[path], "{path} differs");
    }
}

/// A watch's rebuild writes a page into a file an earlier rebuild displaced
/// (overwritten in place, no new inode), so repeated edits do not pile files
/// up; a folder whose files all went takes its displaced files with it.
#[cfg(target_os = "linux")]
#[test]
fn displaced_outputs_are_reused_not_piled_up() {
    let site = Site::new()
        // Below the compression threshold: no variants to retire, so the
        // displaced page is what a rebuild leaves.
        .file(
            "index.html",
            "<!doctype html><link rel=stylesheet href=a.css><p>x",
        )
        .file(
            "docs/page.html",
            "<!doctype html><link rel=stylesheet href=../a.css><p>y",
        )
        .file("a.css", "p{color:red}");
    let dirs = tempfile::tempdir().unwrap();
    let session = kiln::pipeline::Session::watching();
    let mut config = kiln::Config::new(site.path(), dirs.path().join("out"));
    config.cache_dir = None;
    kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    let page = config.output.join("index.html");
    // The inodes of the files of the output that are not temporary.
    let outputs = |out: &Path| -> Vec<u64> {
        use std::os::unix::fs::MetadataExt;
        crate::util::tree(out)
            .into_keys()
            .filter(|p| !temporaries(out).contains(p))
            .map(|p| std::fs::metadata(out.join(p)).unwrap().ino())
            .collect()
    };
    let mut counts = Vec::new();
    let mut waiting: Option<u64> = None;
    for i in 1..5 {
        let previous = std::fs::read(&page).unwrap();
        site.write("a.css", format!("p{{color:#{i:06x}}}"));
        let mut outcome =
            kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
        kiln::pipeline::compress_pending(&config, &session, &mut outcome, || false).unwrap();
        let now = std::fs::read(&page).unwrap();
        assert!(String::from_utf8_lossy(&now).contains(&outcome.manifest.files["a.css"].output));
        // The file the last rebuild displaced from the page now holds one of
        // this rebuild's outputs (the stylesheet's new name comes first).
        if let Some(inode) = waiting {
            assert!(outputs(&config.output).contains(&inode), "{i}");
        }
        // The page's old bytes wait under a temporary name.
        let spares = temporaries(&config.output);
        let kept = spares
            .iter()
            .find(|p| std::fs::read(config.output.join(p)).unwrap() == previous)
            .expect("the page's old bytes are kept");
        use std::os::unix::fs::MetadataExt;
        waiting = Some(std::fs::metadata(config.output.join(kept)).unwrap().ino());
        counts.push(spares.len());
    }
    // Not piling up: one per rewritten file (the two pages and the
    // stylesheet's copy under its original name).
    assert!(
        counts.iter().all(|&c| c == counts[0] && c <= 3),
        "{counts:?}"
    );

    // A folder whose files all go is removed whole.
    std::fs::remove_dir_all(site.path().join("docs")).unwrap();
    kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert!(!config.output.join("docs").exists());
    let left = temporaries(&config.output);
    assert!(
        !left.is_empty() && left.iter().all(|p| !p.contains('/')),
        "{left:?}"
    );
    session.memo.remove_spares();
    assert!(temporaries(&config.output).is_empty());
}

/// The files a watch kept to reuse are removed when it ends.
#[cfg(target_os = "linux")]
#[test]
fn a_watch_removes_its_displaced_files_when_it_ends() {
    let site = Site::new()
        .file(
            "index.html",
            "<!doctype html><link rel=stylesheet href=a.css><p>x",
        )
        .file("a.css", "p{color:red}");
    let mut w = Watcher::start(site.path(), &[]);
    site.write("a.css", "p{color:blue}");
    w.until("the page is rewritten, its old bytes kept", |out| {
        !temporaries(out).is_empty()
    });
    let (status, lines) = w.interrupt();
    assert!(status.success(), "{status:?}\n{}", lines.join("\n"));
    assert_eq!(temporaries(&w.out), Vec::<String>::new());
}

/// A watch remembers how an unchanged file's references resolved, for as
/// long as no file is added or removed: a file that appears resolves the
/// links to it in pages that did not change, and one that goes unresolves
/// them again.
#[test]
fn remembered_references_follow_files_that_appear_and_go() {
    let site = Site::new()
        .file(
            "index.html",
            "<!doctype html><link rel=stylesheet href=late.css><p>hi</p>",
        )
        .file("other.css", "p{color:red}");
    let dirs = tempfile::tempdir().unwrap();
    let session = kiln::pipeline::Session::default();
    let memo = &session.memo;
    let mut config = kiln::Config::new(site.path(), dirs.path().join("out"));
    config.cache_dir = Some(dirs.path().join("cache"));
    let page = || std::fs::read_to_string(config.output.join("index.html")).unwrap();
    let warned =
        |o: &kiln::BuildOutcome| o.diagnostics.iter().any(|d| d.message.contains("late.css"));

    let first = kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert!(warned(&first));
    assert!(page().contains("href=late.css"));
    // Unchanged: the page's references come from memory, with their warning.
    let again = kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert!(warned(&again));

    // The stylesheet appears; the page is not reported changed.
    site.write("late.css", "p{color:blue}");
    memo.forget(&["late.css".to_owned()]);
    let added = kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert!(!warned(&added), "{:?}", added.diagnostics);
    let name = added.manifest.files["late.css"].output.clone();
    assert_ne!(name, "late.css");
    assert!(page().contains(&format!("href={name}")), "{}", page());

    // And goes again.
    std::fs::remove_file(site.path().join("late.css")).unwrap();
    memo.forget(&["late.css".to_owned()]);
    let removed = kiln::pipeline::rebuild(&config, &session, &kiln::progress::Silent).unwrap();
    assert!(warned(&removed));
    assert!(page().contains("href=late.css"), "{}", page());
}

/// An SPA fallback answers every unknown path, but never kiln's own live
/// endpoints: the page still gets its script and its event stream.
#[test]
fn live_reload_works_beside_an_spa_fallback() {
    let site = small_site().file("kiln.toml", "[routes]\nfallback = \"index.html\"\n");
    let w = Watcher::start(site.path(), &["--serve", "127.0.0.1:0"]);
    let addr = w.addr.clone().expect("a serving line");
    let (head, body) = get(&addr, "GET", "/__kiln/live.js");
    assert!(
        head.contains("text/javascript") && !String::from_utf8_lossy(&body).contains("<script"),
        "{head}"
    );
    // The event stream opens and says it is ready.
    EventStream::open(&addr);
    // A deep link is the app shell, with the live script.
    let (head, body) = get(&addr, "GET", "/settings/profile");
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(String::from_utf8_lossy(&body).contains("/__kiln/live.js"));
}
