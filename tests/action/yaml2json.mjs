// Prints a YAML file as JSON (for simulate.py, which uses only Python's
// standard library): `node yaml2json.mjs FILE`.
import { readFileSync } from "node:fs";
import { parse } from "yaml";

const file = process.argv[2];
if (!file) {
  console.error("usage: node yaml2json.mjs FILE");
  process.exit(2);
}
process.stdout.write(JSON.stringify(parse(readFileSync(file, "utf8"))));
