// Types for kiln's JavaScript API (lib/index.js). The summaries are what
// `kiln build --json` and `kiln deploy --json` print (src/report/mod.rs,
// src/deploy/mod.rs); snake_case because that is the JSON.

/** How the kiln process runs; not passed to kiln as flags. */
export interface ProcessOptions {
  /** Working directory for kiln; relative paths are resolved from it (default: process.cwd()). */
  cwd?: string;
  /** kiln's whole environment (default: process.env). The binary is still found through process.env. */
  env?: Record<string, string | undefined>;
  /** Aborting kills kiln and rejects with an AbortError (AbortSignal: Node's global, or lib.dom). */
  signal?: AbortSignal;
}

/** `kiln build` flags; see `kiln build --help`. */
export interface BuildOptions extends ProcessOptions {
  /** Source directory, `[SRC]` (default: `source` in kiln.toml, else the current directory). */
  source?: string;
  /** `--out`: output directory (default: `output` in kiln.toml, else `kiln-out`). */
  out?: string;
  /** `--config`: configuration file (default: kiln.toml in the source, else in the current directory). */
  config?: string;
  /** `--base`: URL path the site is served under, e.g. `/docs/`. */
  base?: string;
  /** `--hash`: which files get content-hashed names (default `referenced`). */
  hash?: 'referenced' | 'all' | 'none';
  /** `--cache-dir`: transform and compression cache (default `.kiln-cache`). */
  cacheDir?: string;
  /** `--no-cache`: build without the cache. */
  noCache?: boolean;
  /** `--sourcemaps`: a source map for each minified JS and CSS file. */
  sourcemaps?: boolean;
  /** `--compress-effort`: gzip 9 / brotli 11 (`best`, default) or gzip 6 / brotli 5 (`fast`). */
  compressEffort?: 'best' | 'fast';
  /** `--host`: write only what one host reads (docs/hosting.md). */
  host?: 'all' | 'netlify' | 'cloudflare-pages' | 's3' | 'nginx' | 'caddy' | 'apache';
  /** `--no-minify`: only rename files and rewrite references. */
  noMinify?: boolean;
  /** `--strict`: any diagnostic, warnings included, fails the build. */
  strict?: boolean;
  /** `--force`: replace a non-empty output directory that kiln did not write. */
  force?: boolean;
  /** `--quiet`: print only diagnostics on stderr. */
  quiet?: boolean;
  /** `--jobs`: worker threads (default: one per core). */
  jobs?: number;
  /** `--memory-budget`: MiB of file contents kept in memory between stages (default 64); the rest waits in a temporary file in the output directory. */
  memoryBudget?: number;
  /** `--budgets`: a file with `[[budget]]` tables (default: those in kiln.toml). */
  budgets?: string;
  /** `--no-fail-on-budget`: report exceeded budgets without failing (no exit code 4). */
  noFailOnBudget?: boolean;
  /**
   * `--compare-to`: an earlier build to compare sizes with: a manifest, an output directory,
   * or a deploy target (`s3://…`, `dir:…`) holding the previous deploy.
   */
  compareTo?: string;
  /** `--no-report`: do not write kiln-report.html. */
  noReport?: boolean;
  /** `--github`: write step outputs to $GITHUB_OUTPUT and a job summary to $GITHUB_STEP_SUMMARY. */
  github?: boolean;
}

/** `kiln deploy` flags; see `kiln deploy --help`. */
export interface DeployOptions extends ProcessOptions {
  /** The build to deploy, `[OUT]` (default: `output` in kiln.toml, else `kiln-out`). */
  out?: string;
  /** `--to`: `s3://bucket/prefix` or `dir:/path` (default: `deploy.to` in kiln.toml). */
  to?: string;
  /** `--config`: configuration file (default: ./kiln.toml). */
  config?: string;
  /** `--endpoint`: S3 endpoint URL (R2, MinIO, SeaweedFS…); AWS when absent. */
  endpoint?: string;
  /** `--region`: S3 region (default: from the AWS configuration, else us-east-1). */
  region?: string;
  /** `--path-style`: path-style S3 addressing (endpoint/bucket/key). */
  pathStyle?: boolean;
  /** `--encoding`: how precompressed variants are stored (default `negotiate`). */
  encoding?: 'negotiate' | 'gzip' | 'none';
  /** `--concurrency`: uploads in flight at once (default 16). */
  concurrency?: number;
  /** `--max-delete`: refuse a deploy that would delete more than this many objects. */
  maxDelete?: number;
  /** `--keep-deploys`: deploys a removed file survives before it is deleted (default 3). */
  keepDeploys?: number;
  /** `--keep-for`: `0`, `90s`, `30m`, `12h`, `7d` (default `7d`); a number is seconds. */
  keepFor?: string | number;
  /** `--prune-foreign`: also delete objects under the prefix that kiln never wrote. */
  pruneForeign?: boolean;
  /** `--verify`: compare with a full listing and each object's metadata, and repair drift. */
  verify?: boolean;
  /** `--dry-run`: compute the plan; change nothing. */
  dryRun?: boolean;
  /** `--raw`: deploy a directory that is not a kiln build, every file as it is. */
  raw?: boolean;
  /** `--cloudfront`: invalidate this CloudFront distribution for the changed paths. */
  cloudfront?: string;
  /** `--warm`: after the deploy, fetch the changed URLs under this base URL. */
  warm?: string;
  /** `--cloudflare-zone`: purge the changed URLs from this Cloudflare zone (token in CLOUDFLARE_API_TOKEN). */
  cloudflareZone?: string;
  /** `--fastly-service`: purge the changed URLs from this Fastly service (token in FASTLY_API_TOKEN). */
  fastlyService?: string;
  /** `--site-url`: the public URL of the site's root, for purges by URL (default: `warm`). */
  siteUrl?: string;
  /** `--verbose`: one line per object written or deleted, on stderr. */
  verbose?: boolean;
  /** `--github`: write step outputs to $GITHUB_OUTPUT and a job summary to $GITHUB_STEP_SUMMARY. */
  github?: boolean;
}

export interface Sizes {
  files: number;
  bytes_in: number;
  bytes_out: number;
  /** Bytes served to a gzip client (the variant when kept, else the file). */
  gzip: number;
  /** Bytes served to a brotli client (the variant when kept, else the file). */
  brotli: number;
}

export interface Diagnostic {
  severity: 'warning' | 'error';
  path: string;
  /** 1-based, when the problem has a position. */
  line: number | null;
  /** 1-based, in characters, when the problem has a position. */
  col: number | null;
  message: string;
}

/** One budget limit, checked. */
export interface BudgetOutcome {
  rule: string;
  metric: 'raw' | 'gzip' | 'brotli';
  /** Each file, the sum over the files, or the sum's growth against the baseline. */
  scope: 'file' | 'total' | 'growth';
  unit: 'bytes' | 'percent';
  limit: number;
  actual: number;
  /** For a per-file limit: the offender, or the largest file when all pass. */
  path: string | null;
  ok: boolean;
}

export interface BudgetReport {
  outcomes: BudgetOutcome[];
  /** Growth limits that were not checked (no baseline, other compression settings, no such files before). */
  unchecked: { rule: string; reason: string }[];
  /** Rules that select no file. */
  unmatched: string[];
}

/** What a client receives of a file or a group of files. */
export interface DiffSize {
  raw: number;
  gzip: number;
  brotli: number;
}

export interface DiffChange {
  old: DiffSize;
  new: DiffSize;
}

/** Two builds compared (`--compare-to`); unchanged files are left out of `files`. */
export interface BuildDiff {
  old: string;
  new: string;
  total: DiffChange;
  kinds: Record<string, DiffChange>;
  /** Sorted by brotli growth, largest first. */
  files: {
    path: string;
    kind: string;
    status: 'added' | 'removed' | 'changed';
    old: DiffSize | null;
    new: DiffSize | null;
  }[];
}

/** What `kiln build --json` prints. */
export interface BuildSummary {
  ok: boolean;
  output: string;
  duration_ms: number;
  files_written: number;
  files_removed: number;
  cache_hits: number;
  cache_misses: number;
  /** Per kind of file: html, css, js, json, png, jpeg, svg, font, sourcemap, text, other… */
  kinds: Record<string, Sizes>;
  total: Sizes;
  /** The slowest files to process. */
  slowest: { path: string; ms: number }[];
  diagnostics: Diagnostic[];
  warnings: number;
  errors: number;
  /** The budgets checked, when there are any. */
  budgets?: BudgetReport;
  /** The comparison with `--compare-to`, when it found an earlier build. */
  diff?: BuildDiff;
  /** Path of kiln-report.html, when it was written. */
  report?: string;
}

export interface Invalidation {
  id: string;
  paths: string[];
}

export interface Warmed {
  url: string;
  /** HTTP status, or 0 when the request failed. */
  status: number;
  content_encoding: string | null;
  cache_control: string | null;
  /** The CDN's own cache verdict (x-cache, cf-cache-status, age), when it sends one. */
  cache: string | null;
  error: string | null;
}

/** What `kiln deploy --json` prints. */
export interface DeploySummary {
  target: string;
  dry_run: boolean;
  uploaded: number;
  uploaded_bytes: number;
  updated: number;
  updated_bytes: number;
  unchanged: number;
  deleted: number;
  deferred: number;
  /** Requests sent to the origin (S3 operations; retries not counted). */
  requests: number;
  duration_ms: number;
  /** Non-immutable keys that changed (what a CDN must purge). */
  changed_paths: string[];
  invalidation: Invalidation | null;
  /** The Cloudflare and Fastly purges made (absent when none). */
  purged?: { cdn: string; urls: number; requests: number }[];
  warmed: Warmed[];
  /** The plan, in the order it runs. */
  plan: {
    uploads: string[];
    updates: string[];
    deletions: string[];
    deferred: string[];
    /** Every key with its action, size (null for deletions) and reason. */
    lines: { action: 'upload' | 'update' | 'delete' | 'defer'; key: string; size: number | null; reason: string }[];
  };
  /** On a dry run whose plan a deploy would refuse (over `maxDelete`): why. */
  refused?: string;
}

/** Rejection of build() and deploy() when kiln exits non-zero. */
export class KilnError<Summary = BuildSummary | DeploySummary> extends Error {
  name: 'KilnError';
  /**
   * kiln's exit code: 1 build failed, 2 bad usage or configuration, 3 output
   * not writable, 4 budget exceeded; null when a signal ended it.
   */
  exitCode: number | null;
  /** The signal that ended kiln, if one did. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** The parsed summary, when kiln printed one (a build that ran does, even when it failed). */
  summary: Summary | undefined;
  /** The arguments kiln ran with, without the binary. */
  args: string[];
}

/**
 * Runs `kiln build --json` and resolves with its summary. Rejects with a
 * TypeError for an unknown option or a value of the wrong type, and with a
 * KilnError when kiln exits non-zero.
 */
export function build(options?: BuildOptions): Promise<BuildSummary>;

/** Runs `kiln deploy --json` and resolves with its summary; rejects like build(). */
export function deploy(options?: DeployOptions): Promise<DeploySummary>;

/** Absolute path of the kiln binary: KILN_BINARY, else the platform package's. Throws when there is none. */
export function binaryPath(): string;
