//! Host presets (`--host`): each writes what its host reads and nothing it
//! rejects, checked against the host's own server where one runs here:
//! wrangler's `pages dev` (Cloudflare's workerd, reading `_headers` and
//! `_redirects` as Pages does), `netlify dev` (Netlify's CLI, which reads them as
//! Netlify does but for Cache-Control, which its static server overrides), Debian's
//! nginx, Caddy and Apache, and the CloudFront
//! Function run in node. The stock create-vite React app's deep links are
//! opened in Chromium on each.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::apache::Apache;
use crate::routes::{Caddy, Nginx, run_cloudfront_function};
use crate::serve::{Server, http};
use crate::util::{Built, Site, browser_harness, build, build_into, tree};

/// Every file a host reads, or kiln's own, at the output root.
const HOST_FILES: [&str; 6] = [
    "_headers",
    "_redirects",
    "kiln-nginx.conf",
    "kiln-caddy.conf",
    "kiln-cloudfront-function.js",
    ".htaccess",
];
const KILN_FILES: [&str; 5] = [
    "kiln-manifest.json",
    "kiln-report.html",
    "rev-manifest.json",
    "staticfiles.json",
    ".manifest.json",
];

/// The stock create-vite React app (React Router), with the SPA fallback and
/// a header for every file.
fn spa_site(host: &str) -> Site {
    Site::fixture("frameworks/built/vite-react").file(
        "kiln.toml",
        format!(
            "host = \"{host}\"\n\
             [routes]\nfallback = \"index.html\"\n\
             [[headers]]\nfor = \"**\"\nvalues = {{ \"X-Content-Type-Options\" = \"nosniff\" }}\n"
        ),
    )
}

const DEEP_LINKS: &str = r#"[
    {"path": "/", "text": "Get started"},
    {"path": "/about/", "text": "About this fixture"},
    {"path": "/no/such/page", "text": "Not found"},
    {"path": "/settings/profile?tab=2", "text": "Not found"}
]"#;

fn deep_links_work(name: &str, addr: &str) {
    let result = browser_harness(
        "deep-link.mjs",
        ["--origin", &format!("http://{addr}"), "--check", DEEP_LINKS],
    );
    let links = result["links"].as_array().unwrap();
    assert_eq!(links.len(), 4, "{name}: {result}");
    for link in links {
        assert_eq!(link["status"], 200, "{name}: {link}");
        assert_eq!(link["ok"], true, "{name}: {link}");
        assert_eq!(link["errors"], serde_json::json!([]), "{name}: {link}");
    }
}

/// The host files and kiln's own files at the root of `out`.
fn root_files(out: &Path) -> Vec<&'static str> {
    HOST_FILES
        .iter()
        .chain(&KILN_FILES)
        .copied()
        .filter(|f| out.join(f).exists())
        .collect()
}

fn siblings(out: &Path) -> Vec<String> {
    tree(out)
        .into_keys()
        .filter(|p| p.ends_with(".br") || p.ends_with(".gz"))
        .collect()
}

/// A host's local server (an npm package of `tests/hosts/`) serving a
/// folder, in its own process group, stopped with its children when dropped.
struct HostServer {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl HostServer {
    /// `wrangler pages dev`: Cloudflare Pages (workerd).
    fn wrangler(root: &Path) -> HostServer {
        HostServer::start("wrangler", "pages dev", |port, _| {
            let mut args: Vec<String> = ["pages", "dev"].map(String::from).to_vec();
            args.push(root.display().to_string());
            args.extend(
                [
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--compatibility-date",
                    "2024-01-01",
                    "--log-level",
                    "error",
                ]
                .map(String::from),
            );
            args
        })
    }

    /// `netlify dev`: Netlify, offline (no Deno for edge functions: none
    /// are used). Its proxy listens before its static server, which takes a
    /// port of its own.
    fn netlify(root: &Path) -> HostServer {
        HostServer::start("netlify", "dev", |port, static_port| {
            let mut args: Vec<String> = [
                "dev",
                "--offline",
                "--internal-disable-edge-functions",
                "--no-open",
                "--dir",
            ]
            .map(String::from)
            .to_vec();
            args.push(root.display().to_string());
            args.extend(
                [
                    "--port",
                    &port.to_string(),
                    "--staticServerPort",
                    &static_port.to_string(),
                ]
                .map(String::from),
            );
            args
        })
    }

    /// Start `tests/hosts/node_modules/.bin/<bin>` with `args(port,
    /// spare_port)`, and wait until it answers a page (a hang guard of two
    /// minutes, not a timing assertion); fail with its log if it exits or
    /// never does.
    fn start(bin: &str, what: &str, args: impl FnOnce(u16, u16) -> Vec<String>) -> HostServer {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/hosts/node_modules/.bin")
            .join(bin);
        assert!(path.exists(), "{bin} is installed by `bash tests/setup.sh`");
        let dir = tempfile::tempdir().unwrap();
        // Two distinct free ports: both listeners are held while they are read.
        let (port, spare) = {
            let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            (
                a.local_addr().unwrap().port(),
                b.local_addr().unwrap().port(),
            )
        };
        let log = dir.path().join("server.log");
        let mut child = std::os::unix::process::CommandExt::process_group(
            Command::new(path)
                .args(args(port, spare))
                .current_dir(dir.path())
                .env("HOME", dir.path())
                .env("WRANGLER_SEND_METRICS", "false")
                .env("NETLIFY_TELEMETRY_DISABLED", "1")
                .env("CI", "1")
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::process::Stdio::null()),
            0,
        )
        .spawn()
        .unwrap();
        let addr = format!("127.0.0.1:{port}");
        let started = std::time::Instant::now();
        while !answers(&addr) {
            let exited = child.try_wait().unwrap();
            if exited.is_some() || started.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill();
                panic!(
                    "{bin} {what} did not serve ({exited:?}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        HostServer {
            child,
            addr,
            _dir: dir,
        }
    }
}

/// Whether an HTTP server at `addr` answers `GET /` with a status line.
fn answers(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

impl Drop for HostServer {
    fn drop(&mut self) {
        // wrangler runs workerd, netlify its static server: stop the group.
        let _ = Command::new("kill")
            .args(["--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn netlify_dev_applies_the_netlify_preset_s_headers_and_routes() {
    let site = spa_site("netlify");
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(root_files(&built.out), ["_headers", "_redirects"]);
    assert_eq!(siblings(&built.out), Vec::<String>::new());
    let netlify = HostServer::netlify(&built.out);
    let manifest = built.manifest();
    let mut checked = 0;
    for served in manifest.served() {
        let url = format!("/{}", served.path);
        let reply = http(&netlify.addr, "GET", &url, &[]);
        assert_eq!(reply.status, 200, "{url}");
        // The `/*` rule of `[[headers]]`. (netlify dev's static server sets its own
        // Cache-Control over `_headers`' one; Netlify itself does not.)
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{url}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
    let deep = http(&netlify.addr, "GET", "/settings/profile", &[]);
    assert_eq!(deep.status, 200);
    assert!(
        deep.header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(String::from_utf8_lossy(&deep.body).contains("root"));
    deep_links_work("netlify dev", &netlify.addr);
}

#[test]
fn cloudflare_pages_gets_wildcard_headers_no_siblings_and_kiln_s_files_beside() {
    let site = spa_site("cloudflare-pages");
    let built = build(site.path(), &["--strict", "--json"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let out = &built.out;
    assert_eq!(root_files(out), ["_headers", "_redirects"]);
    assert_eq!(siblings(out), Vec::<String>::new());
    let meta = out.with_file_name("out.kiln");
    for file in [
        "kiln-manifest.json",
        "kiln-report.html",
        "rev-manifest.json",
    ] {
        assert!(meta.join(file).is_file(), "{file} beside the output");
    }
    assert!(
        built.stdout.contains("out.kiln/kiln-report.html"),
        "{}",
        built.stdout
    );
    let headers = built.text("_headers");
    let rules = headers.lines().filter(|l| l.starts_with('/')).count();
    assert!(rules <= 100, "{rules} rules:\n{headers}");
    assert!(headers.contains("/assets/*\n"), "{headers}");
    assert!(built.text("_redirects").contains("/* /index.html 200"));

    // Every served file answers in Pages' own server with kiln's policy.
    let manifest = built.manifest();
    let pages = HostServer::wrangler(out);
    let mut checked = 0;
    for served in manifest.served() {
        // Pages answers a page at its pretty URL (and redirects the others there).
        let url = format!("/{}", served.path);
        let url = match url.strip_suffix("index.html") {
            Some(dir) => dir.to_owned(),
            None => url.strip_suffix(".html").map_or(url.clone(), str::to_owned),
        };
        let reply = http(&pages.addr, "GET", &url, &[]);
        assert_eq!(reply.status, 200, "{url}");
        assert_eq!(
            reply.header("cache-control"),
            Some(served.cache_control),
            "{url}\n{headers}"
        );
        assert_eq!(
            reply.header("x-content-type-options"),
            Some("nosniff"),
            "{url}"
        );
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
    // The fallback, for a deep link.
    let deep = http(&pages.addr, "GET", "/settings/profile", &[]);
    assert_eq!(deep.status, 200);
    assert_eq!(
        deep.header("cache-control"),
        Some("public, max-age=0, must-revalidate")
    );
    deep_links_work("wrangler pages dev", &pages.addr);

    // kiln serve finds the manifest beside the folder.
    let server = Server::start(&built);
    let asset = &manifest.files["assets/index-DhhLxCqF.js"].output;
    let reply = server.get(&format!("/{asset}"), &[]);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
}

#[test]
fn a_new_host_moves_kiln_s_files_and_a_config_key_still_wins() {
    let site = spa_site("all");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dist");
    let built = build_into(site.path(), &out, &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // Every host file but `.htaccess`, which is opt-in.
    assert_eq!(
        root_files(&out),
        [&HOST_FILES[..5], &KILN_FILES[..]].concat()
    );
    assert!(!siblings(&out).is_empty());

    // Netlify from the flag: the earlier build's manifests and siblings go,
    // and the folder is still kiln's (no --force).
    let built = build_into(site.path(), &out, &["--host", "netlify"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(root_files(&out), ["_headers", "_redirects"]);
    assert_eq!(siblings(&out), Vec::<String>::new());
    assert!(dir.path().join("dist.kiln/kiln-manifest.json").is_file());
    let again = build_into(site.path(), &out, &["--host", "netlify", "--json"]);
    let summary: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(summary["files_written"], 0, "{}", again.stdout);

    // And back (no --force either): the folder beside goes, but for a file
    // that is not kiln's.
    std::fs::write(dir.path().join("dist.kiln/notes.txt"), "mine").unwrap();
    let back = build_into(site.path(), &out, &[]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(
        root_files(&out),
        [&HOST_FILES[..5], &KILN_FILES[..]].concat()
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("dist.kiln"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["notes.txt"]);
    std::fs::remove_dir_all(dir.path().join("dist.kiln")).unwrap();
    let back = build_into(site.path(), &out, &[]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert!(!dir.path().join("dist.kiln").exists());

    // A folder of someone else's where the manifests would go is refused.
    std::fs::create_dir_all(dir.path().join("other.kiln")).unwrap();
    std::fs::write(dir.path().join("other.kiln/x"), "x").unwrap();
    let refused = build_into(
        site.path(),
        &dir.path().join("other"),
        &["--host", "netlify"],
    );
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("other.kiln"), "{}", refused.stderr);

    // A preset only sets defaults: kiln.toml's [outputs] and [compress] win.
    let site = site.file(
        "kiln.toml",
        "host = \"nginx\"\n[outputs]\ncaddy = true\n[compress]\ngzip = false\n",
    );
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(
        root_files(&built.out),
        [&["kiln-nginx.conf", "kiln-caddy.conf"][..], &KILN_FILES[..]].concat()
    );
    let variants = siblings(&built.out);
    assert!(!variants.is_empty());
    assert!(variants.iter().all(|p| p.ends_with(".br")), "{variants:?}");

    // A host kiln does not know is exit 2, naming the file and the line.
    let site = site.file("kiln.toml", "\nhost = \"vercel\"\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 2, "{}", built.stderr);
    assert!(built.stderr.contains("kiln.toml:2:"), "{}", built.stderr);
    assert!(
        built.stderr.contains("cloudflare-pages"),
        "{}",
        built.stderr
    );
}

fn only(built: &Built, file: &str) {
    assert_eq!(built.code, 0, "{}", built.stderr);
    let host_files: Vec<&str> = root_files(&built.out)
        .into_iter()
        .filter(|f| HOST_FILES.contains(f))
        .collect();
    assert_eq!(host_files, [file]);
    assert!(built.out.join("kiln-manifest.json").is_file());
    assert!(!siblings(&built.out).is_empty());
}

#[test]
fn nginx_caddy_apache_and_s3_presets_serve_a_stock_spa_s_deep_links() {
    let nginx_site = spa_site("nginx");
    let nginx_built = build(nginx_site.path(), &["--strict"]);
    only(&nginx_built, "kiln-nginx.conf");
    let caddy_site = spa_site("caddy");
    let caddy_built = build(caddy_site.path(), &["--strict"]);
    only(&caddy_built, "kiln-caddy.conf");
    let apache_site = spa_site("apache");
    let apache_built = build(apache_site.path(), &["--strict"]);
    only(&apache_built, ".htaccess");
    let nginx = Nginx::start(&nginx_built.out);
    let caddy = Caddy::start(&caddy_built.out);
    let apache = Apache::start(&apache_built.out, "/");
    for (name, addr) in [
        ("nginx", &nginx.addr),
        ("caddy", &caddy.addr),
        ("apache", &apache.addr),
    ] {
        let page = http(
            addr,
            "GET",
            "/settings/profile",
            &[("Accept-Encoding", "br")],
        );
        assert_eq!(page.status, 200, "{name}");
        assert_eq!(page.header("content-encoding"), Some("br"), "{name}");
        assert_eq!(
            page.header("x-content-type-options"),
            Some("nosniff"),
            "{name}"
        );
        deep_links_work(name, addr);
    }

    // S3 has no routing: the CloudFront Function sends the deep links to the
    // app's page and the files to themselves.
    let s3_site = spa_site("s3");
    let s3 = build(s3_site.path(), &["--strict"]);
    only(&s3, "kiln-cloudfront-function.js");
    let asset = format!("/{}", s3.output_of("assets/index-DhhLxCqF.js"));
    let cases = serde_json::json!([
        ["/", {}],
        ["/about/", {}],
        ["/no/such/page", {}],
        ["/settings/profile", {}],
        [asset, {}]
    ]);
    let got = run_cloudfront_function(&s3.out.join("kiln-cloudfront-function.js"), &cases);
    assert_eq!(
        got,
        serde_json::json!([
            [0, "/index.html"],
            [0, "/about/index.html"],
            [0, "/index.html"],
            [0, "/index.html"],
            [0, asset]
        ])
    );
}
