#!/usr/bin/env node
// Runs the browser tests with Node's built-in test runner (node:test), one file at a time and
// one test at a time (the steps of a file build on each other).
//
//   WHARF_URL=http://127.0.0.1:PORT WHARF_USER2=bob WHARF_USER2_PASSWORD=… node run.mjs [FILE…]
//
// The server is not started here: scripts/test.sh (stage "browser tests") prepares a fresh data
// folder, adds the second user with `wharf user add`, starts `wharf serve` and waits for it.
//
// Environment (read by the tests):
//   WHARF_URL              the running server (required)
//   WHARF_USER2            an existing user other than the one the tests sign up (required)
//   WHARF_USER2_PASSWORD   that user's password (required)
//   WHARF_SCREENSHOT_DIR   where the documentation screenshots go (default docs/screenshots);
//                          a file is rewritten only when the picture changed (beyond a few
//                          anti-aliased pixels), or always with WHARF_SCREENSHOTS=update
//   WHARF_FAILURE_DIR      where a failing step's screenshot goes (default: a temporary folder)
//   CHROMIUM               the browser (default /usr/bin/chromium)
import { run } from "node:test";
import { spec } from "node:test/reporters";
import { readdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

for (const name of ["WHARF_URL", "WHARF_USER2", "WHARF_USER2_PASSWORD"]) {
  if (!process.env[name]) {
    console.error(`run.mjs: ${name} is not set (scripts/test.sh sets it: see the "browser tests" stage)`);
    process.exit(2);
  }
}

const files = process.argv.length > 2
  ? process.argv.slice(2).map((f) => path.resolve(f))
  : readdirSync(here).filter((f) => f.endsWith(".test.mjs")).sort().map((f) => path.join(here, f));

let failed = 0;
let passed = 0;
const stream = run({ files, concurrency: 1, timeout: 5 * 60 * 1000 });
stream.on("test:fail", (e) => {
  // Suites report too; count only tests (a suite failing because of its tests is not news).
  if (e.details?.type !== "suite") failed += 1;
});
stream.on("test:pass", (e) => {
  if (e.details?.type !== "suite" && !e.skip && !e.todo) passed += 1;
});
stream.compose(new spec()).pipe(process.stdout);
stream.on("end", () => {
  if (failed > 0 || passed === 0) process.exitCode = 1;
});
