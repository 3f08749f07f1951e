import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
export { buildApp, composeFile, removeProject, type AppKind } from './fixtures';

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

