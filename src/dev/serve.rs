//! `kiln serve`: a built output directory served the way the CDN will serve
//! it. Headers come from `kiln-manifest.json` (Content-Type with charset,
//! Cache-Control); precompressed `.br`/`.zst`/`.gz` siblings are chosen by
//! `Accept-Encoding` with `Vary: Accept-Encoding`, only those the manifest
//! lists (any other `.gz` is a file of its own); validators are weak ETags
//! from the content hash (`If-None-Match` → 304); Range requests, directory
//! `index.html` and the site's `404.html` are served by tower-http. The
//! site's routes (redirects, rewrites, the SPA fallback: [`crate::routes`])
//! apply before any file is looked up.
//!
//! `kiln watch --serve` uses the same server in live mode: pages get a small
//! script (only in responses, never in the build output) that listens to an
//! event stream and reloads the page, or swaps stylesheets in place when only
//! CSS changed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tower_http::services::{ServeDir, ServeFile};

use crate::emit::manifest::Manifest;
use crate::error::{Error, Result};
use crate::routes::{Route, Routes, URL_KEEP};

/// The default address: loopback only, the port of `vite preview`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4173";

/// Headers of one served URL path.
#[derive(Debug, Clone)]
struct Served {
    content_type: String,
    cache_control: String,
    etag: String,
    /// `[[headers]]` besides Content-Type and Cache-Control.
    extra: Vec<(String, String)>,
    /// The encodings kiln wrote a sibling of this file in (`br`, `gzip`, `zstd`).
    encodings: Vec<&'static str>,
}

/// Served URL paths (percent-decoded, under the site's base) to their headers.
#[derive(Debug, Default)]
struct Headers {
    base: String,
    by_path: HashMap<String, Served>,
    /// URL paths of private files (`.vite/manifest.json`): answered as missing.
    private: std::collections::HashSet<String>,
    routes: Routes,
    /// The build made `.zst` siblings: a `.zst` beside a file is otherwise a
    /// file of its own (a bundler's), never its encoding.
    zstd: bool,
}

impl Headers {
    fn from_manifest(manifest: &Manifest) -> Headers {
        let by_path = manifest
            .served()
            .into_iter()
            .map(|s| {
                let served = Served {
                    content_type: s.entry.content_type.clone(),
                    cache_control: s.cache_control.to_owned(),
                    // A manifest is read from disk: a short hash must not panic.
                    etag: format!(
                        "W/\"{}\"",
                        s.entry.blake3.get(..16).unwrap_or(&s.entry.blake3)
                    ),
                    extra: s
                        .entry
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    encodings: [
                        ("br", s.entry.brotli),
                        ("gzip", s.entry.gzip),
                        ("zstd", s.entry.zstd),
                    ]
                    .into_iter()
                    .filter_map(|(coding, size)| size.map(|_| coding))
                    .collect(),
                };
                (format!("{}{}", manifest.base, s.path), served)
            })
            .collect();
        let private = manifest
            .private_paths()
            .map(|p| format!("{}{p}", manifest.base))
            .collect();
        Headers {
            base: manifest.base.clone(),
            by_path,
            private,
            routes: manifest.routes.clone(),
            zstd: manifest.compression.zstd,
        }
    }

    /// Whether a file answers a (decoded) URL path, a directory by its index.
    fn exists(&self, path: &str) -> bool {
        let dir = path.trim_end_matches('/');
        self.by_path.contains_key(path) || self.by_path.contains_key(&format!("{dir}/index.html"))
    }

    /// What the site's routes make of a request path, if anything.
    fn route(&self, path: &str) -> Option<Route> {
        if self.routes.is_empty() {
            return None;
        }
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .ok()?;
        self.routes.resolve(&self.base, &path, |p| self.exists(p))
    }

    /// Whether a request path names a private file.
    fn is_private(&self, path: &str) -> bool {
        percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .is_ok_and(|p| self.private.contains(p.as_ref()))
    }

    /// The entry for a request path: `/dir/` means `/dir/index.html`.
    fn lookup(&self, path: &str) -> Option<&Served> {
        let path = percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .ok()?;
        if path.ends_with('/') {
            self.by_path.get(&format!("{path}index.html"))
        } else {
            self.by_path.get(path.as_ref())
        }
    }
}

/// A served output directory: the manifest's headers, swapped after each
/// rebuild, and in live mode the channel that tells open pages to reload.
#[derive(Clone)]
pub struct Site {
    shared: Arc<Shared>,
}

struct Shared {
    root: PathBuf,
    headers: RwLock<Arc<Headers>>,
    /// Counts builds: a page served from an older build than the one its
    /// event stream reports missed an event while it loaded, and reloads.
    build: AtomicU64,
    live: Option<Live>,
}

/// Live reload: an event stream to every open page, and the last build's
/// diagnostics for pages that connect later.
struct Live {
    events: broadcast::Sender<LiveEvent>,
    diagnostics: Mutex<Vec<String>>,
}

/// What a rebuild asks open pages to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// Reload the page.
    Reload,
    /// Replace stylesheets: (old URL path, new URL path) pairs, percent-decoded.
    /// The same path twice means "same name, new bytes".
    Css(Vec<(String, String)>),
    /// The build's diagnostics (`path:line:col: severity: message`), shown
    /// over the page; empty clears them.
    Diagnostics(Vec<String>),
}

/// Where the live-reload script and event stream are served.
pub const LIVE_SCRIPT: &str = "/__kiln/live.js";
pub const LIVE_EVENTS: &str = "/__kiln/events";

impl Site {
    /// Serve `root` as `kiln serve` does: exactly the built bytes.
    pub fn open(root: &Path) -> Result<Site> {
        let manifest = Manifest::read(root)?;
        Ok(Site::new(root, Headers::from_manifest(&manifest), None))
    }

    /// Serve `root` for `kiln watch --serve`: pages get the live-reload script.
    /// The manifest may not exist yet (the first build failed).
    pub fn live(root: &Path) -> Site {
        let headers = Manifest::read(root)
            .map(|m| Headers::from_manifest(&m))
            .unwrap_or_default();
        let live = Live {
            events: broadcast::channel(16).0,
            diagnostics: Mutex::new(Vec::new()),
        };
        Site::new(root, headers, Some(live))
    }

    fn new(root: &Path, headers: Headers, live: Option<Live>) -> Site {
        Site {
            shared: Arc::new(Shared {
                root: root.to_path_buf(),
                headers: RwLock::new(Arc::new(headers)),
                build: AtomicU64::new(0),
                live,
            }),
        }
    }

    /// Take the headers of a new build.
    pub fn update(&self, manifest: &Manifest) {
        let headers = Headers::from_manifest(manifest);
        *self.shared.headers.write().expect("no panics while locked") = Arc::new(headers);
        self.shared.build.fetch_add(1, Ordering::SeqCst);
    }

    /// Tell open pages (live mode only).
    pub fn send(&self, event: LiveEvent) {
        if let Some(live) = &self.shared.live {
            if let LiveEvent::Diagnostics(list) = &event {
                *live.diagnostics.lock().expect("no panics while locked") = list.clone();
            }
            // No receiver (no page open) is not an error.
            let _ = live.events.send(event);
        }
    }

    /// The router: the files under the base path, plus the live-reload
    /// endpoints in live mode.
    pub fn router(&self) -> Router {
        let root = &self.shared.root;
        let files = ServeDir::new(root).precompressed_br();
        let files = if self.headers().zstd {
            files.precompressed_zstd()
        } else {
            files
        };
        let files = files
            .precompressed_gzip()
            .append_index_html_on_directories(true)
            .not_found_service(ServeFile::new(root.join("404.html")));
        let base = self.headers().base.trim_end_matches('/').to_owned();
        let mut router = if base.is_empty() {
            Router::new().fallback_service(files)
        } else {
            // Redirects to a directory's trailing slash must keep the base.
            Router::new().nest_service(&base, files.redirect_path_prefix(base.clone()))
        };
        if self.shared.live.is_some() {
            router = router
                .route(LIVE_SCRIPT, get(live_script))
                .route(LIVE_EVENTS, get(live_events));
        }
        router
            .layer(middleware::from_fn_with_state(self.clone(), cdn_headers))
            .with_state(self.clone())
    }

    fn headers(&self) -> Arc<Headers> {
        Arc::clone(&self.shared.headers.read().expect("no panics while locked"))
    }
}

/// The router serving `root` (a kiln output directory) as `kiln serve` does.
pub fn router(root: &Path) -> Result<Router> {
    Ok(Site::open(root)?.router())
}

/// The entries of an `Accept-Encoding` value whose coding is one of
/// `codings` (with their q-values), comma-separated.
fn only_codings(accepted: &str, codings: &[&str]) -> String {
    accepted
        .split(',')
        .map(str::trim)
        .filter(|entry| {
            let coding = entry.split(';').next().unwrap_or("").trim();
            codings.iter().any(|c| c.eq_ignore_ascii_case(coding))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Conditional requests and the manifest's headers around the file service;
/// in live mode, the reload script in pages.
async fn cdn_headers(State(site): State<Site>, mut request: Request, next: Next) -> Response {
    let headers = site.headers();
    // The base itself without its slash is a directory URL: redirect.
    if headers.base.len() > 1 && request.uri().path() == headers.base.trim_end_matches('/') {
        let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
        if let Ok(location) = HeaderValue::from_str(&headers.base) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return response;
    }
    if headers.is_private(request.uri().path())
        && let Ok(missing) = format!("{}.kiln-private", headers.base).parse()
    {
        // A file for the backend, not for browsers: as if it were not there.
        *request.uri_mut() = missing;
    }
    let live = site.shared.live.is_some();
    if live && matches!(request.uri().path(), LIVE_SCRIPT | LIVE_EVENTS) {
        // kiln's own endpoints: no route, no page header.
        return next.run(request).await;
    }
    let mut status = None;
    match headers.route(request.uri().path()) {
        Some(Route::Redirect { status, location }) => {
            return redirect(status, &location, request.uri().query());
        }
        Some(Route::Rewrite { status: s, path }) => {
            let query = request
                .uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            let target = format!(
                "{}{query}",
                percent_encoding::utf8_percent_encode(&path, URL_KEEP)
            );
            if let Ok(uri) = target.parse() {
                *request.uri_mut() = uri;
                status = StatusCode::from_u16(s)
                    .ok()
                    .filter(|s| *s != StatusCode::OK);
            }
        }
        None => {}
    }
    let served = headers.lookup(request.uri().path()).cloned();
    let page = served
        .as_ref()
        .is_none_or(|s| s.content_type.starts_with("text/html"));
    // A live page differs from build to build (it names its build) even when
    // the file did not change: it is never revalidated, always sent whole.
    let live_page = live && page;
    if let Some(s) = &served
        && !live_page
        && matches(request.headers(), &s.etag)
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set(response.headers_mut(), s);
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        return response;
    }
    if live_page {
        // Pages (and the 404 page) are edited on the way out: ask the file
        // service for the identity encoding and the whole body, unconditionally.
        let h = request.headers_mut();
        for name in [
            header::ACCEPT_ENCODING,
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
            header::IF_RANGE,
        ] {
            h.remove(name);
        }
    }
    // Only kiln's siblings are encodings of a file: `release.tar.gz` beside
    // `release.tar` is a download of its own, not its gzip encoding.
    let accepted = request.headers().get(header::ACCEPT_ENCODING).cloned();
    if let Some(accepted) = accepted {
        let kept = served
            .as_ref()
            .map(|s| only_codings(accepted.to_str().unwrap_or(""), &s.encodings))
            .unwrap_or_default();
        let h = request.headers_mut();
        match HeaderValue::from_str(&kept) {
            Ok(v) if !kept.is_empty() => {
                h.insert(header::ACCEPT_ENCODING, v);
            }
            _ => {
                h.remove(header::ACCEPT_ENCODING);
            }
        }
    }
    let head = request.method() == Method::HEAD;
    let mut response = next.run(request).await;
    if let Some(s) = &served
        && (response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED)
    {
        set(response.headers_mut(), s);
    }
    if let Some(status) = status
        && response.status() == StatusCode::OK
    {
        // A 404/410 rule: the target's bytes with the rule's status.
        *response.status_mut() = status;
    }
    let has_body = matches!(response.status(), StatusCode::OK | StatusCode::NOT_FOUND);
    if live && has_body && is_html(response.headers()) {
        let h = response.headers_mut();
        h.remove(header::ETAG);
        h.remove(header::LAST_MODIFIED);
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let tag = live_tag(site.shared.build.load(Ordering::SeqCst));
        if head {
            // The length a GET would send.
            let length = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            if let Some(length) = length {
                response.headers_mut().insert(
                    header::CONTENT_LENGTH,
                    HeaderValue::from(length + tag.len()),
                );
            }
        } else {
            response = with_live_script(response, &tag).await;
        }
    }
    response
}

/// A rule's redirect; the request's query goes along unless the target has one.
fn redirect(status: u16, location: &str, query: Option<&str>) -> Response {
    let mut target = percent_encoding::utf8_percent_encode(location, URL_KEEP).to_string();
    if let Some(q) = query
        && !target.contains('?')
    {
        target = format!("{target}?{q}");
    }
    let mut response = StatusCode::from_u16(status)
        .unwrap_or(StatusCode::MOVED_PERMANENTLY)
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if matches!(status, 301 | 308) {
        // Permanent, but a rule may still change with the next deploy.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
    }
    response
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
        && !headers.contains_key(header::CONTENT_ENCODING)
}

/// The response with the live-reload script tag added to its page.
async fn with_live_script(response: Response, tag: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_LIVE_PAGE).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(inject(&bytes, tag)))
}

/// Pages larger than this are not buffered for the live-reload script.
const MAX_LIVE_PAGE: usize = 64 << 20;

/// `html` with `tag` before its last `</body>`, else at the end.
fn inject(html: &[u8], tag: &str) -> Vec<u8> {
    let at = html
        .windows(6)
        .rposition(|w| w.eq_ignore_ascii_case(b"</body"))
        .unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + tag.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

/// The script tag pages get, naming the build they were served from.
fn live_tag(build: u64) -> String {
    format!("<script src=\"{LIVE_SCRIPT}\" data-kiln-build=\"{build}\" async></script>")
}

async fn live_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("live.js"),
    )
        .into_response()
}

/// The event stream: the current diagnostics first, then the events of each rebuild.
async fn live_events(State(site): State<Site>) -> Response {
    let Some(live) = &site.shared.live else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let diagnostics = live
        .diagnostics
        .lock()
        .expect("no panics while locked")
        .clone();
    let receiver = live.events.subscribe();
    let first = futures_util::stream::iter([
        sse_event(&LiveEvent::Diagnostics(diagnostics)),
        Ok(Event::default().event("ready").data(
            serde_json::json!({ "build": site.shared.build.load(Ordering::SeqCst) }).to_string(),
        )),
    ]);
    let rest = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let event = match receiver.recv().await {
            Ok(event) => event,
            // A slow page missed events: a reload catches it up.
            Err(broadcast::error::RecvError::Lagged(_)) => LiveEvent::Reload,
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((sse_event(&event), receiver))
    });
    Sse::new(first.chain(rest))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn sse_event(event: &LiveEvent) -> std::result::Result<Event, std::convert::Infallible> {
    let (name, data) = match event {
        // EventSource drops events without data.
        LiveEvent::Reload => ("reload", "{}".to_owned()),
        LiveEvent::Css(swaps) => ("css", serde_json::json!(swaps).to_string()),
        LiveEvent::Diagnostics(list) => ("diagnostics", serde_json::json!(list).to_string()),
    };
    Ok(Event::default().event(name).data(data))
}

fn set(map: &mut HeaderMap, s: &Served) {
    for (name, value) in [
        (header::CONTENT_TYPE, &s.content_type),
        (header::CACHE_CONTROL, &s.cache_control),
        (header::ETAG, &s.etag),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            map.insert(name, value);
        }
    }
    for (name, value) in &s.extra {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.insert(name, value);
        }
    }
}

/// Whether `If-None-Match` names this (weak) ETag.
fn matches(request: &HeaderMap, etag: &str) -> bool {
    let bare = etag.trim_start_matches("W/");
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == bare)
}

/// Serve the output directory `root` at `addr` until `shutdown` completes
/// (Ctrl-C in the CLI). `ready` gets the bound address (the port may have
/// been 0).
pub fn serve(
    root: PathBuf,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let router = router(&root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(&root, e))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Usage(format!("cannot listen on {addr}: {e}")))?;
        ready(
            listener
                .local_addr()
                .map_err(|e| Error::io(addr.to_string(), e))?,
        );
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| Error::io(addr.to_string(), e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_weak_strong_lists_and_star() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", \"abc\""),
        );
        assert!(matches(&h, "W/\"abc\""));
        assert!(!matches(&h, "W/\"abd\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(matches(&h, "W/\"abd\""));
        assert!(!matches(&HeaderMap::new(), "W/\"abc\""));
    }

    #[test]
    fn live_script_goes_before_the_last_body_end_tag() {
        let tag = live_tag(7);
        assert!(tag.contains("data-kiln-build=\"7\""));
        let page = inject(
            b"<p>x</BODY><!-- </body> in a comment --></Body></html>",
            &tag,
        );
        assert_eq!(
            String::from_utf8(page).unwrap(),
            format!("<p>x</BODY><!-- </body> in a comment -->{tag}</Body></html>")
        );
        let fragment = inject(b"<p>no body tag", &tag);
        assert_eq!(
            String::from_utf8(fragment).unwrap(),
            format!("<p>no body tag{tag}")
        );
    }
}
