//! `kiln serve`: a real HTTP client (a raw socket) checks encodings, Vary,
//! ETag/304, Range, content types, directory indexes and the 404 page.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;

use crate::util::{Built, build, fixture_path, spawn_first_line};

/// A running `kiln serve`, stopped when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) addr: String,
}

impl Server {
    pub(crate) fn start(built: &Built) -> Server {
        let (child, line) = spawn_first_line(
            std::process::Command::new(assert_cmd::cargo::cargo_bin("kiln"))
                .arg("serve")
                .arg(&built.out)
                .args(["--addr", "127.0.0.1:0"]),
        );
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Server { child, addr }
    }

    pub(crate) fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        http(&self.addr, "GET", path, headers)
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        http(&self.addr, method, path, headers)
    }
}

/// One HTTP/1.1 request over a fresh connection to `addr`.
pub(crate) fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    // Read until the response is whole: a server may keep the connection
    // open despite `Connection: close` (workerd does).
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            // A reset after the response (some servers close that way).
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("{method} {path} to {addr}: {e}"),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if complete(&raw, method) {
            break;
        }
    }
    Reply::parse(&raw)
}

/// Whether `raw` holds a whole response (by Content-Length or the last chunk).
fn complete(raw: &[u8], method: &str) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    let status = head.split(' ').nth(1).unwrap_or("");
    if method == "HEAD" || status == "304" || status == "204" {
        return true;
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    head.lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .is_some_and(|n| body.len() >= n)
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a header block");
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
        {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
}

#[test]
fn serves_like_the_cdn() {
    let built = build(&fixture_path("site"), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let m = built.manifest();
    let server = Server::start(&built);
    let css = &m.files["css/main.css"].output;
    let url = format!("/{css}");

    let br = server.get(&url, &[("Accept-Encoding", "gzip, deflate, br")]);
    assert_eq!(br.status, 200);
    assert_eq!(br.header("content-encoding"), Some("br"));
    assert_eq!(br.body, built.read(&format!("{css}.br")));
    assert_eq!(br.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(
        br.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(
        br.header("vary")
            .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding"))
    );

    let gz = server.get(&url, &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.body, built.read(&format!("{css}.gz")));

    let plain = server.get(&url, &[]);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body, built.read(css));

    let etag = plain.header("etag").expect("an ETag").to_owned();
    let again = server.get(&url, &[("If-None-Match", &etag), ("Accept-Encoding", "br")]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));

    let range = server.get(&url, &[("Range", "bytes=0-9")]);
    assert_eq!(range.status, 206);
    assert_eq!(range.body, built.read(css)[..10].to_vec());
    assert_eq!(
        range.header("content-range"),
        Some(format!("bytes 0-9/{}", built.read(css).len()).as_str())
    );

    let page = server.get("/about/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(
        page.header("cache-control"),
        Some("public, max-age=0, must-revalidate, stale-if-error=86400")
    );
    assert_eq!(page.body, built.read("about/index.html"));
    let redirect = server.get("/about", &[]);
    assert!((300..400).contains(&redirect.status), "{}", redirect.status);
    assert_eq!(redirect.header("location"), Some("/about/"));

    let missing = server.get("/no/such/page", &[]);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, built.read("404.html"));

    let spaced = &m.files["img/team photo.jpg"].output;
    let photo = server.get(&format!("/{}", spaced.replace(' ', "%20")), &[]);
    assert_eq!(photo.status, 200);
    assert_eq!(photo.header("content-type"), Some("image/jpeg"));

    let head = server.request("HEAD", "/", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
}

#[test]
fn a_base_path_is_served_under_it() {
    let built = build(&fixture_path("base-path-site"), &[]);
    let server = Server::start(&built);
    let page = server.get("/app/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.body, built.read("index.html"));
    let css = built.output_of("css/app.css");
    assert_eq!(server.get(&format!("/app/{css}"), &[]).status, 200);
    let bare = server.get("/app", &[]);
    assert!((300..400).contains(&bare.status), "{}", bare.status);
    assert_eq!(bare.header("location"), Some("/app/"));
    let dir = server.get("/app/css", &[]);
    assert!((300..400).contains(&dir.status), "{}", dir.status);
    assert_eq!(dir.header("location"), Some("/app/css/"));
}

#[test]
fn a_directory_without_a_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::util::kiln()
        .arg("serve")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("kiln-manifest.json"));
}

#[test]
fn private_files_are_written_but_not_served() {
    for base in ["/", "/app/"] {
        let site = crate::util::Site::new()
            .file("kiln.toml", format!("base = \"{base}\"\n"))
            .file("404.html", "<p>not here</p>")
            .file("index.html", "<p>home</p>")
            .file(
                ".vite/manifest.json",
                r#"{"index.html": {"file": "index.html"}}"#,
            );
        let built = build(site.path(), &[]);
        assert_eq!(built.code, 0, "{}", built.stderr);
        assert!(built.out.join(".vite/manifest.json").is_file());
        let server = Server::start(&built);
        let reply = server.get(&format!("{base}.vite/manifest.json"), &[]);
        assert_eq!(reply.status, 404, "{base}");
        assert_eq!(reply.body, built.read("404.html"), "{base}");
        assert_eq!(server.get(base, &[]).status, 200, "{base}");
    }
}

/// Only kiln's siblings are encodings of a file: `release.tar.gz` beside
/// `release.tar` is a download of its own, and a `.gz` kiln did not keep is
/// never sent as the encoding of its file.
#[test]
fn only_kiln_s_siblings_are_served_as_encodings() {
    let site = crate::util::Site::new()
        .file(
            "index.html",
            "<link rel=stylesheet href=style.css><a href=release.tar>download</a>",
        )
        .file(
            "style.css",
            (0..100)
                .map(|i| format!(".c{i} {{ margin: {i}px auto; }}\n"))
                .collect::<String>(),
        )
        .file("release.tar", vec![7u8; 4096])
        .file("release.tar.gz", b"an archive of its own");
    let built = build(site.path(), &[]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let server = Server::start(&built);
    for accept in ["gzip", "br, gzip", "*"] {
        let tar = server.get("/release.tar", &[("Accept-Encoding", accept)]);
        assert_eq!(tar.status, 200, "{accept}");
        assert_eq!(tar.header("content-encoding"), None, "{accept}");
        assert_eq!(tar.body, vec![7u8; 4096], "{accept}");
    }
    let gz = server.get("/release.tar.gz", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.body, b"an archive of its own");
    assert_eq!(gz.header("content-encoding"), None);
    // kiln's own siblings still are.
    let css = format!("/{}", built.output_of("style.css"));
    let reply = server.get(&css, &[("Accept-Encoding", "gzip")]);
    assert_eq!(reply.header("content-encoding"), Some("gzip"));
}
