//! `kiln watch`: build, then rebuild on every change until Ctrl-C.
//!
//! File events come from notify through its debouncer, which joins an
//! editor's save-by-rename into one change. Events under the output and cache
//! directories, and paths the build excludes (editors' swap and backup files
//! among them), are ignored. A rebuild is an ordinary [`build`](crate::build)
//! with the cache: unchanged files cost a hash and a cache read, changed files
//! and the files that reference them are redone, stale outputs are removed.
//! A failed rebuild is reported and the watch goes on; a change to `kiln.toml`
//! reloads the configuration.
//!
//! With `serve`, the output is served as [`kiln serve`](crate::dev::serve) does,
//! plus live reload: pages reload after a rebuild, or swap their stylesheets
//! when only CSS changed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

use crate::asset::AssetKind;
use crate::config::Config;
use crate::dev::serve::{LiveEvent, Site};
use crate::emit::manifest::Manifest;
use crate::error::{ConfigError, Error, Result};
use crate::pipeline::BuildOutcome;
use crate::pipeline::{Session, compress_pending, rebuild};
use crate::progress::Silent;

/// How `kiln watch` runs.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Serve the output with live reload on this address.
    pub serve: Option<SocketAddr>,
    /// Quiet time after the last file event before a rebuild starts.
    pub debounce: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            serve: None,
            debounce: Duration::from_millis(20),
        }
    }
}

/// What the watch reports to its caller (the CLI prints it).
#[derive(Debug)]
pub enum WatchEvent<'a> {
    /// A build finished. `changed` lists the source paths that triggered it
    /// (empty for the first build).
    Built {
        outcome: &'a BuildOutcome,
        config: &'a Config,
        changed: &'a [String],
    },
    /// A build could not run at all (unreadable configuration, output not writable).
    Failed {
        error: String,
        changed: &'a [String],
    },
    /// The server is listening.
    Serving(SocketAddr),
    /// Watching this directory.
    Watching(&'a Path),
    /// Ctrl-C: the watch is stopping.
    Stopping,
}

enum Message {
    Files(DebounceEventResult),
    Stop,
}

/// Build with the configuration `load` returns, then rebuild on changes until
/// `stop` receives. `load` runs again when the configuration file changes. Errors
/// return only when the first build cannot run or the watch cannot start.
pub fn watch(
    load: impl Fn() -> std::result::Result<Config, ConfigError>,
    options: &WatchOptions,
    stop: mpsc::Receiver<()>,
    mut report: impl FnMut(WatchEvent<'_>),
) -> Result<()> {
    let mut config = load().map_err(Error::Config)?;
    // What the previous builds read and wrote, so that a rebuild redoes only
    // the changed files and their dependents. The files it keeps for reuse
    // go when it drops, however the watch ends (a second Ctrl-C exits at
    // once: the next build removes them). The first build does not defer
    // compression: it is the one a restarted watch trusts.
    let mut session = Session::default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Error::io(&config.source, e))?;
    let (sender, messages) = mpsc::channel();
    {
        // The caller's stop (Ctrl-C in the CLI) ends the watch between builds.
        let sender = sender.clone();
        std::thread::spawn(move || {
            if stop.recv().is_ok() {
                let _ = sender.send(Message::Stop);
            }
        });
    }

    let mut manifest = match rebuild(&config, &session, &Silent) {
        Ok(outcome) => {
            report(WatchEvent::Built {
                outcome: &outcome,
                config: &config,
                changed: &[],
            });
            Some(outcome.manifest)
        }
        Err(e) => return Err(e),
    };

    let site = match options.serve {
        Some(addr) => {
            let site = Site::live(&config.output);
            let listener = runtime
                .block_on(tokio::net::TcpListener::bind(addr))
                .map_err(|e| Error::Usage(format!("cannot listen on {addr}: {e}")))?;
            let bound = listener
                .local_addr()
                .map_err(|e| Error::io(addr.to_string(), e))?;
            let router = site.router();
            runtime.spawn(async move {
                let _ = axum::serve(listener, router).await;
            });
            report(WatchEvent::Serving(bound));
            Some(site)
        }
        None => None,
    };

    let root = config
        .source
        .canonicalize()
        .map_err(|e| Error::io(&config.source, e))?;
    let tick = options.debounce / 4;
    let mut debouncer = new_debouncer(options.debounce, Some(tick), {
        let sender = sender.clone();
        move |result| {
            let _ = sender.send(Message::Files(result));
        }
    })
    .map_err(|e| Error::io(&root, std::io::Error::other(e)))?;
    debouncer
        .watch(&root, RecursiveMode::Recursive)
        .map_err(|e| Error::io(&root, std::io::Error::other(e)))?;
    let mut config_file = config
        .config_file
        .as_ref()
        .and_then(|p| p.canonicalize().ok());
    if let Some(file) = &config_file
        && !file.starts_with(&root)
    {
        debouncer
            .watch(file, RecursiveMode::NonRecursive)
            .map_err(|e| Error::io(file, std::io::Error::other(e)))?;
    }
    report(WatchEvent::Watching(&config.source));

    // Rebuilds write their outputs first and precompress after the pages
    // have been told: live pages are served uncompressed anyway.
    session.defer_compression = true;
    // The size report describes a release build; a dev server must not serve a stale one.
    config.report = false;
    // A message that arrived while variants were being made: it ends that
    // work, and is handled first.
    let mut held: Option<Message> = None;
    while let Some(message) = held.take().or_else(|| messages.recv().ok()) {
        // Join everything that arrived while the last build ran.
        let mut paths = Vec::new();
        let mut stop = false;
        for message in std::iter::once(message).chain(messages.try_iter()) {
            match message {
                Message::Stop => stop = true,
                Message::Files(Ok(events)) => {
                    for e in events {
                        // The kernel's queue overflowed: anything may have changed.
                        if e.event.need_rescan() {
                            paths.push(root.clone());
                        } else if is_change(&e.event.kind) {
                            paths.extend(e.event.paths);
                        }
                    }
                }
                // The watcher lost events (queue overflow): rebuild everything.
                Message::Files(Err(_)) => paths.push(root.clone()),
            }
        }
        if stop {
            report(WatchEvent::Stopping);
            break;
        }
        let ignored = Ignored::new(&root, &config);
        // The configuration file in use, or one created beside the source.
        let new_config = root.join(crate::config::CONFIG_FILE);
        let reload_config = paths
            .iter()
            .any(|p| Some(p) == config_file.as_ref() || *p == new_config);
        let mut changed: Vec<String> = paths
            .iter()
            .filter(|p| !ignored.ignores(p))
            .map(|p| relative(&root, p))
            .collect();
        changed.sort();
        changed.dedup();
        if changed.is_empty() && !reload_config {
            continue;
        }
        if reload_config {
            changed.insert(0, crate::config::CONFIG_FILE.to_owned());
            match load() {
                Ok(c) => {
                    config = c;
                    config.report = false;
                    session.memo.clear();
                    config_file = config
                        .config_file
                        .as_ref()
                        .and_then(|p| p.canonicalize().ok());
                }
                Err(e) => {
                    report(WatchEvent::Failed {
                        error: e.to_string(),
                        changed: &changed,
                    });
                    continue;
                }
            }
        }
        session.memo.forget(&changed);
        let early = EarlySwap {
            site: site.as_ref(),
            before: manifest.as_ref().filter(|_| css_only(&changed)),
        };
        match rebuild(&config, &session, &early) {
            Ok(mut outcome) => {
                report(WatchEvent::Built {
                    outcome: &outcome,
                    config: &config,
                    changed: &changed,
                });
                if let Some(site) = &site {
                    site.update(&outcome.manifest);
                    site.send(LiveEvent::Diagnostics(diagnostics(&outcome)));
                    // Sent again after an early swap: a page that loaded in
                    // between still links the old sheet. One that swapped
                    // already links the new one, which no swap names.
                    site.send(live_event(&changed, manifest.as_ref(), &outcome.manifest));
                }
                // Then the variants, until a change that matters comes in
                // (the build's own reads and ignored paths do not count).
                let ignored = Ignored::new(&root, &config);
                let compressed = compress_pending(&config, &session, &mut outcome, || {
                    while let Ok(message) = messages.try_recv() {
                        let matters = match &message {
                            Message::Stop | Message::Files(Err(_)) => true,
                            Message::Files(Ok(events)) => events.iter().any(|e| {
                                is_change(&e.event.kind)
                                    && e.event.paths.iter().any(|p| {
                                        !ignored.ignores(p)
                                            || Some(p) == config_file.as_ref()
                                            || *p == root.join(crate::config::CONFIG_FILE)
                                    })
                            }),
                        };
                        if matters {
                            held = Some(message);
                            return true;
                        }
                    }
                    false
                });
                if let Err(e) = compressed {
                    report(WatchEvent::Failed {
                        error: e.to_string(),
                        changed: &changed,
                    });
                }
                manifest = Some(outcome.manifest);
            }
            Err(e) => report(WatchEvent::Failed {
                error: e.to_string(),
                changed: &changed,
            }),
        }
    }
    drop(debouncer);
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}

/// Whether a file event can change the build (reads and opens cannot).
fn is_change(kind: &EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        _ => true,
    }
}

/// Paths whose changes never trigger a rebuild: the build's own output and
/// cache, and what the build excludes.
struct Ignored<'a> {
    root: &'a Path,
    dirs: Vec<PathBuf>,
    config: &'a Config,
}

impl<'a> Ignored<'a> {
    fn new(root: &'a Path, config: &'a Config) -> Ignored<'a> {
        let source = std::path::absolute(&config.source).ok();
        // The manifests' folder beside the output (Netlify, Cloudflare Pages) too.
        let meta = config.meta_dir();
        let dirs = [&config.output, &meta]
            .into_iter()
            .chain(config.cache_dir.as_ref())
            .flat_map(|d| {
                // Where the directory really is, and, when it sits in the
                // source as a symbolic link, the path events arrive under.
                let through_link = source
                    .as_ref()
                    .zip(std::path::absolute(d).ok())
                    .and_then(|(src, d)| d.strip_prefix(src).ok().map(|rel| root.join(rel)));
                d.canonicalize().ok().into_iter().chain(through_link)
            })
            .collect();
        Ignored { root, dirs, config }
    }

    fn ignores(&self, path: &Path) -> bool {
        if self.dirs.iter().any(|d| path.starts_with(d)) || !path.starts_with(self.root) {
            return true;
        }
        let rel = relative(self.root, path);
        rel != "." && self.config.scan.exclude.is_match(&rel)
    }
}

/// `path` relative to `root`, with `/` separators; the root itself is `.`.
fn relative(root: &Path, path: &Path) -> String {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    if rel.is_empty() { ".".to_owned() } else { rel }
}

/// The build's diagnostics as `path:line:col: severity: message` lines, for
/// the page overlay.
fn diagnostics(outcome: &BuildOutcome) -> Vec<String> {
    outcome.diagnostics.iter().map(|d| d.to_string()).collect()
}

/// Whether every changed path is a stylesheet.
fn css_only(changed: &[String]) -> bool {
    !changed.is_empty()
        && changed.iter().all(|p| {
            p.rsplit_once('.')
                .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("css"))
        })
}

/// During a rebuild after a stylesheet edit: as soon as the stylesheets are
/// written, before the pages that link them, tell open pages to swap them.
struct EarlySwap<'a> {
    site: Option<&'a Site>,
    /// The manifest before the rebuild, when only stylesheets changed.
    before: Option<&'a Manifest>,
}

impl crate::progress::Progress for EarlySwap<'_> {
    fn stage(&self, _: crate::progress::Stage, _: usize) {}
    fn advance(&self) {}
    fn assets_written(&self, outputs: &[(&str, &crate::emit::manifest::FileEntry)]) {
        let (Some(site), Some(before)) = (self.site, self.before) else {
            return;
        };
        let swaps = css_swaps(before, outputs.iter().copied(), &before.base);
        if !swaps.is_empty() {
            site.send(LiveEvent::Css(swaps));
        }
    }
}

/// (old URL path, new URL path) of every stylesheet whose bytes changed.
fn css_swaps<'m>(
    before: &Manifest,
    after: impl Iterator<Item = (&'m str, &'m crate::emit::manifest::FileEntry)>,
    base: &str,
) -> Vec<(String, String)> {
    after
        .filter(|(_, entry)| entry.kind == AssetKind::Css)
        .filter_map(|(source, entry)| {
            let old = before.files.get(source)?;
            (old.blake3 != entry.blake3).then(|| {
                (
                    format!("{}{}", before.base, old.output),
                    format!("{base}{}", entry.output),
                )
            })
        })
        .collect()
}

/// What open pages do after a rebuild: when only stylesheets changed, swap
/// every stylesheet whose output changed (the edited one and those that
/// import it); otherwise reload.
fn live_event(changed: &[String], before: Option<&Manifest>, after: &Manifest) -> LiveEvent {
    match before.filter(|_| css_only(changed)) {
        Some(before) => LiveEvent::Css(css_swaps(
            before,
            after.files.iter().map(|(s, e)| (s.as_str(), e)),
            &after.base,
        )),
        None => LiveEvent::Reload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::manifest::FileEntry;

    fn entry(output: &str, kind: AssetKind, blake3: &str) -> FileEntry {
        FileEntry {
            output: output.into(),
            kind,
            content_type: "text/css; charset=utf-8".into(),
            cache_control: String::new(),
            hashed: true,
            bytes_in: 0,
            bytes_out: 0,
            gzip: None,
            brotli: None,
            zstd: None,
            blake3: blake3.into(),
            integrity: String::new(),
            aliases: Vec::new(),
            variant_of: None,
            private: false,
            headers: Default::default(),
        }
    }

    fn manifest(files: &[(&str, FileEntry)]) -> Manifest {
        Manifest {
            schema: 1,
            generator: String::new(),
            base: "/".into(),
            compression: Default::default(),
            files: files
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            routes: Default::default(),
        }
    }

    #[test]
    fn css_only_changes_swap_changed_stylesheets() {
        let before = manifest(&[
            ("a.css", entry("a.111.css", AssetKind::Css, "1")),
            ("main.css", entry("main.222.css", AssetKind::Css, "2")),
            ("same.css", entry("same.css", AssetKind::Css, "3")),
            ("index.html", entry("index.html", AssetKind::Html, "4")),
        ]);
        let after = manifest(&[
            ("a.css", entry("a.aaa.css", AssetKind::Css, "5")),
            // Imports a.css: renamed too.
            ("main.css", entry("main.bbb.css", AssetKind::Css, "6")),
            ("same.css", entry("same.css", AssetKind::Css, "3")),
            ("index.html", entry("index.html", AssetKind::Html, "7")),
        ]);
        assert_eq!(
            live_event(&["a.css".into()], Some(&before), &after),
            LiveEvent::Css(vec![
                ("/a.111.css".into(), "/a.aaa.css".into()),
                ("/main.222.css".into(), "/main.bbb.css".into()),
            ])
        );
    }

    #[test]
    fn other_changes_reload() {
        let m = manifest(&[]);
        assert_eq!(
            live_event(&["a.css".into(), "app.js".into()], Some(&m), &m),
            LiveEvent::Reload
        );
        assert_eq!(live_event(&["a.css".into()], None, &m), LiveEvent::Reload);
        assert_eq!(live_event(&[], Some(&m), &m), LiveEvent::Reload);
    }

    #[test]
    fn output_cache_and_excluded_paths_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("out")).unwrap();
        let mut config = Config::new(&root, root.join("out"));
        config.cache_dir = None;
        let ignored = Ignored::new(&root, &config);
        assert!(ignored.ignores(&root.join("out/index.html")));
        assert!(ignored.ignores(&root.join(".git/index")));
        assert!(ignored.ignores(&root.join("css/.site.css.swp")));
        assert!(ignored.ignores(&root.join("css/site.css~")));
        assert!(ignored.ignores(Path::new("/elsewhere/x.css")));
        assert!(!ignored.ignores(&root.join("css/site.css")));
        assert!(!ignored.ignores(&root.join("css")));
    }

    #[cfg(unix)]
    #[test]
    fn an_output_linked_into_the_source_is_ignored_through_the_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let src = dir.path().join("site");
        std::fs::create_dir_all(&src).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), src.join("out")).unwrap();
        let root = src.canonicalize().unwrap();
        let mut config = Config::new(&src, src.join("out"));
        config.cache_dir = None;
        let ignored = Ignored::new(&root, &config);
        assert!(ignored.ignores(&root.join("out/index.html")));
        assert!(!ignored.ignores(&root.join("index.html")));
    }

    #[test]
    fn reads_are_not_changes() {
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
        assert!(!is_change(&EventKind::Access(AccessKind::Read)));
        assert!(!is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(is_change(&EventKind::Modify(ModifyKind::Any)));
    }
}
