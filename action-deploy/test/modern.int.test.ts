import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImages,
  pushWithOwnLogin,
  registryManifestDigest,
  sh,
  startModernHost,
  startRegistry,
  tempDir,
  type ModernHost,
  type Registry,
  sshdActionInputs,
  sshdConnectOptions,
} from '@skiff/testbed';
import { SshConnection } from '@skiff/ssh';
import { buildApp, httpGet, runAction, startAction } from './helpers';
import { buildProxy, requestLoop, rollingCompose } from './rolling-fixtures';
import { expectEventsWakeTheGate } from './container-events-check';

/**
 * The server users have today (Docker 28.5, Compose 2.40, containerd 2.1; see
 * packages/testbed/src/modern-host.ts), with the classic image store and with the containerd
 * image store that Docker 29 makes the default: a proxy that depends_on a healthy backend built
 * on the server, the other image from a private registry, pinned by digest, rolled back by it.
 * Image digests, RepoDigests and `compose config` differ between the stores; the pins must not.
 */

const WEB_PORT = 18480;
const PROXY_PORT = 18481;
const PROXY_IMAGE = 'skiffmodern-proxy:nginx';

beforeAll(async () => {
  await ensureBaseImages();
  await buildProxy(PROXY_IMAGE);
}, 300_000);
afterAll(async () => {
  await sh('docker', ['image', 'rm', '-f', PROXY_IMAGE]).catch(() => '');
});

describe.each(['classic', 'containerd'] as const)('the modern server, %s image store', (imageStore) => {
  const project = `skiffmodern${imageStore}`;
  let host: ModernHost;
  let registry: Registry;
  let workspace: { path: string; remove: () => Promise<void> };
  const repository = `skiffmodern/${imageStore}-proxy`;
  const image = (tag: string) => `${registry.address}/${repository}:${tag}`;
  const digests: Record<string, string> = {};

  const deploy = (extra: Record<string, string> = {}) =>
    runAction(
      {
        ...sshdActionInputs(host),
        'project-dir': `/opt/${project}`,
        'project-name': project,
        'env-file': `WEB_PORT=${WEB_PORT}\nGREETING=hello\n`,
        images: `proxy=${image('v1')}`,
        registry: registry.address,
        'registry-username': registry.username,
        'registry-password': registry.password,
        'health-url': `http://${host.address}:${WEB_PORT}/`,
        'health-interval': '1s',
        'health-timeout': '60s',
        ...extra,
      },
      { workspace: workspace.path },
    );
  const served = async () => (await httpGet(`http://${host.address}:${WEB_PORT}/`)).body.trim();
  /** The reference the service's container was created from (`docker ps` shows it without the digest). */
  const running = async (service: string) => {
    const id = (
      await host.docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`, '--filter', `label=com.docker.compose.service=${service}`])
    ).trim();
    return (await host.docker(['inspect', '--format', '{{.Config.Image}}', id])).trim();
  };

  beforeAll(async () => {
    await ensureBaseImages();
    [registry, workspace] = await Promise.all([startRegistry(), tempDir(`skiffmodern-${imageStore}-ws`)]);
    host = await startModernHost(`skiff-modern-${imageStore}`, { imageStore, registries: [registry.address] });
    // The backend is built on the server FROM the test bed's base image, which nothing may pull from the internet.
    await host.loadImage('skiff-testbed/busybox:1');
    for (const tag of ['v1', 'v2']) {
      await buildApp(image(tag), 'ok', `proxy-${tag}`, { finishInFlightSeconds: 1 });
      await pushWithOwnLogin(registry, image(tag));
      digests[tag] = (await registryManifestDigest(registry, repository, tag))!;
      await sh('docker', ['image', 'rm', image(tag)]);
    }
    await mkdir(join(workspace.path, 'backend', 'www'), { recursive: true });
    await writeFile(join(workspace.path, 'backend', 'www', 'index.html'), 'backend\n');
    await writeFile(
      join(workspace.path, 'backend', 'Dockerfile'),
      [
        'FROM skiff-testbed/busybox:1',
        'COPY www /www',
        'HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1',
        `CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]`,
        '',
      ].join('\n'),
    );
    await writeFile(
      join(workspace.path, 'compose.yaml'),
      [
        'services:',
        '  backend:',
        '    build: ./backend',
        '    env_file: .env',
        '  proxy:',
        `    image: ${image('latest')}`,
        '    depends_on:',
        '      backend:',
        '        condition: service_healthy',
        '    ports:',
        '      - "${WEB_PORT}:8080"',
        '',
      ].join('\n'),
    );
  }, 600_000);

  afterAll(async () => {
    await host?.stop();
    await Promise.all([registry?.stop(), workspace?.remove()]);
  });

  it("is the modern engine, not the machine's: Docker 28 or later, Compose 2.30 or later, the asked-for image store", async () => {
    // Debian sid moves on: a fresh provisioning may bring a newer engine, never an older one.
    const major = (version: string) => Number(version.split('.')[0]);
    expect(major(host.versions.docker)).toBeGreaterThanOrEqual(28);
    expect(Number(host.versions.compose.split('.')[1])).toBeGreaterThanOrEqual(30);
    expect(host.versions.containerd).toMatch(/ [2-9]\.\d+\./);
    expect(host.versions.storageDriver).toBe(imageStore === 'containerd' ? 'overlayfs' : 'overlay2');
    expect(major((await sh('docker', ['version', '--format', '{{.Server.Version}}'])).trim())).toBeLessThan(28);
  });

  it("the health gate's watch: a watched container's health change and exit wake it, another's do not, nothing left running", async () => {
    const connection = await SshConnection.connect(sshdConnectOptions(host));
    try {
      await expectEventsWakeTheGate(connection, (args) => host.docker(args), `skiffmodern-events-${imageStore}`);
    } finally {
      await connection.close();
    }
  }, 120_000);

  it('deploys: the backend built on the server, the proxy pulled with the login and pinned to the registry digest', async () => {
    const run = await deploy();
    expect(run.code, run.masked).toBe(0);
    expect(await served()).toBe('version=proxy-v1');
    const images = JSON.parse(run.outputs.images!) as Record<string, string>;
    expect(images.proxy).toBe(`${registry.address}/${repository}@${digests.v1}`);
    expect(images.backend).toBe(`${project}-backend:${run.outputs['release-id']}`);
    expect(await running('proxy')).toBe(images.proxy);
    // Everything ran on the modern server: the machine's engine has none of it.
    expect((await sh('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`])).trim()).toBe('');
  });

  // On the containerd store only: the classic store on 28.5 pulls and names images as 20.10 does,
  // where rolling under load runs too (rolling.int.test.ts).
  if (imageStore === 'containerd')
    it('strategy: rolling under load: 2,000+ requests through nginx, none failed, v1 to v2', async () => {
      await host.loadImage(PROXY_IMAGE);
      await mkdir(join(workspace.path, 'rolling'), { recursive: true });
      await writeFile(join(workspace.path, 'rolling', 'compose.yaml'), rollingCompose(image('v1'), PROXY_IMAGE, 2, '0.0.0.0'));
      const rolling = (extra: Record<string, string>) => ({
        ...sshdActionInputs(host),
        strategy: 'rolling',
        'compose-file': 'rolling/compose.yaml',
        'project-dir': `/opt/${project}-rolling`,
        'project-name': `${project}-rolling`,
        'env-file': `PROXY_PORT=${PROXY_PORT}\n`,
        registry: registry.address,
        'registry-username': registry.username,
        'registry-password': registry.password,
        'health-url': `http://${host.address}:${PROXY_PORT}/`,
        'health-interval': '1s',
        'health-timeout': '30s',
        'rolling-drain': '2s',
        ...extra,
      });
      const first = await runAction(rolling({}), { workspace: workspace.path });
      expect(first.code, first.masked).toBe(0);
      const started = startAction(rolling({ images: `web=${image('v2')}` }), { workspace: workspace.path });
      const [loop, run] = await Promise.all([
        requestLoop(`http://${host.address}:${PROXY_PORT}/`, { min: 2000, max: 100_000, until: started.done, workers: 2 }),
        started.done,
      ]);
      expect(run.code, run.masked).toBe(0);
      expect(run.stdout).toContain('Rolling deploy: rolling web (2 old → 2 new); unchanged: proxy');
      expect(loop.during).toBeGreaterThan(500);
      expect(loop.failed, loop.failures.join('\n')).toBe(0);
      expect(loop.versions.at(-1)).toBe('version=proxy-v2');
      expect(JSON.parse(run.outputs.images!).web).toBe(`${registry.address}/${repository}@${digests.v2}`);
    });

  it('updates to v2 and rolls back to v1 by digest', async () => {
    const second = await deploy({ images: `proxy=${image('v2')}` });
    expect(second.code, second.masked).toBe(0);
    expect(await served()).toBe('version=proxy-v2');
    expect(JSON.parse(second.outputs.images!).proxy).toBe(`${registry.address}/${repository}@${digests.v2}`);

    const back = await deploy({ rollback: 'previous', images: '', 'env-file': '', 'registry-username': '', 'registry-password': '' });
    expect(back.code, back.masked).toBe(0);
    expect(await served()).toBe('version=proxy-v1');
    expect(await running('proxy')).toBe(`${registry.address}/${repository}@${digests.v1}`);
  });

  it('prunes releases beyond keep-releases with the images they built on the server (by release tag); the running image stays', async () => {
    const run = await deploy({ 'keep-releases': '1' });
    expect(run.code, run.masked).toBe(0);
    const kept = run.outputs['release-id']!;
    expect(await served()).toBe('version=proxy-v1');
    expect((await host.exec(['ls', `/opt/${project}/releases`])).trim()).toBe(kept);
    const tags = (await host.docker(['image', 'ls', '--format', '{{.Tag}}', `${project}-backend`])).trim().split('\n').filter(Boolean);
    expect(tags).toEqual([kept]);
    // v1 is what the kept release runs (v2 still runs in the rolling project beside it, so it stays too).
    expect(await host.docker(['image', 'inspect', '--format', '{{.Id}}', `${registry.address}/${repository}@${digests.v1}`])).toMatch(/sha256:/);
  });
});
