#!/usr/bin/env bash
# `npm run demo`: the whole Skiff story on one machine. On a fresh Debian/Ubuntu machine, as root,
# it does its own set-up: dependencies, the test bed (fast when already provisioned), then the
# story (demo/main.ts) against a throwaway sandbox it removes again. See README.md, "Demo".
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x node_modules/.bin/vitest ]]; then
  npm ci --no-audit --no-fund
fi
bash scripts/setup-testbed.sh

# The demo runs the committed bundles, exactly what `uses:` runs; only a missing one is built.
for action in action-build-push action-deploy action-backup action-cf-allowlist; do
  if [[ ! -s $action/dist/index.js ]]; then node scripts/build.mjs "$action"; fi
done

exec node demo/launch.mjs
