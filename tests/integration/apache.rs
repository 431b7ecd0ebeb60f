//! `.htaccess` (`[outputs] apache = true`): a real Apache (Debian's apache2,
//! started by the tests with a config of their own and Debian's stock
//! mod_mime and mod_deflate settings, mod_brotli compressing on the fly)
//! serving builds, asked the same requests as `kiln serve`: content types,
//! Cache-Control and `[[headers]]`, the precompressed siblings, the routes,
//! the 404 page, a site under a base, and a site big enough to split the
//! file's regexes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::routes::{check_routes, free_port, wait_for};
use crate::serve::{Reply, Server, http};
use crate::util::{Built, Site, build};

const BINARY: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";
/// Debian's own settings for mod_mime (`.br` is Breton, `.gz` is
/// `application/x-gzip`) and mod_deflate (text is compressed on the fly).
const DEBIAN_MIME: &str = "/etc/apache2/mods-available/mime.conf";
const DEBIAN_DEFLATE: &str = "/etc/apache2/mods-available/deflate.conf";

/// A real Apache serving an output directory with its `.htaccess`, at `/`
/// or under an `Alias`; stopped when dropped.
pub(crate) struct Apache {
    child: Child,
    pub(crate) addr: String,
    dir: tempfile::TempDir,
}

impl Apache {
    /// Apache serving `root` at `mount`: `/` (the document root) or a path
    /// such as `/app` (an `Alias`), reading its `.htaccess`.
    pub(crate) fn start(root: &Path, mount: &str) -> Apache {
        Apache::launch(root, mount, false)
    }

    /// Apache serving `root` at `/` with the `.htaccess` included in its
    /// config (`AllowOverride None`): read once, at start.
    pub(crate) fn start_included(root: &Path) -> Apache {
        Apache::launch(root, "/", true)
    }

    fn launch(root: &Path, mount: &str, included: bool) -> Apache {
        let setup = "apache2 is installed by `bash tests/setup.sh`";
        assert!(Path::new(BINARY).exists(), "{BINARY} is missing: {setup}");
        for file in [DEBIAN_MIME, DEBIAN_DEFLATE] {
            assert!(Path::new(file).exists(), "{file} is missing: {setup}");
        }
        let module = |name: &str| {
            let path = PathBuf::from(MODULES).join(format!("mod_{name}.so"));
            path.exists().then_some(path)
        };
        let mpm = ["mpm_event", "mpm_prefork"]
            .into_iter()
            .find_map(|m| module(m).map(|p| (m, p)))
            .unwrap_or_else(|| panic!("no MPM module in {MODULES}: {setup}"));
        let mut load = format!("LoadModule {}_module {}\n", mpm.0, mpm.1.display());
        for name in [
            "authz_core",
            "mime",
            "dir",
            "rewrite",
            "headers",
            "alias",
            "filter",
            "deflate",
        ] {
            let path = module(name).unwrap_or_else(|| panic!("mod_{name} is missing: {setup}"));
            load.push_str(&format!("LoadModule {name}_module {}\n", path.display()));
        }
        // mod_brotli when Apache has it, compressing text on the fly: the
        // siblings must not be compressed again.
        if let Some(path) = module("brotli") {
            load.push_str(&format!(
                "LoadModule brotli_module {}\n\
                 AddOutputFilterByType BROTLI_COMPRESS text/html text/css text/plain text/javascript application/json\n",
                path.display()
            ));
        }

        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let root_text = root.display();
        // Run as root (CI), Apache serves as www-data: it must read the build.
        let user = if unsafe { libc::geteuid() } == 0 {
            open_to_others(dir.path());
            open_to_others(root);
            "User www-data\nGroup www-data\n"
        } else {
            ""
        };
        let docroot = dir.path().join("docroot");
        std::fs::create_dir(&docroot).unwrap();
        let mount_conf = if mount == "/" {
            format!("DocumentRoot \"{root_text}\"\n")
        } else {
            format!(
                "DocumentRoot \"{}\"\n<Directory \"{0}\">\n    Require all granted\n</Directory>\n\
                 Alias \"{mount}\" \"{root_text}\"\n",
                docroot.display()
            )
        };
        let directory = if included {
            format!("    AllowOverride None\n    Include \"{root_text}/.htaccess\"\n")
        } else {
            "    AllowOverride All\n".to_owned()
        };
        let port = free_port();
        let conf = format!(
            "ServerRoot \"{d}\"\nDefaultRuntimeDir \"{d}\"\nPidFile \"{d}/apache2.pid\"\n\
             ErrorLog \"{d}/error.log\"\nLogLevel warn\n\
             Listen 127.0.0.1:{port}\nServerName 127.0.0.1\n{user}{load}\
             TypesConfig /etc/mime.types\nInclude {DEBIAN_MIME}\nInclude {DEBIAN_DEFLATE}\n\
             <Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n\
             <Directory \"{root_text}\">\n    Options FollowSymLinks\n    Require all granted\n{directory}</Directory>\n\
             <FilesMatch \"^\\.ht\">\n    Require all denied\n</FilesMatch>\n{mount_conf}"
        );
        let conf_path = dir.path().join("apache2.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let args = |command: &mut Command| {
            command
                .arg("-d")
                .arg(dir.path())
                .arg("-f")
                .arg(&conf_path)
                .env_remove("APACHE_CONFDIR");
        };
        let mut check = Command::new(BINARY);
        args(&mut check);
        let check = check.arg("-t").output().unwrap();
        assert!(
            check.status.success(),
            "apache2 -t refuses the test config:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let mut command = Command::new(BINARY);
        args(&mut command);
        let child = command
            .arg("-DFOREGROUND")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let addr = format!("127.0.0.1:{port}");
        wait_for(&addr);
        Apache { child, addr, dir }
    }

    /// `GET path`; a 500 (a `.htaccess` Apache cannot read) fails with
    /// Apache's error log.
    pub(crate) fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let reply = http(&self.addr, "GET", path, headers);
        assert_ne!(
            reply.status,
            500,
            "Apache: GET {path}:\n{}",
            std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
        );
        reply
    }

    /// `http://host:port`, which Apache puts in front of a redirect's target.
    pub(crate) fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        // SIGTERM: the parent stops its children.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// Let other users (Apache's www-data) read `path` and enter the temporary
/// directories above it.
fn open_to_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = std::env::temp_dir();
    for dir in path
        .ancestors()
        .filter(|d| d.starts_with(&tmp) && *d != tmp)
    {
        let mut permissions = std::fs::metadata(dir).unwrap().permissions();
        permissions.set_mode(permissions.mode() | 0o755);
        std::fs::set_permissions(dir, permissions).unwrap();
    }
}

/// A reply with its `Location` made relative when it names `origin`, as
/// `kiln serve` writes it.
fn relative(mut reply: Reply, origin: &str) -> Reply {
    for (name, value) in &mut reply.headers {
        if name == "location"
            && let Some(rest) = value.strip_prefix(origin)
        {
            *value = rest.to_owned();
        }
    }
    reply
}

/// The body as sent, decoded by its `Content-Encoding`.
fn decoded(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    match reply.header("content-encoding") {
        None => out = reply.body.clone(),
        Some("gzip") => {
            flate2::read::GzDecoder::new(&reply.body[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("br") => {
            brotlic::DecompressorReader::new(&reply.body[..])
                .read_to_end(&mut out)
                .unwrap();
        }
        Some(other) => panic!("Content-Encoding: {other}"),
    }
    out
}

/// Bodies compared by length and bytes, without printing them.
fn same(actual: &[u8], expected: &[u8], what: &str) {
    assert!(
        actual == expected,
        "{what}: {} bytes sent, {} expected ({:?}…)",
        actual.len(),
        expected.len(),
        String::from_utf8_lossy(&actual[..actual.len().min(80)])
    );
}

fn build_ok(site: &Site) -> Built {
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(built.out.join(".htaccess").is_file(), "{}", built.stderr);
    built
}

const HTML_CACHE: &str = "public, max-age=0, must-revalidate, stale-if-error=86400";

#[test]
fn apache_answers_the_routes_like_kiln_serve() {
    let site = crate::routes::site().file(
        "kiln.toml",
        format!("{}\n[outputs]\napache = true\n", crate::routes::CONFIG),
    );
    let built = build_ok(&site);
    let apache = Apache::start(&built.out, "/");
    let origin = apache.origin();
    check_routes("apache", &|path| relative(apache.get(path, &[]), &origin));

    let server = Server::start(&built);
    // A redirect's Location is absolute in Apache (mod_rewrite makes it so).
    let r = apache.get("/blog/a?page=2", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("{origin}/news/a?page=2").as_str())
    );
    // A captured value is percent-encoded again, as kiln serve does.
    let path = "/blog/a%20b%3Fc%25d";
    let ours = relative(apache.get(path, &[]), &origin);
    let kiln = server.get(path, &[]);
    assert_eq!(ours.status, kiln.status);
    let location = ours.header("location").unwrap();
    assert!(
        location.eq_ignore_ascii_case(kiln.header("location").unwrap()),
        "{location}"
    );
    assert!(location.eq_ignore_ascii_case("/news/a%20b%3Fc%25d"));
    // The 410 rule answers with its target's page, as kiln serve does, with
    // that page's headers.
    let gone = apache.get("/gone", &[]);
    assert_eq!(gone.status, 410);
    same(
        &gone.body,
        &server.get("/gone", &[]).body,
        "/gone, against kiln serve",
    );
    same(&gone.body, &built.read("404.html"), "/gone");
    assert_eq!(gone.header("cache-control"), Some(HTML_CACHE));
    // The app shell on a deep link, precompressed, as the CDN serves it.
    assert!(built.manifest().files["index.html"].brotli.is_some());
    let deep = apache.get("/settings/profile", &[("Accept-Encoding", "br")]);
    assert_eq!(deep.status, 200);
    assert_eq!(deep.header("content-encoding"), Some("br"));
    same(
        &deep.body,
        &built.read("index.html.br"),
        "/settings/profile",
    );
    assert_eq!(deep.header("cache-control"), Some(HTML_CACHE));
    // A forced rule shadows the file; a plain rule does not.
    assert_eq!(apache.get("/legacy.html", &[]).status, 301);
    let about = apache.get("/about/", &[]);
    assert_eq!(about.status, 200);
    same(&about.body, &built.read("about/index.html"), "/about/");
}

/// The same file, included in the server's config instead of read on every
/// request (what docs/hosting.md advises for a big site).
#[test]
fn the_file_works_included_in_the_server_config() {
    let site = crate::routes::site().file(
        "kiln.toml",
        format!("{}\n[outputs]\napache = true\n", crate::routes::CONFIG),
    );
    let built = build_ok(&site);
    let apache = Apache::start_included(&built.out);
    let origin = apache.origin();
    check_routes("apache (included)", &|path| {
        relative(apache.get(path, &[]), &origin)
    });
    let page = apache.get("/settings/profile", &[("Accept-Encoding", "gzip")]);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-encoding"), Some("gzip"));
    same(
        &page.body,
        &built.read("index.html.gz"),
        "/settings/profile",
    );
    assert_eq!(page.header("cache-control"), Some(HTML_CACHE));
    assert_eq!(apache.get("/gone", &[]).status, 410);
}

const HEADERS_CONFIG: &str = r#"
[outputs]
apache = true

[[headers]]
for = "**/*.html"
values = { "Content-Security-Policy" = "default-src 'self'", "X-Frame-Options" = "DENY" }

[[headers]]
for = "/index.html"
values = { "X-Note" = '100% "kiln", \ and $1' }

[[headers]]
for = "downloads/*.pdf"
values = { "Content-Disposition" = "attachment" }

[[headers]]
for = "feed"
values = { "Content-Type" = "application/feed+json" }
"#;

fn long_text(what: &str) -> String {
    format!(
        "{what}\n{}",
        "A line long enough to be worth compressing.\n".repeat(40)
    )
}

fn headers_site() -> Site {
    Site::new()
        .file("kiln.toml", HEADERS_CONFIG)
        .file(
            "index.html",
            format!(
                "<!doctype html><title>home</title><link rel=stylesheet href=\"/css/site.css\">{}",
                long_text("<p>home</p>")
            ),
        )
        .file(
            "about/index.html",
            format!(
                "<!doctype html><title>about</title>{}",
                long_text("<p>about</p>")
            ),
        )
        .file(
            "css/site.css",
            (0..200)
                .map(|i| format!(".c{i} {{ margin: {i}px }}\n"))
                .collect::<String>(),
        )
        .file("img/dot.png", b"\x89PNG\r\n\x1a\n not really".as_slice())
        .file(
            ".well-known/apple-app-site-association",
            r#"{"applinks": {"details": []}}"#,
        )
        .file("docs/my file \"q\".txt", long_text("notes"))
        .file("downloads/guide.pdf", "%PDF-1.4 not really")
        .file("feed", r#"{"version": "https://jsonfeed.org/version/1.1"}"#)
        // A download beside an archive kiln does not compress: never taken
        // for its encoding.
        .file("release.tar", long_text("an archive"))
        .file(
            "release.tar.gz",
            b"\x1f\x8b its own gzip download".as_slice(),
        )
        .file(
            "404.html",
            "<!doctype html><title>404</title><p>nothing here</p>",
        )
}

#[test]
fn apache_serves_kiln_s_headers_and_precompressed_siblings() {
    let built = build_ok(&headers_site());
    let m = built.manifest();
    let css = m.files["css/site.css"].output.clone();
    assert_ne!(css, "css/site.css");
    assert!(m.files["css/site.css"].brotli.is_some() && m.files["css/site.css"].gzip.is_some());
    assert!(m.files["docs/my file \"q\".txt"].gzip.is_some());
    assert!(m.files["release.tar"].gzip.is_none());
    let apache = Apache::start(&built.out, "/");
    let server = Server::start(&built);

    let css_url = format!("/{css}");
    // URL path → output path.
    let paths = [
        ("/", "index.html"),
        ("/index.html", "index.html"),
        ("/about/", "about/index.html"),
        (css_url.as_str(), css.as_str()),
        ("/css/site.css", "css/site.css"),
        ("/img/dot.png", "img/dot.png"),
        (
            "/.well-known/apple-app-site-association",
            ".well-known/apple-app-site-association",
        ),
        ("/docs/my%20file%20%22q%22.txt", "docs/my file \"q\".txt"),
        ("/downloads/guide.pdf", "downloads/guide.pdf"),
        ("/feed", "feed"),
        ("/release.tar.gz", "release.tar.gz"),
    ];
    let extra = [
        "content-security-policy",
        "x-frame-options",
        "x-note",
        "content-disposition",
    ];
    for (path, output) in paths {
        let siblings = built.out.join(format!("{output}.br")).is_file();
        for accept in ["", "gzip", "br", "gzip, deflate, br"] {
            let headers: &[(&str, &str)] = if accept.is_empty() {
                &[]
            } else {
                &[("Accept-Encoding", accept)]
            };
            let ours = apache.get(path, headers);
            let kiln = server.get(path, headers);
            let what = format!("GET {path} (Accept-Encoding: {accept})");
            assert_eq!(ours.status, 200, "{what}");
            assert_eq!(ours.status, kiln.status, "{what}");
            for name in ["content-type", "cache-control"].iter().chain(&extra) {
                assert_eq!(ours.header(name), kiln.header(name), "{what}: {name}");
            }
            same(&decoded(&ours), &built.read(output), &what);
            if accept.is_empty() {
                assert_eq!(ours.header("content-encoding"), None, "{what}");
                same(&ours.body, &built.read(output), &what);
            }
            if siblings {
                // kiln's own sibling, as kiln serve sends it, never compressed again.
                assert_eq!(
                    ours.header("content-encoding"),
                    kiln.header("content-encoding"),
                    "{what}"
                );
                let sent = match ours.header("content-encoding") {
                    Some("br") => format!("{output}.br"),
                    Some("gzip") => format!("{output}.gz"),
                    _ => output.to_owned(),
                };
                same(&ours.body, &built.read(&sent), &what);
                assert!(
                    ours.header("vary")
                        .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
                    "{what}: {:?}",
                    ours.header("vary")
                );
            }
        }
    }

    // What each answer carries, spelled out.
    let br = apache.get(
        &format!("/{css}"),
        &[("Accept-Encoding", "gzip, deflate, br")],
    );
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(
        br.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let gz = apache.get("/css/site.css", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(gz.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!(gz.header("content-language"), None);
    let page = apache.get("/", &[("Accept-Encoding", "br;q=0, gzip")]);
    assert_eq!(page.header("content-encoding"), Some("gzip"));
    assert_eq!(page.header("cache-control"), Some(HTML_CACHE));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-note"), Some("100% \"kiln\", \\ and $1"));
    let about = apache.get("/about/", &[]);
    assert_eq!(about.header("x-frame-options"), Some("DENY"));
    assert_eq!(about.header("x-note"), None);
    let aasa = apache.get("/.well-known/apple-app-site-association", &[]);
    assert_eq!(
        aasa.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        apache.get("/feed", &[]).header("content-type"),
        Some("application/feed+json")
    );
    assert_eq!(
        apache.get("/img/dot.png", &[]).header("content-type"),
        Some("image/png")
    );
    let pdf = apache.get("/downloads/guide.pdf", &[]);
    assert_eq!(pdf.header("content-disposition"), Some("attachment"));
    assert_eq!(pdf.header("content-security-policy"), None);
    let notes = apache.get(
        "/docs/my%20file%20%22q%22.txt",
        &[("Accept-Encoding", "br")],
    );
    assert_eq!(notes.header("content-encoding"), Some("br"));
    assert_eq!(
        notes.header("content-type"),
        Some("text/plain; charset=utf-8")
    );

    // The archive's `.gz` is a file of its own, not its encoding.
    let tar = apache.get("/release.tar", &[("Accept-Encoding", "gzip")]);
    assert_eq!(tar.status, 200);
    assert_ne!(tar.body, built.read("release.tar.gz"));
    same(&decoded(&tar), &built.read("release.tar"), "/release.tar");
    let download = apache.get("/release.tar.gz", &[("Accept-Encoding", "gzip")]);
    assert_eq!(download.header("content-encoding"), None);
    same(
        &download.body,
        &built.read("release.tar.gz"),
        "/release.tar.gz",
    );
    assert_eq!(
        download.header("content-type"),
        Some(m.files["release.tar.gz"].content_type.as_str())
    );

    // A miss: the site's 404 page, with its status.
    let missing = apache.get("/no/such/page", &[]);
    assert_eq!(missing.status, 404);
    same(&missing.body, &built.read("404.html"), "/no/such/page");
    same(
        &missing.body,
        &server.get("/no/such/page", &[]).body,
        "/no/such/page, against kiln serve",
    );
    // The generated file itself is not served.
    assert_eq!(apache.get("/.htaccess", &[]).status, 403);
}

#[test]
fn a_site_under_a_base_is_served_under_it() {
    let site = Site::new()
        .file(
            "kiln.toml",
            "base = \"/app/\"\n[outputs]\napache = true\n[routes]\nfallback = \"index.html\"\n\
             [[routes.redirects]]\nfrom = \"/app/old/*\"\nto = \"/app/new/:splat\"\n",
        )
        .file(
            "index.html",
            format!(
                "<!doctype html><link rel=stylesheet href=\"css/app.css\">{}",
                long_text("<p>the app shell</p>")
            ),
        )
        .file("new/index.html", "<!doctype html><p>new</p>")
        .file(
            "css/app.css",
            (0..100)
                .map(|i| format!(".a{i} {{ padding: {i}px }}\n"))
                .collect::<String>(),
        )
        .file("404.html", "<!doctype html><p>nothing here</p>");
    let built = build_ok(&site);
    let css = built.output_of("css/app.css");
    let apache = Apache::start(&built.out, "/app");
    let server = Server::start(&built);
    let origin = apache.origin();
    let css_url = format!("/app/{css}");
    for path in ["/app/", "/app/deep/link?tab=2", css_url.as_str()] {
        for accept in ["", "br", "gzip"] {
            let headers: &[(&str, &str)] = if accept.is_empty() {
                &[]
            } else {
                &[("Accept-Encoding", accept)]
            };
            let ours = apache.get(path, headers);
            let kiln = server.get(path, headers);
            let what = format!("GET {path} (Accept-Encoding: {accept})");
            assert_eq!(ours.status, 200, "{what}");
            for name in ["content-type", "cache-control", "content-encoding"] {
                assert_eq!(ours.header(name), kiln.header(name), "{what}: {name}");
            }
            same(&ours.body, &kiln.body, &what);
        }
    }
    let shell = apache.get("/app/deep/link", &[]);
    same(&shell.body, &built.read("index.html"), "/app/deep/link");
    assert_eq!(shell.header("cache-control"), Some(HTML_CACHE));
    let redirect = apache.get("/app/old/a?x=1", &[]);
    assert_eq!(redirect.status, 301);
    assert_eq!(
        redirect.header("location"),
        Some(format!("{origin}/app/new/a?x=1").as_str())
    );
    assert_eq!(
        relative(apache.get("/app/old/a?x=1", &[]), &origin).header("location"),
        server.get("/app/old/a?x=1", &[]).header("location")
    );
    let bare = apache.get("/app", &[]);
    assert!((300..400).contains(&bare.status), "{}", bare.status);
    assert_eq!(
        bare.header("location"),
        Some(format!("{origin}/app/").as_str())
    );
}

#[test]
fn without_a_fallback_a_miss_gets_the_404_page() {
    let site = Site::new()
        .file(
            "kiln.toml",
            "[outputs]\napache = true\n[[routes.redirects]]\nfrom = \"/old\"\nto = \"/\"\n",
        )
        .file("index.html", "<!doctype html><p>home</p>")
        .file("404.html", "<!doctype html><p>nothing here</p>");
    let built = build_ok(&site);
    let apache = Apache::start(&built.out, "/");
    let server = Server::start(&built);
    for path in ["/no/such/page", "/old/x", "/a.css"] {
        let ours = apache.get(path, &[]);
        assert_eq!(ours.status, 404, "{path}");
        same(&ours.body, &built.read("404.html"), path);
        let kiln = server.get(path, &[]);
        assert_eq!(
            (ours.status, &ours.body),
            (kiln.status, &kiln.body),
            "{path}"
        );
    }
    assert_eq!(apache.get("/old", &[]).status, 301);
}

/// Thousands of files with the same headers: the file splits their regex
/// under what Apache reads, and every file still gets its headers.
#[test]
fn a_big_site_s_file_stays_within_apache_s_limits() {
    let mut site = Site::new().file("kiln.toml", "[outputs]\napache = true\n");
    let count = 2000;
    for i in 0..count {
        site = site.file(
            &format!("notes/a-fairly-long-file-name-for-note-number-{i:04}.txt"),
            format!("note {i}\n"),
        );
    }
    let built = build_ok(&site);
    let htaccess = built.text(".htaccess");
    assert!(htaccess.matches("<If ").count() > 10, "{htaccess}");
    let apache = Apache::start(&built.out, "/");
    for i in [0, 1, count / 2, count - 2, count - 1] {
        let path = format!("/notes/a-fairly-long-file-name-for-note-number-{i:04}.txt");
        let reply = apache.get(&path, &[]);
        assert_eq!(reply.status, 200, "{path}");
        same(&reply.body, format!("note {i}\n").as_bytes(), &path);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
        assert_eq!(
            reply.header("cache-control"),
            Some("public, max-age=3600"),
            "{path}"
        );
    }
}

#[test]
fn the_file_is_opt_in_and_replaces_the_source_s_own() {
    let site = Site::new()
        .file(".htaccess", "# the site's own\n")
        .file("index.html", "<p>home</p>");
    // Off by default: the source's file goes out as it is.
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert_eq!(built.text(".htaccess"), "# the site's own\n");
    assert!(!built.stderr.contains(".htaccess"), "{}", built.stderr);
    // On: kiln's replaces it, with a warning.
    site.write("kiln.toml", "[outputs]\napache = true\n");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(built.text(".htaccess").starts_with("# Generated by kiln"));
    assert!(
        built.stderr.contains(
            "the source has a file named `.htaccess`; kiln's generated .htaccess replaces it"
        ),
        "{}",
        built.stderr
    );
    // Not written when there is none and the option is off.
    let built = build(Site::new().file("index.html", "<p>x</p>").path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    assert!(!built.out.join(".htaccess").exists());
    // A misspelt key is refused, as any unknown key.
    let built = build(
        Site::new()
            .file("kiln.toml", "[outputs]\napach = true\n")
            .file("index.html", "<p>x</p>")
            .path(),
        &[],
    );
    assert_eq!(built.code, 2, "{}", built.stderr);
    assert!(built.stderr.contains("apach"), "{}", built.stderr);
}
