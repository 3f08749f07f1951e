import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBaseImages, freePort, runnerEnv, sh, startRegistry, tempDir, type Registry, type SshdServer, startSshd } from '@skiff/testbed';
import { quote } from '@skiff/shell';
import { buildApp, removeProject } from '../action-deploy/test/fixtures';
import type { Benchmark, BenchContext } from './harness';
import { sshArgs, timedRun } from './lib';

const HEALTH_INTERVAL_S = 1;
const SUCCESSES = 2;

interface Project {
  name: string;
  dir: string;
  port: number;
}

function composeFor(registry: Registry): string {
  return [
    'services:',
    '  web:',
    `    image: \${APP_IMAGE:-${registry.address}/skiffdeploybench-app:a}`,
    '    ports:',
    '      - "127.0.0.1:${WEB_PORT}:8080"',
    '',
  ].join('\n');
}

/** Runs the action bundle on Node 24 as the runner would; resolves with the exit code and, per log line, when it arrived. */
export function runBundle(
  context: BenchContext,
  workspace: string,
  inputs: Record<string, string>,
): Promise<{ code: number | null; ms: number; end: number; lines: { at: number; text: string }[] }> {
  return new Promise((resolve, reject) => {
    void mkdtemp(join(tmpdir(), 'skiffdeploybench-run-')).then(async (dir) => {
      const { env } = await runnerEnv(dir, { inputs, workspace, env: { GITHUB_SHA: 'bench000' } });
      const start = performance.now();
      const child = spawn(context.node24, [join(context.root, 'action-deploy/dist/index.js')], { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const lines: { at: number; text: string }[] = [];
      let partial = '';
      child.stdout.on('data', (chunk: Buffer) => {
        const parts = (partial + chunk.toString()).split('\n');
        partial = parts.pop() ?? '';
        for (const text of parts) lines.push({ at: performance.now(), text });
      });
      child.stderr.resume();
      child.on('error', reject);
      child.on('close', (code) => {
        const end = performance.now();
        void rm(dir, { recursive: true, force: true }).then(() => resolve({ code, ms: end - start, end, lines }));
      });
    }, reject);
  });
}

/** The deploy script people write by hand: pull, up, then poll the container's health and the URL until two in a row pass. */
function handScript(project: Project, image: string): string {
  // BENCH_TIMELINE: an echo (a bash builtin, no program start) after each phase, for the floor's timeline.
  const mark = (words: string) => (process.env.BENCH_TIMELINE ? [`echo ${words}`] : []);
  return [
    'set -euo pipefail',
    ...mark('connected'),
    `cd ${project.dir}`,
    `export APP_IMAGE=${image} WEB_PORT=${project.port}`,
    `docker compose -p ${project.name} pull -q`,
    ...mark('pulled'),
    `docker compose -p ${project.name} up -d --remove-orphans`,
    ...mark('up returned'),
    'ok=0',
    'for i in $(seq 1 120); do',
    `  if [ "$(docker inspect -f '{{.State.Health.Status}}' ${project.name}-web-1)" = healthy ] && wget -q -O /dev/null http://127.0.0.1:${project.port}/; then ok=$((ok+1)); else ok=0; fi`,
    ...mark('"  round: ok=$ok"'),
    `  [ "$ok" -ge ${SUCCESSES} ] && exit 0`,
    `  sleep ${HEALTH_INTERVAL_S}`,
    'done',
    'exit 1',
  ].join('\n');
}

/** BENCH_TIMELINE: the run's log, each line with when it came (seconds from the bundle's start). */
export function printTimeline(run: { ms: number; end: number; lines: { at: number; text: string }[] }): void {
  if (!process.env.BENCH_TIMELINE) return;
  const start = run.end - run.ms;
  for (const line of run.lines) if (!line.text.startsWith('::')) console.error(`    +${((line.at - start) / 1000).toFixed(2)}s ${line.text.slice(0, 160)}`);
  console.error(`    +${(run.ms / 1000).toFixed(2)}s (the process ended)`);
}

export const deployBench: Benchmark = {
  name: 'deploy-compose',
  description: 'a healthy compose deploy through the action vs a hand-written ssh pull/up/health script; crash → rollback time',
  async setup(context) {
    let server: SshdServer | undefined;
    let registry: Registry | undefined;
    const dirs: { remove(): Promise<void> }[] = [];
    const projects: Project[] = [];
    const images: string[] = [];
    const teardown = async () => {
      for (const project of projects) await removeProject(project.name).catch(() => undefined);
      if (registry) await sh('docker', ['logout', registry.address]).catch(() => '');
      for (const image of images) await sh('docker', ['image', 'rm', '-f', image]).catch(() => '');
      await Promise.all([server?.stop(), registry?.stop(), ...dirs.map((dir) => dir.remove())]);
    };
    try {
      await ensureBaseImages();
      server = await startSshd();
      registry = await startRegistry();
      const reg = registry;
      const remote = await tempDir('skiffdeploybench-remote');
      const workspace = await tempDir('skiffdeploybench-ws');
      dirs.push(remote, workspace);
      await sh('docker', ['login', '-u', reg.username, '--password-stdin', reg.address], { input: reg.password });
      const image = (tag: string) => `${reg.address}/skiffdeploybench-app:${tag}`;
      for (const [tag, kind] of [
        ['a', 'ok'],
        ['b', 'ok'],
        ['crash', 'crash'],
      ] as const) {
        await buildApp(image(tag), kind, tag);
        await sh('docker', ['push', '-q', image(tag)], { timeoutMs: 120_000 });
        images.push(image(tag));
      }
      await writeFile(join(workspace.path, 'compose.yaml'), composeFor(reg));
      const project = async (name: string): Promise<Project> => {
        const p = { name: `skiffdeploybench${name}${process.pid}`, dir: join(remote.path, name), port: await freePort() };
        projects.push(p);
        await sh('mkdir', ['-p', p.dir]);
        return p;
      };
      const ours = await project('ours');
      const floor = await project('floor');
      const rollback = await project('rollback');
      const unchanged = await project('unchanged');
      await writeFile(join(floor.dir, 'compose.yaml'), composeFor(reg));
      const ssh = await sshArgs(server);
      const inputs = (p: Project, tag: string) => ({
        host: server!.host,
        port: String(server!.port),
        username: server!.username,
        key: server!.privateKey,
        fingerprint: server!.hostFingerprint,
        'project-dir': p.dir,
        'project-name': p.name,
        'env-file': `WEB_PORT=${p.port}\n`,
        images: `web=${image(tag)}`,
        'health-url': `http://127.0.0.1:${p.port}/`,
        'health-interval': `${HEALTH_INTERVAL_S}s`,
        'health-successes': String(SUCCESSES),
        'health-timeout': '60s',
      });
      // Each run deploys the other image, so every run really replaces the container, on both sides.
      let oursTag = 'a';
      let floorTag = 'a';
      const flip = (tag: string) => (tag === 'a' ? 'b' : 'a');
      const first = await runBundle(context, workspace.path, inputs(rollback, 'a'));
      if (first.code !== 0) throw new Error(`the rollback project's first deploy failed:\n${first.lines.map((l) => l.text).join('\n')}`);
      const unchangedFirst = await runBundle(context, workspace.path, inputs(unchanged, 'a'));
      if (unchangedFirst.code !== 0) throw new Error(`the unchanged project's first deploy failed:\n${unchangedFirst.lines.map((l) => l.text).join('\n')}`);

      return {
        teardown,
        cases: [
          {
            name: 'deploy (healthy)',
            what: `action bundle (Node 24): connect, lock, upload, pull, digests, up, gate (containers + URL, ${SUCCESSES}× every ${HEALTH_INTERVAL_S}s), audit, prune`,
            ours: async () => {
              oursTag = flip(oursTag);
              const run = await runBundle(context, workspace.path, inputs(ours, oursTag));
              if (run.code !== 0) throw new Error(`deploy failed:\n${run.lines.map((l) => l.text).join('\n')}`);
              printTimeline(run);
              return run.ms;
            },
            floor: {
              label: 'ssh script',
              what: `ssh host 'docker compose pull && up -d --remove-orphans && poll health + wget ${SUCCESSES}× every ${HEALTH_INTERVAL_S}s'`,
              measure: async () => {
                floorTag = flip(floorTag);
                const run = await timedRun('ssh', [...ssh, `bash -c ${quote(handScript(floor, image(floorTag)))}`]);
                if (run.code !== 0) throw new Error(`the ssh script exited ${run.code}: ${run.output.trim()}`);
                if (process.env.BENCH_TIMELINE) for (const line of run.lines) console.error(`    floor +${(line.atMs / 1000).toFixed(2)}s ${line.text}`);
                return run.ms;
              },
            },
            target: { maxRatio: 1.2 },
          },
          {
            name: 'deploy unchanged release',
            what: `bundle start → exit of a deploy of the image that already runs (nothing to pull, nothing recreated): connect, lock, upload, pull check, digests, up, gate (${SUCCESSES}× every ${HEALTH_INTERVAL_S}s), audit, prune`,
            ours: async () => {
              const run = await runBundle(context, workspace.path, inputs(unchanged, 'a'));
              if (run.code !== 0) throw new Error(`deploy failed:\n${run.lines.map((l) => l.text).join('\n')}`);
              printTimeline(run);
              return run.ms;
            },
            target: { maxMs: 3000 },
          },
          {
            name: 'live output of 20,000 lines',
            what: `the unchanged deploy above with a pre-deploy that prints 20,000 lines (~110 kB), each shown live in its log group as it arrives`,
            ours: async () => {
              const run = await runBundle(context, workspace.path, { ...inputs(unchanged, 'a'), 'pre-deploy': 'seq 1 20000' });
              if (run.code !== 0 || !run.lines.some((line) => line.text === '20000'))
                throw new Error(
                  `deploy failed or its output was not shown:\n${run.lines
                    .slice(-40)
                    .map((l) => l.text)
                    .join('\n')}`,
                );
              return run.ms;
            },
            floor: {
              label: 'silent pre-deploy',
              what: 'the same deploy with a pre-deploy that prints nothing (`true`)',
              measure: async () => {
                const run = await runBundle(context, workspace.path, { ...inputs(unchanged, 'a'), 'pre-deploy': 'true' });
                if (run.code !== 0) throw new Error(`deploy failed:\n${run.lines.map((l) => l.text).join('\n')}`);
                return run.ms;
              },
            },
            target: { maxRatio: 1.1 },
          },
          {
            name: 'deploy crash → rollback',
            what: `from the crashing container's start (end of \`up\`) to the rollback release healthy and the step finished; health-interval ${HEALTH_INTERVAL_S}s`,
            ours: async () => {
              const run = await runBundle(context, workspace.path, inputs(rollback, 'crash'));
              const switched = run.lines.find((line) => /^start release \S+ \(/.test(line.text));
              if (run.code !== 1 || !run.lines.some((line) => line.text.includes('Rolled back to')) || !switched) {
                throw new Error(`expected a rollback:\n${run.lines.map((l) => l.text).join('\n')}`);
              }
              // The step's timing line is written when `up` returns, i.e. once the crashing container has started.
              return run.end - switched.at;
            },
            target: { maxMs: 10_000 + HEALTH_INTERVAL_S * 1000 },
          },
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
