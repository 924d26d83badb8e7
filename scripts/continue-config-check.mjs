// continue-config-check parses each config.yaml given with Continue's own
// parser and validator, npm @continuedev/config-yaml (installed by
// scripts/clients-for-tests into $CTXFIT_CLIENTS_DIR), and prints one JSON
// object: file → "" when Continue accepts it, else its error.
//
// Usage: CTXFIT_CLIENTS_DIR=... node scripts/continue-config-check.mjs FILE...
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.env.CTXFIT_CLIENTS_DIR;
if (!dir) {
  console.error("continue-config-check: set CTXFIT_CLIENTS_DIR (scripts/clients-for-tests prints it)");
  process.exit(2);
}
const pkg = join(dir, "node_modules", "@continuedev", "config-yaml", "dist", "index.js");
const { parseConfigYaml } = await import(pathToFileURL(pkg).href);
const out = {};
for (const file of process.argv.slice(2)) {
  try {
    parseConfigYaml(readFileSync(file, "utf8"));
    out[file] = "";
  } catch (e) {
    out[file] = String(e?.message ?? e);
  }
}
console.log(JSON.stringify(out));
