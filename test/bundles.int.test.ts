import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type SshdServer } from '@skiff/testbed';

/**
 * Runs each committed bundle the way the runner does: Node 24 on <action>/dist/index.js, inputs
 * as INPUT_* variables, and the runner's file commands (outputs, summary, state) as fresh files.
 * This catches what unit tests cannot: bundling mistakes, ESM/CJS interop, missing banner shims.
 */

const root = resolve(import.meta.dirname, '..');
const NODE24 = join(root, 'node_modules/.bin/node');
const SSH_ACTIONS = ['action-deploy', 'action-cf-allowlist', 'action-backup'] as const;
const SKELETON_DOING = { 'action-deploy': 'deploying', 'action-cf-allowlist': 'updating the Cloudflare allowlist', 'action-backup': 'backing up' };
// A syntactically valid fingerprint that matches no real key.
const WRONG_FINGERPRINT = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

interface BundleRun {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  errors: string[];
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

/** Undoes workflow-command escaping (`%25`, `%0D`, `%0A`). */
function unescapeCommand(text: string): string {
  return text.replaceAll('%0A', '\n').replaceAll('%0D', '\r').replaceAll('%25', '%');
}

async function runBundle(
  action: string,
  inputs: Record<string, string>,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<BundleRun> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-bundle-'));
  try {
    const files = { GITHUB_OUTPUT: join(dir, 'output'), GITHUB_STEP_SUMMARY: join(dir, 'summary'), GITHUB_STATE: join(dir, 'state') };
    await Promise.all(Object.values(files).map((path) => writeFile(path, '')));
    // A clean environment: nothing from the test process may leak in as an input.
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...files, ...options.env };
    for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;

    const child = spawn(NODE24, [join(root, action, 'dist/index.js')], { cwd: options.cwd ?? dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise<number | null>((done, fail) => {
      child.on('error', fail);
      child.on('close', done);
    }).finally(() => clearTimeout(timer));

    return {
      code,
      stdout,
      stderr,
      outputs: parseFileCommands(await readFile(files.GITHUB_OUTPUT, 'utf8')),
      state: parseFileCommands(await readFile(files.GITHUB_STATE, 'utf8')),
      summary: await readFile(files.GITHUB_STEP_SUMMARY, 'utf8'),
      errors: stdout
        .split('\n')
        .filter((line) => line.startsWith('::error::'))
        .map((line) => unescapeCommand(line.slice('::error::'.length))),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
});

describe.each(SSH_ACTIONS)('%s bundle', (action) => {
  const base = { host: '127.0.0.1', port: '1', username: 'deploy', password: 'bundle-test-password', fingerprint: WRONG_FINGERPRINT };

  it('fails before doing anything when inputs are invalid, naming each bad input', async () => {
    const run = await runBundle(action, { host: 'example.com', port: 'ssh', 'connect-timeout': 'soon', 'DRY-RUN': 'maybe' });
    expect(run.code).toBe(1);
    expect(run.errors).toHaveLength(1);
    const [error] = run.errors;
    expect(error).toContain('Input "port" must be a TCP port number from 1 to 65535; got "ssh"');
    expect(error).toContain('Input "connect-timeout" must be a duration like 90, 90s or 2m');
    expect(error).toContain('Input "dry-run" must be true or false; got "maybe"');
    expect(error).toContain('Input "username" is required');
    expect(error).toContain('ssh-keyscan -p PORT example.com | ssh-keygen -lf -');
    expect(run.stdout).not.toMatch(/\n\s+at /);
    expect(run.summary).toBe('');
    expect(run.outputs).toEqual({});
  });

  it('with dry-run, shows the preflight plan and sets the plan output without connecting', async () => {
    // Port 1 on loopback refuses connections, so reaching the server would fail the run.
    const run = await runBundle(action, { ...base, 'dry-run': 'true' });
    expect(run.stderr).toBe('');
    expect(run.errors).toEqual([]);
    expect(run.code).toBe(0);
    expect(run.outputs.plan).toContain('### Plan (dry run: nothing was run)');
    expect(run.outputs.plan).toContain('uname -sr');
    expect(run.outputs.plan).toContain('set -euo pipefail');
    expect(run.summary).toContain(run.outputs.plan!.trim());
    expect(run.stdout).toContain('uname -sr');
    expect(run.stdout).toContain('::add-mask::bundle-test-password');
  });

  it('uses the dry-run input name with its hyphen, as the runner passes it', async () => {
    const run = await runBundle(action, { ...base, 'DRY-RUN': 'TRUE' });
    expect(run.code).toBe(0);
    expect(run.outputs.plan).toContain('uname -sr');
  });
});

describe('action-deploy post phase', () => {
  it('is marked for the post step in main and runs cleanup in post', async () => {
    const main = await runBundle('action-deploy', { host: 'h', username: 'u', password: 'pw-pw-pw', fingerprint: WRONG_FINGERPRINT, 'dry-run': 'true' });
    expect(main.state).toEqual({ isPost: 'true' });
    const post = await runBundle('action-deploy', {}, { env: { STATE_isPost: 'true' } });
    expect(post.code).toBe(0);
    expect(post.errors).toEqual([]);
    expect(post.stdout).toContain('no deploy lock yet');
  });
});

describe('action-build-push bundle', () => {
  let workspace: string;

  beforeAll(async () => {
    workspace = await mkdtemp(join(tmpdir(), 'skiff-workspace-'));
    await writeFile(join(workspace, 'Dockerfile'), 'FROM scratch\n');
  });

  afterAll(async () => {
    await rm(workspace, { recursive: true, force: true });
  });

  it('names a bad image and a missing context', async () => {
    const run = await runBundle('action-build-push', { image: 'ghcr.io/Owner/App:latest', context: 'nope', push: 'false' }, { cwd: workspace });
    expect(run.code).toBe(1);
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toContain('Input "image" must be an image name without a tag, in lowercase, like ghcr.io/owner/app; got "ghcr.io/Owner/App:latest"');
    expect(run.errors[0]).toContain('Input "context" must be a directory in the workspace; got "nope"');
  });

  it('validates, defaults the image to the lowercased repository, then fails as a skeleton', async () => {
    const run = await runBundle(
      'action-build-push',
      { context: '.', push: 'true', 'github-token': 'ghs_bundletesttoken123' },
      { cwd: workspace, env: { GITHUB_REPOSITORY: 'Skiff-Org/My.App' } },
    );
    expect(run.code).toBe(1);
    expect(run.errors).toEqual(['action-build-push 0.1.0 is a skeleton: building and pushing images is not implemented yet']);
    expect(run.outputs).toEqual({ image: 'ghcr.io/skiff-org/my.app' });
    expect(run.summary).toContain('| ghcr.io/skiff-org/my.app | Dockerfile | . | true |');
    expect(run.stdout).toContain('::add-mask::ghs_bundletesttoken123');
    expect(run.state).toEqual({ isPost: 'true' });
  });
});

describe('SSH actions against a real sshd', () => {
  let sshd: SshdServer;

  beforeAll(async () => {
    sshd = await startSshd();
  });

  afterAll(async () => {
    await sshd?.stop();
  });

  const inputsFor = (hostKey: Record<string, string>) => ({
    host: sshd.host,
    port: String(sshd.port),
    username: sshd.username,
    key: sshd.privateKey,
    'connect-timeout': '10s',
    ...hostKey,
  });

  it.each(SSH_ACTIONS)('%s refuses a server whose host key does not match the pinned fingerprint, before running anything', async (action) => {
    const logBefore = (await readFile(sshd.logPath, 'utf8')).length;
    const run = await runBundle(action, inputsFor({ fingerprint: WRONG_FINGERPRINT }));
    expect(run.code).toBe(1);
    expect(run.errors).toHaveLength(1);
    expect(run.errors[0]).toContain(sshd.hostFingerprint);
    expect(run.errors[0]).not.toContain('is a skeleton');
    expect(run.summary).toBe('');
    // The client gave up during key exchange: the server never saw it log in.
    const log = (await readFile(sshd.logPath, 'utf8')).slice(logBefore);
    expect(log).not.toMatch(/Accepted (publickey|password)/);
  });

  it.each(SSH_ACTIONS)('%s with the right fingerprint runs the preflight, reports it, then fails as a skeleton', async (action) => {
    const logBefore = (await readFile(sshd.logPath, 'utf8')).length;
    const run = await runBundle(action, inputsFor({ fingerprint: sshd.hostFingerprint }));
    // The counterpart of the wrong-fingerprint test's log check: a real login is logged.
    expect((await readFile(sshd.logPath, 'utf8')).slice(logBefore)).toMatch(/Accepted publickey/);
    expect(run.errors).toEqual([`${action} 0.1.0 is a skeleton: ${SKELETON_DOING[action]} is not implemented yet`]);
    expect(run.code).toBe(1);
    expect(run.summary).toContain(`### Preflight on ${sshd.host}`);
    expect(run.summary).toMatch(/\| operating system \| `uname -sr` \| ✅ Linux /);
    expect(run.stdout).toMatch(/ok {3}operating system: Linux /);
  });

  it('accepts a known-hosts line instead of a fingerprint', async () => {
    const run = await runBundle('action-deploy', inputsFor({ 'known-hosts': sshd.knownHostsLine }));
    expect(run.errors).toEqual(['action-deploy 0.1.0 is a skeleton: deploying is not implemented yet']);
    expect(run.summary).toContain('✅ Linux ');
  });
});
