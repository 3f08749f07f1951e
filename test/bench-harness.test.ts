import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { runBenchmarks, selectBenchmarks, type Benchmark } from '../bench/harness';
import { BENCHMARKS } from '../bench/registry';

describe('BENCH_FILTER', () => {
  it('every benchmark is named after its file in bench/', () => {
    const files = readdirSync(join(import.meta.dirname, '..', 'bench'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => f.replace(/\.ts$/, ''));
    for (const benchmark of BENCHMARKS) expect(files).toContain(benchmark.name);
  });

  it('selects by exact names, several comma-separated; a part of a name or an unknown name is an error naming them all', () => {
    const names = (filter: string) => {
      const selected = selectBenchmarks(BENCHMARKS, filter);
      return typeof selected === 'string' ? selected : selected.map((b) => b.name);
    };
    expect(names('deploy-compose')).toEqual(['deploy-compose']);
    expect(names('deploy-rolling, ssh-round-trip')).toEqual(['ssh-round-trip', 'deploy-rolling']);
    const error = selectBenchmarks(BENCHMARKS, 'deploy');
    expect(error).toMatch(/^BENCH_FILTER: no benchmark named deploy; the names .* are: .*deploy-compose, deploy-hosts, deploy-rolling/);
    expect(selectBenchmarks(BENCHMARKS, undefined)).toBe(BENCHMARKS);
  });
});

describe('a case that cannot run here', () => {
  it('is reported "not run" with its reason, never measured, and does not fail the command', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-bench-'));
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      let measured = 0;
      const benchmark: Benchmark = {
        name: 'fake',
        description: 'fake',
        setup: async () => ({
          teardown: async () => undefined,
          cases: [
            { name: 'runs', what: 'a measured case', ours: async () => ++measured },
            { name: 'needs a tool', what: 'side by side', ours: async () => (measured += 100), notRun: 'TOOL_PATH is not set' },
          ],
        }),
      };
      const code = await runBenchmarks([benchmark], { root: dir, node24: process.execPath }, { runs: 2, warmup: 0, resultsPath: join(dir, 'results.json') });
      expect(code).toBe(0);
      expect(measured).toBe(2);
      const results = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { results: { name: string; status: string; what: string }[] };
      expect(results.results.find((r) => r.name === 'needs a tool')).toMatchObject({ status: 'not run', what: 'not run: TOOL_PATH is not set' });
      expect(log.mock.calls.flat().join('\n')).toMatch(/needs a tool .*not run/);
    } finally {
      log.mockRestore();
      err.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
