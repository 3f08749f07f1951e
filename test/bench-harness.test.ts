import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { selectBenchmarks } from '../bench/harness';
import { BENCHMARKS } from '../bench/registry';

describe('BENCH_FILTER', () => {
  it('every benchmark is named after its file in bench/', () => {
    const files = readdirSync(join(import.meta.dirname, '..', 'bench')).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, ''));
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
