//! `s3://bucket/prefix`: any S3-compatible store (AWS S3, Cloudflare R2,
//! MinIO, SeaweedFS, Garage, Backblaze B2…) through aws-sdk-s3, with
//! aws-config's credential chain (environment, shared profile, SSO, web
//! identity — GitHub's OIDC — and instance metadata).
//!
//! Each object carries Content-Type, Cache-Control, Content-Encoding and its
//! identity in metadata (`x-amz-meta-kiln-identity`); no ACL is set, so
//! objects are as private as the bucket. Uploads are bounded by
//! `concurrency`, checksummed by the SDK, retried with backoff on throttling,
//! 5xx and dropped connections, and split into parts above
//! `multipart_threshold`.

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures_util::{StreamExt, TryStreamExt};

use super::{DeployOptions, IDENTITY_META, Listing, Object};
use crate::error::{Error, Result};

/// Size of each part of a multipart upload.
const PART_SIZE: usize = 8 << 20;

pub struct S3Origin {
    client: Client,
    bucket: String,
    prefix: String,
    target: String,
    requests: AtomicU64,
}

impl S3Origin {
    pub async fn connect(bucket: &str, prefix: &str, options: &DeployOptions) -> Result<S3Origin> {
        let shared = super::aws::load(options.region.as_deref(), options.endpoint.as_deref()).await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(options.path_style)
            .retry_config(RetryConfig::standard().with_max_attempts(options.max_attempts.max(1)));
        if shared.region().is_none() {
            // Endpoints other than AWS rarely care; SigV4 needs one.
            config = config.region(aws_config::Region::new("us-east-1"));
        }
        Ok(S3Origin {
            client: Client::from_conf(config.build()),
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            target: options.target.to_string(),
            requests: AtomicU64::new(0),
        })
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self, message: String) -> Error {
        Error::Deploy {
            target: self.target.clone(),
            message,
        }
    }

    /// An SDK failure as a deploy error, with advice for the common ones.
    fn failed<E>(&self, what: &str, key: &str, error: SdkError<E, HttpResponse>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let code = error
            .as_service_error()
            .and_then(|e| e.code())
            .unwrap_or("");
        let advice = match code {
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "InvalidToken"
            | "ExpiredToken" => {
                " — the credentials were refused: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, \
                 the profile or the role, and the bucket policy"
            }
            "NoSuchBucket" => " — the bucket does not exist (or is in another region)",
            _ => "",
        };
        let message = match &error {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => format!(
                "{what} {key}: cannot reach the endpoint: {}",
                DisplayErrorContext(&error)
            ),
            _ if !code.is_empty() => format!(
                "{what} {key}: {code}: {}{advice}",
                error
                    .as_service_error()
                    .and_then(|e| e.message())
                    .unwrap_or("")
            ),
            _ => format!("{what} {key}: {}", DisplayErrorContext(&error)),
        };
        self.error(message)
    }

    fn key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.count();
        let full = self.key(key);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(output) => {
                let bytes = output
                    .body
                    .collect()
                    .await
                    .map_err(|e| self.error(format!("read {full}: {e}")))?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.failed("get", &full, e)),
        }
    }

    /// Every key under the prefix; with `identities`, each object's
    /// `kiln-identity` metadata too (one HEAD per object).
    pub async fn list(&self, identities: bool) -> Result<Listing> {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            self.count();
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| self.failed("list", &prefix, e))?;
            for object in output.contents() {
                if let Some(key) = object.key().and_then(|k| k.strip_prefix(&prefix))
                    && super::safe_key(key)
                {
                    keys.push(key.to_owned());
                }
            }
            token = output.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        if !identities {
            return Ok(keys.into_iter().map(|k| (k, None)).collect());
        }
        let heads = futures_util::stream::iter(keys)
            .map(|key| async move {
                self.count();
                let full = self.key(&key);
                let output = self
                    .client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&full)
                    .send()
                    .await
                    .map_err(|e| self.failed("head", &full, e))?;
                // An object without kiln's metadata was written by someone
                // else since: it matches no identity, so --verify repairs it.
                let identity = output
                    .metadata()
                    .and_then(|m| m.get(IDENTITY_META))
                    .cloned()
                    .or_else(|| Some(String::new()));
                Ok::<_, Error>((key, identity))
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(heads.into_iter().collect())
    }

    /// Upload a batch with bounded concurrency; the first failure (after the
    /// SDK's retries) stops the deploy before the next phase.
    /// Upload `objects`, `concurrency` at a time, telling `sent` about each.
    pub async fn put_all(
        &self,
        objects: &[&Object],
        options: &DeployOptions,
        sent: &(dyn Fn(&Object) + Sync),
    ) -> Result<()> {
        futures_util::stream::iter(objects)
            .map(|object| async move {
                self.put(object, options.multipart_threshold).await?;
                sent(object);
                Ok(())
            })
            .buffer_unordered(options.concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    async fn put(&self, object: &Object, multipart_threshold: u64) -> Result<()> {
        let full = self.key(&object.key);
        let bytes = tokio::fs::read(&object.file)
            .await
            .map_err(|e| Error::io(&object.file, e))?;
        if bytes.len() as u64 >= multipart_threshold {
            return self.put_multipart(object, &full, bytes).await;
        }
        self.count();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(bytes))
            .content_type(&object.content_type)
            .cache_control(&object.cache_control)
            .set_content_encoding(object.content_encoding.clone())
            .set_content_disposition(object.headers.get("content-disposition").cloned())
            .set_content_language(object.headers.get("content-language").cloned())
            .metadata(IDENTITY_META, &object.identity)
            .send()
            .await
            .map_err(|e| self.failed("upload", &full, e))?;
        Ok(())
    }

    async fn put_multipart(&self, object: &Object, full: &str, bytes: Vec<u8>) -> Result<()> {
        self.count();
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .content_type(&object.content_type)
            .cache_control(&object.cache_control)
            .set_content_encoding(object.content_encoding.clone())
            .set_content_disposition(object.headers.get("content-disposition").cloned())
            .set_content_language(object.headers.get("content-language").cloned())
            .metadata(IDENTITY_META, &object.identity)
            .send()
            .await
            .map_err(|e| self.failed("start multipart upload of", full, e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| self.error(format!("no upload id for {full}")))?
            .to_owned();
        let parts = futures_util::stream::iter(bytes.chunks(PART_SIZE).enumerate())
            .map(|(i, chunk)| {
                let upload_id = upload_id.clone();
                async move {
                    self.count();
                    let number = i as i32 + 1;
                    let part = self
                        .client
                        .upload_part()
                        .bucket(&self.bucket)
                        .key(full)
                        .upload_id(upload_id)
                        .part_number(number)
                        .body(ByteStream::from(chunk.to_vec()))
                        .send()
                        .await
                        .map_err(|e| self.failed("upload part of", full, e))?;
                    Ok::<_, Error>(
                        CompletedPart::builder()
                            .part_number(number)
                            .set_e_tag(part.e_tag().map(str::to_owned))
                            .build(),
                    )
                }
            })
            .buffer_unordered(4)
            .try_collect::<Vec<_>>()
            .await;
        let mut parts = match parts {
            Ok(parts) => parts,
            Err(e) => {
                self.abort(full, &upload_id).await;
                return Err(e);
            }
        };
        parts.sort_by_key(|p| p.part_number());
        self.count();
        let completed = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match completed {
            Ok(_) => Ok(()),
            Err(e) => {
                self.abort(full, &upload_id).await;
                Err(self.failed("complete multipart upload of", full, e))
            }
        }
    }

    /// Abort a multipart upload, leaving no parts to be billed.
    async fn abort(&self, full: &str, upload_id: &str) {
        self.count();
        let _ = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .send()
            .await;
    }

    /// Write one of kiln's own objects (state, manifest): JSON, never cached.
    pub async fn put_meta(&self, key: &str, bytes: &[u8]) -> Result<()> {
        self.count();
        let full = self.key(key);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&full)
            .body(ByteStream::from(bytes.to_vec()))
            .content_type("application/json")
            .cache_control("no-store")
            .send()
            .await
            .map_err(|e| self.failed("write state", &full, e))?;
        Ok(())
    }

    /// Delete one of kiln's own objects; a missing one is fine.
    pub async fn delete_meta(&self, key: &str) -> Result<()> {
        self.delete(key).await
    }

    /// Delete keys, up to 1 000 per `DeleteObjects` request; a store that
    /// lacks it (501) gets one `DeleteObject` per key.
    pub async fn delete_all(&self, keys: &[String], deleted: &(dyn Fn(&str) + Sync)) -> Result<()> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};
        let keys: Vec<&String> = keys.iter().filter(|k| !super::is_meta_key(k)).collect();
        for chunk in keys.chunks(MAX_DELETE_BATCH) {
            let objects = chunk
                .iter()
                .map(|k| ObjectIdentifier::builder().key(self.key(k)).build())
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| self.error(format!("delete: {e}")))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| self.error(format!("delete: {e}")))?;
            self.count();
            let sent = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await;
            match sent {
                Ok(output) => {
                    if let Some(e) = output.errors().first() {
                        return Err(self.error(format!(
                            "delete {}: {} ({} of {} keys of this batch failed)",
                            e.key().unwrap_or("?"),
                            e.message().or(e.code()).unwrap_or("refused"),
                            output.errors().len(),
                            chunk.len()
                        )));
                    }
                }
                Err(SdkError::ServiceError(e)) if e.raw().status().as_u16() == 501 => {
                    futures_util::stream::iter(chunk)
                        .map(|key| self.delete(key))
                        .buffer_unordered(16)
                        .try_collect::<Vec<()>>()
                        .await?;
                }
                Err(e) => {
                    let first = chunk.first().map(|k| self.key(k)).unwrap_or_default();
                    return Err(self.failed("delete", &first, e));
                }
            }
            for key in chunk {
                deleted(key);
            }
        }
        Ok(())
    }
}

/// Keys one `DeleteObjects` request takes (S3's limit).
const MAX_DELETE_BATCH: usize = 1000;

impl S3Origin {
    /// Delete one key; a missing one is fine.
    async fn delete(&self, key: &str) -> Result<()> {
        self.count();
        let full = self.key(key);
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.failed("delete", &full, e)),
        }
    }
}

fn is_not_found<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        // A missing bucket is an error, not an empty origin.
        SdkError::ServiceError(e) => match e.err().code() {
            Some("NoSuchBucket") => false,
            Some("NoSuchKey" | "NotFound") => true,
            _ => e.raw().status().as_u16() == 404,
        },
        _ => false,
    }
}
