//! The kiln binary: parse the command line, run the library, print, and map
//! the outcome to an exit code.

mod cli;

/// mimalloc keeps freed pages for reuse. With the system allocator, every
/// brotli and gzip call mapped fresh pages for its hash tables and the kernel
/// zeroed them: a rebuild spent more time in page faults than compressing.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use kiln::progress::{Progress, Stage};
use kiln::report::Summary;
use kiln::report::budget::Status;

/// `print!` that ignores a closed stdout (`kiln build --json | head`) instead
/// of panicking: the reader has what it wanted.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` that ignores a closed stdout, like [`out!`].
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// Exit codes, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    Success = 0,
    /// The build finished with errors (or any diagnostic under `--strict`),
    /// or a deploy failed.
    Failed = 1,
    /// Bad flags, configuration, or source/output directories.
    Usage = 2,
    /// The output could not be written.
    Output = 3,
    /// A size budget was exceeded (without `--no-fail-on-budget`).
    Budget = 4,
}

/// The one mapping from a library error to an exit code.
impl From<&kiln::Error> for Exit {
    fn from(e: &kiln::Error) -> Exit {
        match e {
            kiln::Error::Io { .. } => Exit::Output,
            kiln::Error::Deploy { .. } => Exit::Failed,
            kiln::Error::MissingSource(_)
            | kiln::Error::NotABuild(_)
            | kiln::Error::OutputContainsSource { .. }
            | kiln::Error::OutputNotOwned(_)
            | kiln::Error::Config(_)
            | kiln::Error::OutputCollision { .. }
            | kiln::Error::Usage(_) => Exit::Usage,
        }
    }
}

/// Print an error that stopped a command, and its exit code.
fn fail(e: &kiln::Error) -> Exit {
    eprintln!("error: {e}");
    Exit::from(e)
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let code = match cli.command {
        cli::Command::Build(args) => build(&args),
        cli::Command::Cache(command) => cache(command),
        cli::Command::Serve { out, addr } => serve(out, addr),
        cli::Command::Watch { build, serve } => watch(&build, serve),
        cli::Command::Deploy(args) => deploy(&args),
        cli::Command::Diff(args) => diff(&args),
    };
    ExitCode::from(code as u8)
}

fn build(args: &cli::BuildArgs) -> Exit {
    let config = match kiln::config::resolve(args.overrides()) {
        Ok(c) => c,
        Err(e) => return fail(&e.into()),
    };
    // Read the baseline first: a wrong --compare-to fails before any work.
    let baseline = match &args.compare_to {
        Some(spec) => match kiln::report::diff::read_baseline(spec, &config.deploy) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("error: --compare-to: {e}");
                return Exit::Usage;
            }
        },
        None => None,
    };
    let progress = Reporter::new(args.quiet || args.json);
    let built = kiln::build(&config, baseline.as_ref(), &progress);
    progress.finish();
    let kiln::Built {
        outcome,
        summary,
        notes,
    } = match built {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let unplaced = print_diagnostics(&outcome.diagnostics);
    for note in &notes {
        eprintln!("warning: {note}");
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serialises")
        );
    } else if !args.quiet {
        out!("{}", summary.to_text());
        if let Some(diff) = &summary.diff {
            out!("{}", diff.to_text());
        }
    }
    if let Some(budgets) = &summary.budgets {
        // On stderr with --json, so stdout stays one JSON document.
        let text = budgets.to_text();
        if args.json || args.quiet {
            eprint!("{text}");
        } else {
            out!("{text}");
        }
    }
    if args.github {
        let manifest = config.meta_dir().join(kiln::emit::manifest::MANIFEST_FILE);
        let outputs = summary.github_outputs(&manifest.display().to_string());
        if let Err(e) = github_step(&outputs, &(summary.to_markdown() + &unplaced)) {
            eprintln!("warning: --github: {e}");
        }
    } else if !unplaced.is_empty()
        && let Err(e) = github_step(&[], &unplaced)
    {
        eprintln!("warning: job summary: {e}");
    }
    if !summary.ok {
        Exit::Failed
    } else if summary.budget_status() == Status::Fail && !args.no_fail_on_budget {
        Exit::Budget
    } else {
        Exit::Success
    }
}

/// Append step outputs to `$GITHUB_OUTPUT` and Markdown to `$GITHUB_STEP_SUMMARY`
/// (each skipped when its variable is unset).
fn github_step(outputs: &[(&str, String)], markdown: &str) -> std::io::Result<()> {
    use std::io::Write;
    let append = |var: &str, text: &str| -> std::io::Result<()> {
        let Some(path) = std::env::var_os(var) else {
            return Ok(());
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .write_all(text.as_bytes())
    };
    let mut lines = String::new();
    for (key, value) in outputs {
        // Values are single-line (numbers, words, paths); a newline would
        // let a value forge another output, so it is replaced.
        lines.push_str(&format!("{key}={}\n", value.replace(['\n', '\r'], " ")));
    }
    append("GITHUB_OUTPUT", &lines)?;
    append("GITHUB_STEP_SUMMARY", &format!("{markdown}\n"))
}

/// `kiln diff OLD NEW`: size changes between two builds.
fn diff(args: &cli::DiffArgs) -> Exit {
    let settings = match deploy_settings(args.config.clone(), None, args.endpoint.settings()) {
        Ok((_, s)) => s,
        Err(e) => return fail(&e),
    };
    let read = |spec: &str| match kiln::report::diff::read_baseline(spec, &settings) {
        Ok(kiln::report::diff::Baseline {
            manifest: Some(m), ..
        }) => Ok(m),
        Ok(_) => Err(format!("{spec} holds no kiln deploy")),
        Err(e) => Err(e.to_string()),
    };
    let (old, new) = match (read(&args.old), read(&args.new)) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Exit::Usage;
        }
    };
    let diff = kiln::report::diff::diff(&old, &new, &args.old, &args.new);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&diff).expect("diff serialises")
        );
    } else {
        out!("{}", diff.to_text());
    }
    Exit::Success
}

/// `[deploy]` of the configuration file with the flags over it, and the
/// output directory the configuration names.
fn deploy_settings(
    config: Option<std::path::PathBuf>,
    output: Option<std::path::PathBuf>,
    flags: kiln::deploy::DeploySettings,
) -> kiln::Result<(std::path::PathBuf, kiln::deploy::DeploySettings)> {
    let config = kiln::config::resolve(kiln::config::Overrides {
        config,
        output,
        ..Default::default()
    })?;
    Ok((config.output, config.deploy.overridden_by(flags)))
}

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3); the bindings leave the
/// numeric options out as unstable.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A watch rebuilds from memory it freed moments before. mimalloc gives
/// memory idle for a second back to the system, and a rebuild after a pause
/// faulted it all in again: a fifth of a script edit's CPU time on the Python
/// docs. A watch keeps it for a minute.
fn keep_freed_memory() {
    // SAFETY: sets a plain option, before the watch starts its threads.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 60_000) };
}

fn watch(args: &cli::BuildArgs, serve: Option<std::net::SocketAddr>) -> Exit {
    use kiln::dev::watch::WatchEvent;
    use std::io::Write;
    // What a one-shot build reports at its end: a watch has no end.
    let one_shot = [
        ("--json", args.json),
        ("--quiet", args.quiet),
        ("--github", args.github),
        ("--compare-to", args.compare_to.is_some()),
        ("--budgets", args.budgets.is_some()),
        ("--no-fail-on-budget", args.no_fail_on_budget),
    ];
    let given: Vec<&str> = one_shot
        .iter()
        .filter(|(_, on)| *on)
        .map(|(f, _)| *f)
        .collect();
    if !given.is_empty() {
        eprintln!(
            "error: kiln watch does not take {}: it reports each rebuild in one line (run `kiln build` for the report, budgets and diff)",
            given.join(", ")
        );
        return Exit::Usage;
    }
    keep_freed_memory();
    let mut overrides = args.overrides();
    // A rebuild must be quick; `--compress-effort best` asks for shipping bytes.
    overrides.compress_effort = overrides
        .compress_effort
        .or(Some(kiln::emit::compress::Effort::Fast));
    let options = kiln::dev::watch::WatchOptions {
        serve,
        ..Default::default()
    };
    // Diagnostics already shown: a rebuild prints only the new ones (on a large
    // site, the same thousand warnings after every save would bury the one
    // the edit caused); the summary line counts them all.
    let mut shown: std::collections::HashSet<String> = std::collections::HashSet::new();
    ignore_sigio();
    let result = kiln::dev::watch::watch(
        || kiln::config::resolve(overrides.clone()),
        &options,
        stop_on_ctrl_c(),
        |event| {
            match event {
                WatchEvent::Built {
                    outcome,
                    config,
                    changed,
                } => {
                    let now: std::collections::HashSet<String> =
                        outcome.diagnostics.iter().map(|d| d.to_string()).collect();
                    let new: Vec<kiln::diag::Diagnostic> = outcome
                        .diagnostics
                        .iter()
                        .filter(|d| !shown.contains(&d.to_string()))
                        .cloned()
                        .collect();
                    // A watch writes no job summary.
                    print_diagnostics(&new);
                    let gone = shown.difference(&now).count();
                    if gone > 0 {
                        outln!("kiln: {gone} earlier problem(s) fixed");
                    }
                    shown = now;
                    let summary = Summary::new(outcome, &config.output, config.strict);
                    let what = if changed.is_empty() {
                        format!("built {}", config.source.display())
                    } else {
                        format!("{} → rebuilt", changed_list(changed))
                    };
                    outln!(
                        "kiln: {what} in {} ms ({} files, {} written, {} removed; {} warnings, {} errors)",
                        summary.duration_ms,
                        summary.total.files,
                        summary.files_written,
                        summary.files_removed,
                        summary.warnings,
                        summary.errors
                    );
                }
                WatchEvent::Failed { error, changed } => {
                    eprintln!("error: {error}");
                    outln!(
                        "kiln: {} → build failed; still watching",
                        changed_list(changed)
                    );
                }
                WatchEvent::Serving(addr) => {
                    outln!("kiln: serving at http://{addr}/ with live reload");
                }
                WatchEvent::Watching(dir) => {
                    outln!("kiln: watching {} (Ctrl-C to stop)", dir.display());
                }
                WatchEvent::Stopping => outln!("kiln: stopped"),
            }
            let _ = std::io::stdout().flush();
        },
    );
    match result {
        Ok(()) => Exit::Success,
        Err(e) => fail(&e),
    }
}

/// A channel that receives at the first Ctrl-C; a second Ctrl-C ends the
/// process at once (exit 130), without waiting for a running build.
fn stop_on_ctrl_c() -> std::sync::mpsc::Receiver<()> {
    let (stop, stopped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop.send(());
            let _ = tokio::signal::ctrl_c().await;
            std::process::exit(130);
        });
    });
    stopped
}

/// A watch writes some outputs under a file lease (`emit/output.rs`): a
/// process opening one meanwhile must not end the watch with SIGIO, should
/// the kernel signal it.
fn ignore_sigio() {
    #[cfg(target_os = "linux")]
    // SAFETY: sets a signal's disposition to ignored; no handler is installed.
    unsafe {
        libc::signal(libc::SIGIO, libc::SIG_IGN);
    }
}

fn deploy(args: &cli::DeployArgs) -> Exit {
    let (out, settings) =
        match deploy_settings(args.config.clone(), args.out.clone(), args.settings()) {
            Ok(s) => s,
            Err(e) => return fail(&e),
        };
    let mut options = match kiln::deploy::DeployOptions::from_settings(&settings) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    options.verify = args.verify;
    options.dry_run = args.dry_run;
    options.raw = args.raw;
    let reporter = DeployReporter::new(args.verbose, args.json);
    let result = kiln::deploy::deploy_with(&out, &options, &reporter);
    reporter.finish();
    match result {
        Ok(summary) => {
            if args.json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&summary).expect("summary serialises")
                );
            } else {
                if options.dry_run {
                    out!("{}", summary.plan.to_text());
                }
                out!("{}", summary.to_text());
            }
            if args.github {
                let status = if summary.dry_run {
                    "dry-run"
                } else if summary.uploaded + summary.updated + summary.deleted == 0 {
                    "unchanged"
                } else {
                    "deployed"
                };
                let outputs = [
                    (
                        "files-uploaded",
                        (summary.uploaded + summary.updated).to_string(),
                    ),
                    ("files-deleted", summary.deleted.to_string()),
                    ("deploy-status", status.to_owned()),
                ];
                let markdown = format!(
                    "## kiln deploy to `{}`: {status}\n\n{} uploaded, {} updated, {} unchanged, {} deleted, {} deferred; {} requests in {} ms.\n",
                    summary.target,
                    summary.uploaded,
                    summary.updated,
                    summary.unchanged,
                    summary.deleted,
                    summary.deferred,
                    summary.requests,
                    summary.duration_ms
                );
                if let Err(e) = github_step(&outputs, &markdown) {
                    eprintln!("warning: --github: {e}");
                }
            }
            match &summary.refused {
                // The plan is shown; the deploy it describes would fail.
                Some(refused) => {
                    eprintln!(
                        "error: deploy to {}: {refused}; a deploy would change nothing",
                        summary.target
                    );
                    Exit::Failed
                }
                None => Exit::Success,
            }
        }
        Err(e) => fail(&e),
    }
}

/// Diagnostics like a compiler on stderr. Under GitHub Actions, also as
/// annotations on the files of the repository (through source maps), and a
/// table of the others in the job summary (`kiln::report::annotate`).
/// Returns that table (empty when there is none).
fn print_diagnostics(diagnostics: &[kiln::diag::Diagnostic]) -> String {
    for d in diagnostics {
        eprintln!("{d}");
    }
    if diagnostics.is_empty() || !std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        return String::new();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let places = kiln::report::annotate::places(diagnostics);
    let candidates: Vec<std::path::PathBuf> = places
        .iter()
        .filter_map(|p| kiln::report::annotate::relative_to(&p.path, &cwd))
        .collect();
    let tracked = git_tracked(&candidates);
    let in_repo = |p: &std::path::Path| match &tracked {
        Some(set) => set.contains(p),
        // Not a git checkout: any file that exists.
        None => p.is_file(),
    };
    let prefix = git_prefix().unwrap_or_default();
    let (annotations, table) =
        kiln::report::annotate::github(diagnostics, &places, &cwd, &prefix, &in_repo);
    for a in annotations {
        eprintln!("{a}");
    }
    table
}

/// Where the working directory lies in its git repository (`web/`), empty
/// at the root; `None` outside a checkout.
fn git_prefix() -> Option<std::path::PathBuf> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-prefix"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(std::path::PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim(),
    ))
}

/// Which of `paths` (relative to the working directory) git tracks; `None`
/// when git cannot say (not a checkout, no git).
fn git_tracked(
    paths: &[std::path::PathBuf],
) -> Option<std::collections::HashSet<std::path::PathBuf>> {
    if paths.is_empty() {
        return Some(Default::default());
    }
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z", "--"])
        .args(paths)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(
        out.stdout
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| std::path::PathBuf::from(String::from_utf8_lossy(s).into_owned()))
            .collect(),
    )
}

/// `a.css, b.js and 3 more`.
fn changed_list(changed: &[String]) -> String {
    match changed {
        [] => "configuration".to_owned(),
        [one] => one.clone(),
        [a, b] => format!("{a}, {b}"),
        [a, b, rest @ ..] => format!("{a}, {b} and {} more", rest.len()),
    }
}

fn serve(out: std::path::PathBuf, addr: std::net::SocketAddr) -> Exit {
    let shown = out.display().to_string();
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = kiln::dev::serve::serve(out, addr, shutdown, |bound| {
        use std::io::Write;
        outln!("kiln: serving {shown} at http://{bound}/ (Ctrl-C to stop)");
        let _ = std::io::stdout().flush();
    });
    match result {
        Ok(()) => Exit::Success,
        Err(e) => fail(&e),
    }
}

fn cache(command: cli::CacheCommand) -> Exit {
    match command {
        cli::CacheCommand::Stats { cache_dir, json } => {
            let stats = kiln::cache::stats(&cache_dir);
            if json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&stats).expect("stats serialise")
                );
            } else {
                outln!(
                    "{}: {} transform entries ({}), {} precompressed entries ({})",
                    cache_dir.display(),
                    stats.transform_entries,
                    kiln::units::human_bytes(stats.transform_bytes),
                    stats.variants_entries,
                    kiln::units::human_bytes(stats.variants_bytes)
                );
            }
        }
        cli::CacheCommand::Prune {
            cache_dir,
            max_size,
        } => {
            let (removed, freed) = kiln::cache::prune(&cache_dir, max_size);
            outln!(
                "{}: removed {removed} entries ({})",
                cache_dir.display(),
                kiln::units::human_bytes(freed)
            );
        }
    }
    Exit::Success
}

/// A progress bar on a terminal; one line per stage elsewhere (CI logs).
struct Reporter {
    bar: Option<ProgressBar>,
    plain: bool,
    current: Mutex<Option<Stage>>,
}

impl Reporter {
    fn new(quiet: bool) -> Reporter {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = (!quiet && tty).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {elapsed}")
                    .expect("template is valid")
                    .progress_chars("=> "),
            );
            bar
        });
        Reporter {
            bar,
            plain: !quiet && !tty,
            current: Mutex::new(None),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Reporter {
    fn stage(&self, stage: Stage, total: usize) {
        *self.current.lock().expect("no panics while locked") = Some(stage);
        if let Some(bar) = &self.bar {
            bar.set_prefix(stage.name());
            bar.set_length(total as u64);
            bar.set_position(0);
        } else if self.plain && stage != Stage::Done {
            if total > 0 {
                eprintln!("kiln: {} ({total} files)", stage.name());
            } else {
                eprintln!("kiln: {}", stage.name());
            }
        }
    }

    fn advance(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
}

/// A deploy's progress: a bar on a terminal, one line per object with `--verbose`.
struct DeployReporter {
    bar: Option<ProgressBar>,
    verbose: bool,
}

impl DeployReporter {
    fn new(verbose: bool, json: bool) -> DeployReporter {
        let tty = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
        let bar = (tty && !verbose && !json).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len} {elapsed}")
                    .expect("template is valid")
                    .progress_chars("=> "),
            );
            bar.set_prefix("deploy");
            bar
        });
        DeployReporter { bar, verbose }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl kiln::deploy::DeployProgress for DeployReporter {
    fn planned(&self, sends: usize, deletions: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length((sends + deletions) as u64);
        }
    }

    fn done(&self, action: &str, key: &str, bytes: Option<u64>) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
        if self.verbose {
            let size = bytes.map_or_else(|| "-".to_owned(), kiln::units::human_bytes);
            eprintln!("{action:>6} {size:>10}  {key}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // mimalloc v3's default purge delay, in ms: no other option has it.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads an option.
            let value = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
            assert_eq!(value, 1000);
        }
    }
}
