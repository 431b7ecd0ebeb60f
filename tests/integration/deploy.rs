//! `kiln deploy` against a real S3-compatible server (SeaweedFS, which checks
//! SigV4 signatures; `tests/s3/`) and against a local origin directory.
//! `tests/run.sh` starts the server and passes it in `KILN_TEST_S3`; a plain
//! `cargo test` starts one under the target directory and leaves it running
//! for the next run. Faults come from `tests/s3/proxy.py`, which also counts
//! the requests that reach the server.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;

use aws_sdk_s3::Client;
use kiln::emit::manifest::Manifest;

use crate::util::{Site, build_into, kiln, spawn_first_line};

pub(crate) struct Server {
    pub(crate) endpoint: String,
    pub(crate) access_key: String,
    pub(crate) secret_key: String,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let json = match std::env::var("KILN_TEST_S3") {
            Ok(json) if !json.is_empty() => json,
            _ => {
                let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("s3-server");
                let out = std::process::Command::new("python3")
                    .arg(repo().join("tests/s3/server.py"))
                    .args(["start", "--dir"])
                    .arg(&dir)
                    .output()
                    .expect("python3 runs");
                assert!(
                    out.status.success(),
                    "cannot start the S3 test server (run `bash tests/setup.sh`): {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                String::from_utf8(out.stdout).unwrap()
            }
        };
        let v: serde_json::Value = serde_json::from_str(json.trim()).expect("server JSON");
        Server {
            endpoint: v["endpoint"].as_str().unwrap().to_owned(),
            access_key: v["access_key"].as_str().unwrap().to_owned(),
            secret_key: v["secret_key"].as_str().unwrap().to_owned(),
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client() -> Client {
    let s = server();
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .http_client(kiln::deploy::aws::https_client())
        .endpoint_url(&s.endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            &s.access_key,
            &s.secret_key,
            None,
            None,
            "kiln-tests",
        ))
        .build();
    Client::from_conf(config)
}

/// A fresh bucket for one test.
pub(crate) fn bucket(name: &str) -> String {
    let bucket = format!(
        "kiln-{name}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    runtime()
        .block_on(client().create_bucket().bucket(&bucket).send())
        .expect("create bucket");
    bucket
}

/// One stored object: bytes and the headers kiln set.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    bytes: Vec<u8>,
    content_type: Option<String>,
    cache_control: Option<String>,
    content_encoding: Option<String>,
}

/// Every object in the bucket, by key.
fn stored(bucket: &str) -> BTreeMap<String, Stored> {
    let client = client();
    runtime().block_on(async {
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = client
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap();
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        let mut out = BTreeMap::new();
        for key in keys {
            let object = client
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap();
            let stored = Stored {
                content_type: object.content_type().map(str::to_owned),
                cache_control: object.cache_control().map(str::to_owned),
                content_encoding: object.content_encoding().map(str::to_owned),
                bytes: object.body.collect().await.unwrap().into_bytes().to_vec(),
            };
            out.insert(key, stored);
        }
        out
    })
}

/// `kiln deploy OUT ARGS…` with the test credentials in the environment.
fn deploy(out: &Path, endpoint: &str, args: &[&str]) -> (i32, String, String) {
    let s = server();
    let output = kiln()
        .arg("deploy")
        .arg(out)
        .args(["--endpoint", endpoint, "--path-style"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", &s.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s.secret_key)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn deploy_json(out: &Path, endpoint: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = deploy(out, endpoint, &all);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn manifest(out: &Path) -> Manifest {
    serde_json::from_str(&std::fs::read_to_string(out.join("kiln-manifest.json")).unwrap()).unwrap()
}

/// The objects a build should put on the origin (negotiate encoding), with
/// their headers, from its manifest and files.
fn expected(out: &Path, prefix: &str) -> BTreeMap<String, Stored> {
    let m = manifest(out);
    let mut want = BTreeMap::new();
    for s in m.served() {
        let variants = [
            ("", None, true),
            (".gz", Some("gzip"), s.entry.gzip.is_some()),
            (".br", Some("br"), s.entry.brotli.is_some()),
        ];
        for (suffix, encoding, present) in variants {
            if present {
                want.insert(
                    format!("{prefix}{}{suffix}", s.path),
                    Stored {
                        bytes: std::fs::read(out.join(format!("{}{suffix}", s.path))).unwrap(),
                        content_type: Some(s.entry.content_type.clone()),
                        cache_control: Some(s.cache_control.to_owned()),
                        content_encoding: encoding.map(str::to_owned),
                    },
                );
            }
        }
    }
    want
}

/// `stored` without kiln's own objects (the state, and the deployed build's manifest).
fn content(mut objects: BTreeMap<String, Stored>, prefix: &str) -> BTreeMap<String, Stored> {
    objects.remove(&format!("{prefix}{}", kiln::deploy::STATE_KEY));
    objects.remove(&format!("{prefix}{}", kiln::deploy::MANIFEST_KEY));
    objects
}

/// A built copy of fixtures/site, rebuildable after edits.
struct Build {
    site: Site,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Build {
    fn new() -> Build {
        let site = Site::fixture("site");
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let b = Build {
            site,
            out,
            _dir: dir,
        };
        b.rebuild();
        b
    }

    fn rebuild(&self) {
        let built = build_into(self.site.path(), &self.out, &[]);
        assert_eq!(built.code, 0, "{}", built.stderr);
    }
}

/// `tests/s3/proxy.py` in front of the server, killed when dropped.
struct Proxy {
    child: Child,
    endpoint: String,
}

impl Proxy {
    fn start(fault_rate: f64) -> Proxy {
        let (child, line) = spawn_first_line(
            std::process::Command::new("python3")
                .arg(repo().join("tests/s3/proxy.py"))
                .args(["--upstream", &server().endpoint])
                .args(["--fault-rate", &fault_rate.to_string(), "--seed", "7"])
                .stderr(Stdio::null()),
        );
        let v: serde_json::Value = serde_json::from_str(&line).expect("proxy line");
        Proxy {
            child,
            endpoint: v["endpoint"].as_str().unwrap().to_owned(),
        }
    }

    fn control(&self, method: &str, path: &str) -> serde_json::Value {
        let host = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        let body = raw.split("\r\n\r\n").nth(1).unwrap_or("{}");
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null)
    }

    fn stats(&self) -> serde_json::Value {
        self.control("GET", "/__proxy/stats")
    }

    /// PUT requests that reached the server.
    fn puts(&self) -> u64 {
        let stats = self.stats();
        ["PutObject", "UploadPart"]
            .iter()
            .map(|op| {
                stats["by_operation_outcome"][op]["forwarded"]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn s3_full_deploy_then_no_op() {
    let build = Build::new();
    let bucket = bucket("full");
    let proxy = Proxy::start(0.0);
    let target = format!("s3://{bucket}/site");

    let first = deploy_json(&build.out, &proxy.endpoint, &["--to", &target]);
    let want = expected(&build.out, "site/");
    assert_eq!(first["uploaded"], want.len());
    assert_eq!(first["updated"], 0);
    let got = content(stored(&bucket), "site/");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (key, object) in &want {
        assert_eq!(&got[key], object, "{key}");
    }
    // Pages went last: the plan lists immutable files, then assets, then HTML.
    let uploads: Vec<&str> = first["plan"]["uploads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let first_html = uploads.iter().position(|k| k.ends_with(".html")).unwrap();
    assert!(
        uploads[first_html..].iter().all(|k| k.contains(".html")),
        "{uploads:?}"
    );

    // No-op: one read of the state, nothing written.
    proxy.control("POST", "/__proxy/reset");
    let again = deploy_json(&build.out, &proxy.endpoint, &["--to", &target]);
    assert_eq!(again["uploaded"], 0);
    assert_eq!(again["updated"], 0);
    assert_eq!(again["unchanged"], want.len());
    assert_eq!(proxy.puts(), 0, "{}", proxy.stats());
    let total = proxy.stats()["total"].as_u64().unwrap();
    assert!(total <= 5, "no-op deploy made {total} requests");
    assert_eq!(again["requests"].as_u64().unwrap(), total);
}

#[test]
fn s3_header_change_removal_grace_and_max_delete() {
    let build = Build::new();
    let bucket = bucket("changes");
    let target = format!("s3://{bucket}");
    let endpoint = &server().endpoint;
    let args = ["--to", &target, "--keep-deploys", "1", "--keep-for", "0"];
    deploy_json(&build.out, endpoint, &args);

    // A header-only change re-uploads the affected objects with the new header.
    build.site.write(
        "kiln.toml",
        "[cache_control]\nrules = [{ glob = \"robots.txt\", value = \"public, max-age=60\" }]\n",
    );
    build.rebuild();
    let changed = deploy_json(&build.out, endpoint, &args);
    assert_eq!(changed["updated"], 1, "{changed:#}");
    assert_eq!(changed["plan"]["updates"][0], "robots.txt");
    assert_eq!(
        stored(&bucket)["robots.txt"].cache_control.as_deref(),
        Some("public, max-age=60")
    );

    // Removed files survive one deploy, then go.
    let removed = [
        "downloads/emberline-brochure.pdf",
        "fonts/LICENSE-DejaVu.txt",
        ".well-known/security.txt",
    ];
    for file in removed {
        std::fs::remove_file(build.site.path().join(file)).unwrap();
    }
    build.rebuild();
    let first = deploy_json(&build.out, endpoint, &args);
    assert!(
        first["deleted"] == 0 && first["deferred"].as_u64().unwrap() >= 1,
        "{first:#}"
    );
    assert!(stored(&bucket).contains_key(removed[0]));

    // --max-delete refuses, and changes nothing.
    let (code, _, stderr) = deploy(
        &build.out,
        endpoint,
        &[&args[..], &["--max-delete", "0"]].concat(),
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("--max-delete 0"), "{stderr}");
    assert!(stored(&bucket).contains_key(removed[0]));

    let second = deploy_json(&build.out, endpoint, &args);
    assert!(second["deleted"].as_u64().unwrap() >= 3, "{second:#}");
    for file in removed {
        assert!(!stored(&bucket).contains_key(file));
    }
    // One DeleteObjects for all of them: the state read, the deletion, the
    // manifest and the state written.
    assert_eq!(
        second["uploaded"].as_u64().unwrap() + second["updated"].as_u64().unwrap(),
        0
    );
    assert_eq!(second["requests"], 4, "{second:#}");
    let got = content(stored(&bucket), "");
    assert_eq!(got, expected(&build.out, ""));
}

#[test]
fn s3_deploy_completes_through_faults_and_dropped_connections() {
    let build = Build::new();
    let bucket = bucket("faults");
    let proxy = Proxy::start(0.25);
    let summary = deploy_json(
        &build.out,
        &proxy.endpoint,
        &["--to", &format!("s3://{bucket}/p")],
    );
    let stats = proxy.stats();
    assert!(stats["faulted"].as_u64().unwrap() > 0, "{stats}");
    assert_eq!(summary["uploaded"], expected(&build.out, "p/").len());
    assert_eq!(content(stored(&bucket), "p/"), expected(&build.out, "p/"));
}

#[test]
fn s3_killed_deploy_leaves_a_working_site_and_a_rerun_completes_it() {
    let build = Build::new();
    let bucket = bucket("killed");
    let target = format!("s3://{bucket}");
    let endpoint = server().endpoint.clone();
    deploy_json(&build.out, &endpoint, &["--to", &target]);
    let old = expected(&build.out, "");
    let old_manifest = manifest(&build.out);

    // A new version: every stylesheet and script changes, so every page does.
    for file in ["css/main.css", "js/app.js"] {
        let path = build.site.path().join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("\n/* v2 */ .v2{color:red}\n");
        std::fs::write(&path, text).unwrap();
    }
    build.rebuild();
    let new = expected(&build.out, "");

    // Kill the deploy once some uploads have gone through (one at a time).
    let proxy = Proxy::start(0.0);
    let s = server();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kiln"))
        .arg("deploy")
        .arg(&build.out)
        .args([
            "--endpoint",
            &proxy.endpoint,
            "--path-style",
            "--to",
            &target,
        ])
        .args(["--concurrency", "1"])
        .env("AWS_ACCESS_KEY_ID", &s.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &s.secret_key)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while proxy.puts() < 3 {
        assert!(std::time::Instant::now() < deadline, "no uploads");
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();

    // Every page on the origin is the old or the new one, and everything the
    // old pages load is still there: pages went last.
    let mid = content(stored(&bucket), "");
    for (key, object) in &mid {
        assert!(
            old.get(key) == Some(object) || new.get(key) == Some(object),
            "{key} is neither version"
        );
    }
    for (path, entry) in &old_manifest.files {
        assert!(
            mid.contains_key(&entry.output),
            "{path}: {} is gone",
            entry.output
        );
    }

    let rerun = deploy_json(&build.out, &endpoint, &["--to", &target]);
    assert!(rerun["uploaded"].as_u64().unwrap() + rerun["updated"].as_u64().unwrap() > 0);
    let done = content(stored(&bucket), "");
    for (key, object) in &new {
        assert_eq!(done.get(key), Some(object), "{key}");
    }
}

#[test]
fn s3_wrong_credentials_and_missing_bucket_are_clear_errors() {
    let build = Build::new();
    let bucket = bucket("creds");
    let output = kiln()
        .arg("deploy")
        .arg(&build.out)
        .args(["--endpoint", &server().endpoint, "--path-style"])
        .args(["--to", &format!("s3://{bucket}")])
        .env("AWS_ACCESS_KEY_ID", "kiln-test")
        .env("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("SignatureDoesNotMatch"), "{stderr}");
    assert!(stderr.contains("credentials were refused"), "{stderr}");
    assert!(
        !stderr.contains("not-the-secret"),
        "the secret was printed: {stderr}"
    );

    let (code, _, stderr) = deploy(
        &build.out,
        &server().endpoint,
        &["--to", "s3://kiln-no-such-bucket"],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("NoSuchBucket"), "{stderr}");
}

#[test]
fn dry_run_changes_nothing_and_a_plain_directory_needs_raw() {
    let build = Build::new();
    let bucket = bucket("dry");
    let (code, stdout, stderr) = deploy(
        &build.out,
        &server().endpoint,
        &["--to", &format!("s3://{bucket}"), "--dry-run"],
    );
    assert_eq!(code, 0, "{stderr}");
    // One line per key: action, size, key, reason.
    let index = stdout
        .lines()
        .find(|l| l.contains("  index.html  "))
        .unwrap_or_else(|| panic!("{stdout}"));
    let size = std::fs::metadata(build.out.join("index.html"))
        .unwrap()
        .len();
    assert_eq!(
        index,
        format!(
            "upload {:>10}  index.html  (new)",
            kiln::units::human_bytes(size)
        )
    );
    assert!(stdout.contains("would deploy"), "{stdout}");
    assert!(stored(&bucket).is_empty());

    let plain = Site::new()
        .file("index.html", "<p>hi</p>")
        .file("a.css", "p{}");
    let dir = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", dir.path().join("www").display());
    let output = kiln()
        .args(["deploy"])
        .arg(plain.path())
        .args(["--to", &target])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--raw"));
    // A kiln build deployed there first leaves its manifest; a raw deploy
    // replaces the site, so the manifest must go with it.
    let first = kiln()
        .args(["deploy"])
        .arg(&build.out)
        .args(["--to", &target])
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let manifest = dir.path().join("www").join(kiln::deploy::MANIFEST_KEY);
    assert!(manifest.is_file());
    let output = kiln()
        .args(["deploy"])
        .arg(plain.path())
        .args(["--to", &target, "--raw"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(std::fs::read(dir.path().join("www/a.css")).unwrap(), b"p{}");
    assert!(!manifest.exists(), "a raw deploy leaves no stale manifest");
}

#[test]
fn dir_origin_deploys_the_same_way() {
    let build = Build::new();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let target = format!("dir:{}", www.display());
    let run = |extra: &[&str]| -> serde_json::Value {
        let output = kiln()
            .arg("deploy")
            .arg(&build.out)
            .args([
                "--to",
                &target,
                "--json",
                "--keep-deploys",
                "1",
                "--keep-for",
                "0",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let first = run(&[]);
    let want = expected(&build.out, "");
    assert_eq!(first["uploaded"], want.len());
    for (key, object) in &want {
        assert_eq!(std::fs::read(www.join(key)).unwrap(), object.bytes, "{key}");
    }
    assert!(www.join(kiln::deploy::STATE_KEY).is_file());
    // The deployed build's manifest is kept beside the state, for `--compare-to dir:…`.
    assert_eq!(
        std::fs::read(www.join(kiln::deploy::MANIFEST_KEY)).unwrap(),
        std::fs::read(build.out.join("kiln-manifest.json")).unwrap()
    );

    // No-op: nothing rewritten.
    let mtime = std::fs::metadata(www.join("index.html"))
        .unwrap()
        .modified()
        .unwrap();
    let again = run(&[]);
    assert_eq!(
        again["uploaded"].as_u64().unwrap() + again["updated"].as_u64().unwrap(),
        0
    );
    assert_eq!(
        std::fs::metadata(www.join("index.html"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );

    // --verify repairs a file changed behind kiln's back.
    std::fs::write(www.join("robots.txt"), "tampered").unwrap();
    assert_eq!(run(&[])["updated"], 0);
    let verified = run(&["--verify"]);
    assert_eq!(verified["plan"]["updates"][0], "robots.txt", "{verified:#}");
    assert_eq!(
        std::fs::read(www.join("robots.txt")).unwrap(),
        std::fs::read(build.out.join("robots.txt")).unwrap()
    );

    // A removed file is deferred once, then deleted.
    let removed = "downloads/emberline-brochure.pdf";
    std::fs::remove_file(build.site.path().join(removed)).unwrap();
    build.rebuild();
    assert!(run(&[])["deferred"].as_u64().unwrap() >= 1);
    assert!(www.join(removed).exists());
    // --max-delete refuses, and changes nothing.
    let refused = kiln()
        .arg("deploy")
        .arg(&build.out)
        .args(["--to", &target, "--keep-deploys", "1", "--keep-for", "0"])
        .args(["--max-delete", "0"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--max-delete 0"));
    assert!(www.join(removed).exists());
    // A dry run shows the whole plan, then says what a deploy would refuse.
    let dry = kiln()
        .arg("deploy")
        .arg(&build.out)
        .args(["--to", &target, "--keep-deploys", "1", "--keep-for", "0"])
        .args(["--max-delete", "0", "--dry-run"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&dry.stdout),
        String::from_utf8_lossy(&dry.stderr),
    );
    assert_eq!(dry.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.lines().any(|l| l.trim_start().starts_with("delete")
            && l.contains(removed)
            && l.contains("(left the build 1 deploy(s) ago)")),
        "{stdout}"
    );
    assert!(
        stderr.contains("more than --max-delete 0")
            && stderr.contains("a deploy would change nothing"),
        "{stderr}"
    );
    assert!(www.join(removed).exists());
    let second = run(&[]);
    assert!(second["deleted"].as_u64().unwrap() >= 1, "{second:#}");
    assert!(!www.join(removed).exists());
    // The emptied folder goes too.
    assert!(!www.join("downloads").exists());
}

#[test]
fn s3_multipart_encodings_purge_hook_and_foreign_keys() {
    // A 12 MB file goes up in parts (threshold 5 MiB from kiln.toml).
    let build = Build::new();
    let big: Vec<u8> = (0..12_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    build.site.write("downloads/big.bin", &big);
    build.rebuild();
    let dir = tempfile::tempdir().unwrap();
    let purged = dir.path().join("purged.txt");
    let config = dir.path().join("kiln.toml");
    std::fs::write(
        &config,
        format!(
            "[deploy]\nmultipart_threshold = 5242880\npurge_command = \"cat > '{}'\"\n",
            purged.display()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let bucket = bucket("multi");
    let proxy = Proxy::start(0.0);
    let target = format!("s3://{bucket}");
    let first = deploy_json(
        &build.out,
        &proxy.endpoint,
        &["--to", &target, "--config", config],
    );
    assert_eq!(first["uploaded"], expected(&build.out, "").len());
    let stats = proxy.stats();
    assert_eq!(
        stats["by_operation"]["CompleteMultipartUpload"], 1,
        "{stats}"
    );
    assert!(
        stats["by_operation"]["UploadPart"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert_eq!(stored(&bucket)["downloads/big.bin"].bytes, big);
    // The hook got the changed paths that a CDN may hold: no immutable ones.
    let paths = std::fs::read_to_string(&purged).unwrap();
    assert!(paths.lines().any(|l| l == "index.html"), "{paths}");
    let m = manifest(&build.out);
    let css = &m.files["css/main.css"].output;
    assert!(!paths.lines().any(|l| l == css), "{paths}");

    // A key kiln never wrote stays, unless --prune-foreign.
    runtime()
        .block_on(
            client()
                .put_object()
                .bucket(&bucket)
                .key("uploaded-by-hand.txt")
                .body(b"mine".to_vec().into())
                .send(),
        )
        .unwrap();
    deploy_json(&build.out, &proxy.endpoint, &["--to", &target, "--verify"]);
    assert!(stored(&bucket).contains_key("uploaded-by-hand.txt"));
    let pruned = deploy_json(
        &build.out,
        &proxy.endpoint,
        &["--to", &target, "--prune-foreign"],
    );
    assert_eq!(pruned["plan"]["deletions"][0], "uploaded-by-hand.txt");
    assert!(!stored(&bucket).contains_key("uploaded-by-hand.txt"));

    // encoding = gzip: the canonical key holds the gzip variant; none: plain files only.
    for (encoding, name) in [("gzip", "gz"), ("none", "plain")] {
        let other = self::bucket(name);
        deploy_json(
            &build.out,
            &server().endpoint,
            &["--to", &format!("s3://{other}"), "--encoding", encoding],
        );
        let got = content(stored(&other), "");
        assert!(
            !got.keys().any(|k| k.ends_with(".br") || k.ends_with(".gz")),
            "{encoding}"
        );
        let page = &got["index.html"];
        let built = std::fs::read(build.out.join("index.html")).unwrap();
        if encoding == "gzip" {
            assert_eq!(page.content_encoding.as_deref(), Some("gzip"));
            assert_eq!(
                page.bytes,
                std::fs::read(build.out.join("index.html.gz")).unwrap()
            );
        } else {
            assert_eq!(page.content_encoding, None);
            assert_eq!(page.bytes, built);
        }
        assert_eq!(
            page.content_type.as_deref(),
            Some("text/html; charset=utf-8")
        );
    }
}

/// A stand-in for the CloudFront API: answers each CreateInvalidation with
/// `reply` (201 and an invalidation by default) and hands the requests (head
/// and body) to the test.
fn cloudfront_mock(
    reply: Option<(&'static str, &'static str)>,
) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (sender, requests) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let (status, xml) = reply.unwrap_or((
                "201 Created",
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                <Invalidation xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\">\
                <Id>I2KILNTEST</Id><Status>InProgress</Status>\
                <CreateTime>2026-11-25T00:00:00Z</CreateTime><InvalidationBatch>\
                <Paths><Quantity>0</Quantity></Paths><CallerReference>x</CallerReference>\
                </InvalidationBatch></Invalidation>",
            ));
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nLocation: http://{addr}/i\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            let _ = sender.send(head + &String::from_utf8_lossy(&body));
        }
    });
    (format!("http://{addr}"), requests)
}

#[test]
fn cloudfront_invalidation_for_changed_pages_and_warming() {
    let build = Build::new();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", dir.path().join("www").display());
    let (endpoint, requests) = cloudfront_mock(None);
    // The build served like the CDN will: warming fetches through it.
    let (mut serve, line) = spawn_first_line(
        std::process::Command::new(assert_cmd::cargo::cargo_bin("kiln"))
            .arg("serve")
            .arg(&build.out)
            .args(["--addr", "127.0.0.1:0"]),
    );
    let base = line
        .split(" at ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let run = || {
        let output = kiln()
            .arg("deploy")
            .arg(&build.out)
            .args(["--to", &target, "--json", "--cloudfront", "E2KILNTEST"])
            .args(["--warm", &base])
            .env("AWS_ACCESS_KEY_ID", "kiln-test")
            .env("AWS_SECRET_ACCESS_KEY", "kiln-test-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_CLOUDFRONT", &endpoint)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let first = run();
    let request = requests
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("an invalidation request");
    assert!(
        request.starts_with("POST /2020-05-31/distribution/E2KILNTEST/invalidation "),
        "{request}"
    );
    // Signed with the environment's credentials, for CloudFront's global region.
    let lower = request.to_ascii_lowercase();
    assert!(
        lower.contains("authorization: aws4-hmac-sha256 credential=kiln-test/")
            && lower.contains("/us-east-1/cloudfront/aws4_request"),
        "{request}"
    );
    assert!(request.contains("<Quantity>"), "{request}");
    // Many pages changed: collapsed to folders, and never an immutable file by name.
    let paths = first["invalidation"]["paths"].as_array().unwrap();
    assert!(paths.len() <= 15, "{paths:?}");
    assert!(
        request.contains("<Path>/</Path>") || request.contains("<Path>/*</Path>"),
        "{request}"
    );
    assert_eq!(first["invalidation"]["id"], "I2KILNTEST");
    // Warming fetched every changed URL; the server chose brotli.
    let warmed = first["warmed"].as_array().unwrap();
    assert!(!warmed.is_empty());
    for w in warmed {
        assert_eq!(w["status"], 200, "{w}");
    }
    let index = warmed
        .iter()
        .find(|w| {
            w["url"].as_str().unwrap().ends_with("/index.html")
                && !w["url"].as_str().unwrap().contains("/about/")
        })
        .unwrap();
    assert_eq!(index["content_encoding"], "br");

    // Nothing changed: no invalidation.
    let again = run();
    assert!(again["invalidation"].is_null());
    assert!(
        requests
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err()
    );
    let _ = serve.kill();
    let _ = serve.wait();
}

#[test]
fn cloudflare_and_fastly_purge_the_changed_urls() {
    let build = Build::new();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", dir.path().join("www").display());
    let (cloudflare, cf_requests) = cloudfront_mock(Some((
        "200 OK",
        r#"{"success": true, "errors": [], "messages": [], "result": {"id": "p1"}}"#,
    )));
    let (fastly, fastly_requests) = cloudfront_mock(Some(("200 OK", r#"{"status": "ok"}"#)));
    let run = || {
        let output = kiln()
            .arg("deploy")
            .arg(&build.out)
            .args(["--to", &target, "--json"])
            .args(["--cloudflare-zone", "Z1", "--fastly-service", "S1"])
            .args(["--site-url", "https://www.example.com/"])
            .env("CLOUDFLARE_API_TOKEN", "cf-token")
            .env("CLOUDFLARE_API_URL", &cloudflare)
            .env("FASTLY_API_TOKEN", "fastly-token")
            .env("FASTLY_API_URL", &fastly)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let first = run();
    let purged = first["purged"].as_array().unwrap();
    assert_eq!(purged[0]["cdn"], "cloudflare:Z1");
    assert_eq!(purged[1]["cdn"], "fastly:S1");
    let urls = purged[0]["urls"].as_u64().unwrap() as usize;
    let m = kiln::emit::manifest::Manifest::read(&build.out).unwrap();
    // Every page and unhashed asset, by its URL (a page also by its folder);
    // no hashed file, no .br/.gz sibling.
    let mut expected: Vec<String> = m
        .served()
        .into_iter()
        .filter(|s| !s.cache_control.contains("immutable"))
        .flat_map(|s| {
            let url = format!("https://www.example.com/{}", s.path.replace(' ', "%20"));
            let dir = url.strip_suffix("index.html").map(str::to_owned);
            std::iter::once(url).chain(dir)
        })
        .collect();
    expected.sort();
    expected.dedup();
    assert_eq!(urls, expected.len());

    // Cloudflare: 30 URLs per request, the token as a bearer.
    let mut files: Vec<String> = Vec::new();
    for _ in 0..purged[0]["requests"].as_u64().unwrap() {
        let request = cf_requests
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap();
        assert!(
            request.starts_with("POST /zones/Z1/purge_cache "),
            "{request}"
        );
        assert!(
            request
                .to_ascii_lowercase()
                .contains("authorization: bearer cf-token"),
            "{request}"
        );
        let body: serde_json::Value =
            serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        let batch = body["files"].as_array().unwrap();
        assert!(batch.len() <= 30);
        files.extend(batch.iter().map(|f| f.as_str().unwrap().to_owned()));
    }
    files.sort();
    assert_eq!(files, expected);
    assert_eq!(
        purged[0]["requests"].as_u64().unwrap() as usize,
        expected.len().div_ceil(30)
    );

    // Fastly: one purge per URL (up to 100), the token as Fastly-Key.
    let mut purged_urls: Vec<String> = (0..purged[1]["requests"].as_u64().unwrap())
        .map(|_| {
            let request = fastly_requests
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap();
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("fastly-key: fastly-token"),
                "{request}"
            );
            let path = request.split(' ').nth(1).unwrap();
            format!(
                "https://{}",
                path.strip_prefix("/purge/")
                    .unwrap_or_else(|| panic!("{request}"))
            )
        })
        .collect();
    purged_urls.sort();
    assert_eq!(purged_urls, expected);

    // Nothing changed: nothing purged.
    let again = run();
    assert!(again.get("purged").is_none(), "{again:#}");
    assert!(
        cf_requests
            .recv_timeout(std::time::Duration::from_millis(300))
            .is_err()
    );
}

#[test]
fn a_refused_invalidation_is_a_clear_error_after_a_complete_deploy() {
    let build = Build::new();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let (endpoint, requests) = cloudfront_mock(Some((
        "403 Forbidden",
        "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type>\
         <Code>AccessDenied</Code><Message>User: kiln-test is not authorized to perform: \
         cloudfront:CreateInvalidation</Message></Error></ErrorResponse>",
    )));
    let output = kiln()
        .arg("deploy")
        .arg(&build.out)
        .arg("--to")
        .arg(format!("dir:{}", www.display()))
        .args(["--cloudfront", "E2KILNTEST"])
        .env("AWS_ACCESS_KEY_ID", "kiln-test")
        .env("AWS_SECRET_ACCESS_KEY", "kiln-test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL_CLOUDFRONT", &endpoint)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cloudfront:E2KILNTEST")
            && stderr.contains("the deploy itself is complete")
            && stderr.contains("AccessDenied: User: kiln-test is not authorized"),
        "{stderr}"
    );
    // A 403 is not retried; the site went out whole.
    assert!(
        requests
            .recv_timeout(std::time::Duration::from_secs(5))
            .is_ok()
    );
    assert!(requests.try_recv().is_err());
    assert!(www.join("index.html").is_file());
}

#[test]
fn verbose_deploys_log_each_object_and_json_stays_clean() {
    let build = Build::new();
    let dir = tempfile::tempdir().unwrap();
    let target = format!("dir:{}", dir.path().join("www").display());
    let output = kiln()
        .arg("deploy")
        .arg(&build.out)
        .args(["--to", &target, "--json", "--verbose"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let uploads = summary["plan"]["uploads"].as_array().unwrap();
    let logged: Vec<&str> = stderr
        .lines()
        .filter(|l| l.trim_start().starts_with("upload "))
        .collect();
    assert_eq!(logged.len(), uploads.len(), "{stderr}");
    for key in uploads {
        let key = key.as_str().unwrap();
        assert!(
            logged.iter().any(|l| l.ends_with(&format!("  {key}"))),
            "{key} not logged:\n{stderr}"
        );
    }
}

#[test]
fn private_files_are_not_deployed() {
    let site = crate::util::Site::new()
        .file("index.html", "<p>home</p>")
        .file(
            ".vite/manifest.json",
            r#"{"index.html": {"file": "index.html"}}"#,
        );
    let built = crate::util::build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    let output = kiln()
        .arg("deploy")
        .arg(&built.out)
        .arg("--to")
        .arg(format!("dir:{}", www.display()))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(www.join("index.html").is_file());
    assert!(!www.join(".vite").exists());
}

/// `[compress] zstd = true`: the `.zst` siblings go up beside the others
/// under `negotiate`, with `Content-Encoding: zstd`, and decode to the file.
#[test]
fn s3_zstd_siblings_are_uploaded_with_their_encoding() {
    let site = Site::fixture("site").file("kiln.toml", "[compress]\nzstd = true\n");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let built = build_into(site.path(), &out, &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let bucket = bucket("zstd");
    let summary = deploy_json(
        &out,
        &server().endpoint,
        &["--to", &format!("s3://{bucket}")],
    );
    assert_eq!(summary["deleted"], 0, "{summary:#}");
    let objects = stored(&bucket);
    let manifest = built.manifest();
    let mut checked = 0;
    for entry in manifest.files.values().filter(|e| e.zstd.is_some()) {
        let key = format!("{}.zst", entry.output);
        let object = objects
            .get(&key)
            .unwrap_or_else(|| panic!("{key} not uploaded"));
        assert_eq!(object.content_encoding.as_deref(), Some("zstd"), "{key}");
        assert_eq!(
            object.content_type.as_deref(),
            Some(entry.content_type.as_str()),
            "{key}"
        );
        let plain = &objects[&entry.output].bytes;
        assert_eq!(
            &zstd::bulk::decompress(&object.bytes, plain.len()).unwrap(),
            plain,
            "{key}"
        );
        checked += 1;
    }
    assert!(checked >= 5, "{checked} .zst objects");
}
