//! What the S3 origin and the CloudFront invalidation share: settings loaded
//! the SDK's way (environment, profiles, SSO, web identity, instance
//! metadata) over one HTTPS client, with ring as its crypto provider, the one
//! reqwest uses too: a second provider (aws-lc) cost a minute of a fresh
//! build (docs/performance.md, "Build time").

use aws_config::SdkConfig;
use aws_sdk_s3::config::SharedHttpClient;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// The HTTPS client every SDK client of kiln's uses (and its tests' own).
pub fn https_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK's shared configuration, with `region` and `endpoint` when given.
pub async fn load(region: Option<&str>, endpoint: Option<&str>) -> SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}
