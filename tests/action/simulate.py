#!/usr/bin/env python3
"""A simulated GitHub Actions runner for the composite action in action.yml.

It does what the runner does with a composite action, for the subset the
action uses, and refuses anything else rather than guess:

- loads action.yml (parsed by the `yaml` npm package through yaml2json.mjs,
  or by PyYAML when node or tests/action/node_modules is missing);
- applies input defaults; an unknown input is an error;
- per step, evaluates `if:` (implicitly `success() && (…)`), `env:` and
  `working-directory:` expressions: the contexts `inputs`, `github`
  (action_path, workspace, action_ref and action_repository, empty as in a
  real composite action, repository), `runner` (temp, os, arch), `steps`
  (outputs, outcome, conclusion) and `env`; string, number, boolean and null
  literals; `==`, `!=`, `<`, `<=`, `>`, `>=`, `&&`, `||`, `!`, parentheses;
  the functions success(), failure(), always(), cancelled(), contains(),
  startsWith(), endsWith(). GitHub's loose comparison (case-insensitive
  strings, numeric coercion) and `||`/`&&` returning an operand are kept;
- `uses:` steps: only those in SKIPPED_ACTIONS (their `with:` is evaluated,
  then they are skipped with a note); any other is refused;
- `run:` steps: `bash --noprofile --norc -eo pipefail FILE`, like the runner,
  in the workspace (or working-directory), with GITHUB_OUTPUT,
  GITHUB_STEP_SUMMARY, GITHUB_ENV, GITHUB_PATH (fresh files per step, read
  afterwards), GITHUB_ACTION_PATH, GITHUB_WORKSPACE, RUNNER_TEMP, RUNNER_OS,
  RUNNER_ARCH, GITHUB_ACTIONS=true and CI=true; the output and env files
  take `name=value` and the heredoc `name<<DELIMITER` form; GITHUB_PATH
  entries are prepended to PATH for the later steps;
- a failed step skips the steps after it (unless their `if:` says
  otherwise); the action's exit code is the failed step's;
- finally evaluates the action's `outputs`.

Use as a module (`run_action(...)`, see run_tests.py) or from the command
line:

    simulate.py [--action action.yml] [--workspace DIR] [-i NAME=VALUE]...
                [-e NAME=VALUE]... [--verbose]

which prints the result as JSON and exits with the action's exit code.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

# `uses:` steps the simulator skips (with a note) instead of refusing: they
# only make a real run faster and change nothing the action's result depends on.
SKIPPED_ACTIONS = {"actions/cache"}

# Variables of the machine that a real runner would not pass to the action,
# or that would change what kiln does: dropped from the base environment.
DROPPED_PREFIXES = ("GITHUB_", "RUNNER_", "ACTIONS_", "INPUT_", "KILN_", "AWS_")

STEP_TIMEOUT = 600


class SimulationError(Exception):
    """The action uses something the simulator does not support (or is malformed)."""


class ExpressionError(SimulationError):
    pass


# --- YAML -------------------------------------------------------------------


def load_yaml(path: Path):
    helper = HERE / "yaml2json.mjs"
    if shutil.which("node") and (HERE / "node_modules" / "yaml").is_dir():
        done = subprocess.run(
            ["node", str(helper), str(path)], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SimulationError(f"cannot parse {path}: {done.stderr.strip()}")
        return json.loads(done.stdout)
    try:
        import yaml  # type: ignore
    except ImportError:
        raise SimulationError(
            "no YAML parser: run `npm ci` in tests/action (bash tests/setup.sh), or install PyYAML"
        ) from None
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


# --- expressions ------------------------------------------------------------

TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?))
  | (?P<op>==|!=|<=|>=|&&|\|\||[!<>(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)
    """,
    re.VERBOSE,
)


def tokenize(text: str):
    tokens = []
    pos = 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise ExpressionError(f"unsupported syntax at {text[pos:]!r} in {text!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        value = m.group(kind)
        if kind == "string":
            value = value[1:-1].replace("''", "'")
        elif kind == "number":
            value = float(int(value, 16)) if value.lower().startswith("0x") else float(value)
        tokens.append((kind, value))
    tokens.append(("end", None))
    return tokens


def truthy(v) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, float):
        return v != 0 and not math.isnan(v)
    if isinstance(v, str):
        return v != ""
    return True  # objects and arrays


def to_number(v) -> float:
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, float):
        return v
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return 0.0
        try:
            return float(int(s, 16)) if s.lower().startswith("0x") else float(s)
        except ValueError:
            return math.nan
    return math.nan


def to_string(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, str):
        return v
    return json.dumps(v)


def loose_equal(a, b) -> bool:
    if type(a) is type(b):
        if isinstance(a, str):
            return a.casefold() == b.casefold()
        if isinstance(a, float):
            return a == b  # NaN != NaN
        return a == b
    if isinstance(a, (dict, list)) or isinstance(b, (dict, list)):
        return False
    return to_number(a) == to_number(b)


def compare(a, b, op: str) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        x, y = a.casefold(), b.casefold()
    else:
        x, y = to_number(a), to_number(b)
        if math.isnan(x) or math.isnan(y):
            return False
    return {"<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


STATUS_FUNCTIONS = ("success", "failure", "always", "cancelled")


class Evaluator:
    def __init__(self, contexts: dict, status: dict):
        self.contexts = contexts
        self.status = status  # {"failed": bool}

    def evaluate(self, text: str):
        self.tokens = tokenize(text)
        self.pos = 0
        self.text = text
        value = self.parse_or()
        if self.peek()[0] != "end":
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in {text!r}")
        return value

    def peek(self):
        return self.tokens[self.pos]

    def take(self, op=None):
        tok = self.tokens[self.pos]
        if op is not None and tok != ("op", op):
            raise ExpressionError(f"expected {op!r} in {self.text!r}")
        self.pos += 1
        return tok

    def parse_or(self):
        left = self.parse_and()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.parse_and()
            left = left if truthy(left) else right
        return left

    def parse_and(self):
        left = self.parse_equality()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.parse_equality()
            left = right if truthy(left) else left
        return left

    def parse_equality(self):
        left = self.parse_comparison()
        while self.peek() in (("op", "=="), ("op", "!=")):
            op = self.take()[1]
            right = self.parse_comparison()
            equal = loose_equal(left, right)
            left = equal if op == "==" else not equal
        return left

    def parse_comparison(self):
        left = self.parse_unary()
        while self.peek() in (("op", "<"), ("op", "<="), ("op", ">"), ("op", ">=")):
            op = self.take()[1]
            right = self.parse_unary()
            left = compare(left, right, op)
        return left

    def parse_unary(self):
        if self.peek() == ("op", "!"):
            self.take()
            return not truthy(self.parse_unary())
        return self.parse_primary()

    def parse_primary(self):
        kind, value = self.take()
        if kind == "op" and value == "(":
            inner = self.parse_or()
            self.take(")")
            return inner
        if kind in ("string", "number"):
            return value
        if kind == "ident":
            if self.peek() == ("op", "("):
                return self.call(value)
            if value == "true":
                return True
            if value == "false":
                return False
            if value == "null":
                return None
            return self.lookup(value)
        raise ExpressionError(f"unexpected {value!r} in {self.text!r}")

    def call(self, name: str):
        self.take("(")
        args = []
        if self.peek() != ("op", ")"):
            args.append(self.parse_or())
            while self.peek() == ("op", ","):
                self.take()
                args.append(self.parse_or())
        self.take(")")
        lname = name.lower()
        if lname in STATUS_FUNCTIONS:
            if args:
                raise ExpressionError(f"{name}() takes no arguments")
            failed = self.status.get("failed", False)
            return {
                "success": not failed,
                "failure": failed,
                "always": True,
                "cancelled": False,
            }[lname]
        if lname in ("contains", "startswith", "endswith") and len(args) == 2:
            hay, needle = args
            if lname == "contains" and isinstance(hay, list):
                return any(loose_equal(item, needle) for item in hay)
            h, n = to_string(hay).casefold(), to_string(needle).casefold()
            return {"contains": n in h, "startswith": h.startswith(n), "endswith": h.endswith(n)}[lname]
        raise ExpressionError(f"unsupported function {name}() in {self.text!r}")

    def lookup(self, dotted: str):
        parts = dotted.split(".")
        head = parts[0]
        if head not in self.contexts:
            raise ExpressionError(f"unknown context {head!r} in {self.text!r}")
        value = self.contexts[head]
        for part in parts[1:]:
            if isinstance(value, dict):
                # Property names are case-insensitive in GitHub's expressions.
                match = next((k for k in value if k.lower() == part.lower()), None)
                value = value[match] if match is not None else None
            else:
                value = None
        return value


EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def interpolate(text, evaluator: Evaluator) -> str:
    """A value that may hold `${{ }}` expressions, as the runner turns it into a string."""
    if text is None:
        return ""
    if not isinstance(text, str):
        return to_string(float(text) if isinstance(text, int) and not isinstance(text, bool) else text)
    return EXPR.sub(lambda m: to_string(evaluator.evaluate(m.group(1))), text)


def condition(text, evaluator: Evaluator) -> bool:
    """An `if:` value: optional `${{ }}`, implicit `success() &&` without a status function."""
    if text is None or text == "":
        text = "success()"
    if isinstance(text, bool):
        text = "true" if text else "false"
    text = str(text).strip()
    m = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.DOTALL)
    if m:
        text = m.group(1)
    if not re.search(r"\b(success|failure|always|cancelled)\s*\(", text, re.IGNORECASE):
        text = f"success() && ({text})"
    return truthy(evaluator.evaluate(text))


# --- file commands ----------------------------------------------------------


def parse_file_command(path: Path) -> dict:
    """GITHUB_OUTPUT / GITHUB_ENV: `name=value` lines and `name<<DELIM` heredocs."""
    result = {}
    if not path.exists():
        return result
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip("\r")
        i += 1
        if line == "":
            continue
        heredoc = line.find("<<")
        equals = line.find("=")
        if heredoc > 0 and (equals < 0 or heredoc < equals):
            name, delim = line[:heredoc], line[heredoc + 2 :]
            if not delim:
                raise SimulationError(f"{path.name}: empty heredoc delimiter for {name!r}")
            body = []
            while True:
                if i >= len(lines):
                    raise SimulationError(f"{path.name}: heredoc {delim!r} for {name!r} is not closed")
                current = lines[i].rstrip("\r")
                i += 1
                if current == delim:
                    break
                body.append(current)
            result[name] = "\n".join(body)
        elif equals > 0:
            result[line[:equals]] = line[equals + 1 :]
        else:
            raise SimulationError(f"{path.name}: malformed line {line!r}")
    return result


# --- the run ----------------------------------------------------------------


@dataclass
class StepResult:
    id: str
    name: str
    outcome: str  # success, failure, skipped
    exit_code: int | None = None
    outputs: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    log: str = ""
    note: str = ""


@dataclass
class ActionResult:
    outcome: str
    exit_code: int
    outputs: dict
    steps: list
    summary: str
    path_added: list
    env_added: dict
    log: str
    workspace: str
    runner_temp: str

    def step(self, step_id: str) -> StepResult:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def to_json(self) -> dict:
        d = dict(self.__dict__)
        d["steps"] = [s.__dict__ for s in self.steps]
        return d


def runner_os() -> str:
    return {"Linux": "Linux", "Darwin": "macOS", "Windows": "Windows"}.get(platform.system(), platform.system())


def runner_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "X64", "amd64": "X64", "aarch64": "ARM64", "arm64": "ARM64"}.get(machine, machine.upper())


def run_action(
    action: Path | str = REPO / "action.yml",
    inputs: dict | None = None,
    env: dict | None = None,
    workspace: Path | str | None = None,
    runner_temp: Path | str | None = None,
    repository: str = "example/site",
    verbose: bool = False,
    timeout: float = STEP_TIMEOUT,
) -> ActionResult:
    """Run the composite action like a runner would; `env` is the job's env."""
    action = Path(action).resolve()
    meta = load_yaml(action)
    runs = meta.get("runs") or {}
    if runs.get("using") != "composite":
        raise SimulationError(f"{action}: runs.using is {runs.get('using')!r}, not composite")

    declared = meta.get("inputs") or {}
    inputs = dict(inputs or {})
    unknown = set(inputs) - set(declared)
    if unknown:
        raise SimulationError(f"unknown inputs: {sorted(unknown)}")
    values = {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in inputs:
            values[name] = to_string(inputs[name]) if not isinstance(inputs[name], str) else inputs[name]
        elif "default" in spec:
            d = spec["default"]
            values[name] = d if isinstance(d, str) else to_string(float(d) if isinstance(d, int) and not isinstance(d, bool) else d)
        elif spec.get("required"):
            raise SimulationError(f"input {name!r} is required")
        else:
            values[name] = ""

    own_temp = None
    if workspace is None:
        own_temp = tempfile.mkdtemp(prefix="kiln-sim-")
        workspace = Path(own_temp) / "workspace"
    workspace = Path(workspace).resolve()
    workspace.mkdir(parents=True, exist_ok=True)
    if runner_temp is None:
        runner_temp = Path(tempfile.mkdtemp(prefix="kiln-sim-runner-"))
    runner_temp = Path(runner_temp).resolve()
    runner_temp.mkdir(parents=True, exist_ok=True)
    files_dir = Path(tempfile.mkdtemp(prefix="kiln-sim-files-"))

    job_env = {str(k): str(v) for k, v in (env or {}).items()}
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_PREFIXES)}
    base_env.update(
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_ACTION_PATH": str(action.parent),
            "GITHUB_REPOSITORY": repository,
            "RUNNER_TEMP": str(runner_temp),
            "RUNNER_OS": runner_os(),
            "RUNNER_ARCH": runner_arch(),
        }
    )
    base_env.update(job_env)
    env_added: dict = {}
    path_added: list = []

    contexts = {
        "inputs": values,
        "github": {
            "action_path": str(action.parent),
            "workspace": str(workspace),
            # Empty in a real composite action's steps (actions/runner#2473).
            "action_ref": "",
            "action_repository": "",
            "repository": repository,
            "sha": job_env.get("GITHUB_SHA", "0" * 40),
        },
        "runner": {"temp": str(runner_temp), "os": runner_os(), "arch": runner_arch()},
        "steps": {},
        "env": dict(job_env),
    }
    status = {"failed": False}
    evaluator = Evaluator(contexts, status)

    results: list[StepResult] = []
    summary_parts: list[str] = []
    log_parts: list[str] = []
    exit_code = 0

    def note(text: str):
        log_parts.append(f"[simulate] {text}\n")
        if verbose:
            print(f"[simulate] {text}", file=sys.stderr)

    for index, step in enumerate(runs.get("steps") or []):
        step_id = str(step.get("id") or f"__step{index}")
        name = str(step.get("name") or step.get("id") or step.get("uses") or f"step {index}")
        result = StepResult(id=step_id, name=name, outcome="skipped")
        results.append(result)
        contexts["env"] = {**job_env, **env_added}

        if not condition(step.get("if"), evaluator):
            note(f"{name}: skipped (if: {step.get('if')!r} is false)")
            contexts["steps"][step_id] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
            continue

        if "uses" in step:
            uses = str(step["uses"])
            action_name = uses.split("@", 1)[0]
            if action_name not in SKIPPED_ACTIONS:
                raise SimulationError(f"refusing to run `uses: {uses}` (only {sorted(SKIPPED_ACTIONS)} are skipped)")
            with_values = {k: interpolate(v, evaluator) for k, v in (step.get("with") or {}).items()}
            result.outcome = "success"
            result.note = f"not run by the simulator: {uses} (it only speeds a real run up); with: {json.dumps(with_values)}"
            note(f"{name}: {result.note}")
            contexts["steps"][step_id] = {"outputs": {}, "outcome": "success", "conclusion": "success"}
            continue

        if "run" not in step:
            raise SimulationError(f"step {name!r} has neither run nor uses")
        shell = step.get("shell")
        if shell != "bash":
            raise SimulationError(f"step {name!r}: shell {shell!r} is not supported (only bash)")

        step_env = {str(k): interpolate(v, evaluator) for k, v in (step.get("env") or {}).items()}
        result.env = step_env
        cwd = workspace
        if step.get("working-directory"):
            cwd = workspace / interpolate(step["working-directory"], evaluator)

        step_files = files_dir / f"{index}"
        step_files.mkdir()
        script = step_files / "script.sh"
        script.write_text(str(step["run"]), encoding="utf-8")
        output_file = step_files / "output"
        summary_file = step_files / "summary.md"
        env_file = step_files / "env"
        path_file = step_files / "path"
        for f in (output_file, summary_file, env_file, path_file):
            f.touch()

        proc_env = {**base_env, **env_added, **step_env}
        proc_env["PATH"] = os.pathsep.join(list(reversed(path_added)) + [proc_env.get("PATH", os.defpath)])
        proc_env.update(
            {
                "GITHUB_OUTPUT": str(output_file),
                "GITHUB_STEP_SUMMARY": str(summary_file),
                "GITHUB_ENV": str(env_file),
                "GITHUB_PATH": str(path_file),
            }
        )
        note(f"{name}: run")
        try:
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=cwd,
                env=proc_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
            code = done.returncode
            log = done.stdout.decode("utf-8", "replace")
        except subprocess.TimeoutExpired as e:
            code = 124
            log = (e.stdout or b"").decode("utf-8", "replace") + f"\n[simulate] timed out after {timeout} s\n"
        result.log = log
        log_parts.append(log)
        if verbose and log:
            sys.stderr.write(log)

        # File commands are processed whatever the step's outcome.
        result.outputs = parse_file_command(output_file)
        env_added.update(parse_file_command(env_file))
        for line in path_file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                path_added.append(line.strip())
        summary = summary_file.read_text(encoding="utf-8")
        if summary:
            summary_parts.append(summary)

        result.exit_code = code
        result.outcome = "success" if code == 0 else "failure"
        contexts["steps"][step_id] = {
            "outputs": dict(result.outputs),
            "outcome": result.outcome,
            "conclusion": result.outcome,
        }
        if code != 0:
            note(f"{name}: failed with exit code {code}")
            if not status["failed"]:
                exit_code = code
            status["failed"] = True

    contexts["env"] = {**job_env, **env_added}
    outputs = {}
    for name, spec in (meta.get("outputs") or {}).items():
        outputs[name] = interpolate((spec or {}).get("value"), evaluator)

    shutil.rmtree(files_dir, ignore_errors=True)
    return ActionResult(
        outcome="failure" if status["failed"] else "success",
        exit_code=exit_code,
        outputs=outputs,
        steps=results,
        summary="\n".join(summary_parts),
        path_added=path_added,
        env_added=env_added,
        log="".join(log_parts),
        workspace=str(workspace),
        runner_temp=str(runner_temp),
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--action", default=str(REPO / "action.yml"))
    parser.add_argument("--workspace", help="workspace directory (default: a new temporary one)")
    parser.add_argument("--runner-temp", help="RUNNER_TEMP (default: a new temporary directory)")
    parser.add_argument("-i", "--input", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--verbose", action="store_true", help="echo step logs to stderr")
    args = parser.parse_args(argv)

    def pairs(items):
        out = {}
        for item in items:
            if "=" not in item:
                parser.error(f"expected NAME=VALUE, got {item!r}")
            k, v = item.split("=", 1)
            out[k] = v
        return out

    try:
        result = run_action(
            args.action,
            inputs=pairs(args.input),
            env=pairs(args.env),
            workspace=args.workspace,
            runner_temp=args.runner_temp,
            verbose=args.verbose,
        )
    except SimulationError as e:
        print(f"simulate: {e}", file=sys.stderr)
        return 125
    json.dump(result.to_json(), sys.stdout, indent=2)
    print()
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
