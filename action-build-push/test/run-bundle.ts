import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Runs action-build-push's committed bundle the way the runner does: Node 24, INPUT_* variables, file commands. */
export const ROOT = resolve(import.meta.dirname, '../..');
export const NODE24 = join(ROOT, 'node_modules/.bin/node');
export const BUNDLE = join(ROOT, 'action-build-push/dist/index.js');

export interface BundleRun {
  code: number | null;
  stdout: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  errors: string[];
  ms: number;
}

/** Parses the runner's `name<<delimiter` file-command format. */
function parseFileCommands(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!match) continue;
    const end = lines.indexOf(match[2]!, i + 1);
    if (end < 0) throw new Error(`unterminated value for ${match[1]} in file command output`);
    result[match[1]!] = lines.slice(i + 1, end).join('\n');
    i = end;
  }
  return result;
}

export interface RunOptions {
  cwd: string;
  /** The event: name, ref, sha and the webhook payload written to GITHUB_EVENT_PATH. */
  event: { name: string; ref: string; sha: string; payload: unknown };
  env?: Record<string, string>;
  /** State from the main phase, to run the post phase (STATE_*). */
  state?: Record<string, string>;
  /** Wraps the node argv, e.g. to hide docker CLI plugins. */
  wrap?: (argv: string[]) => string[];
}

export async function runBuildPush(inputs: Record<string, string>, options: RunOptions): Promise<BundleRun> {
  const dir = await mkdtemp(join(tmpdir(), 'skiffbp-run-'));
  try {
    const files = { GITHUB_OUTPUT: join(dir, 'output'), GITHUB_STEP_SUMMARY: join(dir, 'summary'), GITHUB_STATE: join(dir, 'state'), GITHUB_EVENT_PATH: join(dir, 'event.json') };
    await Promise.all([files.GITHUB_OUTPUT, files.GITHUB_STEP_SUMMARY, files.GITHUB_STATE].map((path) => writeFile(path, '')));
    await writeFile(files.GITHUB_EVENT_PATH, JSON.stringify(options.event.payload));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      ...files,
      GITHUB_ACTIONS: 'true',
      GITHUB_EVENT_NAME: options.event.name,
      GITHUB_REF: options.event.ref,
      GITHUB_SHA: options.event.sha,
      GITHUB_REPOSITORY: 'Acme-Corp/Shop-App',
      GITHUB_ACTOR: 'Jane-Dev',
      GITHUB_SERVER_URL: 'https://github.com',
      ...options.env,
    };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
    for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;

    const argv = (options.wrap ?? ((a) => a))([NODE24, BUNDLE]);
    const start = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 170_000);
    const code = await new Promise<number | null>((done, fail) => {
      child.on('error', fail);
      child.on('close', done);
    }).finally(() => clearTimeout(timer));
    const ms = performance.now() - start;
    return {
      code,
      stdout,
      ms,
      outputs: parseFileCommands(await readFile(files.GITHUB_OUTPUT, 'utf8')),
      state: parseFileCommands(await readFile(files.GITHUB_STATE, 'utf8')),
      summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8'),
      errors: stdout
        .split('\n')
        .filter((line) => line.startsWith('::error::'))
        .map((line) => line.slice('::error::'.length).replaceAll('%0A', '\n').replaceAll('%0D', '\r').replaceAll('%25', '%')),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function eventPayload(name: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(join(ROOT, 'action-build-push/test/fixtures/events', `${name}.json`), 'utf8')) as Record<string, any>;
}

export const CONTEXTS = join(ROOT, 'action-build-push/test/fixtures/contexts');
