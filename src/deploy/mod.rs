//! `kiln deploy`: put a build on an origin, changing only what changed, in an
//! order that keeps the live site whole at every moment.
//!
//! 1. **Objects.** The build's manifest says what to serve: every output and
//!    alias with its Content-Type and Cache-Control, and (by
//!    [`Encoding`]) its precompressed siblings. Each object has an
//!    *identity*, a hash of its bytes' hash and its headers, so a header-only
//!    change is a change.
//! 2. **Plan.** The origin keeps a small state object ([`STATE_KEY`]) naming
//!    what the last deploy wrote and what has left the build since. The plan
//!    compares the objects with it: a no-op deploy reads one object and
//!    writes nothing. `--verify` lists the origin as well and repairs drift.
//! 3. **Order.** Immutable (hashed) objects first, then other assets, then
//!    HTML, then deletions, then the state. A deploy killed at any point
//!    leaves the old pages finding their old assets; the next run, planned
//!    against the old state, completes the new one.
//! 4. **Deletion.** A key that left the build is deleted only when it has
//!    been absent for `keep_deploys` deploys *and* `keep_for`; `max_delete`
//!    refuses larger deletions. Keys kiln never wrote are left alone unless
//!    `prune_foreign`. Keys never leave the prefix.
//!
//! Origins: [`dir`] (a local directory, what an nginx origin serves) and
//! [`s3`] (any S3-compatible store).

pub mod aws;
pub mod cdn;
pub mod dir;
pub mod s3;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::emit::manifest::{MANIFEST_FILE, Manifest, manifest_file};
use crate::error::{Error, Result};

/// The state object, under the target's prefix.
pub const STATE_KEY: &str = ".kiln-deploy.json";
/// Key of the deployed build's manifest (what `--compare-to TARGET` and
/// `kiln diff` read), written with the state.
pub const MANIFEST_KEY: &str = ".kiln-manifest.json";

/// Keys kiln keeps for itself under the prefix: never uploaded from a build,
/// never pruned.
pub fn is_meta_key(key: &str) -> bool {
    key == STATE_KEY || key == MANIFEST_KEY
}
/// Metadata key (S3 `x-amz-meta-…`) holding an object's identity.
pub const IDENTITY_META: &str = "kiln-identity";
/// Version of the state object's schema.
pub const STATE_SCHEMA: u32 = 1;

/// How precompressed variants reach the origin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Upload `.br`, `.gz` (and `.zst`) siblings (with `Content-Encoding`) for a CDN
    /// rule or edge function that picks one by `Accept-Encoding`.
    #[default]
    Negotiate,
    /// Store each canonical key gzip-encoded (`Content-Encoding: gzip`) when a
    /// gzip variant exists: what plain S3 behind CloudFront serves to everyone.
    Gzip,
    /// Upload only the uncompressed files.
    None,
}

/// Where a deploy goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `s3://bucket/prefix`: `prefix` has no leading or trailing slash.
    S3 { bucket: String, prefix: String },
    /// `dir:/path`.
    Dir(PathBuf),
}

impl Target {
    pub fn parse(text: &str) -> Result<Target> {
        let bad = |message: &str| Error::Usage(format!("deploy to {text}: {message}"));
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket: write s3://bucket or s3://bucket/prefix"));
            }
            let prefix = prefix.trim_matches('/').to_owned();
            if !prefix.is_empty() && !safe_key(&prefix) {
                return Err(bad(
                    "the prefix must be plain path segments (no `.`, `..` or empty ones)",
                ));
            }
            Ok(Target::S3 {
                bucket: bucket.to_owned(),
                prefix,
            })
        } else if let Some(path) = text.strip_prefix("dir:") {
            if path.is_empty() {
                return Err(bad("no directory: write dir:/path"));
            }
            Ok(Target::Dir(PathBuf::from(path)))
        } else {
            Err(bad("a target is s3://bucket/prefix or dir:/path"))
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Target::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Target::Dir(path) => write!(f, "dir:{}", path.display()),
        }
    }
}

/// Whether `key` is a relative path of plain segments: nothing that could
/// leave a prefix or a directory.
pub fn safe_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && !key.contains('\\')
        && !key.contains('\0')
        && key
            .split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

/// Most keys one deploy deletes unless `max_delete` says otherwise (as
/// s3deploy and `hugo deploy`): a misconfigured prefix must not empty a bucket.
pub const DEFAULT_MAX_DELETE: usize = 256;

/// Everything a deploy needs besides the build.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub target: Target,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    pub encoding: Encoding,
    pub concurrency: usize,
    /// Most deletions one deploy makes (grace period over, stale siblings,
    /// `prune_foreign`); a plan with more changes nothing.
    pub max_delete: usize,
    pub keep_deploys: u64,
    pub keep_for: Duration,
    pub prune_foreign: bool,
    /// Compare with a full listing (and object metadata) and repair drift.
    pub verify: bool,
    /// Plan only.
    pub dry_run: bool,
    /// Deploy a directory without a kiln manifest, every file as it is.
    pub raw: bool,
    /// Objects at least this large are uploaded in parts.
    pub multipart_threshold: u64,
    /// Attempts per S3 request, with backoff (default 8; reading a baseline uses 3).
    pub max_attempts: u32,
    pub purge_command: Option<String>,
    /// CloudFront distribution to invalidate for changed paths.
    pub cloudfront_distribution: Option<String>,
    /// Fetch the changed URLs under this base after the deploy.
    pub warm: Option<String>,
    pub cloudflare_zone: Option<String>,
    pub fastly_service: Option<String>,
    /// The public URL of the site's root (purges by URL need it).
    pub site_url: Option<String>,
}

impl DeploySettings {
    /// These settings, each replaced by the one `over` gives (the flags over
    /// kiln.toml).
    pub fn overridden_by(self, over: DeploySettings) -> DeploySettings {
        DeploySettings {
            to: over.to.or(self.to),
            endpoint: over.endpoint.or(self.endpoint),
            region: over.region.or(self.region),
            path_style: over.path_style.or(self.path_style),
            encoding: over.encoding.or(self.encoding),
            concurrency: over.concurrency.or(self.concurrency),
            max_delete: over.max_delete.or(self.max_delete),
            keep_deploys: over.keep_deploys.or(self.keep_deploys),
            keep_for: over.keep_for.or(self.keep_for),
            prune_foreign: over.prune_foreign.or(self.prune_foreign),
            multipart_threshold: over.multipart_threshold.or(self.multipart_threshold),
            purge_command: over.purge_command.or(self.purge_command),
            cloudfront_distribution: over
                .cloudfront_distribution
                .or(self.cloudfront_distribution),
            warm: over.warm.or(self.warm),
            cloudflare_zone: over.cloudflare_zone.or(self.cloudflare_zone),
            fastly_service: over.fastly_service.or(self.fastly_service),
            site_url: over.site_url.or(self.site_url),
        }
    }
}

impl DeployOptions {
    /// The options for deploying to (or reading) the target `settings.to`,
    /// defaults where a setting is absent: the one place settings become
    /// options.
    pub fn from_settings(settings: &DeploySettings) -> Result<DeployOptions> {
        let to = settings.to.as_deref().ok_or_else(|| {
            Error::Usage(
                "no target: pass --to s3://bucket/prefix or --to dir:/path, or set deploy.to in kiln.toml"
                    .into(),
            )
        })?;
        let mut options = DeployOptions::new(Target::parse(to)?);
        options.endpoint = settings.endpoint.clone();
        options.region = settings.region.clone();
        options.path_style = settings.path_style.unwrap_or(false);
        options.encoding = settings.encoding.unwrap_or_default();
        if let Some(n) = settings.concurrency {
            options.concurrency = n.max(1);
        }
        options.max_delete = settings.max_delete.unwrap_or(DEFAULT_MAX_DELETE);
        if let Some(n) = settings.keep_deploys {
            options.keep_deploys = n;
        }
        if let Some(text) = &settings.keep_for {
            options.keep_for = crate::units::parse_duration(text).ok_or_else(|| {
                Error::Usage(format!(
                    "keep_for: `{text}` is not a duration (0, 90s, 30m, 12h, 7d)"
                ))
            })?;
        }
        options.prune_foreign = settings.prune_foreign.unwrap_or(false);
        if let Some(n) = settings.multipart_threshold {
            options.multipart_threshold = n.max(5 << 20);
        }
        options.purge_command = settings.purge_command.clone();
        options.cloudfront_distribution = settings.cloudfront_distribution.clone();
        options.warm = settings.warm.clone();
        options.cloudflare_zone = settings.cloudflare_zone.clone();
        options.fastly_service = settings.fastly_service.clone();
        options.site_url = settings.site_url.clone().or_else(|| settings.warm.clone());
        if options.site_url.is_none()
            && (options.cloudflare_zone.is_some() || options.fastly_service.is_some())
        {
            return Err(Error::Usage(
                "a Cloudflare or Fastly purge names URLs: pass --site-url https://example.com/ (or set deploy.site_url)".into(),
            ));
        }
        Ok(options)
    }

    pub fn new(target: Target) -> DeployOptions {
        DeployOptions {
            target,
            endpoint: None,
            region: None,
            path_style: false,
            encoding: Encoding::default(),
            concurrency: 16,
            max_delete: DEFAULT_MAX_DELETE,
            keep_deploys: 3,
            keep_for: Duration::from_secs(7 * 24 * 3600),
            prune_foreign: false,
            verify: false,
            dry_run: false,
            raw: false,
            multipart_threshold: 16 << 20,
            max_attempts: 8,
            purge_command: None,
            cloudfront_distribution: None,
            warm: None,
            cloudflare_zone: None,
            fastly_service: None,
            site_url: None,
        }
    }
}

/// When an object goes out relative to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Content-hashed, cached for a year: nothing refers to it until pages do.
    Immutable,
    /// Other assets.
    Asset,
    /// Pages, last: they refer to everything else.
    Html,
}

/// One object the origin should hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Object {
    /// Key under the prefix.
    pub key: String,
    /// The file holding its bytes.
    #[serde(skip)]
    pub file: PathBuf,
    pub content_type: String,
    pub cache_control: String,
    pub content_encoding: Option<String>,
    /// `[[headers]]` an object store keeps with the object (S3:
    /// `Content-Disposition`, `Content-Language`); the others are the CDN's
    /// to add (docs/hosting.md).
    pub headers: BTreeMap<String, String>,
    pub size: u64,
    /// blake3 over the bytes' hash and the headers.
    pub identity: String,
    pub phase: Phase,
}

/// The `[[headers]]` an S3 object stores and serves as such.
pub const STORED_HEADERS: [&str; 2] = ["content-disposition", "content-language"];

/// The objects of a build in `out`, from its manifest.
pub fn objects(out: &Path, encoding: Encoding) -> Result<Vec<Object>> {
    let manifest = Manifest::read(out)?;
    let effort = serde_json::to_string(&manifest.compression.effort).unwrap_or_default();
    let mut objects = Vec::new();
    for served in manifest.served() {
        let entry = served.entry;
        if !safe_key(served.path) {
            return Err(Error::Deploy {
                target: manifest_file(out).display().to_string(),
                message: format!("unsafe path in the manifest: {:?}", served.path),
            });
        }
        let phase = if served.cache_control.contains("immutable") {
            Phase::Immutable
        } else if entry.content_type.starts_with("text/html") {
            Phase::Html
        } else {
            Phase::Asset
        };
        let stored: BTreeMap<String, String> = entry
            .headers
            .iter()
            .filter(|(name, _)| STORED_HEADERS.contains(&name.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let object = |key: String, suffix: &str, encoding: Option<&str>, size: u64| {
            let extra: String = stored.iter().map(|(k, v)| format!("\0{k}: {v}")).collect();
            let identity = blake3::hash(
                format!(
                    "{}\0{suffix}\0{effort}\0{}\0{}\0{}{extra}",
                    entry.blake3,
                    entry.content_type,
                    served.cache_control,
                    encoding.unwrap_or("")
                )
                .as_bytes(),
            )
            .to_hex()
            .to_string();
            Object {
                key,
                file: out.join(format!("{}{suffix}", served.path)),
                content_type: entry.content_type.clone(),
                cache_control: served.cache_control.to_owned(),
                content_encoding: encoding.map(str::to_owned),
                headers: stored.clone(),
                size,
                identity,
                phase,
            }
        };
        let path = served.path.to_owned();
        match encoding {
            Encoding::Gzip if entry.gzip.is_some() => {
                objects.push(object(path, ".gz", Some("gzip"), entry.gzip.unwrap_or(0)));
            }
            Encoding::Negotiate => {
                objects.push(object(path.clone(), "", None, entry.bytes_out));
                if let Some(size) = entry.gzip {
                    objects.push(object(format!("{path}.gz"), ".gz", Some("gzip"), size));
                }
                if let Some(size) = entry.brotli {
                    objects.push(object(format!("{path}.br"), ".br", Some("br"), size));
                }
                if let Some(size) = entry.zstd {
                    objects.push(object(format!("{path}.zst"), ".zst", Some("zstd"), size));
                }
            }
            _ => objects.push(object(path, "", None, entry.bytes_out)),
        }
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// The objects of a directory without a manifest (`--raw`): every file, typed
/// by its extension, cached for an hour.
pub fn raw_objects(dir: &Path) -> Result<Vec<Object>> {
    let mut objects = Vec::new();
    for entry in ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .hidden(false)
        .build()
    {
        let entry = entry.map_err(|e| Error::io(dir, std::io::Error::other(e)))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let Some(key) = rel.to_str().map(|k| k.replace('\\', "/")) else {
            continue;
        };
        // kiln's temporary files (a build or watch killed part-way) are not the site's.
        let temporary = key
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with(crate::emit::TEMP_PREFIX));
        if !safe_key(&key) || is_meta_key(&key) || temporary {
            continue;
        }
        let bytes = std::fs::read(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        let content_type =
            crate::emit::headers::content_type(&key, crate::asset::AssetKind::from_path(&key));
        let cache_control = crate::emit::headers::DEFAULT_CACHE_OTHER.to_owned();
        let identity = blake3::hash(
            format!(
                "{}\0raw\0{content_type}\0{cache_control}",
                blake3::hash(&bytes).to_hex()
            )
            .as_bytes(),
        )
        .to_hex()
        .to_string();
        let phase = if content_type.starts_with("text/html") {
            Phase::Html
        } else {
            Phase::Asset
        };
        objects.push(Object {
            key,
            file: entry.path().to_path_buf(),
            content_type,
            cache_control,
            content_encoding: None,
            headers: BTreeMap::new(),
            size: bytes.len() as u64,
            identity,
            phase,
        });
    }
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(objects)
}

/// What the origin holds, as the last deploy left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub schema: u32,
    pub generator: String,
    /// Deploys so far.
    pub deploys: u64,
    /// Unix seconds of the last deploy.
    pub deployed_at: u64,
    /// Keys the last deploy left in place, with their identities.
    pub objects: BTreeMap<String, String>,
    /// Keys that left the build and wait for their grace period to end.
    #[serde(default)]
    pub absent: BTreeMap<String, Absent>,
}

/// A key that left the build: since which deploy and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Absent {
    pub deploy: u64,
    pub since: u64,
}

/// What the origin has under the prefix, from a listing: key → identity
/// from its metadata, when read.
pub type Listing = BTreeMap<String, Option<String>>;

/// What a deploy will do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    /// New keys.
    pub uploads: Vec<Object>,
    /// Keys whose bytes or headers changed (or drifted, under `--verify`).
    pub updates: Vec<Object>,
    pub unchanged: usize,
    /// Keys whose grace period is over.
    pub deletions: Vec<String>,
    /// Keys that left the build and wait: (key, deploys absent so far).
    pub deferred: Vec<String>,
    /// Why each key of the plan is in it, by key.
    pub reasons: BTreeMap<String, String>,
    /// Set when the plan breaks `max_delete`: a deploy refuses it, a dry run
    /// shows it and says so.
    pub refused: Option<String>,
    /// The state to write once everything else is done.
    #[serde(skip)]
    pub next: State,
}

impl Plan {
    /// Whether the deploy writes anything, or moves a key in or out of its
    /// grace period.
    pub fn changes(&self, state: &State) -> bool {
        !(self.uploads.is_empty() && self.updates.is_empty() && self.deletions.is_empty())
            || self.next.absent != state.absent
    }

    /// Changed paths a CDN may hold stale: everything uploaded except immutable objects.
    pub fn changed_paths(&self) -> Vec<&str> {
        self.uploads
            .iter()
            .chain(&self.updates)
            .filter(|o| o.phase != Phase::Immutable)
            .map(|o| o.key.as_str())
            .collect()
    }

    /// The changed paths that are URLs: without the `.br`/`.gz`/`.zst` siblings,
    /// which a CDN serves under their file's URL (unless `encoding` stores
    /// the compressed bytes under the plain key).
    pub fn changed_urls(&self, encoding: Encoding) -> Vec<String> {
        self.uploads
            .iter()
            .chain(&self.updates)
            .filter(|o| o.phase != Phase::Immutable)
            .filter(|o| o.content_encoding.is_none() || encoding == Encoding::Gzip)
            .map(|o| o.key.clone())
            .collect()
    }
}

pub fn unix_now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Compare the build's objects with the origin's state (and listing, when
/// there is one) and decide every key's fate.
pub fn plan(
    objects: Vec<Object>,
    state: &State,
    listing: Option<&Listing>,
    options: &DeployOptions,
    now: u64,
) -> Result<Plan> {
    let deploy = state.deploys + 1;
    let mut plan = Plan {
        next: State {
            schema: STATE_SCHEMA,
            generator: crate::generator(),
            deploys: deploy,
            deployed_at: now,
            objects: BTreeMap::new(),
            absent: BTreeMap::new(),
        },
        ..Plan::default()
    };
    let wanted: BTreeSet<String> = objects.iter().map(|o| o.key.clone()).collect();
    for object in &objects {
        plan.next
            .objects
            .insert(object.key.clone(), object.identity.clone());
    }
    for object in objects {
        let recorded = state.objects.get(&object.key);
        let present = match listing {
            // The listing is the truth: missing means missing; metadata (when
            // read) must carry the identity.
            Some(listing) => match listing.get(&object.key) {
                None => None,
                Some(Some(identity)) => Some(identity == &object.identity),
                Some(None) => Some(recorded == Some(&object.identity)),
            },
            None => recorded.map(|identity| identity == &object.identity),
        };
        let reason = match present {
            Some(true) => {
                plan.unchanged += 1;
                continue;
            }
            Some(false) if listing.is_some() && recorded == Some(&object.identity) => {
                "differs on the origin"
            }
            Some(false) => "changed",
            None if recorded.is_some() => "missing from the origin",
            None if state.absent.contains_key(&object.key) => "back in the build",
            None => "new",
        };
        plan.reasons.insert(object.key.clone(), reason.to_owned());
        if reason == "new" {
            plan.uploads.push(object);
        } else {
            plan.updates.push(object);
        }
    }
    // Keys kiln wrote that left the build: wait, then delete.
    let grace_over = |absent: &Absent| {
        deploy.saturating_sub(absent.deploy) >= options.keep_deploys
            && now.saturating_sub(absent.since) >= options.keep_for.as_secs()
    };
    // The state is read from the origin: a key in it that is not plain path
    // segments (a tampered state) is never deleted.
    let gone = state
        .objects
        .keys()
        .filter(|k| !wanted.contains(*k) && safe_key(k))
        .map(|k| (k.clone(), Absent { deploy, since: now }));
    let waiting = state
        .absent
        .iter()
        .filter(|(k, _)| !wanted.contains(*k) && safe_key(k))
        .map(|(k, a)| (k.clone(), *a));
    // A `.br`/`.gz`/`.zst` sibling whose uncompressed key is still served goes at
    // once: a CDN choosing by Accept-Encoding would serve its stale bytes.
    let stale_sibling = |key: &str| {
        [".br", ".gz", ".zst"].iter().any(|ext| {
            key.strip_suffix(ext)
                .is_some_and(|stem| wanted.contains(stem))
        })
    };
    for (key, absent) in waiting.chain(gone) {
        let reason = if stale_sibling(&key) {
            "a stale .br/.gz/.zst of a file still served".to_owned()
        } else {
            format!(
                "left the build {} deploy(s) ago",
                deploy.saturating_sub(absent.deploy)
            )
        };
        if grace_over(&absent) || stale_sibling(&key) {
            plan.deletions.push(key.clone());
            plan.reasons.insert(key, reason);
        } else {
            plan.deferred.push(key.clone());
            plan.next.absent.insert(key.clone(), absent);
            plan.reasons
                .insert(key, format!("{reason}; kept for its grace period"));
        }
    }
    if options.prune_foreign
        && let Some(listing) = listing
    {
        for key in listing.keys().filter(|k| {
            !is_meta_key(k)
                && !wanted.contains(*k)
                && !state.objects.contains_key(*k)
                && !state.absent.contains_key(*k)
        }) {
            plan.deletions.push(key.clone());
            plan.reasons.insert(
                key.clone(),
                "not written by kiln (prune_foreign)".to_owned(),
            );
        }
    }
    plan.deletions.sort();
    plan.deletions.dedup();
    plan.deferred.sort();
    if plan.deletions.len() > options.max_delete {
        plan.refused = Some(format!(
            "the plan deletes {} objects, more than --max-delete {} (default {DEFAULT_MAX_DELETE})",
            plan.deletions.len(),
            options.max_delete
        ));
    }
    // Order: immutable, assets, HTML; by key within a phase.
    for list in [&mut plan.uploads, &mut plan.updates] {
        list.sort_by(|a, b| (a.phase, &a.key).cmp(&(b.phase, &b.key)));
    }
    Ok(plan)
}

/// What a deploy did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeploySummary {
    pub target: String,
    pub dry_run: bool,
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    pub updated: usize,
    pub updated_bytes: u64,
    pub unchanged: usize,
    pub deleted: usize,
    pub deferred: usize,
    /// Requests sent to the origin (S3 operations; retries not counted).
    pub requests: u64,
    pub duration_ms: u128,
    /// Non-immutable keys that changed (what a CDN must purge).
    pub changed_paths: Vec<String>,
    /// The CloudFront invalidation made, if any.
    pub invalidation: Option<Invalidation>,
    /// The Cloudflare and Fastly purges made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub purged: Vec<Purged>,
    /// What warming saw, URL by URL.
    pub warmed: Vec<cdn::Warmed>,
    /// The plan, in the order it runs.
    pub plan: PlanReport,
    /// Why a deploy would refuse this plan (dry runs only: a deploy fails instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

/// A purge by URL: which CDN, how many URLs, in how many requests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Purged {
    /// `cloudflare:ZONE` or `fastly:SERVICE`.
    pub cdn: String,
    pub urls: usize,
    pub requests: usize,
}

/// A CDN invalidation: its id and the paths it listed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Invalidation {
    pub id: String,
    pub paths: Vec<String>,
}

/// The plan as printed by `--dry-run` and `--json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanReport {
    pub uploads: Vec<String>,
    pub updates: Vec<String>,
    pub deletions: Vec<String>,
    pub deferred: Vec<String>,
    /// Every key of the plan, in the order it runs, with its size and reason.
    pub lines: Vec<PlanLine>,
}

/// One key of the plan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlanLine {
    /// `upload`, `update`, `delete` or `defer`.
    pub action: &'static str,
    pub key: String,
    /// Bytes sent; unknown for deletions.
    pub size: Option<u64>,
    pub reason: String,
}

impl PlanReport {
    fn new(plan: &Plan) -> PlanReport {
        let keys = |list: &[Object]| list.iter().map(|o| o.key.clone()).collect();
        let reason = |key: &str| plan.reasons.get(key).cloned().unwrap_or_default();
        let mut sends: Vec<(&'static str, &Object)> = plan
            .uploads
            .iter()
            .map(|o| ("upload", o))
            .chain(plan.updates.iter().map(|o| ("update", o)))
            .collect();
        // The order the deploy runs: by phase, then by key.
        sends.sort_by(|a, b| (a.1.phase, &a.1.key).cmp(&(b.1.phase, &b.1.key)));
        let lines = sends
            .into_iter()
            .map(|(action, o)| PlanLine {
                action,
                key: o.key.clone(),
                size: Some(o.size),
                reason: reason(&o.key),
            })
            .chain(
                [("delete", &plan.deletions), ("defer", &plan.deferred)]
                    .into_iter()
                    .flat_map(|(action, keys)| {
                        keys.iter().map(move |key| PlanLine {
                            action,
                            key: key.clone(),
                            size: None,
                            reason: reason(key),
                        })
                    }),
            )
            .collect();
        PlanReport {
            uploads: keys(&plan.uploads),
            updates: keys(&plan.updates),
            deletions: plan.deletions.clone(),
            deferred: plan.deferred.clone(),
            lines,
        }
    }

    /// One line per key: action, size, key, reason.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let size = line
                .size
                .map_or_else(|| "-".to_owned(), crate::units::human_bytes);
            out.push_str(&format!(
                "{:>6} {size:>10}  {}  ({})\n",
                line.action, line.key, line.reason
            ));
        }
        out
    }
}

impl DeploySummary {
    fn new(target: &Target, plan: &Plan, dry_run: bool) -> DeploySummary {
        DeploySummary {
            target: target.to_string(),
            dry_run,
            uploaded: plan.uploads.len(),
            uploaded_bytes: plan.uploads.iter().map(|o| o.size).sum(),
            updated: plan.updates.len(),
            updated_bytes: plan.updates.iter().map(|o| o.size).sum(),
            unchanged: plan.unchanged,
            deleted: plan.deletions.len(),
            deferred: plan.deferred.len(),
            changed_paths: plan
                .changed_paths()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            plan: PlanReport::new(plan),
            refused: plan.refused.clone(),
            ..DeploySummary::default()
        }
    }

    /// The human summary.
    pub fn to_text(&self) -> String {
        let verb = if self.dry_run {
            "would deploy"
        } else {
            "deployed"
        };
        let mut text = String::new();
        if let Some(i) = &self.invalidation {
            text.push_str(&format!(
                "invalidated {} paths on CloudFront ({}): {}\n",
                i.paths.len(),
                i.id,
                i.paths.join(" ")
            ));
        }
        for p in &self.purged {
            text.push_str(&format!(
                "purged {} URLs from {} in {} requests\n",
                p.urls, p.cdn, p.requests
            ));
        }
        if !self.warmed.is_empty() {
            let ok = |w: &&cdn::Warmed| (200..300).contains(&w.status);
            text.push_str(&format!(
                "warmed {}/{} URLs\n",
                self.warmed.iter().filter(ok).count(),
                self.warmed.len()
            ));
            for w in self.warmed.iter().filter(|w| !ok(w)) {
                text.push_str(&format!(
                    "  {} {}{}\n",
                    w.status,
                    w.url,
                    w.error
                        .as_deref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ));
            }
        }
        text + &format!(
            "{verb} to {}: {} uploaded ({}), {} updated ({}), {} unchanged, {} deleted, {} deferred; {} requests in {} ms\n",
            self.target,
            self.uploaded,
            crate::units::human_bytes(self.uploaded_bytes),
            self.updated,
            crate::units::human_bytes(self.updated_bytes),
            self.unchanged,
            self.deleted,
            self.deferred,
            self.requests,
            self.duration_ms
        )
    }
}

/// An origin: where objects and the state live.
pub(crate) enum Origin {
    Dir(dir::DirOrigin),
    S3(s3::S3Origin),
}

impl Origin {
    async fn read_state(&self) -> Result<Option<State>> {
        let Some(bytes) = self.get(STATE_KEY).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            self.error(format!(
                "the deploy state {STATE_KEY} is unreadable ({e}); remove it and deploy with --verify"
            ))
        })
    }

    /// The keys under the prefix; with `verify`, also what each object holds.
    async fn list(&self, verify: Option<&[Object]>) -> Result<Listing> {
        match self {
            Origin::Dir(o) => o.list(verify),
            Origin::S3(o) => o.list(verify.is_some()).await,
        }
    }

    async fn write_state(&self, state: &State) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).expect("state serialises");
        self.put_meta(STATE_KEY, &bytes).await
    }

    async fn put_meta(&self, key: &str, bytes: &[u8]) -> Result<()> {
        match self {
            Origin::Dir(o) => o.put_bytes(key, bytes),
            Origin::S3(o) => o.put_meta(key, bytes).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Origin::Dir(o) => o.get(key),
            Origin::S3(o) => o.get(key).await,
        }
    }

    async fn connect(options: &DeployOptions) -> Result<Origin> {
        Ok(match &options.target {
            Target::Dir(path) => Origin::Dir(dir::DirOrigin::new(path)),
            Target::S3 { bucket, prefix } => {
                Origin::S3(s3::S3Origin::connect(bucket, prefix, options).await?)
            }
        })
    }

    fn requests(&self) -> u64 {
        match self {
            Origin::Dir(_) => 0,
            Origin::S3(o) => o.requests(),
        }
    }

    fn error(&self, message: String) -> Error {
        match self {
            Origin::Dir(o) => o.error(message),
            Origin::S3(o) => o.error(message),
        }
    }
}

/// The manifest of the build last deployed to the target, if any (`.kiln-manifest.json`).
pub fn fetch_manifest(options: &DeployOptions) -> Result<Option<Vec<u8>>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Deploy {
            target: options.target.to_string(),
            message: e.to_string(),
        })?;
    runtime.block_on(async { Origin::connect(options).await?.get(MANIFEST_KEY).await })
}

/// What a running deploy reports, object by object (a progress bar, a
/// `--verbose` log). Both methods default to nothing.
pub trait DeployProgress: Sync {
    /// The plan is made: `sends` objects to write, `deletions` keys to delete.
    fn planned(&self, _sends: usize, _deletions: usize) {}
    /// One object written (`upload`, `update`) or key deleted (`delete`).
    fn done(&self, _action: &str, _key: &str, _bytes: Option<u64>) {}
}

/// No report.
impl DeployProgress for () {}

/// Deploy the build in `out`.
pub fn deploy(out: &Path, options: &DeployOptions) -> Result<DeploySummary> {
    deploy_with(out, options, &())
}

/// Deploy the build in `out`, telling `progress` as objects go out.
pub fn deploy_with(
    out: &Path,
    options: &DeployOptions,
    progress: &dyn DeployProgress,
) -> Result<DeploySummary> {
    let started = std::time::Instant::now();
    let objects = if manifest_file(out).is_file() {
        objects(out, options.encoding)?
    } else if options.raw {
        raw_objects(out)?
    } else {
        return Err(Error::Deploy {
            target: out.display().to_string(),
            message: format!(
                "no {MANIFEST_FILE}: this is not a kiln build (run `kiln build`, or pass --raw to deploy the files as they are)"
            ),
        });
    };
    if matches!(options.target, Target::Dir(_)) && options.encoding == Encoding::Gzip {
        return Err(Error::Deploy {
            target: options.target.to_string(),
            message: "--encoding gzip needs an origin that stores Content-Encoding (S3); a directory cannot: use negotiate with gzip_static".into(),
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io(out, e))?;
    runtime.block_on(async {
        let origin = Origin::connect(options).await?;
        let state = origin.read_state().await?;
        let listing = if options.verify || options.prune_foreign || state.is_none() {
            Some(
                origin
                    .list(options.verify.then_some(objects.as_slice()))
                    .await?,
            )
        } else {
            None
        };
        let state = state.unwrap_or_default();
        let plan = plan(objects, &state, listing.as_ref(), options, unix_now())?;
        if let Some(refused) = &plan.refused
            && !options.dry_run
        {
            return Err(origin.error(format!("{refused}; nothing was changed")));
        }
        let mut summary = DeploySummary::new(&options.target, &plan, options.dry_run);
        if !options.dry_run {
            progress.planned(
                plan.uploads.len() + plan.updates.len(),
                plan.deletions.len(),
            );
            // Before anything changes, record that the keys about to be
            // written are in flux: a deploy killed part-way, then followed by
            // another build (a rollback), must not trust them.
            if !(plan.uploads.is_empty() && plan.updates.is_empty()) {
                origin.write_state(&intent(&state, &plan)).await?;
            }
            for phase in [Phase::Immutable, Phase::Asset, Phase::Html] {
                let batch: Vec<&Object> = plan
                    .uploads
                    .iter()
                    .chain(&plan.updates)
                    .filter(|o| o.phase == phase)
                    .collect();
                let sent = |o: &Object| {
                    let action = if plan.reasons.get(&o.key).is_some_and(|r| r == "new") {
                        "upload"
                    } else {
                        "update"
                    };
                    progress.done(action, &o.key, Some(o.size));
                };
                match &origin {
                    Origin::Dir(o) => o.put_all(&batch, &sent)?,
                    Origin::S3(o) => o.put_all(&batch, options, &sent).await?,
                }
            }
            let deleted = |key: &str| progress.done("delete", key, None);
            match &origin {
                Origin::Dir(o) => o.delete_all(&plan.deletions, &deleted)?,
                Origin::S3(o) => o.delete_all(&plan.deletions, &deleted).await?,
            }
            // A deploy that changes nothing leaves the state alone: a no-op
            // deploy is the one read of the state, and does not count towards
            // `keep_deploys`.
            if plan.changes(&state) {
                match std::fs::read(manifest_file(out)) {
                    Ok(bytes) => origin.put_meta(MANIFEST_KEY, &bytes).await?,
                    // A --raw deploy has no manifest: an earlier build's must
                    // not describe the target any more.
                    Err(_) => match &origin {
                        Origin::Dir(o) => o.delete_meta(MANIFEST_KEY)?,
                        Origin::S3(o) => o.delete_meta(MANIFEST_KEY).await?,
                    },
                }
                origin.write_state(&plan.next).await?;
            }
            if let Some(command) = &options.purge_command
                && !summary.changed_paths.is_empty()
            {
                purge(command, &summary.changed_paths, &options.target)?;
            }
            let changed_urls = plan.changed_urls(options.encoding);
            if let Some(distribution) = &options.cloudfront_distribution
                && !changed_urls.is_empty()
            {
                let paths = cdn::invalidation_paths(
                    &changed_urls,
                    &site_base(out),
                    cdn::MAX_INVALIDATION_PATHS,
                );
                let id = cdn::invalidate_cloudfront(distribution, &paths, None).await?;
                summary.invalidation = Some(Invalidation { id, paths });
            }
            if let Some(site_url) = &options.site_url
                && !changed_urls.is_empty()
            {
                let urls = cdn::purge_urls(&changed_urls, site_url);
                if let Some(zone) = &options.cloudflare_zone {
                    let requests = cdn::purge_cloudflare(zone, &urls).await?;
                    summary.purged.push(Purged {
                        cdn: format!("cloudflare:{zone}"),
                        urls: urls.len(),
                        requests,
                    });
                }
                if let Some(service) = &options.fastly_service {
                    let requests = cdn::purge_fastly(service, &urls).await?;
                    summary.purged.push(Purged {
                        cdn: format!("fastly:{service}"),
                        urls: urls.len(),
                        requests,
                    });
                }
            }
            if let Some(base) = &options.warm {
                // Canonical URLs only: the CDN picks the variant by Accept-Encoding.
                let urls: Vec<String> = plan
                    .uploads
                    .iter()
                    .chain(&plan.updates)
                    .filter(|o| o.content_encoding.is_none() || options.encoding == Encoding::Gzip)
                    .map(|o| o.key.clone())
                    .collect();
                summary.warmed = cdn::warm(base, &urls, options.concurrency).await;
            }
        }
        summary.requests = origin.requests();
        summary.duration_ms = started.elapsed().as_millis();
        Ok(summary)
    })
}

/// The URL path the build is served under (`base`), `/` for a raw deploy:
/// CDN paths are URLs, keys are paths under it.
fn site_base(out: &Path) -> String {
    Manifest::read(out).map_or_else(|_| "/".to_owned(), |m| m.base)
}

/// The state written before the first upload: the previous one, with every
/// key about to be written moved out of `objects` (its identity is unknown
/// until the deploy finishes) into `absent`, so that it stays known as
/// kiln's and is cleaned up by the grace period if no later build wants it.
fn intent(state: &State, plan: &Plan) -> State {
    let mut intent = state.clone();
    for object in plan.uploads.iter().chain(&plan.updates) {
        intent.objects.remove(&object.key);
        intent.absent.entry(object.key.clone()).or_insert(Absent {
            deploy: plan.next.deploys,
            since: plan.next.deployed_at,
        });
    }
    intent
}

/// Run the purge hook: `sh -c COMMAND` with the changed paths on stdin, one
/// per line (also in `KILN_CHANGED_PATHS`).
fn purge(command: &str, paths: &[String], target: &Target) -> Result<()> {
    use std::io::Write;
    let list = paths.join("\n") + "\n";
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("KILN_CHANGED_PATHS", &list)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("purge_command", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(list.as_bytes());
    }
    let status = child.wait().map_err(|e| Error::io("purge_command", e))?;
    if status.success() {
        Ok(())
    } else {
        Err(Error::Deploy {
            target: target.to_string(),
            message: format!("the purge command failed ({status}); the deploy itself is complete"),
        })
    }
}

/// `[deploy]` in kiln.toml: defaults for `kiln deploy`, each overridden by its flag.
/// See `docs/deploy.md`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySettings {
    /// `s3://bucket/prefix` or `dir:/path`.
    pub to: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    pub encoding: Option<Encoding>,
    pub concurrency: Option<usize>,
    pub max_delete: Option<usize>,
    pub keep_deploys: Option<u64>,
    /// A duration: `0`, `90s`, `30m`, `12h`, `7d`.
    pub keep_for: Option<String>,
    pub prune_foreign: Option<bool>,
    pub multipart_threshold: Option<u64>,
    /// Run after a deploy that changed non-immutable paths; the paths are on stdin.
    pub purge_command: Option<String>,
    /// CloudFront distribution to invalidate for changed non-immutable paths.
    pub cloudfront_distribution: Option<String>,
    /// Base URL to warm after a deploy.
    pub warm: Option<String>,
    /// Cloudflare zone to purge the changed URLs from (token in `CLOUDFLARE_API_TOKEN`).
    pub cloudflare_zone: Option<String>,
    /// Fastly service to purge the changed URLs from (token in `FASTLY_API_TOKEN`).
    pub fastly_service: Option<String>,
    /// The public URL of the site's root, for purges by URL (default: `warm`).
    pub site_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, identity: &str, phase: Phase) -> Object {
        Object {
            key: key.into(),
            file: PathBuf::from(key),
            content_type: "text/plain".into(),
            cache_control: String::new(),
            content_encoding: None,
            headers: BTreeMap::new(),
            size: 1,
            identity: identity.into(),
            phase,
        }
    }

    fn options() -> DeployOptions {
        let mut o = DeployOptions::new(Target::Dir("/tmp/x".into()));
        o.keep_deploys = 2;
        o.keep_for = Duration::from_secs(100);
        o
    }

    #[test]
    fn a_raw_directory_leaves_out_kilns_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        std::fs::write(dir.path().join("docs/index.html"), "<p>x").unwrap();
        let temporary = format!("docs/{}abc123", crate::emit::TEMP_PREFIX);
        std::fs::write(dir.path().join(&temporary), "<p>old").unwrap();
        let keys: Vec<String> = raw_objects(dir.path())
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(keys, ["docs/index.html"]);
    }

    #[test]
    fn targets_parse_and_refuse_escapes() {
        assert_eq!(
            Target::parse("s3://b/site/v1/").unwrap(),
            Target::S3 {
                bucket: "b".into(),
                prefix: "site/v1".into()
            }
        );
        assert_eq!(
            Target::parse("s3://b").unwrap(),
            Target::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert!(Target::parse("s3://b/../x").is_err());
        assert!(Target::parse("s3:///x").is_err());
        assert!(Target::parse("/var/www").is_err());
        assert_eq!(
            Target::parse("dir:/srv/www").unwrap(),
            Target::Dir("/srv/www".into())
        );
        assert!(safe_key("a/b.css"));
        for bad in ["", "/a", "a//b", "a/../b", "..", "a\\b", "./a"] {
            assert!(!safe_key(bad), "{bad}");
        }
    }

    #[test]
    fn first_deploy_uploads_everything_in_phase_order() {
        let plan = plan(
            vec![
                object("index.html", "1", Phase::Html),
                object("a.css", "2", Phase::Immutable),
                object("robots.txt", "3", Phase::Asset),
            ],
            &State::default(),
            None,
            &options(),
            1000,
        )
        .unwrap();
        let keys: Vec<&str> = plan.uploads.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a.css", "robots.txt", "index.html"]);
        assert_eq!(plan.next.deploys, 1);
        assert_eq!(plan.next.objects.len(), 3);
    }

    #[test]
    fn unchanged_objects_cost_nothing_and_changes_are_updates() {
        let state = State {
            deploys: 4,
            objects: [("a", "1"), ("b", "2")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..State::default()
        };
        let plan = plan(
            vec![
                object("a", "1", Phase::Asset),
                object("b", "changed", Phase::Asset),
            ],
            &state,
            None,
            &options(),
            1000,
        )
        .unwrap();
        assert_eq!(plan.unchanged, 1);
        assert!(plan.uploads.is_empty());
        assert_eq!(plan.updates.len(), 1);
        assert_eq!(plan.updates[0].key, "b");
        assert_eq!(plan.next.deploys, 5);
    }

    #[test]
    fn removed_keys_wait_for_deploys_and_time() {
        let mut state = State {
            deploys: 1,
            objects: [("old".to_string(), "1".to_string())].into(),
            ..State::default()
        };
        let opts = options();
        // Deploy 2 at t=1000: "old" left the build.
        let p = plan(vec![], &state, None, &opts, 1000).unwrap();
        assert_eq!(p.deferred, ["old"]);
        assert!(p.deletions.is_empty());
        state = p.next;
        // Deploy 3 at t=1050: one deploy absent, not enough.
        let p = plan(vec![], &state, None, &opts, 1050).unwrap();
        assert_eq!(p.deferred, ["old"]);
        state = p.next;
        // Deploy 4 at t=1060: two deploys, but only 60 s.
        let p = plan(vec![], &state, None, &opts, 1060).unwrap();
        assert_eq!(p.deferred, ["old"]);
        state = p.next;
        // Deploy 5 at t=1200: both conditions hold.
        let p = plan(vec![], &state, None, &opts, 1200).unwrap();
        assert_eq!(p.deletions, ["old"]);
        assert!(p.next.absent.is_empty());
        // A key that comes back stops waiting.
        let p = plan(
            vec![object("old", "1", Phase::Asset)],
            &state,
            None,
            &opts,
            1200,
        )
        .unwrap();
        assert!(p.deletions.is_empty() && p.deferred.is_empty());
        assert_eq!(p.updates.len(), 1);
    }

    #[test]
    fn max_delete_refuses_and_foreign_keys_stay_unless_pruned() {
        let state = State {
            deploys: 9,
            absent: [(
                "gone".to_string(),
                Absent {
                    deploy: 1,
                    since: 0,
                },
            )]
            .into(),
            ..State::default()
        };
        let listing: Listing = [
            ("gone".to_string(), None),
            ("foreign.txt".to_string(), None),
            (STATE_KEY.to_string(), None),
            (MANIFEST_KEY.to_string(), None),
        ]
        .into();
        let mut opts = options();
        let p = plan(vec![], &state, Some(&listing), &opts, 10_000).unwrap();
        assert_eq!(p.deletions, ["gone"]);
        opts.prune_foreign = true;
        let p = plan(vec![], &state, Some(&listing), &opts, 10_000).unwrap();
        assert_eq!(p.deletions, ["foreign.txt", "gone"]);
        assert_eq!(p.refused, None);
        assert_eq!(
            p.reasons["foreign.txt"],
            "not written by kiln (prune_foreign)"
        );
        assert_eq!(p.reasons["gone"], "left the build 9 deploy(s) ago");
        // Foreign keys count towards the limit too; the plan is still whole.
        opts.max_delete = 1;
        let p = plan(vec![], &state, Some(&listing), &opts, 10_000).unwrap();
        assert_eq!(p.deletions, ["foreign.txt", "gone"]);
        let refused = p.refused.unwrap();
        assert!(
            refused.contains("--max-delete 1 (default 256)"),
            "{refused}"
        );
    }

    #[test]
    fn a_killed_deploy_followed_by_a_rollback_rewrites_what_it_touched() {
        let a = State {
            deploys: 1,
            objects: [("index.html", "A"), ("a.css", "A")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..State::default()
        };
        // Deploy B changes index.html and adds b.css, and is killed after
        // writing its intent.
        let b = plan(
            vec![
                object("index.html", "B", Phase::Html),
                object("a.css", "A", Phase::Immutable),
                object("b.css", "B", Phase::Immutable),
            ],
            &a,
            None,
            &options(),
            100,
        )
        .unwrap();
        let killed = intent(&a, &b);
        // Rolling back to A's build: index.html is rewritten (B may have
        // replaced it), and b.css is kiln's and waits for its grace period.
        let c = plan(
            vec![
                object("index.html", "A", Phase::Html),
                object("a.css", "A", Phase::Immutable),
            ],
            &killed,
            None,
            &options(),
            200,
        )
        .unwrap();
        assert_eq!(c.updates.len(), 1);
        assert_eq!(c.updates[0].key, "index.html");
        assert_eq!(c.unchanged, 1);
        assert_eq!(c.deferred, ["b.css"]);
    }

    #[test]
    fn a_sibling_of_a_served_key_goes_at_once() {
        let state = State {
            deploys: 1,
            objects: [("a.txt", "1"), ("a.txt.br", "2"), ("old.txt", "3")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..State::default()
        };
        // a.txt is no longer worth compressing; old.txt left the build.
        let p = plan(
            vec![object("a.txt", "4", Phase::Asset)],
            &state,
            None,
            &options(),
            5,
        )
        .unwrap();
        assert_eq!(p.deletions, ["a.txt.br"]);
        assert_eq!(p.deferred, ["old.txt"]);
    }

    #[test]
    fn a_tampered_state_cannot_delete_outside_the_prefix() {
        let state = State {
            deploys: 9,
            objects: [
                ("../other-site/index.html", "1"),
                ("/etc/passwd", "2"),
                ("ok.txt", "3"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            absent: [(
                "a/../../b".to_string(),
                Absent {
                    deploy: 1,
                    since: 0,
                },
            )]
            .into(),
            ..State::default()
        };
        let mut opts = options();
        opts.keep_deploys = 0;
        opts.keep_for = Duration::ZERO;
        let p = plan(vec![], &state, None, &opts, 10_000).unwrap();
        assert_eq!(p.deletions, ["ok.txt"]);
        assert!(p.deferred.is_empty());
    }

    #[test]
    fn verify_repairs_drift_from_the_listing() {
        let state = State {
            deploys: 1,
            objects: [("a", "1"), ("b", "2"), ("c", "3")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..State::default()
        };
        // "a" was deleted behind kiln's back, "b" overwritten by someone else.
        let listing: Listing = [
            ("b".to_string(), Some("tampered".to_string())),
            ("c".to_string(), Some("3".to_string())),
        ]
        .into();
        let p = plan(
            vec![
                object("a", "1", Phase::Asset),
                object("b", "2", Phase::Asset),
                object("c", "3", Phase::Asset),
            ],
            &state,
            Some(&listing),
            &options(),
            10,
        )
        .unwrap();
        let updated: Vec<&str> = p.updates.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(updated, ["a", "b"]);
        assert_eq!(p.unchanged, 1);
    }
}
