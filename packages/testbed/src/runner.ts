import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * Runs a built action bundle the way the GitHub runner does: Node 24 on <action>/dist/index.js,
 * inputs as INPUT_* variables, state as STATE_*, and the file commands (outputs, summary, state)
 * as fresh files. One implementation for every action's bundle tests and benchmarks.
 */

const ROOT = resolve(import.meta.dirname, '../../..');
/** The runner's runtime: the Node 24 the repository installs as node_modules/.bin/node. */
export const NODE24 = join(ROOT, 'node_modules/.bin/node');

/** The committed bundle of an action folder, e.g. bundlePath('action-deploy'). */
export function bundlePath(action: string): string {
  return join(ROOT, action, 'dist/index.js');
}

/** Parses the runner's file-command formats (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV): `name<<delimiter` blocks and `name=value` lines. */
export function parseFileCommands(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<=]+)<<(.+)$/.exec(lines[i]!);
    if (!match) {
      const single = /^([^=]+)=(.*)$/.exec(lines[i]!);
      if (single) result[single[1]!] = single[2]!;
      continue;
    }
    const end = lines.indexOf(match[2]!, i + 1);
    if (end < 0) throw new Error(`unterminated value for ${match[1]} in file command output`);
    result[match[1]!] = lines.slice(i + 1, end).join('\n');
    i = end;
  }
  return result;
}

/** Undoes workflow-command escaping (`%25`, `%0D`, `%0A`). */
function unescapeCommand(text: string): string {
  return text.replaceAll('%0A', '\n').replaceAll('%0D', '\r').replaceAll('%25', '%');
}

/** Applies the runner's masking to a log: every `::add-mask::` value becomes ***, the mask lines go. What a user would see. */
export function applyMasks(stdout: string): string {
  const masks = stdout
    .split('\n')
    .filter((line) => line.startsWith('::add-mask::'))
    .map((line) => unescapeCommand(line.slice('::add-mask::'.length)))
    .filter((mask) => mask !== '')
    // Longest first, so a secret is not half-replaced by a mask of its prefix.
    .sort((a, b) => b.length - a.length);
  let shown = stdout
    .split('\n')
    .filter((line) => !line.startsWith('::add-mask::'))
    .join('\n');
  for (const mask of masks) shown = shown.replaceAll(mask, '***');
  return shown;
}

/** The messages of the `::error::` workflow commands in a log, unescaped. */
export function commandErrors(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('::error::'))
    .map((line) => unescapeCommand(line.slice('::error::'.length)));
}

/** The event that triggered the workflow: name, ref, sha and the webhook payload (GITHUB_EVENT_PATH). */
export interface RunnerEvent {
  name: string;
  ref: string;
  sha: string;
  payload: unknown;
}

export interface RunnerEnvOptions {
  /** Input names as in action.yml (`dry-run`, `connect-timeout`); become INPUT_<NAME> as the runner spells it. */
  inputs?: Record<string, string>;
  /** State saved by the main phase (STATE_*). */
  state?: Record<string, string>;
  /** 'post' runs the post step (STATE_isPost=true). */
  phase?: 'main' | 'post';
  event?: RunnerEvent;
  /** GITHUB_WORKSPACE; the step's working directory. Defaults to dir. */
  workspace?: string;
  /** Applied last: overrides anything above, including the GITHUB_* defaults. */
  env?: Record<string, string>;
}

export interface RunnerFiles {
  GITHUB_OUTPUT: string;
  GITHUB_STEP_SUMMARY: string;
  GITHUB_STATE: string;
}

/** INPUT_<NAME> as the runner spells it: upper-cased, spaces to _, hyphens kept. */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/**
 * For unit tests of an action's input reader in this process: exactly these inputs, as the
 * runner would pass them (every other INPUT_* removed).
 */
export function setInputs(inputs: Record<string, string>): void {
  for (const key of Object.keys(process.env)) if (key.startsWith('INPUT_')) delete process.env[key];
  for (const [name, value] of Object.entries(inputs)) process.env[inputEnvName(name)] = value;
}

/**
 * A step's environment as the runner builds it, and nothing from this process but PATH: fresh
 * empty file-command files in dir, INPUT_* (upper-cased, spaces to _, hyphens kept), STATE_*,
 * the event, and GITHUB_* defaults. HOME is dir, so no user config leaks in.
 */
export async function runnerEnv(dir: string, options: RunnerEnvOptions = {}): Promise<{ env: Record<string, string>; files: RunnerFiles }> {
  const files: RunnerFiles = { GITHUB_OUTPUT: join(dir, 'output'), GITHUB_STEP_SUMMARY: join(dir, 'summary'), GITHUB_STATE: join(dir, 'state') };
  await Promise.all(Object.values(files).map((path) => writeFile(path, '')));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    ...files,
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: 'Acme-Corp/Shop-App',
    GITHUB_ACTOR: 'Jane-Dev',
    GITHUB_RUN_ID: '42',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_WORKSPACE: options.workspace ?? dir,
  };
  if (options.event) {
    const eventPath = join(dir, 'event.json');
    await writeFile(eventPath, JSON.stringify(options.event.payload));
    Object.assign(env, { GITHUB_EVENT_PATH: eventPath, GITHUB_EVENT_NAME: options.event.name, GITHUB_REF: options.event.ref, GITHUB_SHA: options.event.sha });
  }
  for (const [name, value] of Object.entries(options.inputs ?? {})) env[inputEnvName(name)] = value;
  for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;
  if (options.phase === 'post') env.STATE_isPost = 'true';
  Object.assign(env, options.env);
  return { env, files };
}

export interface BundleOptions extends Omit<RunnerEnvOptions, 'workspace'> {
  /** The step's working directory and GITHUB_WORKSPACE. Defaults to the run's temporary directory. */
  cwd?: string;
  /** Wraps the node argv, e.g. to hide docker CLI plugins or to measure with /usr/bin/time. */
  wrap?: (argv: string[]) => string[];
  /** Killed with SIGKILL after this long. Default 170 s, under the integration tests' 180 s. */
  timeoutMs?: number;
}

export interface BundleRun {
  /** The exit code; null when the process was killed. */
  code: number | null;
  /** stdout and stderr, interleaved as they arrived. */
  stdout: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  /** The `::error::` messages, unescaped. */
  errors: string[];
  /** The log as a runner shows it: every `::add-mask::` value replaced by ***. */
  masked: string;
  /** From spawn to exit and closed pipes. */
  ms: number;
}

export interface StartedBundle {
  /** The running process; throws if read before it was spawned (await `spawned` for that). */
  readonly child: ChildProcess;
  spawned: Promise<ChildProcess>;
  done: Promise<BundleRun>;
}

/** An action folder name (action-deploy) or a path to a bundle. */
function resolveBundle(actionOrBundle: string): string {
  return actionOrBundle.endsWith('.js') ? (isAbsolute(actionOrBundle) ? actionOrBundle : resolve(ROOT, actionOrBundle)) : bundlePath(actionOrBundle);
}

/** Starts a bundle; `done` settles when it has exited, with its file commands read and its temporary directory removed. */
export function startBundle(actionOrBundle: string, options: BundleOptions = {}): StartedBundle {
  let child: ChildProcess | undefined;
  const started = mkdtemp(join(tmpdir(), 'skiff-run-')).then(async (dir) => {
    try {
      const cwd = options.cwd ?? dir;
      const { env, files } = await runnerEnv(dir, { ...options, workspace: cwd });
      const argv = (options.wrap ?? ((a) => a))([NODE24, resolveBundle(actionOrBundle)]);
      const start = performance.now();
      child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
      return { dir, files, start, child };
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw error;
    }
  });
  const done = started.then(async ({ dir, files, start, child }) => {
    try {
      let stdout = '';
      child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 170_000);
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
        errors: commandErrors(stdout),
        masked: applyMasks(stdout),
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  const spawned = started.then((s) => s.child);
  // A failure to start also rejects `done`; this copy must not count as unhandled when only `done` is awaited.
  spawned.catch(() => undefined);
  return {
    get child() {
      if (!child) throw new Error('the bundle has not been spawned yet: await spawned first');
      return child;
    },
    spawned,
    done,
  };
}

/** Runs a bundle to its end, the runner's way. */
export function runBundle(actionOrBundle: string, options: BundleOptions = {}): Promise<BundleRun> {
  return startBundle(actionOrBundle, options).done;
}
