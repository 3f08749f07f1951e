import { appendFile, lstat, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImages,
  freePort,
  sh,
  startRecordingServer,
  startRegistry,
  startSshd,
  tempDir,
  type RecordingServer,
  type Registry,
  type SshdServer,
} from '@skiff/testbed';
import { auditLines, buildApp, httpGet, removeProject, runAction, startAction, type ActionRun } from './helpers';

/**
 * Three servers: three real sshd's on their own loopback addresses (127.0.0.2-4). They share this
 * machine's Docker engine and filesystem, so project-dir and project-name carry {host}, and each
 * sshd gives its sessions their own WEB_PORT (SetEnv; Compose prefers the shell's environment
 * over the env file). Host 2 has BROKEN_VERSION=v2, which its health-command refuses: v2 is
 * unhealthy there and only there. GitHub's API and the chat webhook are local recording servers.
 */

const PREFIX = `skiffhosts${process.pid}`;
const ADDRESSES = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
const GITHUB_TOKEN = `ghs_${Math.random().toString(36).slice(2)}TokenValue`;
const HOOK_PATH = `/services/T000/B000/${Math.random().toString(36).slice(2)}hookSecret`;

let registry: Registry;
let servers: SshdServer[] = [];
let ports: number[] = [];
let remoteRoot: { path: string; remove: () => Promise<void> };
let workspace: { path: string; remove: () => Promise<void> };
let github: RecordingServer;
let hook: RecordingServer;
let image: (tag: string) => string;
let nextDeploymentId = 100;

const projectName = (address: string) => `${PREFIX}-${address.replaceAll('.', '-')}`;
const projectDir = (address: string) => join(remoteRoot.path, address);
const serving = async (index: number) => (await httpGet(`http://127.0.0.1:${ports[index]}/`)).body.trim();
const label = (index: number) => `root@${ADDRESSES[index]}:${servers[index]!.port}`;

const inputs = (extra: Record<string, string>) => ({
  host: servers.map((server) => `${server.host}:${server.port}`).join(',\n'),
  username: 'root',
  key: servers[0]!.privateKey,
  'known-hosts': servers.map((server) => server.knownHostsLine).join('\n'),
  'project-dir': join(remoteRoot.path, '{host}'),
  'project-name': `${PREFIX}-{host}`,
  'env-file': 'SECRET_TOKEN=hosts-secret-value\n',
  'health-interval': '1s',
  'health-timeout': '20s',
  'health-command': 'v=$(wget -q -O- "http://127.0.0.1:$WEB_PORT/") && [ "$v" != "version=${BROKEN_VERSION:-none}" ]',
  ...extra,
});

const deploy = (extra: Record<string, string>, env: Record<string, string> = {}): Promise<ActionRun> =>
  runAction(inputs(extra), { workspace: workspace.path, env: { GITHUB_API_URL: github.url, ...env } });

beforeAll(async () => {
  await ensureBaseImages();
  [registry, remoteRoot, workspace] = await Promise.all([startRegistry(), tempDir('skiffhosts-remote'), tempDir('skiffhosts-ws')]);
  ports = await Promise.all(ADDRESSES.map(() => freePort()));
  servers = await Promise.all(
    ADDRESSES.map((address, index) =>
      startSshd({ listenAddress: address, env: { WEB_PORT: String(ports[index]), ...(index === 1 ? { BROKEN_VERSION: 'v2' } : {}) } }),
    ),
  );
  // One deploy key for all three, as a real fleet has.
  const publicKey = await readFile(`${servers[0]!.privateKeyPath}.pub`, 'utf8');
  for (const server of servers.slice(1)) await appendFile(join(server.dir, 'authorized_keys'), publicKey);
  image = (tag: string) => `${registry.address}/skiffhosts-app:${tag}`;
  await sh('docker', ['login', '-u', registry.username, '--password-stdin', registry.address], { input: registry.password });
  for (const tag of ['v1', 'v2']) {
    await buildApp(image(tag), 'ok', tag);
    await sh('docker', ['push', '-q', image(tag)], { timeoutMs: 120_000 });
  }
  await writeFile(
    join(workspace.path, 'compose.yaml'),
    [
      'services:',
      '  web:',
      `    image: ${image('v1')}`,
      '    ports:',
      '      - "127.0.0.1:${WEB_PORT}:8080"',
      '    environment:',
      '      SECRET_TOKEN: ${SECRET_TOKEN}',
      '',
    ].join('\n'),
  );
  github = await startRecordingServer((request) => {
    if (request.method === 'POST' && request.path === '/repos/acme/skiffdeploy-app/deployments')
      return { status: 201, body: { id: ++nextDeploymentId, sha: '1a2b3c4d5e6f', environment: 'production' } };
    const status = /^\/repos\/acme\/skiffdeploy-app\/deployments\/(\d+)\/statuses$/.exec(request.path);
    if (request.method === 'POST' && status) return { status: 201, body: { id: Number(status[1]) * 10, state: (request.json as { state: string }).state } };
    return { status: 404, body: { message: 'Not Found' } };
  });
  hook = await startRecordingServer(() => ({ status: 200, body: 'ok' }));
}, 600_000);

afterAll(async () => {
  for (const address of ADDRESSES) await removeProject(projectName(address)).catch(() => undefined);
  await sh('docker', ['logout', registry.address]).catch(() => '');
  for (const tag of ['v1', 'v2']) await sh('docker', ['image', 'rm', '-f', image(tag)]).catch(() => '');
  await Promise.all([...servers.map((server) => server.stop()), registry?.stop(), remoteRoot?.remove(), workspace?.remove(), github?.stop(), hook?.stop()]);
});

describe('many hosts', () => {
  let v1: string;

  it('deploys v1 to three hosts in parallel, each with its own lock, releases and audit; records a GitHub Deployment and sends one Slack message', async () => {
    const run = await deploy({
      images: `web=${image('v1')}`,
      parallel: 'true',
      environment: 'production',
      'environment-url': 'https://shop.example/',
      'github-token': GITHUB_TOKEN,
      'notify-webhook': `${hook.url}${HOOK_PATH}`,
    });
    expect(run.errors).toEqual([]);
    expect(run.outputs.status).toBe('deployed');
    v1 = run.outputs['release-id']!;
    const hosts = JSON.parse(run.outputs.hosts!) as Record<string, Record<string, unknown>>;
    expect(Object.keys(hosts)).toEqual([0, 1, 2].map(label));
    for (const [index, address] of ADDRESSES.entries()) {
      expect(hosts[label(index)]).toMatchObject({ status: 'deployed', release: v1, 'previous-release': null, 'rolled-back': false });
      expect(await serving(index)).toBe('version=v1');
      expect(await readlink(join(projectDir(address), 'current'))).toBe(`releases/${v1}`);
      expect((await auditLines(projectDir(address))).map((line) => [line.event, line.to])).toEqual([['deploy', v1]]);
    }
    for (const index of [0, 1, 2]) expect(run.summary).toContain(`| \`${label(index)}\` | ✅ deployed | \`${v1}\``);

    // GitHub: one deployment for the SHA, in_progress, then success with the run's URL — exactly these requests.
    expect(github.requests.map((request) => `${request.method} ${request.path}`)).toEqual([
      'POST /repos/acme/skiffdeploy-app/deployments',
      `POST /repos/acme/skiffdeploy-app/deployments/${nextDeploymentId}/statuses`,
      `POST /repos/acme/skiffdeploy-app/deployments/${nextDeploymentId}/statuses`,
    ]);
    expect(github.requests[0]!.json).toEqual({
      ref: '1a2b3c4d5e6f',
      environment: 'production',
      auto_merge: false,
      required_contexts: [],
      description: 'Skiff deploy of 1a2b3c4d5e6f by octo-tester',
      payload: { release: v1 },
    });
    const runUrl = 'https://github.example/acme/skiffdeploy-app/actions/runs/42';
    expect(github.requests[1]!.json).toEqual({ state: 'in_progress', log_url: runUrl, environment_url: 'https://shop.example/', description: 'Deploying' });
    expect(github.requests[2]!.json).toEqual({
      state: 'success',
      log_url: runUrl,
      environment_url: 'https://shop.example/',
      description: `Release ${v1} deployed and healthy`,
      auto_inactive: true,
    });
    for (const request of github.requests) {
      expect(request.headers.authorization).toBe(`token ${GITHUB_TOKEN}`);
      expect(request.headers.accept).toContain('application/vnd.github');
      expect(request.body).not.toContain(GITHUB_TOKEN);
    }
    expect(run.outputs['deployment-id']).toBe(String(nextDeploymentId));

    // The webhook: one Slack-format message with result, version, hosts, duration, rollback and the run link.
    expect(hook.requests).toHaveLength(1);
    const message = hook.requests[0]!;
    expect(message.path).toBe(HOOK_PATH);
    const slack = message.json as { text: string; blocks: unknown[] };
    expect(slack.text).toContain('✅ Deployed: acme/skiffdeploy-app 1a2b3c4 to 3 hosts');
    expect(slack.text).toContain('*Result:* deployed');
    expect(slack.text).toContain(`*Version:* 1a2b3c4 (release ${v1})`);
    for (const index of [0, 1, 2]) expect(slack.text).toContain(`${label(index)}: deployed`);
    expect(slack.text).toMatch(/\*Duration:\* \d+\.\d s/);
    expect(slack.text).toContain('*Rollback:* none');
    expect(slack.text).toContain(`<${runUrl}|View the run>`);
    expect(slack.blocks.length).toBe(3);

    // Secrets: the token and the webhook path only where they belong, never in the log, the summary, the outputs or a body.
    for (const secret of [GITHUB_TOKEN, HOOK_PATH.slice(1), 'hosts-secret-value']) {
      expect(run.masked).not.toContain(secret);
      expect(run.summary).not.toContain(secret);
      expect(JSON.stringify(run.outputs)).not.toContain(secret);
      expect(message.body).not.toContain(secret);
    }
  });

  it('serial with all-or-nothing: v2 fails on the second host, which rolls back itself; the first is rolled back to v1; the third is never touched', async () => {
    github.requests.length = 0;
    hook.requests.length = 0;
    const run = await deploy({
      images: `web=${image('v2')}`,
      'all-or-nothing': 'true',
      environment: 'production',
      'github-token': GITHUB_TOKEN,
      'notify-webhook': `${hook.url}${HOOK_PATH}`,
    });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['rolled-back']).toBe('true');
    const v2 = run.outputs['release-id']!;
    expect(v2).not.toBe(v1);
    const hosts = JSON.parse(run.outputs.hosts!) as Record<string, Record<string, unknown>>;
    expect(hosts[label(0)]).toMatchObject({ status: 'rolled-back', release: v2, 'previous-release': v1, 'rolled-back': true, 'rolled-back-to': v1 });
    expect(hosts[label(0)]!['rollback-seconds']).toEqual(expect.any(Number));
    expect(hosts[label(1)]).toMatchObject({ status: 'rolled-back', release: v2, 'previous-release': v1, 'rolled-back': true });
    expect(hosts[label(2)]).toMatchObject({ status: 'skipped', release: null, 'rolled-back': false });
    for (const index of [0, 1, 2]) expect(await serving(index)).toBe('version=v1');
    // Each host's own audit: host 1 deployed v2 then went back; host 2 rolled back by its gate; host 3 saw nothing.
    expect((await auditLines(projectDir(ADDRESSES[0]!))).slice(1).map((line) => [line.event, line.from, line.to, line.reason])).toEqual([
      ['deploy', v1, v2, undefined],
      ['rollback', v2, v1, `all-or-nothing: ${label(1)} failed`],
    ]);
    expect((await auditLines(projectDir(ADDRESSES[1]!))).slice(1).map((line) => [line.event, line.from, line.to])).toEqual([['rollback', v2, v1]]);
    expect(await auditLines(projectDir(ADDRESSES[2]!))).toHaveLength(1);
    for (const address of ADDRESSES) expect(await readlink(join(projectDir(address), 'current'))).toBe(`releases/${v1}`);
    const error = run.errors.join('\n');
    expect(error).toContain(`${label(0)}: switched, then rolled back to ${v1} (all-or-nothing)`);
    expect(error).toContain(`${label(1)}: Release ${v2} failed the health gate`);
    expect(error).toContain(`${label(2)}: not started (an earlier host failed)`);
    expect(run.summary).toContain(`| \`${label(2)}\` | ⏭️ skipped | — |`);
    expect(github.requests.map((request) => (request.json as { state?: string }).state ?? 'create')).toEqual(['create', 'in_progress', 'failure']);
    expect((github.requests[2]!.json as { description: string }).description).toBe(`Release ${v2} failed the health gate; rolled back`);
    const slack = (hook.requests[0]!.json as { text: string }).text;
    expect(hook.requests).toHaveLength(1);
    expect(slack).toContain('↩️ Rolled back');
    expect(slack).toContain(`${label(0)} → ${v1}`);
    expect(slack).toContain(`${label(1)} → ${v1}`);
  });

  it('parallel without all-or-nothing reports every host: two deploy v2, the second rolls back', async () => {
    const run = await deploy({ images: `web=${image('v2')}`, parallel: 'true', 'max-parallel': '3' });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    const hosts = JSON.parse(run.outputs.hosts!) as Record<string, Record<string, unknown>>;
    expect(Object.values(hosts).map((host) => host.status)).toEqual(['deployed', 'rolled-back', 'deployed']);
    expect([await serving(0), await serving(1), await serving(2)]).toEqual(['version=v2', 'version=v1', 'version=v2']);
    for (const index of [0, 1, 2]) expect(hosts[label(index)]!['duration-seconds']).toBeGreaterThan(0);
  });

  it('a parallel deploy killed mid-way leaves a lock on every host; the post step frees each of them', async () => {
    const marker = `skiffhosts-kill-${process.pid}`;
    const started = startAction(inputs({ images: `web=${image('v1')}`, parallel: 'true', 'pre-deploy': `sleep 60 # ${marker}` }), {
      workspace: workspace.path,
      env: { GITHUB_API_URL: github.url },
    });
    const pids = () =>
      sh('pgrep', ['-f', marker]).then(
        (out) => out.split('\n').filter(Boolean).map(Number),
        () => [] as number[],
      );
    // Killed once every host is in pre-deploy: each holds its lock.
    const deadline = Date.now() + 120_000;
    while (
      Date.now() < deadline &&
      new Set(
        (await sh('bash', ['-c', `pgrep -af ${marker} | grep -v pgrep || true`]))
          .split('\n')
          .filter((line) => line.includes('sleep 60'))
          .map((line) => line.split(' ')[0]),
      ).size < 3
    ) {
      await new Promise((r) => setTimeout(r, 250));
    }
    started.child.kill('SIGKILL');
    const killed = await started.done;
    for (const pid of await pids()) process.kill(pid, 'SIGKILL');
    expect(killed.code).toBe(null);
    const locks = ADDRESSES.map((address) => join(projectDir(address), '.skiff-lock'));
    for (const lock of locks) await lstat(lock);
    const saved = JSON.parse(killed.state['deploy-lock']!) as { host: string }[];
    expect(saved.map((lock) => lock.host).sort()).toEqual([0, 1, 2].map(label).sort());

    const post = await runAction(inputs({}), { workspace: workspace.path, phase: 'post', state: { 'deploy-lock': killed.state['deploy-lock']! } });
    expect(post.code, post.masked).toBe(0);
    for (const index of [0, 1, 2]) expect(post.stdout).toContain(`Released the deploy lock in ${projectDir(ADDRESSES[index]!)} on ${label(index)}`);
    for (const lock of locks) await expect(lstat(lock)).rejects.toThrow();
  });

  it('dry-run names every host and shows the plan for the first, {host} filled in, without connecting', async () => {
    const run = await deploy({ images: `web=${image('v1')}`, parallel: 'true', 'dry-run': 'true' });
    expect(run.errors).toEqual([]);
    const plan = run.outputs.plan!;
    expect(plan).toContain(`on each of 3 hosts, in parallel, at most 10 at once: ${[0, 1, 2].map(label).join(', ')} (shown for the first)`);
    expect(plan).toContain(`--project-name ${projectName(ADDRESSES[0]!)}`);
    expect(plan).toContain(`mkdir ${projectDir(ADDRESSES[0]!)}/.skiff-lock`);
    expect(plan).not.toContain('{host}');
  });
});
