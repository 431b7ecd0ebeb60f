//! `kiln serve`: a built output directory served the way the CDN will serve
//! it. Headers come from `kiln-manifest.json` (Content-Type with charset,
//! Cache-Control); precompressed `.br`/`.gz` siblings are chosen by
//! `Accept-Encoding` with `Vary: Accept-Encoding`; validators are weak ETags
//! from the content hash (`If-None-Match` → 304); Range requests, directory
//! `index.html` and the site's `404.html` are served by tower-http.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::services::{ServeDir, ServeFile};

use crate::error::{Error, Result};
use crate::manifest::{MANIFEST_FILE, Manifest};

/// The default address: loopback only, the port of `vite preview`.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4173";

/// Headers of one served URL path.
#[derive(Debug, Clone)]
struct Served {
    content_type: String,
    cache_control: String,
    etag: String,
}

/// Served URL paths (percent-decoded, under the site's base) to their headers.
#[derive(Debug, Default)]
struct Headers {
    base: String,
    by_path: HashMap<String, Served>,
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
                    etag: format!("W/\"{}\"", &s.entry.blake3[..16]),
                };
                (format!("{}{}", manifest.base, s.path), served)
            })
            .collect();
        Headers {
            base: manifest.base.clone(),
            by_path,
        }
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

/// The router serving `root` (a kiln output directory).
pub fn router(root: &Path) -> Result<Router> {
    let text = std::fs::read_to_string(root.join(MANIFEST_FILE))
        .map_err(|e| Error::io(root.join(MANIFEST_FILE), e))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
        Error::io(
            root.join(MANIFEST_FILE),
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    let headers = Arc::new(Headers::from_manifest(&manifest));
    let files = ServeDir::new(root)
        .precompressed_br()
        .precompressed_gzip()
        .append_index_html_on_directories(true)
        .not_found_service(ServeFile::new(root.join("404.html")));
    let base = headers.base.trim_end_matches('/').to_owned();
    let router = if base.is_empty() {
        Router::new().fallback_service(files)
    } else {
        // Redirects to a directory's trailing slash must keep the base.
        Router::new().nest_service(&base, files.redirect_path_prefix(base.clone()))
    };
    Ok(router.layer(middleware::from_fn_with_state(headers, cdn_headers)))
}

/// Conditional requests and the manifest's headers around the file service.
async fn cdn_headers(
    State(headers): State<Arc<Headers>>,
    request: Request,
    next: Next,
) -> Response {
    // The base itself without its slash is a directory URL: redirect.
    if headers.base.len() > 1 && request.uri().path() == headers.base.trim_end_matches('/') {
        let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
        if let Ok(location) = HeaderValue::from_str(&headers.base) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return response;
    }
    let served = headers.lookup(request.uri().path()).cloned();
    if let Some(s) = &served
        && matches(request.headers(), &s.etag)
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set(response.headers_mut(), s);
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        return response;
    }
    let mut response = next.run(request).await;
    if let Some(s) = &served
        && (response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED)
    {
        set(response.headers_mut(), s);
    }
    response
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

/// Serve `root` on `addr` until Ctrl-C. `ready` gets the bound address (the
/// port may have been 0).
pub fn serve(root: PathBuf, addr: SocketAddr, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let router = router(&root)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io(&root, e))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(addr.to_string(), e))?;
        ready(
            listener
                .local_addr()
                .map_err(|e| Error::io(addr.to_string(), e))?,
        );
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
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
}
