import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sh } from '@skiff/testbed';

const root = resolve(import.meta.dirname, '../..');
export const NODE24 = join(root, 'node_modules/.bin/node');
export const BUNDLE = join(root, 'action-deploy/dist/index.js');

export interface ActionRun {
  code: number | null;
  stdout: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  errors: string[];
  /** The log as a runner would show it: every `::add-mask::` value replaced by ***. */
  masked: string;
}

function parseFileCommands(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!match) continue;
    const end = lines.indexOf(match[2]!, i + 1);
    result[match[1]!] = lines.slice(i + 1, end).join('\n');
    i = end;
  }
  return result;
}

const unescapeCommand = (text: string) => text.replaceAll('%0A', '\n').replaceAll('%0D', '\r').replaceAll('%25', '%');

/** Applies the runner's masking to a log: what a user would actually see. */
export function applyMasks(stdout: string): string {
  const masks = stdout
    .split('\n')
    .filter((line) => line.startsWith('::add-mask::'))
    .map((line) => unescapeCommand(line.slice('::add-mask::'.length)))
    .filter((mask) => mask !== '')
    .sort((a, b) => b.length - a.length);
  let shown = stdout
    .split('\n')
    .filter((line) => !line.startsWith('::add-mask::'))
    .join('\n');
  for (const mask of masks) shown = shown.replaceAll(mask, '***');
  return shown;
}

export interface StartedRun {
  child: ChildProcess;
  done: Promise<ActionRun>;
}

/** Runs the committed bundle like the runner: Node 24, INPUT_* variables, file commands, main then (optionally) post. */
export function startAction(inputs: Record<string, string>, options: { workspace: string; env?: Record<string, string>; phase?: 'main' | 'post'; state?: Record<string, string> }): StartedRun {
  const dirPromise = mkdtemp(join(tmpdir(), 'skiff-deploy-run-'));
  let child!: ChildProcess;
  const ready = dirPromise.then(async (dir) => {
    const files = { GITHUB_OUTPUT: join(dir, 'output'), GITHUB_STEP_SUMMARY: join(dir, 'summary'), GITHUB_STATE: join(dir, 'state') };
    await Promise.all(Object.values(files).map((path) => writeFile(path, '')));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      GITHUB_WORKSPACE: options.workspace,
      GITHUB_REPOSITORY: 'acme/skiffdeploy-app',
      GITHUB_RUN_ID: '42',
      GITHUB_SERVER_URL: 'https://github.example',
      GITHUB_ACTOR: 'octo-tester',
      GITHUB_SHA: '1a2b3c4d5e6f',
      ...files,
      ...options.env,
    };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
    for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;
    if (options.phase === 'post') env.STATE_isPost = 'true';
    child = spawn(NODE24, [BUNDLE], { cwd: options.workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
    return { dir, files };
  });
  const done = ready.then(async ({ dir, files }) => {
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    const code = await new Promise<number | null>((done, fail) => {
      child.on('error', fail);
      child.on('close', done);
    }).finally(() => clearTimeout(timer));
    try {
      return {
        code,
        stdout,
        outputs: parseFileCommands(await readFile(files.GITHUB_OUTPUT, 'utf8')),
        state: parseFileCommands(await readFile(files.GITHUB_STATE, 'utf8')),
        summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8'),
        errors: stdout
          .split('\n')
          .filter((line) => line.startsWith('::error::'))
          .map((line) => unescapeCommand(line.slice('::error::'.length))),
        masked: applyMasks(stdout),
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  return {
    get child() {
      return child;
    },
    done,
  } as StartedRun;
}

export function runAction(inputs: Record<string, string>, options: Parameters<typeof startAction>[1]): Promise<ActionRun> {
  return startAction(inputs, options).done;
}

export type AppKind = 'ok' | 'crash' | 'http500';

/**
 * A tiny app image FROM the test bed's busybox: httpd on :8080 serving `version=<label>` with a
 * HEALTHCHECK by wget (and a shell that stops on TERM, as real apps do, so `docker stop` is quick);
 * `crash` exits at once; `http500` is healthy by HEALTHCHECK but its
 * /health answers 500 (busybox httpd runs /cgi-bin scripts).
 */
export async function buildApp(tag: string, kind: AppKind, label: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiffdeploy-image-'));
  try {
    await mkdir(join(dir, 'www/cgi-bin'), { recursive: true });
    await writeFile(join(dir, 'www/index.html'), `version=${label}\n`);
    const status = kind === 'http500' ? '500 Internal Server Error' : '200 OK';
    await writeFile(join(dir, 'www/cgi-bin/health'), `#!/bin/sh\nprintf 'Status: ${status}\\r\\nContent-Type: text/plain\\r\\n\\r\\nversion=${label}\\n'\n`, { mode: 0o755 });
    const cmd = kind === 'crash' ? `CMD ["sh", "-c", "echo crashing version=${label}; exit 1"]` : `CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]`;
    await writeFile(
      join(dir, 'Dockerfile'),
      [
        'FROM skiff-testbed/busybox:1',
        'COPY www /www',
        'RUN chmod 755 /www/cgi-bin/health',
        `LABEL skiffdeploy.version=${label}`,
        'HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1',
        cmd,
        '',
      ].join('\n'),
    );
    await sh('docker', ['build', '-q', '-t', tag, dir], { timeoutMs: 120_000 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The compose file the tests deploy: one web service, port and secret from the env file. */
export function composeFile(registry: string): string {
  return [
    'services:',
    '  web:',
    `    image: ${registry}/skiffdeploy-app:v1`,
    '    ports:',
    '      - "127.0.0.1:${WEB_PORT}:8080"',
    '    environment:',
    '      SECRET_TOKEN: ${SECRET_TOKEN}',
    '',
  ].join('\n');
}

export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return { status: response.status, body: await response.text() };
  } catch (error) {
    return { status: 0, body: (error as Error).message };
  }
}

export async function auditLines(projectDir: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(projectDir, 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Removes every container and network of a compose project by its label (no compose file needed). */
export async function removeProject(project: string): Promise<void> {
  const ids = (await sh('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).split('\n').filter(Boolean);
  if (ids.length > 0) await sh('docker', ['rm', '-f', ...ids]);
  const networks = (await sh('docker', ['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`])).split('\n').filter(Boolean);
  if (networks.length > 0) await sh('docker', ['network', 'rm', ...networks]).catch(() => '');
}
