// Benchmarks against the tools we replace, as a report: a MISS does not fail the command.
//
//   npm run bench                          all benchmarks, 1 warm-up + 7 measured runs each
//   BENCH_RUNS=15 BENCH_WARMUP=2 npm run bench
//   BENCH_FILTER=ssh-round-trip,deploy-rolling npm run bench   only these (names = bench/<name>.ts)
//   BENCH_SKIP_BUILD=1 npm run bench       use the action bundles as they are
//
// The benchmarks live in bench/*.ts (listed in bench/registry.ts). They are bundled here and run
// on node_modules/.bin/node, Node 24, the runner's runtime, because what they time is that runtime.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { NODE_BUNDLE_OPTIONS } from './bundle-options.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const node24 = join(root, 'node_modules/.bin/node');
const outfile = join(root, '.tmp/bench/main.mjs');

function run(file, args) {
  return new Promise((done, fail) => {
    const child = spawn(file, args, { cwd: root, stdio: 'inherit' });
    child.on('error', fail);
    child.on('close', (code, signal) => done(code ?? (signal ? 128 : 1)));
  });
}

if (!existsSync(node24)) {
  console.error('node_modules/.bin/node (Node 24) is missing; run npm install');
  process.exit(1);
}

// The cold-start benchmark times the real bundle, so it must match the sources being measured.
if (!process.env.BENCH_SKIP_BUILD) {
  const code = await run(process.execPath, [join(root, 'scripts/build.mjs')]);
  if (code !== 0) process.exit(code);
}

await build({
  absWorkingDir: root,
  entryPoints: ['bench/main.ts'],
  outfile,
  // Same as the action bundles, so ssh2 runs its pure-JS crypto here too, as it does on the runner.
  ...NODE_BUNDLE_OPTIONS,
  sourcemap: true,
  logLevel: 'warning',
});

process.exitCode = await run(node24, ['--enable-source-maps', outfile]);
