import { spawn, type SpawnOptions } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SshdServer } from '@skiff/testbed';
import { median } from './harness';

/**
 * What SshConnection.run([['true']]) sends: run() wraps every script as `bash -c 'set -euo pipefail; …' </dev/null`.
 * Floors send the same line so both sides pay for the same remote bash.
 */
export const STRICT_TRUE = `bash -c 'set -euo pipefail; true' </dev/null`;

export interface Finished {
  ms: number;
  code: number | null;
  output: string;
  /** Each whole line of stdout and stderr, with when it arrived (ms from the start). */
  lines: { atMs: number; text: string }[];
}

/** Spawns a program and times it from just before spawn() (which forks synchronously) to its exit and closed pipes. */
export function timedRun(file: string, args: readonly string[], options: SpawnOptions = {}): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    // A caller passes stdio 'ignore' for programs that daemonise: a forked child holding our pipes would delay 'close' forever.
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let output = '';
    const arrivals: number[] = [];
    const collect = (chunk: Buffer) => {
      const at = performance.now() - start;
      const text = chunk.toString();
      output += text;
      for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', newline + 1)) arrivals.push(at);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        ms: performance.now() - start,
        code,
        output,
        lines: output
          .split('\n')
          .slice(0, arrivals.length)
          .map((text, index) => ({ atMs: arrivals[index]!, text })),
      }),
    );
  });
}

/** Like timedRun, but a non-zero exit is an error: a floor that fails would look impossibly fast. */
export async function timedOk(file: string, args: readonly string[], options: SpawnOptions = {}): Promise<number> {
  const run = await timedRun(file, args, options);
  if (run.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${run.code}: ${run.output.trim()}`);
  return run.ms;
}

/** Runs `once` `times` times in a row and returns the median, so one run's figure is not one noisy sample. */
export async function medianOf(times: number, once: () => Promise<number>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) samples.push(await once());
  return median(samples);
}

/**
 * OpenSSH client arguments up to and including the destination. -F /dev/null keeps the user's
 * ~/.ssh/config (multiplexing, proxies, other keys) out of the floor's numbers.
 */
export async function sshArgs(server: SshdServer, extra: readonly string[] = []): Promise<string[]> {
  const knownHosts = join(server.dir, 'bench_known_hosts');
  await writeFile(knownHosts, `${server.knownHostsLine}\n`);
  return [
    '-F',
    '/dev/null',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'LogLevel=ERROR',
    '-i',
    server.privateKeyPath,
    '-p',
    String(server.port),
    ...extra,
    `${server.username}@${server.host}`,
  ];
}

/** Busy and total jiffies of all CPUs together, from the first line of /proc/stat. */
async function cpuTimes(): Promise<{ busy: number; total: number }> {
  const fields = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  // idle + iowait: waiting, not working.
  return { busy: total - fields[3]! - (fields[4] ?? 0), total };
}

/**
 * Waits until the machine is quiet: one window of `windowMs` in which the CPUs were busy at most
 * `maxBusy` of the time, or `limitMs` at most. Work the previous run left behind (an engine still
 * tearing down containers, a request loop's last sockets) would otherwise be billed to whichever
 * tool runs next. Returns how long it waited, and how busy the last window was.
 */
export async function waitForQuietCpu(options: { maxBusy?: number; windowMs?: number; limitMs?: number } = {}): Promise<{ waitedMs: number; busy: number }> {
  const { maxBusy = 0.15, windowMs = 300, limitMs = 10_000 } = options;
  const start = performance.now();
  let busy = 1;
  for (let window = 0; window < Math.ceil(limitMs / windowMs); window++) {
    const before = await cpuTimes();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = await cpuTimes();
    busy = after.total > before.total ? (after.busy - before.busy) / (after.total - before.total) : 0;
    if (busy <= maxBusy) break;
  }
  return { waitedMs: performance.now() - start, busy };
}
