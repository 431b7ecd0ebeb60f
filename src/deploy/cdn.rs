//! After the upload: tell the CDN what changed (CloudFront invalidation,
//! collapsed to few paths) and warm its cache by fetching the changed URLs.

use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;

use crate::error::{Error, Result};

/// Most paths one invalidation lists before they are collapsed to wildcards
/// (CloudFront bills per path beyond 1 000 a month; a wildcard is one path).
pub const MAX_INVALIDATION_PATHS: usize = 15;

/// URL paths to invalidate for the changed keys: each key as `/key`, a
/// directory's `index.html` also as `/dir/`; past `max`, whole top-level
/// folders as `/folder/*`, and past that, `/*`.
pub fn invalidation_paths(keys: &[String], max: usize) -> Vec<String> {
    let mut paths: Vec<String> = keys
        .iter()
        .flat_map(|key| {
            let path = format!("/{key}");
            let dir = key
                .strip_suffix("index.html")
                .filter(|d| d.is_empty() || d.ends_with('/'))
                .map(|d| format!("/{d}"));
            std::iter::once(path).chain(dir)
        })
        .collect();
    paths.sort();
    paths.dedup();
    if paths.len() <= max {
        return paths;
    }
    let mut folders: Vec<String> = paths
        .iter()
        .map(|p| match p[1..].split_once('/') {
            Some((folder, _)) => format!("/{folder}/*"),
            None => p.clone(),
        })
        .collect();
    folders.sort();
    folders.dedup();
    if folders.len() <= max {
        folders
    } else {
        vec!["/*".to_owned()]
    }
}

/// Create a CloudFront invalidation for `paths`; returns its id.
pub async fn invalidate_cloudfront(
    distribution: &str,
    paths: &[String],
    region: Option<&str>,
) -> Result<String> {
    use aws_sdk_cloudfront::types::{InvalidationBatch, Paths};
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(
            region.unwrap_or("us-east-1").to_owned(),
        ))
        .load()
        .await;
    let client = aws_sdk_cloudfront::Client::new(&shared);
    let failed = |message: String| Error::Deploy {
        target: format!("cloudfront:{distribution}"),
        message,
    };
    let batch = InvalidationBatch::builder()
        .caller_reference(format!("kiln-{}", super::unix_now_nanos()))
        .paths(
            Paths::builder()
                .quantity(paths.len() as i32)
                .set_items(Some(paths.to_vec()))
                .build()
                .map_err(|e| failed(e.to_string()))?,
        )
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let output = client
        .create_invalidation()
        .distribution_id(distribution)
        .invalidation_batch(batch)
        .send()
        .await
        .map_err(|e| {
            failed(format!(
                "invalidation failed (the deploy itself is complete): {}",
                aws_sdk_cloudfront::error::DisplayErrorContext(&e)
            ))
        })?;
    Ok(output
        .invalidation()
        .map(|i| i.id().to_owned())
        .unwrap_or_default())
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
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(crate::generator())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return vec![Warmed {
                url: base.to_owned(),
                status: 0,
                content_encoding: None,
                cache_control: None,
                cache: None,
                error: Some(e.to_string()),
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
            invalidation_paths(&keys(&["index.html", "docs/index.html", "a.txt"]), 15),
            ["/", "/a.txt", "/docs/", "/docs/index.html", "/index.html"]
        );
        // Not an index page.
        assert_eq!(
            invalidation_paths(&keys(&["myindex.html"]), 15),
            ["/myindex.html"]
        );
    }

    #[test]
    fn many_paths_collapse_to_folders_then_everything() {
        let many: Vec<String> = (0..40).map(|i| format!("docs/p{i}.html")).collect();
        let mut with_root = many.clone();
        with_root.push("robots.txt".into());
        assert_eq!(
            invalidation_paths(&with_root, 15),
            ["/docs/*", "/robots.txt"]
        );
        let spread: Vec<String> = (0..40).map(|i| format!("d{i}/x.html")).collect();
        assert_eq!(invalidation_paths(&spread, 15), ["/*"]);
    }
}
