import { join } from 'node:path';
import { runBenchmarks } from './harness';
import { BENCHMARKS } from './registry';

// scripts/bench.mjs starts this bundle from the repository root.
const root = process.cwd();

function count(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number ≥ ${min}; got "${raw}"`);
  return value;
}

const code = await runBenchmarks(
  BENCHMARKS,
  { root, node24: join(root, 'node_modules/.bin/node') },
  {
    runs: count('BENCH_RUNS', 7, 1),
    warmup: count('BENCH_WARMUP', 1, 0),
    ...(process.env.BENCH_FILTER ? { filter: process.env.BENCH_FILTER } : {}),
    resultsPath: join(root, '.tmp/bench-results.json'),
  },
);
// ssh2 keepalive timers or a stray socket must not keep the report from finishing.
process.exit(code);
