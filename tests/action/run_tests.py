#!/usr/bin/env python3
"""Tests of the GitHub Action (action.yml) through the simulated runner.

    KILN_BINARY=/path/to/kiln python3 tests/action/run_tests.py [TEST...]

Runs every test (or those named), prints one line per test, the failures'
details, `N passed, M failed`, and `action-ok` when all passed (exit 0;
otherwise exit 1). KEEP_TMP=1 keeps the temporary directories.

The kiln that the action installs (KILN_BINARY) is a small wrapper around the
real binary that records every argument vector it receives, so the tests see
exactly what the action's scripts passed to kiln.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import tomllib
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simulate import REPO, ActionResult, load_yaml, run_action  # noqa: E402

ACTION = REPO / "action.yml"
FIXTURE = REPO / "fixtures" / "site"
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


class Ctx:
    """One test's temporary directory, and the last action run (for failure reports)."""

    def __init__(self, root: Path, kiln: Path):
        self.root = root
        self.kiln = kiln
        self.last: ActionResult | None = None
        self.calls_log = root / "kiln-calls.jsonl"
        self.recorder = self._make_recorder()

    def _make_recorder(self) -> Path:
        path = self.root / "recorder" / "kiln"
        path.parent.mkdir(parents=True)
        record = 'import json, sys; open(sys.argv[1], "a").write(json.dumps(sys.argv[2:]) + "\\n")'
        path.write_text(
            "#!/bin/sh\n"
            "# Records its arguments (one JSON array a line), then runs the real kiln.\n"
            f"python3 -c {shlex.quote(record)} {shlex.quote(str(self.calls_log))} \"$@\" || exit 99\n"
            f"exec {shlex.quote(str(self.kiln))} \"$@\"\n"
        )
        path.chmod(0o755)
        return path

    def workspace(self, name: str = "ws") -> Path:
        ws = self.root / name
        ws.mkdir()
        shutil.copytree(FIXTURE, ws / "site")
        return ws

    def calls(self, command: str | None = None) -> list[list[str]]:
        """Argument vectors kiln received since the last reset (without `--version`)."""
        if not self.calls_log.exists():
            return []
        calls = [json.loads(line) for line in self.calls_log.read_text().splitlines() if line]
        calls = [c for c in calls if c != ["--version"]]
        return [c for c in calls if command is None or (c and c[0] == command)]

    def reset_calls(self):
        self.calls_log.unlink(missing_ok=True)

    def act(self, workspace: Path, inputs: dict, env: dict | None = None, recorded: bool = True) -> ActionResult:
        self.reset_calls()
        job_env = {"KILN_BINARY": str(self.recorder)} if recorded else {}
        job_env.update(env or {})
        runner_temp = Path(tempfile.mkdtemp(prefix="runner-", dir=self.root))
        self.last = run_action(ACTION, inputs=inputs, env=job_env, workspace=workspace, runner_temp=runner_temp)
        return self.last


def check(condition, message="check failed"):
    if not condition:
        raise AssertionError(message)


def ok(r: ActionResult):
    check(r.outcome == "success" and r.exit_code == 0, f"action failed (exit {r.exit_code})")


def resolve(ws: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ws / p


def snapshot(directory: Path) -> dict:
    if not directory.exists():
        return {}
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def integer(outputs: dict, name: str) -> int:
    value = outputs.get(name, "")
    check(re.fullmatch(r"\d+", value) is not None, f"output {name} is not a whole number: {value!r}")
    return int(value)


# --- build --------------------------------------------------------------------


@test
def build_outputs_and_summary(ctx: Ctx):
    ws = ctx.workspace()
    r = ctx.act(ws, {"source": "site"})
    ok(r)
    o = r.outputs

    manifest = resolve(ws, o["manifest"])
    check(manifest.name == "kiln-manifest.json" and manifest.is_file(), f"manifest output: {o['manifest']!r}")
    check(manifest.parent.resolve() == (ws / "kiln-out").resolve(), f"manifest not in kiln-out: {manifest}")
    json.loads(manifest.read_text())
    report = resolve(ws, o["report"])
    check(report.name == "kiln-report.html" and report.is_file(), f"report output: {o['report']!r}")

    files = integer(o, "files")
    bytes_in = integer(o, "bytes-in")
    bytes_out = integer(o, "bytes-out")
    gzip = integer(o, "bytes-gzip")
    brotli = integer(o, "bytes-brotli")
    check(files > 0 and bytes_in > 0 and bytes_out > 0, f"empty build? {o}")
    check(0 < gzip <= bytes_out and 0 < brotli <= bytes_out, f"compressed totals not below the output total: {o}")
    check(brotli < bytes_in, f"brotli total not below the source total: {o}")
    check(o["budget-status"] == "none", f"budget-status without budgets: {o['budget-status']!r}")
    for name in ("files-uploaded", "files-deleted", "deploy-status"):
        check(o[name] == "", f"deploy output {name} set without deploy-to: {o[name]!r}")

    check(r.summary.strip() != "", "the job summary is empty")
    check(re.search(r"\d", r.summary) is not None, "the job summary has no figures")

    check(len(r.path_added) == 1, f"GITHUB_PATH: {r.path_added}")
    on_path = Path(r.path_added[0]) / "kiln"
    check(os.access(on_path, os.X_OK), f"no kiln on the added PATH entry {on_path}")
    check(r.step("install").outputs.get("kiln") == str(on_path), "install output kiln")

    builds = ctx.calls("build")
    check(builds == [["build", "--github", "--cache-dir=.kiln-cache", "--", "site"]], f"kiln build received {builds}")
    check(r.step("source").outcome == "skipped", "built kiln from source although KILN_BINARY was set")
    check(r.step("deploy").outcome == "skipped", "deployed without deploy-to")


@test
def kiln_cache_is_restored_pruned_and_reused(ctx: Ctx):
    ws = ctx.workspace()
    (ws / "site" / "kiln.toml").write_text('output = "../site-out"\n')
    r = ctx.act(ws, {"source": "site"}, env={"GITHUB_SHA": "a" * 40})
    ok(r)
    # `output` is empty by default: kiln.toml's applies.
    manifest = resolve(ws, r.outputs["manifest"])
    check(manifest.parent.resolve() == (ws / "site-out").resolve(), f"manifest not where kiln.toml says: {manifest}")
    # The key names kiln's version, the configuration and the commit; the
    # restore keys widen to the same configuration, then to any.
    version = subprocess.run([str(ctx.kiln), "--version"], capture_output=True, text=True).stdout.split()[1]
    key_step = r.step("cache-key")
    check(key_step.outputs.get("prefix") == f"kiln-cache-v{version}-", f"cache key prefix: {key_step.outputs}")
    config = key_step.outputs.get("config", "")
    check(re.fullmatch(r"\d+-\d+", config) is not None, f"configuration digest: {config!r}")
    restore = r.step("cache-restore")
    check(restore.outcome == "success" and "actions/cache" in restore.note, f"restore step: {restore.outcome} {restore.note}")
    with_values = json.loads(restore.note.split("with: ", 1)[1])
    os_name = with_values["key"].split("-", 1)[0]
    check(with_values["path"] == ".kiln-cache", f"cache path: {with_values}")
    check(with_values["key"] == f"{os_name}-kiln-cache-v{version}-{config}-{'a' * 40}", f"cache key: {with_values}")
    check(
        with_values["restore-keys"].split() == [f"{os_name}-kiln-cache-v{version}-{config}-", f"{os_name}-kiln-cache-v{version}-"],
        f"restore keys: {with_values}",
    )
    check(ctx.calls("cache") == [["cache", "prune", "--cache-dir=.kiln-cache", "--max-size=1GB"]], f"prune: {ctx.calls('cache')}")
    stats = json.loads(
        subprocess.run([str(ctx.kiln), "cache", "stats", "--json", "--cache-dir", str(ws / ".kiln-cache")], capture_output=True, text=True, check=True).stdout
    )
    check(stats["transform_entries"] > 0 and stats["variants_entries"] > 0, f"nothing cached: {stats}")

    # A re-run on the same input (the runner restored .kiln-cache): every
    # transform and variant is a hit.
    r = ctx.act(ws, {"source": "site"}, env={"GITHUB_SHA": "a" * 40})
    ok(r)
    hits = re.search(r"cache: (\d+) hits, (\d+) misses", r.log)
    check(hits is not None and int(hits.group(1)) > 0 and hits.group(2) == "0", f"second run: {hits and hits.group(0)}")

    # cache: false: no --cache-dir, no cache steps.
    r = ctx.act(ws, {"source": "site", "cache": "false"})
    ok(r)
    check(ctx.calls("build") == [["build", "--github", "--", "site"]], f"kiln build received {ctx.calls('build')}")
    for step in ("cache-key", "cache-restore", "cache-prune"):
        check(r.step(step).outcome == "skipped", f"{step} ran with cache: false")


@test
def kiln_binary_that_is_not_executable_fails_the_install(ctx: Ctx):
    ws = ctx.workspace()
    not_exe = ctx.root / "not-kiln"
    not_exe.write_text("#!/bin/sh\n")
    r = ctx.act(ws, {"source": "site"}, env={"KILN_BINARY": str(not_exe)})
    check(r.outcome == "failure" and r.exit_code == 1, f"exit {r.exit_code}")
    check("KILN_BINARY" in r.step("install").log, "the error does not name KILN_BINARY")
    check(r.step("build").outcome == "skipped", "built without kiln")


# --- deploy -------------------------------------------------------------------


@test
def deploy_to_dir_then_unchanged_then_dry_run(ctx: Ctx):
    ws = ctx.workspace()
    origin = ctx.root / "origin"
    target = f"dir:{origin}"

    # First deploy. compare-to defaults to the target (nothing there yet).
    r = ctx.act(ws, {"source": "site", "deploy-to": target})
    ok(r)
    o = r.outputs
    check(o["deploy-status"] == "deployed", f"deploy-status {o['deploy-status']!r}")
    check(integer(o, "files-uploaded") > 0, f"files-uploaded {o['files-uploaded']!r}")
    check(integer(o, "files-deleted") == 0, f"files-deleted {o['files-deleted']!r}")
    check((origin / "index.html").is_file(), "index.html not deployed")
    build = ctx.calls("build")
    check(len(build) == 1 and f"--compare-to={target}" in build[0], f"build did not compare to the target: {build}")
    deploy = ctx.calls("deploy")
    check(len(deploy) == 1, f"deploy calls: {deploy}")
    check(deploy[0][:3] == ["deploy", "--github", f"--to={target}"] and deploy[0][-2] == "--", f"deploy argv {deploy}")
    check(resolve(ws, deploy[0][-1]).resolve() == (ws / "kiln-out").resolve(), f"deployed {deploy[0][-1]!r}")
    check("--dry-run" not in deploy[0], "dry-run passed without dry-run")
    first_state = snapshot(origin)

    # Second run, same site: compares with the previous deploy, uploads nothing.
    r = ctx.act(ws, {"source": "site", "deploy-to": target})
    ok(r)
    check(r.outputs["deploy-status"] == "unchanged", f"second deploy-status {r.outputs['deploy-status']!r}")
    check(integer(r.outputs, "files-uploaded") == 0, f"second files-uploaded {r.outputs['files-uploaded']!r}")
    build = ctx.calls("build")
    check(len(build) == 1 and f"--compare-to={target}" in build[0], f"second build argv {build}")
    check(snapshot(origin) == first_state, "an unchanged deploy changed the origin")

    # A change, deployed with dry-run: a plan, and nothing on the origin changes.
    css = sorted((ws / "site").rglob("*.css"))[0]
    css.write_text(css.read_text() + "\n.kiln-action-test { color: #123456 }\n")
    r = ctx.act(ws, {"source": "site", "deploy-to": target, "dry-run": "true"})
    ok(r)
    check(r.outputs["deploy-status"] == "dry-run", f"dry-run deploy-status {r.outputs['deploy-status']!r}")
    check("--dry-run" in ctx.calls("deploy")[0], "--dry-run not passed")
    check(snapshot(origin) == first_state, "a dry run changed the origin")

    # compare-to: none turns the comparison off; an explicit one wins over the target.
    r = ctx.act(ws, {"source": "site", "deploy-to": target, "dry-run": "true", "compare-to": "none"})
    ok(r)
    build = ctx.calls("build")[0]
    check(not any(a.startswith("--compare-to") for a in build), f"compare-to none still compared: {build}")
    baseline = ctx.root / "baseline-manifest.json"
    shutil.copy(ws / "kiln-out" / "kiln-manifest.json", baseline)
    r = ctx.act(ws, {"source": "site", "deploy-to": target, "dry-run": "true", "compare-to": str(baseline)})
    ok(r)
    build = ctx.calls("build")[0]
    check(f"--compare-to={baseline}" in build and f"--compare-to={target}" not in build, f"explicit compare-to: {build}")
    check(snapshot(origin) == first_state, "a dry run changed the origin")

    # Without dry-run the change goes up.
    r = ctx.act(ws, {"source": "site", "deploy-to": target})
    ok(r)
    check(r.outputs["deploy-status"] == "deployed", f"third deploy-status {r.outputs['deploy-status']!r}")
    check(integer(r.outputs, "files-uploaded") > 0, "the change was not uploaded")


# --- hostile inputs -------------------------------------------------------------

PAYLOADS = [
    '"; touch $CANARY #',
    "$(touch $CANARY)",
    "`touch $CANARY`",
    "'; touch $CANARY; echo '",
    "* ?",
]


@test
def hostile_inputs_are_never_executed_and_reach_kiln_literally(ctx: Ctx):
    canary = ctx.root / "canary"
    env = {"CANARY": str(canary)}
    ws = ctx.workspace()
    (ws / "decoy-for-globs").write_text("")
    origin = ctx.root / "origin"

    for payload in PAYLOADS:
        cases = {
            "source": {"source": payload},
            "args": {"source": "site", "args": payload},
            "compare-to": {"source": "site", "compare-to": payload},
            "output": {"source": "site", "output": payload},
            "config": {"source": "site", "config": payload},
            "budgets": {"source": "site", "budgets": payload},
            "deploy-to": {"source": "site", "deploy-to": payload},
            "deploy-args": {"source": "site", "deploy-to": f"dir:{origin}", "dry-run": "true", "deploy-args": payload},
            "fail-on-budget": {"source": "site", "fail-on-budget": payload},
            "dry-run": {"source": "site", "deploy-to": f"dir:{origin}", "dry-run": payload},
        }
        for field, inputs in cases.items():
            where = f"{field} = {payload!r}"
            r = ctx.act(ws, inputs, env=env)
            check(not canary.exists(), f"{where}: the canary was created: the input was executed")
            check(r.exit_code in (0, 2), f"{where}: exit {r.exit_code}, expected 0 or 2 (usage)")
            build = ctx.calls("build")
            words = payload.split()
            if field == "source":
                check(r.exit_code == 2, f"{where}: a missing source did not exit 2")
                check(build and build[0][-2:] == ["--", payload], f"{where}: kiln received {build}")
            elif field == "args":
                check(r.exit_code == 2, f"{where}: stray arguments did not exit 2")
                start = build[0].index(words[0]) if build and words[0] in build[0] else -1
                check(start >= 0 and build[0][start : start + len(words)] == words, f"{where}: kiln received {build}")
            elif field in ("compare-to", "config", "budgets"):
                check(build and f"--{field}={payload}" in build[0], f"{where}: kiln received {build}")
            elif field == "output":
                check(build and f"--out={payload}" in build[0], f"{where}: kiln received {build}")
                if r.exit_code == 0:
                    check((ws / payload / "kiln-manifest.json").is_file(), f"{where}: not built into the literal path")
                    shutil.rmtree(ws / payload)
            elif field == "deploy-to":
                deploy = ctx.calls("deploy")
                check(build and f"--compare-to={payload}" in build[0], f"{where}: kiln build received {build}")
                check(not deploy or f"--to={payload}" in deploy[0], f"{where}: kiln deploy received {deploy}")
            elif field == "deploy-args":
                deploy = ctx.calls("deploy")
                check(r.exit_code == 2, f"{where}: stray deploy arguments did not exit 2")
                start = deploy[0].index(words[0]) if deploy and words[0] in deploy[0] else -1
                check(start >= 0 and deploy[0][start : start + len(words)] == words, f"{where}: kiln received {deploy}")
            elif field == "fail-on-budget":
                check(r.exit_code == 2 and not build, f"{where}: not refused before kiln ran ({build})")
            elif field == "dry-run":
                check(r.exit_code == 2 and not ctx.calls("deploy"), f"{where}: deploy not refused")
            check(payload not in "".join(r.path_added), f"{where}: reached GITHUB_PATH")

    # A hostile version, with no KILN_BINARY: refused before any download.
    r = ctx.act(
        ws,
        {"source": "site", "version": "1.0; touch $CANARY"},
        env={**env, "KILN_RELEASE_BASE_URL": "http://127.0.0.1:9"},
        recorded=False,
    )
    check(not canary.exists(), "version: the canary was created")
    check(r.exit_code == 1 and "version must be" in r.step("install").log, f"hostile version: exit {r.exit_code}")


# --- budgets --------------------------------------------------------------------


@test
def budgets_fail_the_action_unless_fail_on_budget_is_false(ctx: Ctx):
    ws = ctx.workspace()
    (ws / "tight.toml").write_text('[[budget]]\npath = "**/*.js"\nmax_brotli = 10\n')
    (ws / "roomy.toml").write_text('[[budget]]\npath = "**/*.js"\nmax_brotli = "10MB"\n')
    origin = ctx.root / "origin"

    r = ctx.act(ws, {"source": "site", "budgets": "tight.toml", "deploy-to": f"dir:{origin}"})
    check(r.outcome == "failure" and r.exit_code == 4, f"exceeded budget: exit {r.exit_code}, expected 4")
    check(r.outputs["budget-status"] == "fail", f"budget-status {r.outputs['budget-status']!r}")
    check(r.summary.strip() != "", "no job summary for a failed budget")
    check("--budgets=tight.toml" in ctx.calls("build")[0], f"build argv {ctx.calls('build')}")
    check(r.step("deploy").outcome == "skipped" and not origin.exists(), "deployed a build over budget")

    r = ctx.act(ws, {"source": "site", "budgets": "tight.toml", "fail-on-budget": "false"})
    ok(r)
    check(r.outputs["budget-status"] == "fail", f"budget-status {r.outputs['budget-status']!r}")
    check("--no-fail-on-budget" in ctx.calls("build")[0], "--no-fail-on-budget not passed")

    r = ctx.act(ws, {"source": "site", "budgets": "roomy.toml"})
    ok(r)
    check(r.outputs["budget-status"] == "pass", f"budget-status {r.outputs['budget-status']!r}")


# --- installing a release --------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def release_target() -> str | None:
    if platform.system() != "Linux":
        return None
    return {"x86_64": "x86_64-unknown-linux-gnu", "amd64": "x86_64-unknown-linux-gnu", "aarch64": "aarch64-unknown-linux-gnu", "arm64": "aarch64-unknown-linux-gnu"}.get(platform.machine().lower())


@test
def release_download_is_verified_and_falls_back_to_source(ctx: Ctx):
    target = release_target()
    if target is None:
        print(f"    (skipped: no release target for {platform.system()} {platform.machine()})")
        return
    version = tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]
    releases = ctx.root / "releases"

    # v<version>: the good asset, as release.yml packs it.
    asset = f"kiln-{version}-{target}.tar.gz"
    good = releases / f"v{version}" / asset
    good.parent.mkdir(parents=True)
    binary = ctx.kiln.resolve().read_bytes()
    member = tarfile.TarInfo(f"kiln-{version}-{target}/kiln")
    member.size = len(binary)
    member.mode = 0o755
    with tarfile.open(good, "w:gz", compresslevel=1) as tar:
        tar.addfile(member, io.BytesIO(binary))
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    Path(f"{good}.sha256").write_text(f"{digest}  {asset}\n")
    # v0.0.2: a wrong checksum. v0.0.3: no checksum. v0.0.4: no asset at all.
    for bad_version, sha in (("0.0.2", "0" * 64), ("0.0.3", None)):
        bad = releases / f"v{bad_version}" / f"kiln-{bad_version}-{target}.tar.gz"
        bad.parent.mkdir(parents=True)
        os.link(good, bad)
        if sha:
            Path(f"{bad}.sha256").write_text(f"{sha}  {bad.name}\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(releases)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env = {
            "KILN_RELEASE_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        ws = ctx.workspace()

        # The default version is the action's own (Cargo.toml here): downloaded, verified, used.
        r = ctx.act(ws, {"source": "site"}, env=env, recorded=False)
        ok(r)
        install = r.step("install")
        check("verified" in install.log and digest in install.log, f"no verification in the log:\n{install.log}")
        installed = Path(install.outputs["kiln"])
        check(installed.is_file() and not installed.is_symlink() and os.access(installed, os.X_OK), f"{installed}")
        check(installed.read_bytes() == binary, "the installed binary is not the one in the archive")
        check(str(installed.parent) in r.path_added, f"GITHUB_PATH {r.path_added}")
        check(r.step("source").outcome == "skipped", "built from source although the asset exists")
        check(resolve(ws, r.outputs["manifest"]).is_file(), "the downloaded kiln did not build")

        # An explicit version, with the v prefix.
        r = ctx.act(ws, {"source": "site", "version": f"v{version}"}, env=env, recorded=False)
        ok(r)

        # A wrong checksum: refused, nothing installed, nothing built.
        r = ctx.act(ws, {"source": "site", "version": "0.0.2"}, env=env, recorded=False)
        check(r.outcome == "failure" and r.exit_code == 1, f"wrong checksum: exit {r.exit_code}")
        check("checksum mismatch" in r.step("install").log, f"log:\n{r.step('install').log}")
        check(not (Path(r.runner_temp) / "kiln-action" / "bin" / "kiln").exists(), "installed despite the mismatch")
        check(r.step("build").outcome == "skipped" and r.path_added == [], "went on after the mismatch")

        # No .sha256: refused too.
        r = ctx.act(ws, {"source": "site", "version": "0.0.3"}, env=env, recorded=False)
        check(r.outcome == "failure" and r.exit_code == 1, f"missing checksum: exit {r.exit_code}")
        check(".sha256" in r.step("install").log, f"log:\n{r.step('install').log}")
        check(r.step("build").outcome == "skipped", "went on without a checksum")

        # `latest` needs github.com: refused with a custom base URL.
        r = ctx.act(ws, {"source": "site", "version": "latest"}, env=env, recorded=False)
        check(r.exit_code == 1 and "latest" in r.step("install").log, f"latest: exit {r.exit_code}")

        # No asset for this version: the cache step and `cargo install --path` run.
        fake, cargo_log = fake_cargo(ctx)
        fallback_env = {**env, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
        r = ctx.act(ws, {"source": "site", "version": "0.0.4"}, env=fallback_env, recorded=False)
        ok(r)
        check("::warning" in r.step("install").log, "no warning about building from source")
        check(r.step("install").outputs.get("source-build") == "true", "source-build output")
        cache = r.steps[1]
        check(cache.outcome == "success" and "actions/cache" in cache.note, f"cache step: {cache.outcome} {cache.note}")
        check(r.step("source").outcome == "success", "the source step did not run")
        args = cargo_log.read_text().splitlines()
        check(args[0].startswith(f"CARGO_TARGET_DIR={r.runner_temp}"), f"CARGO_TARGET_DIR: {args[0]}")
        check(args[1:6] == ["install", "--locked", "--force", "--path", str(REPO)], f"cargo args {args}")
        check(Path(r.step("source").outputs["kiln"]).is_file(), "source output kiln")
        check(resolve(ws, r.outputs["manifest"]).is_file(), "the kiln built from source did not build")
    finally:
        server.shutdown()
        server.server_close()


def fake_cargo(ctx: Ctx) -> tuple[Path, Path]:
    """A directory with a stand-in `cargo` that records its call and 'installs' the test's kiln."""
    fake = ctx.root / "fake-cargo"
    fake.mkdir()
    cargo_log = ctx.root / "cargo-args"
    (fake / "cargo").write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"CARGO_TARGET_DIR=$CARGO_TARGET_DIR\" \"$@\" > {shlex.quote(str(cargo_log))}\n"
        "root=''\n"
        "while [ $# -gt 0 ]; do case \"$1\" in --root) root=\"$2\"; shift ;; esac; shift; done\n"
        "[ -n \"$root\" ] || exit 64\n"
        f"mkdir -p \"$root/bin\" && cp {shlex.quote(str(ctx.kiln.resolve()))} \"$root/bin/kiln\"\n"
    )
    (fake / "cargo").chmod(0o755)
    return fake, cargo_log


@test
def release_url_and_version_come_from_the_action_checkout(ctx: Ctx):
    target = release_target()
    if target is None:
        print(f"    (skipped: no release target for {platform.system()} {platform.machine()})")
        return
    # The action as the runner lays it out for `uses: acme/kiln@v0`, with its
    # own Cargo.toml (version 0.3.7) and Cargo.lock.
    action_dir = ctx.root / "runner-work" / "_actions" / "acme" / "kiln" / "v0"
    action_dir.mkdir(parents=True)
    shutil.copy(ACTION, action_dir / "action.yml")
    shutil.copy(REPO / "Cargo.lock", action_dir / "Cargo.lock")
    cargo_toml = (REPO / "Cargo.toml").read_text()
    cargo_toml = re.sub(r'(?m)^version = "[^"]*"', 'version = "0.3.7"', cargo_toml, count=1)
    (action_dir / "Cargo.toml").write_text(cargo_toml)

    # A stand-in curl: records each call; `latest` redirects to v0.3.8; every download is a 404.
    fake, cargo_log = fake_cargo(ctx)
    curl_log = ctx.root / "curl-calls"
    (fake / "curl").write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$*\" >> {shlex.quote(str(curl_log))}\n"
        "case \"$*\" in *--head*) printf 'https://github.com/acme/kiln/releases/tag/v0.3.8' ;; *) printf 404 ;; esac\n"
    )
    (fake / "curl").chmod(0o755)
    env = {"PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    ws = ctx.workspace()

    for version, expected in (("", "0.3.7"), ("latest", "0.3.8"), ("v1.2.3", "1.2.3")):
        curl_log.unlink(missing_ok=True)
        inputs = {"source": "site", **({"version": version} if version else {})}
        ctx.reset_calls()
        runner_temp = Path(tempfile.mkdtemp(prefix="runner-", dir=ctx.root))
        ctx.last = r = run_action(action_dir / "action.yml", inputs=inputs, env=env, workspace=ws, runner_temp=runner_temp)
        ok(r)
        url = f"https://github.com/acme/kiln/releases/download/v{expected}/kiln-{expected}-{target}.tar.gz"
        calls = curl_log.read_text()
        check(url in calls, f"version {version!r}: no download of {url}:\n{calls}")
        if version == "latest":
            check("https://github.com/acme/kiln/releases/latest" in calls, f"latest not resolved:\n{calls}")
        check(r.step("source").outcome == "success", f"version {version!r}: no build from source after the 404")
        args = cargo_log.read_text().splitlines()
        check(args[1:6] == ["install", "--locked", "--force", "--path", str(action_dir)], f"cargo args {args}")


@test
def release_workflow_packs_what_the_action_installs(ctx: Ctx):
    """release.yml's Package script, run here, makes assets the action accepts."""
    target = release_target()
    if target is None:
        print(f"    (skipped: no release target for {platform.system()} {platform.machine()})")
        return
    workflow = load_yaml(REPO / ".github" / "workflows" / "release.yml")
    steps = workflow["jobs"]["build"]["steps"]
    package = next(step for step in steps if step.get("name") == "Package")
    version = tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]

    checkout = ctx.root / "checkout"
    # release.yml builds with `--profile dist` (Cargo.toml).
    release_dir = checkout / "target" / target / "dist"
    release_dir.mkdir(parents=True)
    (checkout / "README.md").write_text("kiln\n")
    # A small stand-in for the release binary: it runs the kiln under test.
    (release_dir / "kiln").write_text(f"#!/bin/sh\nexec {shlex.quote(str(ctx.kiln.resolve()))} \"$@\"\n")
    (release_dir / "kiln").chmod(0o755)
    script = ctx.root / "package.sh"
    script.write_text(package["run"])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "RUNNER_"))}
    env.update({"RUNNER_OS": "Linux", "TARGET": target, "VERSION": version})
    done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=checkout, env=env, capture_output=True, text=True)
    check(done.returncode == 0, f"the Package script failed:\n{done.stdout}\n{done.stderr}")
    asset = f"kiln-{version}-{target}.tar.gz"
    dist = checkout / "dist"
    check(sorted(p.name for p in dist.iterdir()) == [asset, f"{asset}.sha256"], f"dist: {sorted(dist.iterdir())}")

    releases = ctx.root / "releases"
    (releases / f"v{version}").mkdir(parents=True)
    for p in dist.iterdir():
        shutil.copy(p, releases / f"v{version}" / p.name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(releases)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"KILN_RELEASE_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
        r = ctx.act(ctx.workspace(), {"source": "site"}, env=env, recorded=False)
        ok(r)
        check("verified" in r.step("install").log, f"log:\n{r.step('install').log}")
        check(integer(r.outputs, "files") > 0, "the packed kiln did not build")
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str]) -> int:
    kiln = os.environ.get("KILN_BINARY")
    if not kiln or not os.access(kiln, os.X_OK):
        print("run_tests: set KILN_BINARY to a kiln binary", file=sys.stderr)
        return 2
    selected = [t for t in TESTS if not argv or t.__name__ in argv]
    if argv and len(selected) != len(argv):
        print(f"run_tests: unknown tests; known: {[t.__name__ for t in TESTS]}", file=sys.stderr)
        return 2

    base = Path(tempfile.mkdtemp(prefix="kiln-action-tests-"))
    passed = failed = 0
    for index, fn in enumerate(selected):
        root = base / f"{index}-{fn.__name__}"
        root.mkdir()
        ctx = Ctx(root, Path(kiln).resolve())
        try:
            fn(ctx)
        except Exception:  # noqa: BLE001 - every failure is reported
            failed += 1
            print(f"FAIL {fn.__name__}")
            print(traceback.format_exc())
            if ctx.last is not None:
                print(f"--- last action run: {ctx.last.outcome}, exit {ctx.last.exit_code}")
                print(f"--- outputs: {json.dumps(ctx.last.outputs)}")
                print("--- log:")
                print(ctx.last.log)
        else:
            passed += 1
            print(f"ok   {fn.__name__}")
        sys.stdout.flush()
    if os.environ.get("KEEP_TMP"):
        print(f"kept {base}")
    else:
        shutil.rmtree(base, ignore_errors=True)
    print(f"action tests: {passed} passed, {failed} failed")
    if failed:
        return 1
    print("action-ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
