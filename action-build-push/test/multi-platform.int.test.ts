import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUSYBOX_ARM64,
  MANIFEST_ACCEPT,
  enableAarch64,
  registryManifestDigest,
  runBundle,
  startModernHost,
  startRegistry,
  tempDir,
  type ModernHost,
  type Registry,
  sshdActionInputs,
} from '@skiff/testbed';
import { eventPayload, runBuildPush } from './run-bundle';

/**
 * A real two-platform image: action-build-push builds linux/amd64 and linux/arm64 with buildx's
 * docker driver on an engine with the containerd image store (Docker 28, the modern server), the
 * arm64 RUN really executing as aarch64 under qemu, and pushes one index whose digest is the
 * output; action-deploy then runs that index, pinned by its digest, on a classic-store server.
 */

const MAIN_SHA = '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a';
const REPO = 'skiffmp/app';
const WEB_PORT = 18580;

let registry: Registry;
let builder: ModernHost;
let server: ModernHost;
let qemu: { stop(): Promise<void> };
let context: { path: string; remove: () => Promise<void> };
let dockerConfig: { path: string; remove: () => Promise<void> };
let digest = '';
let imageRef = '';

beforeAll(async () => {
  registry = await startRegistry();
  qemu = await enableAarch64();
  [builder, server] = [
    await startModernHost('skiff-mp-builder', { imageStore: 'containerd', registries: [registry.address] }),
    await startModernHost('skiff-mp-server', { imageStore: 'classic', registries: [registry.address] }),
  ];
  [context, dockerConfig] = await Promise.all([tempDir('skiffmp-context'), tempDir('skiffmp-docker-config')]);
  // No base image can be pulled: each platform gets its own static busybox from the context.
  await copyFile('/bin/busybox', join(context.path, 'busybox-amd64'));
  await copyFile(BUSYBOX_ARM64, join(context.path, 'busybox-arm64'));
  await writeFile(
    join(context.path, 'Dockerfile'),
    [
      'FROM scratch',
      'ARG TARGETARCH',
      'COPY busybox-${TARGETARCH} /bin/busybox',
      // Runs on each platform: under qemu for arm64, so the page says what really ran the build.
      'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /usr/bin /sbin /usr/sbin /www /tmp && /bin/busybox --install -s && echo \\"built-on=$(uname -m)\\" > /www/index.html"]',
      'HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1',
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
      '',
    ].join('\n'),
  );
  await mkdir(join(context.path, 'deploy'), { recursive: true });
  await writeFile(
    join(context.path, 'deploy', 'compose.yaml'),
    ['services:', '  app:', `    image: ${registry.address}/${REPO}:main`, '    ports:', '      - "${WEB_PORT}:8080"', ''].join('\n'),
  );
}, 600_000);

afterAll(async () => {
  await builder?.stop();
  await server?.stop();
  await qemu?.stop();
  await Promise.all([registry?.stop(), context?.remove(), dockerConfig?.remove()]);
});

describe('two platforms, built for real and deployed by the index digest', () => {
  it('builds amd64 and arm64 (its RUN under qemu), pushes one index, and outputs its digest', async () => {
    const run = await runBuildPush(
      { image: `${registry.address}/${REPO}`, context: '.', platforms: 'linux/amd64,linux/arm64', username: registry.username, password: registry.password },
      {
        cwd: context.path,
        event: { name: 'push', ref: 'refs/heads/main', sha: MAIN_SHA, payload: await eventPayload('push-main') },
        env: { DOCKER_HOST: `unix://${builder.socket}`, DOCKER_CONFIG: dockerConfig.path },
      },
    );
    expect(run.code, run.masked).toBe(0);
    digest = run.outputs.digest!;
    imageRef = run.outputs['image-ref']!;
    expect(digest).toBe(await registryManifestDigest(registry, REPO, 'main'));
    expect(imageRef).toBe(`${registry.address}/${REPO}@${digest}`);
    const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64');
    const index = (await (
      await fetch(`http://${registry.address}/v2/${REPO}/manifests/${digest}`, { headers: { Accept: MANIFEST_ACCEPT, Authorization: `Basic ${auth}` } })
    ).json()) as { manifests: { platform?: { architecture: string; os: string } }[] };
    const platforms = index.manifests
      .map((m) => m.platform)
      .filter((p) => p && p.os !== 'unknown')
      .map((p) => `${p!.os}/${p!.architecture}`);
    expect(platforms.sort()).toEqual(['linux/amd64', 'linux/arm64']);
    // What each platform's RUN step saw: the arm64 one ran as aarch64.
    for (const [platform, arch] of [
      ['linux/amd64', 'x86_64'],
      ['linux/arm64', 'aarch64'],
    ] as const) {
      const page = await builder.docker(['--config', dockerConfig.path, 'run', '--rm', '--platform', platform, imageRef, 'cat', '/www/index.html']);
      expect(page.trim()).toBe(`built-on=${arch}`);
    }
  });

  it('action-deploy on a classic-store server pins the service to that index digest', async () => {
    const run = await runBundle('action-deploy', {
      cwd: context.path,
      inputs: {
        ...sshdActionInputs(server),
        'compose-file': 'deploy/compose.yaml',
        'project-dir': '/opt/skiffmp',
        'env-file': `WEB_PORT=${WEB_PORT}\n`,
        images: `app=${imageRef}`,
        registry: registry.address,
        'registry-username': registry.username,
        'registry-password': registry.password,
        'health-url': `http://${server.address}:${WEB_PORT}/`,
        'health-interval': '1s',
      },
      env: { GITHUB_REPOSITORY: 'acme/skiffmp', GITHUB_SHA: MAIN_SHA },
    });
    expect(run.code, run.masked).toBe(0);
    expect(JSON.parse(run.outputs.images!).app).toBe(imageRef);
    expect((await (await fetch(`http://${server.address}:${WEB_PORT}/`)).text()).trim()).toBe('built-on=x86_64');
  });
});
