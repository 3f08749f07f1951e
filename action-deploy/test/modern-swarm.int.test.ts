import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImages,
  machineEngineSwarmState,
  pushWithOwnLogin,
  registryManifestDigest,
  sh,
  startModernHost,
  startRegistry,
  tempDir,
  type ModernHost,
  type Registry,
  sshdActionInputs,
} from '@skiff/testbed';
import { buildApp, httpGet, runAction, swarmServiceImages } from './helpers';

/**
 * strategy: swarm on the server users have today: Docker 28.5 made a single-node Swarm manager,
 * with the containerd image store (Docker 29's default for new installs), where an image's local
 * digest and the registry's are not the same thing. Every image comes through a private registry
 * with a login and the engine holds none of them, so each update pulls with --with-registry-auth.
 * The classic store's swarm runs in swarm.int.test.ts (Docker 20.10).
 */

const PREFIX = 'swarmmodern';
const STACK = `${PREFIX}-shop`;
const WEB_PORT = 18580;
const PROJECT_DIR = '/opt/swarm-shop';
let host: ModernHost;
let registry: Registry;
let workspace: { path: string; remove: () => Promise<void> };
const repository = `${PREFIX}/app`;
const tagged = (version: string) => `${registry.address}/${repository}:${version}`;
const digests: Record<string, string> = {};

const COMPOSE = [
  'services:',
  '  web:',
  `    image: \${REGISTRY}/${repository}:v1`,
  '    ports:',
  '      - target: 8080',
  '        published: ${WEB_PORT}',
  '        mode: host',
  '  worker:',
  `    image: \${REGISTRY}/${repository}:v1`,
  '    deploy:',
  '      update_config:',
  '        monitor: 3s',
  '',
].join('\n');

const deploy = (extra: Record<string, string>) =>
  runAction(
    {
      ...sshdActionInputs(host),
      strategy: 'swarm',
      'project-dir': PROJECT_DIR,
      'project-name': STACK,
      'env-file': `REGISTRY=${registry.address}\nWEB_PORT=${WEB_PORT}\n`,
      'health-url': `http://${host.address}:${WEB_PORT}/`,
      'health-interval': '1s',
      'health-successes': '2',
      'health-timeout': '90s',
      registry: registry.address,
      'registry-username': registry.username,
      'registry-password': registry.password,
      ...extra,
    },
    { workspace: workspace.path },
  );
const pin = (version: string) => `web=${tagged(version)}\nworker=${tagged(version)}`;
/** `<repo>:<tag>@<registry digest>`, the way Swarm pins a tag it resolved. */
const pinned = (version: string) => `${tagged(version)}@${digests[version]}`;
const serving = async () => (await httpGet(`http://${host.address}:${WEB_PORT}/`)).body.trim();
const running = (service: string) => swarmServiceImages((args) => host.docker(args), STACK, service);

beforeAll(async () => {
  await ensureBaseImages();
  [registry, workspace] = await Promise.all([startRegistry(), tempDir(`${PREFIX}-ws`)]);
  for (const [version, kind] of [
    ['v1', 'ok'],
    ['v2', 'ok'],
    ['v3', 'crash'],
  ] as const) {
    await buildApp(tagged(version), kind, version);
    await pushWithOwnLogin(registry, tagged(version));
    digests[version] = (await registryManifestDigest(registry, repository, version))!;
    await sh('docker', ['image', 'rm', tagged(version)]);
  }
  host = await startModernHost(`skiff-${PREFIX}`, { imageStore: 'containerd', registries: [registry.address] });
  await host.exec(['docker', 'swarm', 'init', '--advertise-addr', host.address], { timeoutMs: 60_000 });
  await writeFile(join(workspace.path, 'compose.yaml'), COMPOSE);
}, 600_000);

afterAll(async () => {
  await host?.exec(['docker', 'swarm', 'leave', '--force'], { timeoutMs: 30_000 }).catch(() => '');
  await host?.stop();
  await Promise.all([registry?.stop(), workspace?.remove()]);
});

describe('strategy: swarm on Docker 28.5, containerd image store', () => {
  it('is a Swarm manager on the modern engine with the containerd store, holding none of the images', async () => {
    expect(Number(host.versions.docker.split('.')[0])).toBeGreaterThanOrEqual(28);
    expect(host.versions.storageDriver).toBe('overlayfs');
    expect((await host.docker(['info', '--format', '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'])).trim()).toBe('active true');
    expect((await host.docker(['image', 'ls', '-q', `${registry.address}/${repository}`])).trim()).toBe('');
  });

  it('deploys v1, then v2: services pinned to the registry digest (not a local one), recorded in the release', async () => {
    const first = await deploy({});
    expect(first.code, first.masked).toBe(0);
    expect(await serving()).toBe('version=v1');

    const second = await deploy({ images: pin('v2') });
    expect(second.code, second.masked).toBe(0);
    expect(second.outputs.status).toBe('deployed');
    expect(JSON.parse(second.outputs.images!)).toEqual({ web: pinned('v2'), worker: pinned('v2') });
    for (const service of ['web', 'worker']) expect(await running(service)).toEqual({ spec: pinned('v2'), containers: [pinned('v2')] });
    expect(await serving()).toBe('version=v2');
    const meta = JSON.parse(await host.exec(['cat', `${PROJECT_DIR}/releases/${second.outputs['release-id']}/meta.json`])) as Record<string, unknown>;
    expect(meta).toMatchObject({ services: { web: pinned('v2'), worker: pinned('v2') }, strategy: 'swarm' });
    expect(second.masked).not.toContain(registry.password);
    // Swarm keeps the login with its services (that is how tasks pull); the server's CLI config holds none.
    expect(await host.exec(['sh', '-c', 'cat /root/.docker/config.json 2>/dev/null || true'])).not.toContain(registry.address);
    expect(await machineEngineSwarmState()).toBe('inactive');
  });

  it('a crashing v3 is rolled back by Swarm and reported rolled-back; v2 serves again', async () => {
    const run = await deploy({ images: pin('v3') });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(JSON.parse(run.outputs.images!)).toEqual({ web: pinned('v2'), worker: pinned('v2') });
    for (const service of ['web', 'worker']) expect((await running(service)).containers).toEqual([pinned('v2')]);
    expect(await serving()).toBe('version=v2');
  });

  it('rollback: previous re-deploys v1 by its digest', async () => {
    const run = await deploy({ rollback: 'previous', 'env-file': '' });
    expect(run.code, run.masked).toBe(0);
    expect(JSON.parse(run.outputs.images!)).toEqual({ web: pinned('v1'), worker: pinned('v1') });
    expect(await serving()).toBe('version=v1');
  });
});
