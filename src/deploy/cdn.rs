//! After the upload: tell the CDN what changed (a CloudFront invalidation
//! collapsed to few paths, a Cloudflare or Fastly purge of the changed URLs)
//! and warm its cache by fetching them.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use crate::error::{Error, Result};

/// Most paths one invalidation lists before they are collapsed to wildcards
/// (CloudFront bills per path beyond 1 000 a month; a wildcard is one path).
pub const MAX_INVALIDATION_PATHS: usize = 15;

/// URL paths to invalidate for the changed keys of a site served under
/// `base`: each key as `{base}key`, a directory's `index.html` also as
/// `{base}dir/`; past `max`, whole top-level folders as `{base}folder/*`, and
/// past that, `{base}*`. Each segment is percent-encoded, as CloudFront wants
/// (a `*` in a name too: only a final one is a wildcard).
pub fn invalidation_paths(keys: &[String], base: &str, max: usize) -> Vec<String> {
    let encode = |key: &str| -> String {
        key.split('/')
            .map(|s| crate::link::rewrite::encode_file_name(s).replace('*', "%2A"))
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut paths: Vec<String> = keys
        .iter()
        .flat_map(|key| {
            let path = encode(key);
            let dir = key
                .strip_suffix("index.html")
                .filter(|d| d.is_empty() || d.ends_with('/'))
                .map(encode);
            std::iter::once(path).chain(dir)
        })
        .collect();
    paths.sort();
    paths.dedup();
    if paths.len() > max {
        paths = paths
            .iter()
            .map(|p| match p.split_once('/') {
                Some((folder, _)) => format!("{folder}/*"),
                None => p.clone(),
            })
            .collect();
        paths.sort();
        paths.dedup();
    }
    if paths.len() > max {
        paths = vec!["*".to_owned()];
    }
    paths.into_iter().map(|p| format!("{base}{p}")).collect()
}

/// CloudFront's API version in request paths, and its XML namespace.
const CLOUDFRONT_API: &str = "2020-05-31";

/// Create a CloudFront invalidation for `paths`; returns its id.
///
/// One signed `CreateInvalidation` request (SigV4, credentials found as the
/// SDK finds them), retried on throttling and server errors: the whole
/// CloudFront SDK for one call took two minutes of CPU to compile.
pub async fn invalidate_cloudfront(
    distribution: &str,
    paths: &[String],
    region: Option<&str>,
) -> Result<String> {
    use aws_credential_types::provider::ProvideCredentials;
    let failed = |message: String| Error::Deploy {
        target: format!("cloudfront:{distribution}"),
        message: format!("invalidation failed (the deploy itself is complete): {message}"),
    };
    let endpoint = cloudfront_endpoint().map_err(&failed)?;
    let url = endpoint
        .join(&format!(
            "{CLOUDFRONT_API}/distribution/{}/invalidation",
            percent_encoding::utf8_percent_encode(distribution, percent_encoding::NON_ALPHANUMERIC)
        ))
        .map_err(|e| failed(e.to_string()))?;
    let body = invalidation_batch(paths, &format!("kiln-{}", super::unix_now_nanos()));
    let shared = super::aws::load(Some(region.unwrap_or("us-east-1")), None).await;
    let credentials = match shared.credentials_provider() {
        Some(provider) => provider
            .provide_credentials()
            .await
            .map_err(|e| failed(format!("no AWS credentials: {e}")))?,
        None => return Err(failed("no AWS credentials".to_owned())),
    };
    let client = http_client(Duration::from_secs(60)).map_err(&failed)?;
    let mut last = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        // Signed again each time: a signature is bound to its minute.
        let headers = sign(&url, &body, &credentials).map_err(&failed)?;
        let mut request = client
            .post(url.clone())
            .header("content-type", "application/xml")
            .body(body.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let (status, text) = match request.send().await {
            Ok(response) => (response.status(), response.text().await.unwrap_or_default()),
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        if status.is_success() {
            return Ok(xml_text(&text, "Id").unwrap_or_default());
        }
        last = match (xml_text(&text, "Code"), xml_text(&text, "Message")) {
            (Some(code), Some(message)) => format!("{code}: {message} (HTTP {status})"),
            (Some(code), None) => format!("{code} (HTTP {status})"),
            _ => format!("HTTP {status}"),
        };
        if !(status.is_server_error() || status.as_u16() == 429 || last.starts_with("Throttling")) {
            break;
        }
    }
    Err(failed(last))
}

/// Where the CloudFront API is: `AWS_ENDPOINT_URL_CLOUDFRONT`, then
/// `AWS_ENDPOINT_URL` (as the SDKs read them), else AWS's global endpoint.
fn cloudfront_endpoint() -> std::result::Result<reqwest::Url, String> {
    let configured = ["AWS_ENDPOINT_URL_CLOUDFRONT", "AWS_ENDPOINT_URL"]
        .into_iter()
        .find_map(|name| Some((name, std::env::var(name).ok().filter(|v| !v.is_empty())?)));
    let (name, value) = configured.unwrap_or(("", "https://cloudfront.amazonaws.com".to_owned()));
    let mut url = reqwest::Url::parse(&value)
        .ok()
        .filter(|u| u.host().is_some() && matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| format!("{name}={value:?} is not an http(s) URL"))?;
    if !url.path().ends_with('/') {
        url.set_path(&format!("{}/", url.path()));
    }
    Ok(url)
}

/// SigV4 headers for a CloudFront POST of `body` to `url`.
fn sign(
    url: &reqwest::Url,
    body: &str,
    credentials: &aws_credential_types::Credentials,
) -> std::result::Result<Vec<(String, String)>, String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        // CloudFront is global: it signs in us-east-1 whatever the region.
        .region("us-east-1")
        .name("cloudfront")
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = SignableRequest::new(
        "POST",
        url.as_str(),
        std::iter::once(("content-type", "application/xml")),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _) = aws_sigv4::http_request::sign(request, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

/// The `InvalidationBatch` document CreateInvalidation takes.
fn invalidation_batch(paths: &[String], caller_reference: &str) -> String {
    let items: String = paths
        .iter()
        .map(|p| format!("<Path>{}</Path>", xml_escape(p)))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <InvalidationBatch xmlns=\"http://cloudfront.amazonaws.com/doc/{CLOUDFRONT_API}/\">\
         <Paths><Quantity>{}</Quantity><Items>{items}</Items></Paths>\
         <CallerReference>{}</CallerReference></InvalidationBatch>",
        paths.len(),
        xml_escape(caller_reference)
    )
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The text of the first `<tag>` element in a CloudFront reply (flat,
/// unnamespaced elements: `Id`, `Code`, `Message`).
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The public URLs of changed keys for a site whose root is at `site_url`:
/// each key, and a directory's URL for its `index.html`; percent-encoded.
pub fn purge_urls(keys: &[String], site_url: &str) -> Vec<String> {
    let root = format!("{}/", site_url.trim_end_matches('/'));
    let mut urls: Vec<String> = invalidation_paths(keys, "/", usize::MAX)
        .into_iter()
        .map(|p| format!("{root}{}", &p[1..]))
        .collect();
    urls.sort();
    urls.dedup();
    urls
}

/// URLs one Cloudflare purge request lists: the per-call limit its docs give
/// for non-Enterprise plans (not checked against the live API here).
const CLOUDFLARE_BATCH: usize = 30;
/// Past this many URLs, Fastly purges the whole service in one request.
const FASTLY_MAX_URLS: usize = 100;

/// Purge `urls` from a Cloudflare zone, 30 per request, with the API token in
/// `CLOUDFLARE_API_TOKEN`. `CLOUDFLARE_API_URL` overrides the API (tests).
/// Returns the requests made.
pub async fn purge_cloudflare(zone: &str, urls: &[String]) -> Result<usize> {
    let failed = |message: String| Error::Deploy {
        target: format!("cloudflare:{zone}"),
        message: format!("purge failed (the deploy itself is complete): {message}"),
    };
    let token = api_token("CLOUDFLARE_API_TOKEN").map_err(&failed)?;
    let api = api_url("CLOUDFLARE_API_URL", "https://api.cloudflare.com/client/v4");
    let client = http_client(Duration::from_secs(60)).map_err(&failed)?;
    let url = format!("{api}/zones/{zone}/purge_cache");
    let mut requests = 0;
    for batch in urls.chunks(CLOUDFLARE_BATCH) {
        requests += 1;
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(serde_json::json!({ "files": batch }).to_string())
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body: serde_json::Value = response
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if !status.is_success() || body["success"] != true {
            let errors: Vec<String> = body["errors"]
                .as_array()
                .map(|list| {
                    list.iter()
                        .map(|e| format!("{} {}", e["code"], e["message"].as_str().unwrap_or("")))
                        .collect()
                })
                .unwrap_or_default();
            return Err(failed(format!("HTTP {status}: {}", errors.join("; "))));
        }
    }
    Ok(requests)
}

/// Purge `urls` from Fastly with the API token in `FASTLY_API_TOKEN`: each
/// URL (`POST /purge/{url}`), or past 100 of them the whole service
/// (`POST /service/{id}/purge_all`). `FASTLY_API_URL` overrides the API.
/// Returns the requests made.
pub async fn purge_fastly(service: &str, urls: &[String]) -> Result<usize> {
    let failed = |message: String| Error::Deploy {
        target: format!("fastly:{service}"),
        message: format!("purge failed (the deploy itself is complete): {message}"),
    };
    let token = api_token("FASTLY_API_TOKEN").map_err(&failed)?;
    let api = api_url("FASTLY_API_URL", "https://api.fastly.com");
    let client = http_client(Duration::from_secs(60)).map_err(&failed)?;
    let targets: Vec<String> = if urls.len() > FASTLY_MAX_URLS {
        vec![format!("{api}/service/{service}/purge_all")]
    } else {
        urls.iter()
            .map(|u| {
                let bare = u.split_once("://").map_or(u.as_str(), |(_, rest)| rest);
                format!("{api}/purge/{bare}")
            })
            .collect()
    };
    let sent: Vec<std::result::Result<(), String>> = futures_util::stream::iter(&targets)
        .map(|target| {
            let client = client.clone();
            let token = token.clone();
            async move {
                let response = client
                    .post(target)
                    .header("fastly-key", token)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .map_err(|e| format!("{target}: {e}"))?;
                let status = response.status();
                if status.is_success() {
                    Ok(())
                } else {
                    let body = response.text().await.unwrap_or_default();
                    Err(format!("{target}: HTTP {status} {}", body.trim()))
                }
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    match sent.into_iter().find_map(|r| r.err()) {
        Some(e) => Err(failed(e)),
        None => Ok(targets.len()),
    }
}

fn api_token(name: &str) -> std::result::Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| format!("{name} is not set"))
}

/// The API root from the environment variable `name`, else `default`.
fn api_url(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| default.to_owned())
        .trim_end_matches('/')
        .to_owned()
}

/// The HTTP client of the CDN calls.
fn http_client(timeout: Duration) -> std::result::Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(crate::generator())
        .build()
        .map_err(|e| e.to_string())
}

/// What one warming request saw.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Warmed {
    pub url: String,
    /// HTTP status, or 0 when the request failed.
    pub status: u16,
    pub content_encoding: Option<String>,
    pub cache_control: Option<String>,
    /// The CDN's own cache verdict (`x-cache`, `cf-cache-status`, `age`), when it sends one.
    pub cache: Option<String>,
    pub error: Option<String>,
}

/// Fetch `base` + each path with `Accept-Encoding: br, gzip`, a few at a
/// time, so the CDN's edge holds them before visitors ask.
pub async fn warm(base: &str, paths: &[String], concurrency: usize) -> Vec<Warmed> {
    let client = match http_client(Duration::from_secs(30)) {
        Ok(c) => c,
        Err(e) => {
            return vec![Warmed {
                url: base.to_owned(),
                status: 0,
                content_encoding: None,
                cache_control: None,
                cache: None,
                error: Some(e),
            }];
        }
    };
    let base = base.trim_end_matches('/').to_owned();
    let mut out: Vec<Warmed> = futures_util::stream::iter(paths)
        .map(|path| {
            let client = client.clone();
            let url = format!("{base}/{}", path.trim_start_matches('/'));
            async move {
                let header = |r: &reqwest::Response, name: &str| {
                    r.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                match client
                    .get(&url)
                    .header("accept-encoding", "br, gzip")
                    .send()
                    .await
                {
                    Ok(response) => {
                        let warmed = Warmed {
                            url: url.clone(),
                            status: response.status().as_u16(),
                            content_encoding: header(&response, "content-encoding"),
                            cache_control: header(&response, "cache-control"),
                            cache: header(&response, "x-cache")
                                .or_else(|| header(&response, "cf-cache-status"))
                                .or_else(|| header(&response, "age").map(|a| format!("age {a}"))),
                            error: None,
                        };
                        // Read the body: a CDN caches what is fetched in full.
                        let _ = response.bytes().await;
                        warmed
                    }
                    Err(e) => Warmed {
                        url,
                        status: 0,
                        content_encoding: None,
                        cache_control: None,
                        cache: None,
                        error: Some(e.to_string()),
                    },
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    out.sort_by(|a, b| a.url.cmp(&b.url));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn index_pages_add_their_directory() {
        assert_eq!(
            invalidation_paths(&keys(&["index.html", "docs/index.html", "a.txt"]), "/", 15),
            ["/", "/a.txt", "/docs/", "/docs/index.html", "/index.html"]
        );
        // Not an index page.
        assert_eq!(
            invalidation_paths(&keys(&["myindex.html"]), "/", 15),
            ["/myindex.html"]
        );
    }

    #[test]
    fn paths_are_under_the_base_and_percent_encoded() {
        assert_eq!(
            invalidation_paths(
                &keys(&["index.html", "img/team photo.jpg", "a*b.txt", "é.html"]),
                "/docs/",
                15
            ),
            [
                "/docs/",
                "/docs/%C3%A9.html",
                "/docs/a%2Ab.txt",
                "/docs/img/team%20photo.jpg",
                "/docs/index.html",
            ]
        );
    }

    #[test]
    fn many_paths_collapse_to_folders_then_everything() {
        let many: Vec<String> = (0..40).map(|i| format!("docs/p{i}.html")).collect();
        let mut with_root = many.clone();
        with_root.push("robots.txt".into());
        assert_eq!(
            invalidation_paths(&with_root, "/", 15),
            ["/docs/*", "/robots.txt"]
        );
        assert_eq!(
            invalidation_paths(&with_root, "/site/", 15),
            ["/site/docs/*", "/site/robots.txt"]
        );
        let spread: Vec<String> = (0..40).map(|i| format!("d{i}/x.html")).collect();
        assert_eq!(invalidation_paths(&spread, "/", 15), ["/*"]);
        assert_eq!(invalidation_paths(&spread, "/site/", 15), ["/site/*"]);
    }

    #[test]
    fn the_invalidation_batch_escapes_paths() {
        let xml = invalidation_batch(&keys(&["/a&b/<x>", "/"]), "kiln-1");
        assert!(xml.contains("<Quantity>2</Quantity>"), "{xml}");
        assert!(
            xml.contains("<Items><Path>/a&amp;b/&lt;x&gt;</Path><Path>/</Path></Items>"),
            "{xml}"
        );
        assert!(
            xml.contains("<CallerReference>kiln-1</CallerReference>"),
            "{xml}"
        );
        assert_eq!(xml_text(&xml, "Path").as_deref(), Some("/a&b/<x>"));
        assert_eq!(xml_text(&xml, "Id"), None);
    }

    #[test]
    fn requests_are_signed_for_cloudfront_in_us_east_1() {
        let credentials =
            aws_credential_types::Credentials::new("AKIDKILN", "secret", None, None, "test");
        let url = reqwest::Url::parse("https://cloudfront.amazonaws.com/x").unwrap();
        let headers = sign(&url, "<x/>", &credentials).unwrap();
        let auth = &headers
            .iter()
            .find(|(n, _)| n == "authorization")
            .unwrap()
            .1;
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDKILN/")
                && auth.contains("/us-east-1/cloudfront/aws4_request"),
            "{auth}"
        );
        assert!(headers.iter().any(|(n, _)| n == "x-amz-date"));
    }

    #[test]
    fn purge_urls_are_public_urls_under_the_site_root() {
        assert_eq!(
            purge_urls(
                &keys(&["index.html", "docs/a b.html"]),
                "https://example.com/site"
            ),
            [
                "https://example.com/site/",
                "https://example.com/site/docs/a%20b.html",
                "https://example.com/site/index.html",
            ]
        );
    }
}
