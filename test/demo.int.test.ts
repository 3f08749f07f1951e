import { spawn } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sh, tempDir } from '@skiff/testbed';
import { STEP_TITLES } from '../demo/story';

/**
 * `npm run demo` end to end, as a user runs it: `bash scripts/demo.sh` (its own set-up, the story
 * against the real sandbox, cleanup). The demo checks each step's outcome itself; this test checks
 * that every step went as expected, that the terminal shows the summaries readably and the final
 * table, that it stays under the issue's five minutes, and that nothing of the sandbox is left —
 * after a full run and after a Ctrl-C in the middle of a deploy.
 */

const root = resolve(import.meta.dirname, '..');
const FIVE_MINUTES_S = 300;

interface DemoResult {
  ok: boolean;
  steps: { title: string; status: string; result: string; seconds: number }[];
  setupSeconds: number;
  totalSeconds: number;
  cleanupFailures: string[];
  ports: number[];
}

interface Finished {
  code: number | null;
  output: string;
  seconds: number;
}

let work: { path: string; remove: () => Promise<void> };

/**
 * Runs the demo in its own process group, as a terminal would. With `interruptWhen`, polled every
 * 300 ms, Ctrl-C's SIGINT goes to the whole group once it returns true.
 */
function runDemo(resultFile: string, interruptWhen?: () => Promise<boolean>): Promise<Finished> {
  return new Promise((done, fail) => {
    const started = performance.now();
    const child = spawn('bash', ['scripts/demo.sh'], {
      cwd: root,
      detached: true,
      env: { ...process.env, NO_COLOR: '1', SKIFF_DEMO_RESULT: resultFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let exited = false;
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 480_000);
    if (interruptWhen) {
      void (async () => {
        while (!exited && !(await interruptWhen().catch(() => false))) await new Promise((r) => setTimeout(r, 300));
        if (!exited) process.kill(-child.pid!, 'SIGINT');
      })();
    }
    child.on('error', fail);
    child.on('close', (code) => {
      exited = true;
      clearTimeout(timer);
      done({ code, output, seconds: (performance.now() - started) / 1000 });
    });
  });
}

/** Whether anything still accepts connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: '127.0.0.1', port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      done(true);
    });
    socket.once('error', () => done(false));
    socket.once('timeout', () => {
      socket.destroy();
      done(false);
    });
  });
}

/** Every kind of thing the demo creates, as found on this machine now; all empty when it cleaned up. */
async function leftovers(ports: readonly number[]): Promise<Record<string, string[]>> {
  const docker = async (args: string[]) => (await sh('docker', args)).split('\n').filter(Boolean);
  const project = 'label=com.docker.compose.project=skiffdemo';
  const open: string[] = [];
  for (const port of ports) if (await listening(port)) open.push(String(port));
  return {
    containers: await docker(['ps', '-aq', '--filter', project]),
    volumes: await docker(['volume', 'ls', '-q', '--filter', project]),
    networks: await docker(['network', 'ls', '-q', '--filter', project]),
    images: await docker(['images', '-aq', '--filter', 'label=org.skiff.demo=true']),
    namespaces: (await sh('ip', ['netns', 'list'])).split('\n').filter((line) => line.startsWith('skiffdemo')),
    tempFiles: (await readdir(tmpdir())).filter((name) => name.startsWith('skiff-skiffdemo') || name === 'skiffdemo.lock'),
    guardFiles: await stat('/var/lib/skiff-cf/skiffdemo_cf').then(
      () => ['/var/lib/skiff-cf/skiffdemo_cf'],
      () => [],
    ),
    listeningPorts: open,
    // s3rver's data directory, the guard's table and the namespace all carry the demo's prefix.
    processes: (await sh('pgrep', ['-af', 'skiffdemo']).catch(() => '')).split('\n').filter(Boolean),
  };
}

const NOTHING_LEFT = {
  containers: [],
  volumes: [],
  networks: [],
  images: [],
  namespaces: [],
  tempFiles: [],
  guardFiles: [],
  listeningPorts: [],
  processes: [],
};

beforeAll(async () => {
  work = await tempDir('demo-test');
});

afterAll(async () => {
  await work?.remove();
});

describe('npm run demo', () => {
  it('tells the whole story with every step as expected, shows summaries and the final table, in under five minutes, and leaves nothing behind', async () => {
    const resultFile = join(work.path, 'result.json');
    const run = await runDemo(resultFile);
    const result = JSON.parse(await readFile(resultFile, 'utf8')) as DemoResult;
    console.log(
      `demo: ${run.seconds.toFixed(1)} s wall (set-up ${result.setupSeconds.toFixed(1)} s, story ${result.totalSeconds.toFixed(1)} s); steps: ${result.steps.map((s) => `${s.title} ${s.seconds.toFixed(1)} s`).join(', ')}`,
    );
    expect(run.code, run.output.slice(-6000)).toBe(0);
    expect(result.steps.map((step) => step.title)).toEqual([...STEP_TITLES]);
    for (const step of result.steps) expect(step.status, `${step.title}: ${step.result}`).toBe('passed');
    expect(result.cleanupFailures).toEqual([]);
    expect(run.seconds).toBeLessThan(FIVE_MINUTES_S);

    // Each action run is shown with its summary rendered for a terminal (no raw Markdown tables or HTML) and its outputs.
    expect(run.output.match(/Step summary \(GITHUB_STEP_SUMMARY\)/g)).toHaveLength(7);
    expect(run.output.match(/Outputs \(GITHUB_OUTPUT\)/g)).toHaveLength(7);
    expect(run.output.match(/Post step \(STATE_\* from main\) exit 0/g)).toHaveLength(3);
    expect(run.output).not.toMatch(/^\s*\|\s*-{3,}/m);
    expect(run.output).not.toMatch(/<\/?(details|summary)>/);
    expect(run.output).toMatch(/^\s+status\s+rolled-back$/m);
    expect(run.output).toMatch(/Restore drill: passed/);
    expect(run.output).toMatch(/postgres-shop │ postgres-shop-\d{8}T\d{6}Z │ passed │ [\d.]+s +│ public\.orders\|2000/);
    // The final table, one row per step.
    const table = run.output.slice(run.output.indexOf('━━ What happened'));
    for (const [index, title] of STEP_TITLES.entries())
      expect(table).toMatch(new RegExp(`^\\s*${index + 1} │ ${title.replace(/[()&]/g, '\\$&')}\\s+│ ✔ `, 'm'));
    expect(table).toContain(`All ${STEP_TITLES.length} steps went as expected.`);

    expect(await leftovers(result.ports)).toEqual(NOTHING_LEFT);
  }, 600_000);

  it('Ctrl-C during a deploy stops the story and still removes the whole sandbox', async () => {
    const resultFile = join(work.path, 'interrupted.json');
    // Interrupted while the first deploy is bringing the Compose stack up on the VPS.
    const stackUp = async () => (await sh('docker', ['ps', '-q', '--filter', 'label=com.docker.compose.project=skiffdemo'])).trim() !== '';
    const run = await runDemo(resultFile, stackUp);
    expect(run.code, run.output.slice(-4000)).toBe(130);
    expect(run.output).toContain('Interrupted (SIGINT).');
    expect(run.output).toContain('Nothing of the sandbox is left.');
    expect(run.output).toContain('━━ 2/8  Deploy v1');
    expect(run.output).not.toContain('━━ 3/8');
    // The ports were printed in the sandbox lines; nothing may listen on them any more.
    const ports = [...run.output.matchAll(/127\.0\.0\.1:(\d+)/g)].map((match) => Number(match[1]));
    expect(ports.length).toBeGreaterThan(2);
    expect(await leftovers([...new Set(ports)])).toEqual(NOTHING_LEFT);
  }, 600_000);
});
