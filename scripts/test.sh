#!/usr/bin/env bash
# The README's test command (`npm test`). On a fresh Debian/Ubuntu machine, as root, it does
# its own set-up: dependencies, then the test bed (fast when already provisioned), then type
# check, format and lint, unit tests, integration tests against the real test bed, and the dist/ freshness check.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x node_modules/.bin/vitest ]]; then
  npm ci --no-audit --no-fund
fi
bash scripts/setup-testbed.sh

mkdir -p .tmp
status=0
# Type check, format and lint (Prettier, ESLint with typescript-eslint's type-aware rules) run beside
# the unit tests: neither waits on the other, and on 2 cores together they take ~1 minute less.
# Their output follows the unit tests'; a failure fails the run.
(
  static_status=0
  npx tsc -p tsconfig.json || static_status=1
  npx prettier --check --log-level warn "**/*.{ts,mjs,js}" || static_status=1
  npx eslint --max-warnings 0 . || static_status=1
  exit "$static_status"
) > .tmp/static-checks.log 2>&1 &
static_pid=$!
unit_status=0
integration_status=0
npx vitest run --project unit --reporter=default --reporter=json --outputFile.json=.tmp/vitest-unit.json || unit_status=$?
static_status=0
wait "$static_pid" || static_status=$?
echo "--- type check, Prettier, ESLint (exit $static_status) ---"
cat .tmp/static-checks.log
[[ $static_status -eq 0 ]] || status=1
npx vitest run --project integration --reporter=default --reporter=json --outputFile.json=.tmp/vitest-integration.json || integration_status=$?
side_status=0
npx vitest run --project side-by-side --reporter=default --reporter=json --outputFile.json=.tmp/vitest-side-by-side.json || side_status=$?
[[ $unit_status -eq 0 && $integration_status -eq 0 && $side_status -eq 0 ]] || status=1
build_status=0
node scripts/build.mjs --check || build_status=1
[[ $build_status -eq 0 ]] || status=1
[[ $static_status -eq 0 ]] || echo "FAILED type check, Prettier or ESLint (their output is after the unit tests)"
[[ $build_status -eq 0 ]] || echo "FAILED dist/ is stale: run npm run build and commit it"

# One plain closing line over both runs, so CI can count what ran.
UNIT_STATUS=$unit_status INTEGRATION_STATUS=$integration_status SIDE_STATUS=$side_status node -e '
  const fs = require("fs");
  const path = require("path");
  const firstLines = (text) => String(text ?? "").replace(/\x1b\[[0-9;]*m/g, "").split("\n").filter((line) => !/node_modules|node:internal|new Promise/.test(line)).slice(0, 8).join("\n  ").slice(0, 1500);
  const failures = [];
  let passed = 0, failed = 0, skipped = 0;
  const runs = [[".tmp/vitest-unit.json", process.env.UNIT_STATUS], [".tmp/vitest-integration.json", process.env.INTEGRATION_STATUS], [".tmp/vitest-side-by-side.json", process.env.SIDE_STATUS]];
  for (const [file, exitStatus] of runs) {
    if (!fs.existsSync(file)) { failed++; continue; }
    const report = JSON.parse(fs.readFileSync(file, "utf8"));
    passed += report.numPassedTests; failed += report.numFailedTests;
    skipped += report.numPendingTests + report.numTodoTests;
    // A run that failed without a failed test (an unhandled error, a crashed worker) counts as one failure.
    if ((!report.success || exitStatus !== "0") && report.numFailedTests === 0) {
      failed++;
      failures.push(`FAILED ${file}: vitest exited ${exitStatus} with no failed test (an unhandled error or a crashed worker; its output is above)`);
    }
    // CI shows only the end of the output: name every failure here, with the first lines of its reason.
    for (const suite of report.testResults) {
      const where = path.relative(process.cwd(), suite.name);
      for (const test of suite.assertionResults) {
        if (test.status !== "failed") continue;
        failures.push(`FAILED ${where} > ${test.fullName}\n  ${firstLines(test.failureMessages.join("\n"))}`);
      }
      if (suite.status === "failed" && suite.assertionResults.every((test) => test.status !== "failed")) {
        // A failing beforeAll fails the file while its tests count as skipped: count it here.
        failed++;
        failures.push(`FAILED ${where} (the file itself)\n  ${firstLines(suite.message)}`);
      }
    }
  }
  for (const failure of failures) console.log(failure);
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
'
exit "$status"
