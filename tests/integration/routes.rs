//! Routes (`_redirects` and `[routes]`): the same requests answered alike by
//! `kiln serve`, by a real nginx running the generated `kiln-nginx.conf` and
//! by a real Caddy importing `kiln-caddy.conf`, and a stock SPA's deep links
//! opened in Chromium against them and Apache (whose `.htaccess` has its own
//! tests in apache.rs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::serve::{Reply, Server, http};
use crate::util::{Built, Site, browser_harness, build};

const REDIRECTS: &str = "# Netlify syntax
/blog/*              /news/:splat          301
/posts/:year/:slug   /news/:year-:slug     308
/about               /team                 302
/legacy.html         /index.html           301!
/gone                /404.html             410
/shop                https://shop.example.com/  302
/geo                 /news/                302  Country=us
";

pub(crate) const CONFIG: &str = r#"
[routes]
fallback = "index.html"

[[routes.redirects]]
from = "/docs/*"
to = "/guide/:splat"
status = 308
"#;

pub(crate) fn site() -> Site {
    Site::new()
        .file("kiln.toml", CONFIG)
        .file("_redirects", REDIRECTS)
        .file(
            "index.html",
            format!(
                "<!doctype html><title>home</title><p>the app shell</p>{}",
                "<p>A paragraph long enough to be worth compressing.</p>\n".repeat(40)
            ),
        )
        .file(
            "legacy.html",
            "<!doctype html><title>legacy</title><p>old</p>",
        )
        .file(
            "about/index.html",
            "<!doctype html><title>about</title><p>about us</p>",
        )
        .file(
            "news/index.html",
            "<!doctype html><title>news</title><p>news</p>",
        )
        .file(
            "guide/index.html",
            "<!doctype html><title>guide</title><p>guide</p>",
        )
        .file(
            "404.html",
            "<!doctype html><title>404</title><p>nothing here</p>",
        )
}

/// What every server must answer for the site above.
pub(crate) fn check_routes(name: &str, get: &dyn Fn(&str) -> Reply) {
    let redirect = |path: &str, status: u16, location: &str| {
        let r = get(path);
        assert_eq!(r.status, status, "{name}: GET {path}");
        assert_eq!(r.header("location"), Some(location), "{name}: GET {path}");
    };
    redirect("/blog/2024/x", 301, "/news/2024/x");
    redirect("/blog", 301, "/news/");
    redirect("/blog/a?page=2", 301, "/news/a?page=2");
    redirect("/posts/2024/hello", 308, "/news/2024-hello");
    redirect("/docs/intro/", 308, "/guide/intro/");
    redirect("/shop", 302, "https://shop.example.com/");
    // Forced: the file exists and the rule still applies.
    redirect("/legacy.html", 301, "/index.html");

    // Shadowed: /about/ is a page, so `/about /team` does not apply.
    let about = get("/about/");
    assert_eq!(about.status, 200, "{name}");
    assert!(
        String::from_utf8_lossy(&about.body).contains("about us"),
        "{name}"
    );
    assert_ne!(get("/about").header("location"), Some("/team"), "{name}");

    // A status rule: the page's bytes (kiln serve) or the error page (nginx).
    let gone = get("/gone");
    assert_eq!(gone.status, 410, "{name}");

    // The fallback: any other path is the app shell, as HTML, revalidated.
    for path in ["/settings/profile", "/geo", "/a/b/c?x=1"] {
        let r = get(path);
        assert_eq!(r.status, 200, "{name}: GET {path}");
        assert!(
            String::from_utf8_lossy(&r.body).contains("the app shell"),
            "{name}: GET {path}"
        );
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{name}: GET {path}"
        );
        assert!(
            r.header("cache-control")
                .is_some_and(|c| c.contains("must-revalidate")),
            "{name}: GET {path}: {:?}",
            r.header("cache-control")
        );
    }
}

#[test]
fn redirects_rewrites_and_the_fallback_in_kiln_serve() {
    let site = site();
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // The rule kiln cannot apply is named with its line, and skipped.
    assert!(
        built
            .stderr
            .contains("_redirects:8:1: warning: `Country=us`: conditions"),
        "{}",
        built.stderr
    );
    // `_redirects` goes out as written, then kiln.toml's rules and the fallback.
    let written = built.text("_redirects");
    assert!(written.contains(REDIRECTS), "{written}");
    assert!(
        written.ends_with("/docs/* /guide/:splat 308\n/* /index.html 200\n"),
        "{written}"
    );
    let manifest = built.manifest();
    assert_eq!(manifest.routes.rules.len(), 7);
    assert_eq!(manifest.routes.fallback.as_deref(), Some("index.html"));
    assert!(!manifest.files.contains_key("_redirects"));

    let server = Server::start(&built);
    check_routes("kiln serve", &|path| server.get(path, &[]));
    let gone = server.get("/gone", &[]);
    assert!(String::from_utf8_lossy(&gone.body).contains("nothing here"));
}

#[test]
fn a_fallback_that_is_not_a_page_and_bad_rules_are_errors() {
    let site = Site::new()
        .file("kiln.toml", "[routes]\nfallback = \"app.html\"\n")
        .file("index.html", "<p>x</p>");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 1, "{}", built.stderr);
    assert!(
        built
            .stderr
            .contains("error: `routes.fallback`: `app.html` is not a file of the build"),
        "{}",
        built.stderr
    );

    let site = Site::new()
        .file(
            "kiln.toml",
            "[[routes.redirects]]\nfrom = \"/a/*/b\"\nto = \"/x\"\n",
        )
        .file("index.html", "<p>x</p>");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 2, "{}", built.stderr);
    assert!(
        built.stderr.contains("kiln.toml:1:1")
            && built.stderr.contains("`*` may only end a pattern"),
        "{}",
        built.stderr
    );
}

/// The generated CloudFront Function, run in node on viewer-request events
/// as CloudFront calls it: what it answers, or the URI it sends to S3.
#[test]
fn the_cloudfront_function_routes_requests_for_an_s3_origin() {
    let site = site();
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let function = built.out.join("kiln-cloudfront-function.js");
    let cases = serde_json::json!([
        ["/blog/2024/x", {}],
        ["/blog/a", {"page": {"value": "2"}}],
        ["/posts/2024/hello", {}],
        ["/legacy.html", {}],
        ["/about/", {}],
        ["/about", {}],
        ["/gone", {}],
        ["/settings/profile", {}],
        ["/a.js", {}],
        ["/docs/intro/", {}],
        ["/shop", {}],
    ]);
    let got = run_cloudfront_function(&function, &cases);
    assert_eq!(
        got,
        serde_json::json!([
            [301, "/news/2024/x"],
            [301, "/news/a?page=2"],
            [308, "/news/2024-hello"],
            [301, "/index.html"],
            [0, "/about/index.html"],
            [0, "/about/index.html"],
            [410, null],
            [0, "/index.html"],
            [0, "/a.js"],
            [308, "/guide/intro/"],
            [302, "https://shop.example.com/"],
        ])
    );
}

/// The CloudFront Function `function` run in node on viewer-request events
/// `[[uri, querystring], …]` as CloudFront calls it: for each, `[status,
/// location]` when it answers, or `[0, uri]` for the URI it sends to the origin.
pub(crate) fn run_cloudfront_function(
    function: &Path,
    cases: &serde_json::Value,
) -> serde_json::Value {
    let script = r#"
        const fs = require("fs");
        const handler = new Function(fs.readFileSync(process.argv[1], "utf8") + ";return handler;")();
        const out = JSON.parse(process.argv[2]).map(([uri, querystring]) => {
            const r = handler({ request: { uri, querystring, headers: {} } });
            return r.statusCode
                ? [r.statusCode, r.headers ? r.headers.location.value : null]
                : [0, r.uri];
        });
        console.log(JSON.stringify(out));
    "#;
    let output = Command::new("node")
        .arg("-e")
        .arg(script)
        .arg(function)
        .arg(cases.to_string())
        .output()
        .expect("node runs (bash tests/setup.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A loopback port nothing listens on (for a server started next).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until a server accepts connections at `addr`: a hang guard, not a
/// timing assertion (the requests that follow fail clearly if it never does).
pub(crate) fn wait_for(addr: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A real nginx serving an output directory with its generated snippet.
pub(crate) struct Nginx {
    child: Child,
    pub(crate) addr: String,
    _dir: tempfile::TempDir,
}

impl Nginx {
    pub(crate) fn start(root: &Path) -> Nginx {
        let binary = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("nginx is installed by `bash tests/setup.sh`");
        let module = Path::new("/usr/lib/nginx/modules/ngx_http_brotli_static_module.so");
        assert!(
            module.exists(),
            "libnginx-mod-http-brotli-static is installed by `bash tests/setup.sh`"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let d = dir.path().display();
        // Workers read the output as the user that runs the tests.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;"
        } else {
            ""
        };
        let conf = format!(
            "load_module {module};\n{user}\ndaemon off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{}}\nhttp {{\n\
             include /etc/nginx/mime.types;\naccess_log off;\n\
             client_body_temp_path {d}/body;\nproxy_temp_path {d}/proxy;\n\
             fastcgi_temp_path {d}/fastcgi;\nuwsgi_temp_path {d}/uwsgi;\nscgi_temp_path {d}/scgi;\n\
             server {{\nlisten 127.0.0.1:{port};\nroot {root};\ninclude {root}/kiln-nginx.conf;\n}}\n}}\n",
            module = module.display(),
            root = root.display(),
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let check = Command::new(&binary)
            .arg("-t")
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "nginx -t refuses the generated config:\n{}\n{}",
            String::from_utf8_lossy(&check.stderr),
            std::fs::read_to_string(root.join("kiln-nginx.conf")).unwrap_or_default()
        );
        let child = Command::new(&binary)
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        wait_for(&addr);
        Nginx {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker (SIGKILL would orphan it).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// A real Caddy serving an output directory with its generated snippet.
pub(crate) struct Caddy {
    child: Child,
    pub(crate) addr: String,
    _dir: tempfile::TempDir,
}

impl Caddy {
    pub(crate) fn start(root: &Path) -> Caddy {
        let binary = Path::new("/usr/bin/caddy");
        assert!(
            binary.exists(),
            "caddy is installed by `bash tests/setup.sh`"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("Caddyfile");
        std::fs::write(
            &conf,
            format!(
                "{{\n\tadmin off\n\tauto_https off\n}}\n\
                 http://127.0.0.1:{port} {{\n\troot * {root}\n\timport {root}/kiln-caddy.conf\n}}\n",
                root = root.display()
            ),
        )
        .unwrap();
        let env = [
            ("XDG_DATA_HOME", dir.path().join("data")),
            ("XDG_CONFIG_HOME", dir.path().join("config")),
            ("HOME", dir.path().to_path_buf()),
        ];
        let check = Command::new(binary)
            .args(["validate", "--adapter", "caddyfile", "--config"])
            .arg(&conf)
            .envs(env.clone())
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "caddy refuses the generated snippet:\n{}\n{}",
            String::from_utf8_lossy(&check.stderr),
            std::fs::read_to_string(root.join("kiln-caddy.conf")).unwrap_or_default()
        );
        let child = Command::new(binary)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&conf)
            .envs(env)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        wait_for(&addr);
        Caddy {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn caddy_answers_the_routes_like_kiln_serve() {
    let site = site();
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let caddy = Caddy::start(&built.out);
    check_routes("caddy", &|path| http(&caddy.addr, "GET", path, &[]));
    let page = http(
        &caddy.addr,
        "GET",
        "/deep/link",
        &[("Accept-Encoding", "br")],
    );
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-encoding"), Some("br"));
    // The site's 404 page, with its status, for a path no rule and no file answers.
    let built = build(
        Site::new()
            .file("index.html", "<p>home</p>")
            .file("404.html", "<p>nothing here</p>")
            .path(),
        &[],
    );
    let caddy = Caddy::start(&built.out);
    let missing = http(&caddy.addr, "GET", "/no/such/page", &[]);
    assert_eq!(missing.status, 404);
    assert!(String::from_utf8_lossy(&missing.body).contains("nothing here"));
}

#[test]
fn nginx_answers_the_routes_like_kiln_serve() {
    let site = site();
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let nginx = Nginx::start(&built.out);
    check_routes("nginx", &|path| http(&nginx.addr, "GET", path, &[]));
    // Precompressed siblings, as the CDN serves them.
    assert!(built.manifest().files["index.html"].brotli.is_some());
    let page = http(
        &nginx.addr,
        "GET",
        "/deep/link",
        &[("Accept-Encoding", "br")],
    );
    assert_eq!(page.header("content-encoding"), Some("br"));
    assert_eq!(page.status, 200);
}

/// The stock create-vite React app (React Router, `BrowserRouter`): deep
/// links load the app, which routes them on the client.
fn spa() -> (Site, Built) {
    let site = Site::fixture("frameworks/built/vite-react").file(
        "kiln.toml",
        "[routes]\nfallback = \"index.html\"\n[outputs]\napache = true\n",
    );
    let built = build(site.path(), &["--strict"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    (site, built)
}

#[test]
fn a_stock_spa_s_deep_links_work_in_chromium_on_kiln_serve_nginx_caddy_and_apache() {
    let (_site, built) = spa();
    let checks = serde_json::json!([
        {"path": "/", "text": "Get started"},
        {"path": "/about/", "text": "About this fixture"},
        {"path": "/no/such/page", "text": "Not found"},
        {"path": "/settings/profile?tab=2", "text": "Not found"},
    ])
    .to_string();
    let server = Server::start(&built);
    let nginx = Nginx::start(&built.out);
    let caddy = Caddy::start(&built.out);
    let apache = crate::apache::Apache::start(&built.out, "/");
    for (name, addr) in [
        ("kiln serve", &server.addr),
        ("nginx", &nginx.addr),
        ("caddy", &caddy.addr),
        ("apache", &apache.addr),
    ] {
        let result = browser_harness(
            "deep-link.mjs",
            ["--origin", &format!("http://{addr}"), "--check", &checks],
        );
        for link in result["links"].as_array().unwrap() {
            assert_eq!(link["status"], 200, "{name}: {link}");
            assert_eq!(link["ok"], true, "{name}: {link}");
            assert_eq!(link["errors"], serde_json::json!([]), "{name}: {link}");
        }
    }
}
