import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NODE24, runBundle, startSshd, tempDir, type BundleOptions, type SshdServer } from '@skiff/testbed';
import { CF_IPV4, CF_IPV6, cfBody, startFakeCloudflare, type FakeCloudflare } from '../action-cf-allowlist/test/fixtures';

/**
 * The runner contract of every committed bundle, on Node 24 (node_modules/.bin/node): inputs as
 * INPUT_* variables, errors as one `::error::` command, file commands, the post phase. This catches
 * what unit tests cannot (bundling mistakes, ESM/CJS interop, missing banner shims) for all four
 * actions alike; what each action does is proven by its own bundle tests (<action>/test/*.int.test.ts).
 *
 * Nothing here may reach the internet: every host and registry is 127.0.0.1, the Cloudflare list
 * comes from a loopback stand-in, and `docker` on PATH is a shim that only records that it was called.
 */

const root = resolve(import.meta.dirname, '..');
const ACTIONS = ['action-deploy', 'action-build-push', 'action-cf-allowlist', 'action-backup'] as const;
type Action = (typeof ACTIONS)[number];
// A syntactically valid fingerprint that matches no real key.
const WRONG_FINGERPRINT = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
// Starting Node 24 and loading a bundle takes a few hundred ms; this leaves room for a busy machine.
const STARTUP_LIMIT_MS = 5_000;

let workspace: { path: string; remove(): Promise<void> };
let shimDir: string;
let dockerCalls: string;
let api: FakeCloudflare;
// Stands in as jump host and registry: any connection an action attempts lands here and is counted.
let counter: Server;
let counterPort = 0;
let connections = 0;

/** Valid inputs every SSH action shares; only what a case overrides is wrong. */
const sshInputs = () => ({
  host: '127.0.0.1',
  username: 'deploy',
  password: 'bundle-test-password',
  fingerprint: WRONG_FINGERPRINT,
  'jump-host': `deploy@127.0.0.1:${counterPort}`,
});

/** Per action: inputs that are valid but for `bad`, whose names every one must be in the error, and an input whose absence must be named. */
const CASES: Record<Action, { valid: () => Record<string, string>; bad: Record<string, string>; missing: string; env?: Record<string, string> }> = {
  'action-deploy': {
    valid: () => ({ ...sshInputs(), 'project-dir': '/srv/skiff-bundle-smoke' }),
    bad: { port: 'ssh', 'connect-timeout': 'soon', 'dry-run': 'maybe', 'health-successes': 'many' },
    missing: 'host',
  },
  'action-build-push': {
    valid: () => ({ image: `127.0.0.1:${counterPort}/acme/app`, username: 'robot', password: 'bundle-test-password' }),
    bad: { push: 'maybe', platforms: 'linux/amd65', 'smoke-timeout': 'forever' },
    // Without GITHUB_REPOSITORY there is no repository to name the image after.
    missing: 'image',
    env: { GITHUB_REPOSITORY: '' },
  },
  'action-cf-allowlist': {
    valid: () => ({ ...sshInputs(), 'source-url': api.url }),
    bad: { port: 'ssh', 'connect-timeout': 'soon', 'dry-run': 'maybe', ports: 'http' },
    missing: 'username',
  },
  'action-backup': {
    valid: () => ({ ...sshInputs(), sources: '- type: postgres\n  name: app\n  database: app\n' }),
    bad: { port: 'ssh', 'connect-timeout': 'soon', 'dry-run': 'maybe', 'min-size': 'big' },
    missing: 'sources',
  },
};

/** What the post step says when main left nothing behind, for each action whose action.yml declares `post:`. */
const NOTHING_TO_CLEAN_UP: Partial<Record<Action, RegExp>> = {
  'action-deploy': /^action-deploy \d+\.\d+\.\d+: no deploy lock left to release$/m,
  'action-build-push': /^action-build-push \d+\.\d+\.\d+: no registry login to undo$/m,
};

/** The `runs:` of an action.yml, read when the tests are collected: which bundles have a post step decides which tests exist. */
const RUNS = Object.fromEntries(
  ACTIONS.map((action) => [
    action,
    (parseYaml(readFileSync(join(root, action, 'action.yml'), 'utf8')) as { runs: { using: string; main: string; post?: string } }).runs,
  ]),
) as Record<Action, { using: string; main: string; post?: string }>;
const POST_ACTIONS = ACTIONS.filter((action) => RUNS[action].post !== undefined);

/** Runs a bundle in the workspace with the recording docker shim first on PATH. */
function run(action: Action, inputs: Record<string, string>, options: BundleOptions = {}) {
  return runBundle(action, {
    inputs,
    cwd: workspace.path,
    timeoutMs: 60_000,
    ...options,
    env: { PATH: `${shimDir}:${process.env.PATH ?? '/usr/bin:/bin'}`, ...CASES[action].env, ...options.env },
  });
}

/** Nothing left the process: no docker command, no connection, no request for the Cloudflare list. */
async function expectNothingAttempted(): Promise<void> {
  expect(await readFile(dockerCalls, 'utf8')).toBe('');
  expect(connections).toBe(0);
  expect(api.requests).toBe(0);
}

beforeAll(async () => {
  const version = await new Promise<string>((done, fail) => {
    const child = spawn(NODE24, ['--version']);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', fail);
    child.on('close', () => done(out.trim()));
  });
  expect(version, 'node_modules/.bin/node must be Node 24, the runner runtime').toMatch(/^v24\./);

  workspace = await tempDir('skiff-bundles-ws');
  // What the actions look for in a repository, so only the inputs under test are wrong.
  await writeFile(join(workspace.path, 'compose.yaml'), 'services:\n  web:\n    image: 127.0.0.1:5999/acme/web:1\n');
  await writeFile(join(workspace.path, 'Dockerfile'), 'FROM scratch\n');
  shimDir = join(workspace.path, '.shim');
  dockerCalls = join(workspace.path, '.docker-calls');
  await mkdir(shimDir);
  await writeFile(dockerCalls, '');
  await writeFile(join(shimDir, 'docker'), `#!/bin/sh\necho "docker $*" >> '${dockerCalls}'\nexit 1\n`);
  await chmod(join(shimDir, 'docker'), 0o755);

  api = await startFakeCloudflare(cfBody({ ipv4: CF_IPV4, ipv6: CF_IPV6 }));
  counter = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((done) => counter.listen(0, '127.0.0.1', done));
  counterPort = (counter.address() as { port: number }).port;
});

afterAll(async () => {
  await api?.close();
  await new Promise<void>((done) => (counter ? counter.close(() => done()) : done()));
  await workspace?.remove();
});

describe.each(ACTIONS)('%s bundle on Node 24', (action) => {
  it(`starts within ${STARTUP_LIMIT_MS / 1000} s and fails on invalid inputs with one error naming each, before attempting anything`, async () => {
    const { bad } = CASES[action];
    const result = await run(action, { ...CASES[action].valid(), ...bad });
    expect(result.ms, `${action} took ${Math.round(result.ms)} ms to reach input validation`).toBeLessThan(STARTUP_LIMIT_MS);
    expect(result.code, result.stdout).toBe(1);
    expect(result.errors).toHaveLength(1);
    const [error] = result.errors;
    // Exactly the bad inputs: the valid ones around them are not reported.
    expect(error).toMatch(new RegExp(`^${Object.keys(bad).length} problems with the inputs:\n`));
    for (const [name, value] of Object.entries(bad)) {
      expect(error).toContain(`Input "${name}"`);
      expect(error).toContain(`"${value}"`);
    }
    expect(result.stdout).not.toMatch(/\n\s+at /);
    // The job page says why too: the same problems, in the summary.
    expect(result.summary).toMatch(/^### Nothing was done: the inputs need fixing\n/);
    for (const name of Object.keys(bad)) expect(result.summary).toContain(`Input "${name}"`);
    expect(result.outputs).toEqual({});
    // Main records that a post step follows, so the runner's post run can be told apart.
    expect(result.state).toEqual(RUNS[action].post ? { isPost: 'true' } : {});
    await expectNothingAttempted();
  });

  it('names a missing required input', async () => {
    const { missing } = CASES[action];
    const inputs: Record<string, string> = CASES[action].valid();
    delete inputs[missing];
    const result = await run(action, inputs);
    expect(result.ms).toBeLessThan(STARTUP_LIMIT_MS);
    expect(result.code, result.stdout).toBe(1);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toContain(`Input "${missing}" is required`);
    expect(result.summary).toContain(`Input "${missing}" is required`);
    await expectNothingAttempted();
  });
});

describe('post steps on Node 24', () => {
  it('every action runs on node24 from dist/index.js, and each post step is covered below', () => {
    for (const action of ACTIONS) expect(RUNS[action], action).toMatchObject({ using: 'node24', main: 'dist/index.js' });
    expect(Object.keys(NOTHING_TO_CLEAN_UP).sort()).toEqual([...POST_ACTIONS].sort());
  });

  it.each(POST_ACTIONS)('%s post (STATE_isPost=true) runs and exits 0 with nothing to clean up', async (action) => {
    expect(RUNS[action].post).toBe('dist/index.js');
    const result = await run(action, {}, { phase: 'post' });
    expect(result.code, result.stdout).toBe(0);
    expect(result.errors).toEqual([]);
    expect(result.stdout).not.toContain('::warning::');
    expect(result.stdout).toMatch(NOTHING_TO_CLEAN_UP[action]!);
    expect(result.outputs).toEqual({});
    await expectNothingAttempted();
  });
});

describe('action-deploy against a real sshd', () => {
  let sshd: SshdServer;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  it('refuses a server whose host key does not match the pinned fingerprint, before running anything, and shows its fingerprint', async () => {
    const logBefore = (await readFile(sshd.logPath, 'utf8')).length;
    // Not a dry run, with a valid compose file in the workspace: it gets as far as connecting.
    const result = await runBundle('action-deploy', {
      cwd: workspace.path,
      timeoutMs: 60_000,
      inputs: {
        host: sshd.host,
        port: String(sshd.port),
        username: sshd.username,
        key: sshd.privateKey,
        fingerprint: WRONG_FINGERPRINT,
        'connect-timeout': '10s',
        'dry-run': 'false',
        'project-dir': '/srv/skiff-bundle-smoke',
      },
    });
    expect(result.code, result.stdout).toBe(1);
    expect(result.errors).toHaveLength(1);
    expect(result.errors[0]).toContain('Host key verification failed');
    expect(result.errors[0]).toContain(sshd.hostFingerprint);
    // Like every failure, it leaves outputs and a summary saying what failed.
    expect(result.summary).toMatch(/deploy to 1 host: failed[\s\S]*Host key verification failed/);
    expect(result.summary).not.toContain(sshd.privateKey.split('\n')[1]!);
    // The client gave up during key exchange: the server never saw it log in.
    const log = (await readFile(sshd.logPath, 'utf8')).slice(logBefore);
    expect(log).not.toMatch(/Accepted (publickey|password)/);
  });
});
