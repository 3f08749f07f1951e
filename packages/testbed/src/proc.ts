import { execFile, spawn, type SpawnOptions } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Runs a local program and returns its stdout; throws with stderr on a non-zero exit. */
export async function sh(file: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  if (options.input !== undefined) {
    return new Promise((resolve, reject) => {
      const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${file} ${args.join(' ')} exited ${code}: ${err}`))));
      child.stdin.end(options.input);
    });
  }
  const { stdout } = await execFileAsync(file, [...args], { timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** Polls `check` until it returns true; a bounded wait that fails with `what` in the message. */
export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000, intervalMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`test bed: timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export async function tempDir(prefix: string): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `skiff-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a process by pid: TERM, then KILL if it lingers. */
export async function stopPid(pid: number, graceMs = 3000): Promise<void> {
  const alive = () => processAlive(pid);
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive()) process.kill(pid, 'SIGKILL');
}

/**
 * Starts a test-bed server in its own process group, detached from the test process, with its
 * output appended to `logPath` (or discarded). Returns its pid; the caller stops it with stopPid.
 */
export function spawnDaemon(what: string, file: string, args: readonly string[], options: SpawnOptions & { logPath?: string } = {}): number {
  const { logPath, ...spawnOptions } = options;
  const log = logPath ? openSync(logPath, 'a') : undefined;
  try {
    const child = spawn(file, [...args], { ...spawnOptions, detached: true, stdio: log === undefined ? 'ignore' : ['ignore', log, log] });
    child.on('error', () => undefined);
    child.unref();
    if (child.pid === undefined) throw new Error(`test bed: ${what} did not start`);
    return child.pid;
  } finally {
    if (log !== undefined) closeSync(log);
  }
}

/** The children of a process, from /proc (every thread's list). */
export async function childrenOf(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const children: number[] = [];
  for (const task of tasks)
    children.push(...(await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '')).split(/\s+/).filter(Boolean).map(Number));
  return children;
}
