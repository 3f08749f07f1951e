import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImages,
  freePort,
  pushWithOwnLogin,
  sh,
  startRegistry,
  startSshd,
  tempDir,
  type Registry,
  type SshdServer,
  sshdActionInputs,
} from '@skiff/testbed';
import { auditLines, buildApp, httpGet, removeProject, runAction, startAction } from './helpers';

/**
 * The Compose apps users have, not a one-service toy: a proxy that `depends_on` a healthy backend,
 * a backend with `env_file: .env` and a bind-mounted `./data`, a migration in pre-deploy.
 * Each of these broke on the first try before (see the tests' names).
 */

const PROJECT = `skiffdeployapps${process.pid}`;

let server: SshdServer;
let registry: Registry;
let remoteRoot: { path: string; remove: () => Promise<void> };
let workspace: { path: string; remove: () => Promise<void> };
let projectDir: string;
let webPort: number;
const image = (tag: string) => `${registry.address}/skiffdeployapps:${tag}`;

/** Each deploy comes from its own commit, as in a repository. */
const commit = (n: number) => `${String(n).repeat(7)}0123456789abcdef0123456789abcdef0`.slice(0, 40);
let deploys = 0;

const deploy = (env: string, images: string, extra: Record<string, string> = {}) =>
  runAction(
    {
      ...sshdActionInputs(server),
      'project-dir': projectDir,
      'project-name': PROJECT,
      'env-file': `WEB_PORT=${webPort}\n${env}`,
      images,
      'health-url': `http://127.0.0.1:${webPort}/`,
      'health-interval': '1s',
      'health-timeout': '40s',
      // A private registry: the server has no login of its own; each pull logs in for itself.
      registry: registry.address,
      'registry-username': registry.username,
      'registry-password': registry.password,
      ...extra,
    },
    { workspace: workspace.path, env: { GITHUB_SHA: commit(++deploys) } },
  );

/** GREETING as the service's container got it (its config's environment). */
const greeting = async (service: string) =>
  (await sh('docker', ['inspect', '--format', '{{range .Config.Env}}{{println .}}{{end}}', await container(service)]))
    .split('\n')
    .find((line) => line.startsWith('GREETING='))
    ?.slice('GREETING='.length);
const container = async (service: string) =>
  (
    await sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--filter', `label=com.docker.compose.service=${service}`])
  ).trim();

beforeAll(async () => {
  await ensureBaseImages();
  // No SFTP subsystem, as hardened servers have it: every upload of these deploys goes over the exec channel.
  [server, registry, remoteRoot, workspace] = await Promise.all([
    startSshd({ sftp: false }),
    startRegistry(),
    tempDir('skiffdeployapps-remote'),
    tempDir('skiffdeployapps-ws'),
  ]);
  projectDir = join(remoteRoot.path, 'shop');
  webPort = await freePort();
  // Pushed with a login of the test's own; the server (this machine's root) never logs in to this registry.
  for (const [tag, kind] of [
    ['v1', 'ok'],
    ['v2', 'unhealthy'],
    ['v3', 'ok'],
  ] as const) {
    await buildApp(image(tag), kind, tag);
    await pushWithOwnLogin(registry, image(tag));
    // Gone from the engine too, so every deploy really pulls through the registry's auth.
    await sh('docker', ['image', 'rm', image(tag)]);
  }
  await writeFile(
    join(workspace.path, 'compose.yaml'),
    [
      'services:',
      '  backend:',
      `    image: ${image('v1')}`,
      '    env_file: .env',
      '    volumes:',
      '      - ./data:/data',
      '  proxy:',
      `    image: ${image('v1')}`,
      '    depends_on:',
      '      backend:',
      '        condition: service_healthy',
      '    ports:',
      '      - "127.0.0.1:${WEB_PORT}:8080"',
      '',
    ].join('\n'),
  );
}, 600_000);

afterAll(async () => {
  await removeProject(PROJECT).catch(() => undefined);
  await sh('docker', ['logout', registry.address]).catch(() => '');
  for (const tag of ['v1', 'v2', 'v3']) await sh('docker', ['image', 'rm', '-f', image(tag)]).catch(() => '');
  await Promise.all([server?.stop(), registry?.stop(), remoteRoot?.remove(), workspace?.remove()]);
});

/** Where a login could be left on the server: the root user's Docker config and throwaway configs in /tmp. */
async function loginsLeft(): Promise<string[]> {
  const config = await readFile('/root/.docker/config.json', 'utf8').catch(() => '');
  const throwaway = (await readdir('/tmp')).filter((name) => name.startsWith('skiff-docker-config.'));
  return [...(config.includes(registry.address) ? [`/root/.docker/config.json names ${registry.address}`] : []), ...throwaway];
}

describe('a proxy, a backend with env_file: .env and ./data, a migration', () => {
  it('a private image without registry credentials: the pull is refused, and the error names the inputs that log in', async () => {
    const run = await deploy('GREETING=hello-0\n', `backend=${image('v1')}\nproxy=${image('v1')}`, { 'registry-username': '', 'registry-password': '' });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.stdout).toMatch(/Pulling images failed[\s\S]*set registry-username and registry-password/);
    deploys--;
  });

  it('the first deploy works with env_file: .env (it failed with "env file … not found"), and pre-deploy resolves ./data in the project directory', async () => {
    const run = await deploy('GREETING=hello-1\n', `backend=${image('v1')}\nproxy=${image('v1')}`, {
      // The README's own migration shape: a one-off container of the new release, bind-mounting ./data.
      'pre-deploy': 'docker compose run --rm --no-deps backend sh -c \'echo "migrated $GREETING" > /data/marker\'',
    });
    expect(run.code, run.masked).toBe(0);
    expect(run.outputs.status).toBe('deployed');
    expect((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim()).toBe('version=v1');
    expect(await greeting('backend')).toBe('hello-1');
    expect((await readFile(join(projectDir, 'data', 'marker'), 'utf8')).trim()).toBe('migrated hello-1');
    for (const release of await readdir(join(projectDir, 'releases'))) expect(await readdir(join(projectDir, 'releases', release))).not.toContain('data');
    // The login lived for the pull only: nothing of it is left on the server, and the password was masked.
    expect(await loginsLeft()).toEqual([]);
    expect(run.stdout.split('\n').filter((line) => line.includes(registry.password) && !line.startsWith('::add-mask::'))).toEqual([]);
  });

  it('an up -d that fails (a dependency stays unhealthy) is a failed release like any other: diagnostics, rollback through the gate, outputs, summary, audit', async () => {
    const first = (await auditLines(projectDir)).at(-1)!;
    const run = await deploy('GREETING=hello-2\n', `backend=${image('v2')}\nproxy=${image('v1')}`);
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['rolled-back']).toBe('true');
    expect(run.stdout).toMatch(/starting it failed: .*(dependency failed to start|is unhealthy)/);
    expect(run.summary).toMatch(/rolled back/i);
    expect(run.summary).toMatch(/docker compose ps -a/);
    const last = (await auditLines(projectDir)).at(-1)!;
    expect(last).toMatchObject({ event: 'rollback', status: 'rolled-back', to: first.to });
    // The previous release serves again, with its own env.
    expect((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim()).toBe('version=v1');
    expect(await greeting('backend')).toBe('hello-1');
    expect(await readFile(join(projectDir, 'current', '.env'), 'utf8')).toContain('GREETING=hello-1');
  });

  it('pre-deploy-timeout stops a migration that runs too long: its processes are stopped, nothing is switched', async () => {
    const run = await deploy('GREETING=hello-slow\n', `backend=${image('v3')}\nproxy=${image('v3')}`, {
      'pre-deploy': 'sleep 3127', // an unusual length: pgrep below looks machine-wide
      'pre-deploy-timeout': '10s',
    });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.stdout).toMatch(/pre-deploy \(pre-deploy-timeout\) did not finish within 10s; its processes on the server were stopped/);
    expect((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim()).toBe('version=v1');
    // (The pattern's [7] keeps pgrep from finding the shell that runs it.)
    expect(await sh('sh', ['-c', 'pgrep -f "sleep 312[7]" || true'])).toBe('');
    deploys--;
  });

  it('a failed pull links .env back to the running release', async () => {
    const run = await deploy('GREETING=hello-x\n', `backend=${registry.address}/skiffdeployapps:no-such-tag\nproxy=${image('v1')}`);
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(await readFile(join(projectDir, '.env'), 'utf8')).toContain('GREETING=hello-1');
  });

  it('the next good release gets its own env', async () => {
    const run = await deploy('GREETING=hello-3\n', `backend=${image('v3')}\nproxy=${image('v3')}`);
    expect(run.code, run.masked).toBe(0);
    expect((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim()).toBe('version=v3');
    expect(await greeting('backend')).toBe('hello-3');
  });

  it('rolls back to a git commit: the newest kept release of it, exactly as it ran (images and env); an unknown commit lists what is kept', async () => {
    const unknown = await deploy('', '', { rollback: 'abcdef0', 'env-file': '', images: '' });
    expect(unknown.code).toBe(1);
    expect(unknown.stdout).toMatch(/no kept, successfully deployed release was made from commit abcdef0/);
    expect(unknown.stdout).toMatch(/\d{8}T\d{6}Z-1111111-[0-9a-f]{4} \(commit 111111101234, \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/);
    expect(unknown.stdout).not.toContain('compose-file');

    const back = await deploy('', '', { rollback: commit(1).slice(0, 9), 'env-file': '', images: '' });
    expect(back.code, back.masked).toBe(0);
    expect(back.outputs['release-id']).toMatch(/-1111111-/);
    expect((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim()).toBe('version=v1');
    expect(await greeting('backend')).toBe('hello-1');
  });

  it("shows a long step's output while it runs: pre-deploy's lines reach the job log before it ends, in the step's own group", async () => {
    const started = startAction(
      {
        ...sshdActionInputs(server),
        'project-dir': projectDir,
        'project-name': PROJECT,
        'env-file': `WEB_PORT=${webPort}\nGREETING=hello-live\n`,
        images: `backend=${image('v3')}\nproxy=${image('v3')}`,
        registry: registry.address,
        'registry-username': registry.username,
        'registry-password': registry.password,
        'health-url': `http://127.0.0.1:${webPort}/`,
        'health-interval': '1s',
        'pre-deploy': 'echo "migration 1 of 2 done"; sleep 4; echo "migration 2 of 2 done" >&2',
      },
      { workspace: workspace.path, env: { GITHUB_SHA: commit(++deploys) } },
    );
    const child = await started.spawned;
    const seen: { at: number; line: string }[] = [];
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) seen.push({ at: performance.now(), line });
    });
    const run = await started.done;
    const ended = performance.now();
    expect(run.code, run.masked).toBe(0);
    const first = seen.find((s) => s.line === 'migration 1 of 2 done');
    expect(first, run.stdout).toBeDefined();
    expect(ended - first!.at).toBeGreaterThan(3000);
    const lines = seen.map((s) => s.line);
    const group = lines.indexOf('::group::pre-deploy (pre-deploy-timeout)');
    expect(group).toBeGreaterThanOrEqual(0);
    expect(lines.indexOf('migration 1 of 2 done')).toBeGreaterThan(group);
    expect(lines.indexOf('migration 2 of 2 done')).toBeGreaterThan(lines.indexOf('migration 1 of 2 done'));
    expect(lines.indexOf('::endgroup::', group)).toBeGreaterThan(lines.indexOf('migration 2 of 2 done'));
    // The pull and the switch show theirs too (Compose reports each service).
    expect(lines.some((line) => line.startsWith('::group::pull images'))).toBe(true);
    expect(lines.some((line) => line.startsWith('::group::start release'))).toBe(true);
  });
});
