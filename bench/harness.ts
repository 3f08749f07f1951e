import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname } from 'node:path';

/** One measurement in milliseconds; a benchmark may aggregate many iterations into it (e.g. a per-command median). */
export type Measure = () => Promise<number>;

export type Target = { maxRatio: number } | { maxMs: number };

/** One row of the table: our code against the floor, the best a well-known tool does for the same job. */
export interface BenchCase {
  name: string;
  /** What `ours` times, for the legend and the JSON. */
  what: string;
  ours: Measure;
  floor?: { label: string; what: string; measure: Measure };
  /** Without a target the row is informational. */
  target?: Target;
  /** Set when the case cannot run here (a tool outside the repository was not given): the row says so and why. */
  notRun?: string;
}

export interface BenchSession {
  cases: BenchCase[];
  teardown(): Promise<void>;
}

export interface BenchContext {
  /** Repository root. */
  root: string;
  /** node_modules/.bin/node: Node 24, the runtime GitHub's runner uses for JavaScript actions. */
  node24: string;
}

export interface Benchmark {
  name: string;
  description: string;
  /** Starts whatever servers the cases need; the harness always calls teardown, also after a failure. */
  setup(context: BenchContext): Promise<BenchSession>;
}

export interface HarnessOptions {
  runs: number;
  warmup: number;
  filter?: string;
  resultsPath: string;
}

type Status = 'PASS' | 'MISS' | 'info' | 'ERROR' | 'not run';

export interface CaseResult {
  benchmark: string;
  name: string;
  what: string;
  floorLabel?: string;
  floorWhat?: string;
  oursMs: number[];
  floorMs: number[];
  median?: number;
  p90?: number;
  min?: number;
  max?: number;
  floorMedian?: number;
  ratio?: number;
  target?: Target;
  status: Status;
  error?: string;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile: always a value that was actually measured. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function statusOf(target: Target | undefined, ours: number, ratio: number | undefined): Status {
  if (!target) return 'info';
  if ('maxMs' in target) return ours <= target.maxMs ? 'PASS' : 'MISS';
  if (ratio === undefined) return 'info';
  return ratio <= target.maxRatio ? 'PASS' : 'MISS';
}

function summarise(benchmark: string, c: BenchCase, oursMs: number[], floorMs: number[]): CaseResult {
  const m = median(oursMs);
  const floorMedian = floorMs.length ? median(floorMs) : undefined;
  const ratio = floorMedian ? m / floorMedian : undefined;
  return {
    benchmark,
    name: c.name,
    what: c.what,
    ...(c.floor ? { floorLabel: c.floor.label, floorWhat: c.floor.what } : {}),
    oursMs,
    floorMs,
    median: m,
    p90: percentile(oursMs, 90),
    min: Math.min(...oursMs),
    max: Math.max(...oursMs),
    ...(floorMedian !== undefined ? { floorMedian } : {}),
    ...(ratio !== undefined ? { ratio } : {}),
    ...(c.target ? { target: c.target } : {}),
    status: statusOf(c.target, m, ratio),
  };
}

// Teardowns of sessions still running, so Ctrl-C does not leave sshd or ssh masters behind.
const pending = new Set<() => Promise<void>>();
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${signal}: stopping benchmark servers…`);
    void Promise.allSettled([...pending].map((teardown) => teardown())).then(() => process.exit(130));
  });
}

/** Rewrites one status line on a terminal; in a log, where \r would pile up, only final lines are written. */
function progress(text: string, final = false): void {
  if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K  ${text}${final ? '\n' : ''}`);
  else if (final) process.stderr.write(`  ${text}\n`);
}

async function runBenchmark(benchmark: Benchmark, context: BenchContext, options: HarnessOptions): Promise<CaseResult[]> {
  const started = performance.now();
  let session: BenchSession | undefined;
  let teardown: (() => Promise<void>) | undefined;
  const results: CaseResult[] = [];
  try {
    session = await benchmark.setup(context);
    teardown = session.teardown.bind(session);
    pending.add(teardown);
    const samples = session.cases.map(() => ({ ours: [] as number[], floor: [] as number[] }));
    for (let run = 0; run < options.warmup + options.runs; run++) {
      const measured = run >= options.warmup;
      for (const [index, c] of session.cases.entries()) {
        if (c.notRun) continue;
        // Alternating which side goes first keeps slow drift (caches, CPU clocks) from favouring one side.
        const sides: Array<['ours' | 'floor', Measure]> = [['ours', c.ours]];
        if (c.floor) sides.push(['floor', c.floor.measure]);
        if (run % 2) sides.reverse();
        for (const [side, measure] of sides) {
          const ms = await measure();
          if (!Number.isFinite(ms) || ms < 0) throw new Error(`${c.name}: ${side} measured ${ms} ms`);
          if (measured) samples[index]![side].push(ms);
        }
      }
      progress(`${benchmark.name}: ${measured ? `run ${run - options.warmup + 1}/${options.runs}` : `warm-up ${run + 1}/${options.warmup}`}`);
    }
    for (const [index, c] of session.cases.entries()) {
      results.push(
        c.notRun
          ? { benchmark: benchmark.name, name: c.name, what: `not run: ${c.notRun}`, oursMs: [], floorMs: [], status: 'not run' }
          : summarise(benchmark.name, c, samples[index]!.ours, samples[index]!.floor),
      );
    }
    progress(`${benchmark.name}: done in ${((performance.now() - started) / 1000).toFixed(1)} s`, true);
  } catch (error) {
    if (process.stderr.isTTY) process.stderr.write('\n');
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.error(`benchmark ${benchmark.name} failed: ${message}`);
    results.push({ benchmark: benchmark.name, name: benchmark.name, what: benchmark.description, oursMs: [], floorMs: [], status: 'ERROR', error: message });
  } finally {
    if (teardown) {
      pending.delete(teardown);
      await teardown().catch((error: unknown) => console.error(`benchmark ${benchmark.name}: teardown failed: ${String(error)}`));
    }
  }
  return results;
}

function ms(value: number | undefined): string {
  if (value === undefined) return '—';
  return value < 10 ? value.toFixed(2) : value < 100 ? value.toFixed(1) : value.toFixed(0);
}

function targetText(target: Target | undefined): string {
  if (!target) return '—';
  return 'maxMs' in target ? `≤ ${target.maxMs} ms` : `≤ ${target.maxRatio}× floor`;
}

/** Aligned plain-text table; the unit is in the headers so the cells stay short. */
export function renderTable(results: readonly CaseResult[]): string {
  const header = ['benchmark', 'median ms', 'p90 ms', 'min–max ms', 'floor', 'floor med ms', 'ratio', 'target', 'result'];
  const rightAligned = new Set([1, 2, 3, 5, 6]);
  const rows = results.map((r) => [
    r.name,
    ms(r.median),
    ms(r.p90),
    r.min === undefined ? '—' : `${ms(r.min)}–${ms(r.max)}`,
    r.floorLabel ?? '—',
    ms(r.floorMedian),
    r.ratio === undefined ? '—' : `${r.ratio.toFixed(2)}×`,
    targetText(r.target),
    r.status,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (rightAligned.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function renderLegend(results: readonly CaseResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`  ${r.name}: ${r.what}`);
    if (r.floorLabel) lines.push(`    floor "${r.floorLabel}": ${r.floorWhat}`);
  }
  return lines.join('\n');
}

/**
 * BENCH_FILTER: benchmark names, comma-separated, each the name of its file in bench/ (exact, so
 * `deploy-compose` is one benchmark and `deploy` none). An unknown name is an error listing them.
 */
export function selectBenchmarks(benchmarks: readonly Benchmark[], filter: string | undefined): readonly Benchmark[] | string {
  if (!filter?.trim()) return benchmarks;
  const wanted = filter
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = wanted.filter((name) => !benchmarks.some((b) => b.name === name));
  if (unknown.length > 0)
    return `BENCH_FILTER: no benchmark named ${unknown.join(', ')}; the names (bench/<name>.ts) are: ${benchmarks.map((b) => b.name).join(', ')}`;
  return benchmarks.filter((b) => wanted.includes(b.name));
}

/** Runs the benchmarks one after another (they would disturb each other's timings), prints the table, writes JSON. */
export async function runBenchmarks(benchmarks: readonly Benchmark[], context: BenchContext, options: HarnessOptions): Promise<number> {
  const selected = selectBenchmarks(benchmarks, options.filter);
  if (typeof selected === 'string') {
    console.error(selected);
    return 1;
  }
  console.error(
    `Running ${selected.length} benchmark(s), ${options.warmup} warm-up + ${options.runs} measured run(s) each (BENCH_RUNS, BENCH_WARMUP, BENCH_FILTER)`,
  );

  const results: CaseResult[] = [];
  for (const benchmark of selected) results.push(...(await runBenchmark(benchmark, context, options)));

  console.log('');
  console.log(renderTable(results));
  console.log('');
  console.log(renderLegend(results));

  await mkdir(dirname(options.resultsPath), { recursive: true });
  const report = {
    finishedAt: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    runs: options.runs,
    warmup: options.warmup,
    filter: options.filter ?? null,
    results,
  };
  await writeFile(options.resultsPath, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`\nresults: ${options.resultsPath}`);

  // A MISS is a finding to report, not a failure; only a benchmark that could not run fails the command.
  return results.some((r) => r.status === 'ERROR') ? 1 : 0;
}
