import { chown, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImages,
  ensureComposeV1,
  ensureLoginUser,
  freePort,
  sh,
  startRegistry,
  startSshd,
  tempDir,
  type LoginUser,
  type Registry,
  type SshdServer,
  sshdActionInputs,
} from '@skiff/testbed';
import { buildApp, composeFile, httpGet, removeProject, runAction } from './helpers';

/**
 * Compose v1 (Debian's docker-compose 1.29, unpacked, first on the server's PATH), a server with
 * no Compose at all, sudo, health checks from the server's side, and dry-run.
 */

const PROJECT = `skiffdeployv${process.pid}`;
const SERVICE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let registry: Registry;
const servers: SshdServer[] = [];
let remoteRoot: { path: string; remove: () => Promise<void> };
let workspace: { path: string; remove: () => Promise<void> };
let webPort: number;
let image: string;

const inputsFor = (server: SshdServer, projectDir: string, extra: Record<string, string> = {}) => ({
  ...sshdActionInputs(server),
  'project-dir': projectDir,
  'project-name': PROJECT,
  'env-file': `WEB_PORT=${webPort}\nSECRET_TOKEN=not-used-here\n`,
  images: `web=${image}`,
  'health-interval': '1s',
  'health-timeout': '30s',
  ...extra,
});

beforeAll(async () => {
  await ensureBaseImages();
  [registry, remoteRoot, workspace] = await Promise.all([startRegistry(), tempDir('skiffdeployv-remote'), tempDir('skiffdeployv-ws')]);
  webPort = await freePort();
  image = `${registry.address}/skiffdeployv-app:v1`;
  await sh('docker', ['login', '-u', registry.username, '--password-stdin', registry.address], { input: registry.password });
  await buildApp(image, 'ok', 'v1');
  await sh('docker', ['push', '-q', image], { timeoutMs: 120_000 });
  await writeFile(join(workspace.path, 'compose.yaml'), composeFile(registry.address));
}, 600_000);

afterAll(async () => {
  await removeProject(PROJECT).catch(() => undefined);
  await removeProject(`${PROJECT}v1`).catch(() => undefined);
  await sh('docker', ['logout', registry.address]).catch(() => '');
  await sh('docker', ['image', 'rm', '-f', image]).catch(() => '');
  await Promise.all([...servers.map((server) => server.stop()), registry?.stop(), remoteRoot?.remove(), workspace?.remove()]);
});

/** DEBUG1 after login makes sshd log every channel it opens, so a test can see the tunnel the health check used. */
const DEBUG_AFTER_LOGIN = (user: string) => [`Match User ${user}`, '  LogLevel DEBUG1'];
const TUNNEL_LINE = /server_request_direct_tcpip: originator \S+ port \d+, target (\S+) port (\d+)/g;

async function tunnelsIn(server: SshdServer): Promise<string[]> {
  const log = await readFile(server.logPath, 'utf8');
  return [...log.matchAll(TUNNEL_LINE)].map((match) => `${match[1]}:${match[2]}`);
}

/** A server whose PATH starts with `binDir` and which (unless `withPlugin`) has no Compose v2 plugin: the machine's is hidden from it. */
async function serverWithPath(binDir: string, extraConfig: readonly string[] = [], withPlugin = false): Promise<SshdServer> {
  const { pluginDirs } = await ensureComposeV1();
  const server = await startSshd({ env: { PATH: `${binDir}:${SERVICE_PATH}` }, extraConfig, ...(withPlugin ? {} : { hide: pluginDirs }) });
  servers.push(server);
  return server;
}

describe('compose variants', () => {
  it('uses docker-compose v1 when the v2 plugin is missing, with health checked from the server through a tunnel and a health-command', async () => {
    const { v1BinDir } = await ensureComposeV1();
    const server = await serverWithPath(v1BinDir, DEBUG_AFTER_LOGIN('root'));
    const run = await runAction(
      inputsFor(server, join(remoteRoot.path, 'v1'), {
        'project-name': `${PROJECT}v1`,
        'health-url': `http://127.0.0.1:${webPort}/`,
        'health-from': 'host',
        'health-body': 'version=v1',
        'health-command': `wget -q -O- http://127.0.0.1:${webPort}/ | grep -q version=v1`,
      }),
      { workspace: workspace.path },
    );
    expect(run.errors).toEqual([]);
    expect(run.stdout).toContain('Using docker-compose (v1)');
    expect(run.outputs.status).toBe('deployed');
    // The port is an env-file value, but a short one under a name that is no credential: shown, not blanked.
    expect(run.summary).toContain(`| http://127.0.0.1:${webPort}/ | ok |`);
    expect(run.summary).toContain('| health-command | ok |');
    // health-from: host went through the SSH connection: sshd opened direct-tcpip channels to the server's own loopback port.
    const tunnels = await tunnelsIn(server);
    expect(tunnels.length).toBeGreaterThanOrEqual(2);
    expect(new Set(tunnels)).toEqual(new Set([`127.0.0.1:${webPort}`]));
    expect((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim()).toBe('version=v1');
    // v1 names containers project_service_1.
    expect(await sh('docker', ['ps', '--filter', `label=com.docker.compose.project=${PROJECT}v1`, '--format', '{{.Names}}'])).toContain(`${PROJECT}v1_web_1`);
    await removeProject(`${PROJECT}v1`);
  });

  it('fails clearly when the server has neither compose: one never deployed to is untouched; where releases exist, the lock taken beside the probe is given back', async () => {
    const { noComposeBinDir } = await ensureComposeV1();
    const server = await serverWithPath(noComposeBinDir);
    const projectDir = join(remoteRoot.path, 'none');
    const run = await runAction(inputsFor(server, projectDir), { workspace: workspace.path });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toContain('Neither `docker compose` (v2) nor `docker-compose` (v1) works on the server');
    await expect(stat(projectDir)).rejects.toThrow();

    // Where Skiff deployed before, the lock is taken beside the probe: it is given back, and the releases are as they were.
    const deployedDir = join(remoteRoot.path, 'none-deployed');
    const release = join(deployedDir, 'releases', '20260101T000000Z-aaaaaaa-0001');
    await mkdir(release, { recursive: true });
    await writeFile(join(release, 'deployed'), '');
    const again = await runAction(inputsFor(server, deployedDir), { workspace: workspace.path });
    expect(again.code).toBe(1);
    expect(again.errors.join('\n')).toContain('Neither `docker compose` (v2) nor `docker-compose` (v1) works on the server');
    expect((await readdir(deployedDir)).sort()).toEqual(['releases']);
    expect(await readdir(join(deployedDir, 'releases'))).toEqual(['20260101T000000Z-aaaaaaa-0001']);
  });

  it('creating the release fails (a file stands where releases/ goes): it ends like any step before the switch, with the error, audit, outputs and summary', async () => {
    const server = servers[0] ?? (await serverWithPath('/usr/local/bin', [], true));
    const projectDir = join(remoteRoot.path, 'broken');
    await mkdir(projectDir, { recursive: true });
    await writeFile(join(projectDir, 'releases'), 'not a folder\n');
    const run = await runAction(inputsFor(server, projectDir, { 'project-name': `${PROJECT}broken` }), { workspace: workspace.path });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(
      /Uploading the release failed, so nothing was switched: create release \S+, point \.env at it failed with exit code 1:[\s\S]*releases/,
    );
    expect(run.outputs.status).toBe('failed');
    expect(run.outputs['rolled-back']).toBe('false');
    expect(run.summary).toMatch(/failed/);
    const audit = (await readFile(join(projectDir, 'audit.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(audit.at(-1)).toMatchObject({ event: 'failure', status: 'failed', reason: 'Uploading the release failed' });
    expect((await readdir(projectDir)).sort()).toEqual(['audit.log', 'releases']);
  });

  it('a step the story did not expect to fail (marking the release current, where a folder stands) still ends with an error naming it, diagnostics, audit, outputs and the summary', async () => {
    const server = servers[0] ?? (await serverWithPath('/usr/local/bin', [], true));
    const projectDir = join(remoteRoot.path, 'unmarkable');
    const project = `${PROJECT}unmarkable`;
    await mkdir(join(projectDir, 'current'), { recursive: true });
    await writeFile(join(projectDir, 'current', 'kept'), 'a folder of the admin\n');
    try {
      const run = await runAction(
        inputsFor(server, projectDir, { 'project-name': project, 'env-file': `WEB_PORT=${await freePort()}\nSECRET_TOKEN=not-used-here\n` }),
        { workspace: workspace.path },
      );
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(/The deploy stopped: mark release \S+ current, append to the audit log failed with exit code 1:[\s\S]*current/);
      expect(run.outputs.status).toBe('failed');
      expect(run.outputs['rolled-back']).toBe('false');
      expect(run.summary).toMatch(/failed/);
      expect(run.summary).toContain('docker ps -a');
      const audit = (await readFile(join(projectDir, 'audit.log'), 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      expect(audit.at(-1)).toMatchObject({ event: 'failure', status: 'failed' });
      expect(String(audit.at(-1)!.reason)).toMatch(/mark release \S+ current/);
      expect(await readFile(join(projectDir, 'current', 'kept'), 'utf8')).toBe('a folder of the admin\n');
    } finally {
      await removeProject(project).catch(() => undefined);
    }
  });

  it('a server that cannot be reached still gets outputs and a summary', async () => {
    const run = await runAction(
      {
        ...inputsFor(
          {
            host: '127.0.0.1',
            port: await freePort(),
            username: 'root',
            privateKey: servers[0]!.privateKey,
            hostFingerprint: servers[0]!.hostFingerprint,
          } as SshdServer,
          '/opt/shop',
        ),
        'connect-timeout': '2s',
      },
      { workspace: workspace.path },
    );
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toMatch(/Could not connect to root@127\.0\.0\.1:\d+/);
    expect(run.outputs.status).toBe('failed');
    expect(run.summary).toMatch(/deploy to 1 host: failed[\s\S]*Could not connect/);
  });

  it('dry-run shows the plan without connecting; the env file is never shown', async () => {
    const run = await runAction(
      {
        ...inputsFor(
          { host: '127.0.0.1', port: 1, username: 'root', privateKey: servers[0]!.privateKey, hostFingerprint: servers[0]!.hostFingerprint } as SshdServer,
          '/opt/shop',
        ),
        'dry-run': 'true',
      },
      { workspace: workspace.path },
    );
    expect(run.errors).toEqual([]);
    const plan = run.outputs.plan!;
    expect(plan).toContain('mkdir /opt/shop/.skiff-lock');
    expect(plan).toMatch(
      /docker compose --project-name skiffdeployv\d+ --project-directory \/opt\/shop -f \/opt\/shop\/releases\/\S+\/compose\.yaml -f \/opt\/shop\/releases\/\S+\/images\.lock\.json --env-file \/opt\/shop\/releases\/\S+\/\.env up -d --remove-orphans/,
    );
    expect(plan).toContain('mode 0600');
    expect(plan).toContain('contents are secret and not shown');
    expect(plan).not.toContain('not-used-here');
    expect(run.summary).toContain(plan.trim());
  });
});

describe('sudo: true for a user outside the docker group', () => {
  const USER = 'skiffsudo';
  const project = `${PROJECT}sudo`;
  let server: SshdServer;
  let user: LoginUser | undefined;
  let base: string;
  let projectDir: string;
  const asUser = (extra: Record<string, string> = {}) => ({ ...inputsFor(server, projectDir, { 'project-name': project, ...extra }), username: USER });

  beforeAll(async () => {
    // The user's own ~/.ssh/authorized_keys: sshd reads it as the user, who cannot read the test sshd's directory.
    server = await startSshd({ extraConfig: [...DEBUG_AFTER_LOGIN(USER), '  AuthorizedKeysFile .ssh/authorized_keys'] });
    servers.push(server);
    const docker = (await sh('sh', ['-c', 'command -v docker'])).trim();
    // The minimal grant: docker only. The project directory belongs to the user, so releases, .env, lock and audit need no root.
    user = await ensureLoginUser(USER, { authorizedKeys: await readFile(`${server.privateKeyPath}.pub`, 'utf8'), sudoCommands: [docker] });
    base = `/tmp/skiffdeploy-sudo-${process.pid}`;
    await mkdir(base, { recursive: true, mode: 0o755 });
    projectDir = join(base, 'app');
    await mkdir(projectDir, { recursive: true });
    await chown(projectDir, user.uid, user.gid);
  }, 60_000);

  afterAll(async () => {
    await removeProject(project).catch(() => undefined);
    await rm(base, { recursive: true, force: true });
    await user?.remove();
    await expect(stat(`/etc/sudoers.d/skiff-testbed-${USER}`)).rejects.toThrow();
  });

  it('without sudo, fails before uploading anything and names both fixes', async () => {
    expect(await sh('id', ['-nG', USER])).not.toMatch(/\bdocker\b/);
    const run = await runAction(asUser(), { workspace: workspace.path });
    expect(run.code).toBe(1);
    const message = run.errors.join('\n');
    expect(message).toContain('may not use the Docker engine');
    expect(message).toContain('permission denied');
    expect(message).toContain('docker group');
    expect(message).toContain('`sudo: true`');
    expect(await readdir(projectDir)).toEqual([]);
  });

  it('a project-dir the user cannot create fails first with the one command that fixes it, and nothing is made', async () => {
    const locked = join(base, 'root-owned');
    await mkdir(locked, { mode: 0o755 });
    const wanted = join(locked, 'my app');
    const run = await runAction({ ...asUser({ sudo: 'true' }), 'project-dir': wanted }, { workspace: workspace.path });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toContain(
      `project-dir ${wanted} cannot be created or written by ${USER}. Create it once, as root or with sudo, owned by that user:`,
    );
    expect(run.errors.join('\n')).toContain(`sudo install -d -o ${USER} -g ${USER} ${wanted.replace(/ /g, '\\ ')}`);
    expect(run.errors.join('\n')).not.toContain('Permission denied');
    expect(await readdir(locked)).toEqual([]);
  });

  it('with sudo: true, deploys v1 healthy through sudo -n docker, the release files owned by the user; health-from runner opens no tunnel', async () => {
    const run = await runAction(asUser({ sudo: 'true', 'health-url': `http://127.0.0.1:${webPort}/`, 'health-from': 'runner' }), { workspace: workspace.path });
    expect(run.errors).toEqual([]);
    expect(run.stdout).toContain('Using docker compose (v2) with sudo -n');
    expect(run.outputs.status).toBe('deployed');
    expect((await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim()).toBe('version=v1');
    const env = await stat(join(projectDir, 'releases', run.outputs['release-id']!, '.env'));
    expect(env.uid).toBe(user!.uid);
    expect(env.mode & 0o777).toBe(0o600);
    expect(run.summary).toContain(`| http://127.0.0.1:${webPort}/ | ok |`);
    // The same sshd logs channel opens at DEBUG1 (the sudo user's Match block); the runner checked the URL itself.
    expect(await readFile(server.logPath, 'utf8')).toContain('debug1:');
    expect(await tunnelsIn(server)).toEqual([]);
  });
});
