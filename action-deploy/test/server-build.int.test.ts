import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
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
import { buildApp, httpGet, removeProject, runAction } from './helpers';

/**
 * A backend with `build: ./backend` next to a proxy image from a private registry: the backend is
 * built on the server from the context shipped with each release (with 8 MB of assets, so the
 * context is not a toy), and every release keeps its own image.
 */

const PROJECT = `skiffdeploybuild${process.pid}`;

let server: SshdServer;
let registry: Registry;
let remoteRoot: { path: string; remove: () => Promise<void> };
let workspace: { path: string; remove: () => Promise<void> };
let projectDir: string;
let webPort: number;
let proxyPort: number;
const proxyImage = () => `${registry.address}/skiffdeploybuild-proxy:v1`;
let commits = 0;

const deploy = (extra: Record<string, string> = {}) =>
  runAction(
    {
      ...sshdActionInputs(server),
      'project-dir': projectDir,
      'project-name': PROJECT,
      'env-file': `WEB_PORT=${webPort}\nPROXY_PORT=${proxyPort}\n`,
      images: `proxy=${proxyImage()}`,
      'keep-releases': '2',
      'health-url': `http://127.0.0.1:${webPort}/`,
      'health-interval': '1s',
      'health-timeout': '30s',
      registry: registry.address,
      'registry-username': registry.username,
      'registry-password': registry.password,
      ...extra,
    },
    { workspace: workspace.path, env: { GITHUB_SHA: `${String(++commits).repeat(7)}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa`.slice(0, 40) } },
  );

const served = async () => (await httpGet(`http://127.0.0.1:${webPort}/`)).body.trim();
const backendImage = async () => {
  const id = (
    await sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--filter', 'label=com.docker.compose.service=backend'])
  ).trim();
  return (await sh('docker', ['inspect', '--format', '{{.Config.Image}} {{.Image}}', id])).trim().split(' ') as [string, string];
};
const builtTags = async () =>
  (await sh('docker', ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}', `${PROJECT}-backend`])).split('\n').filter(Boolean).sort();

async function writeBackend(version: string, dockerfileExtra = ''): Promise<void> {
  await mkdir(join(workspace.path, 'backend', 'www'), { recursive: true });
  await writeFile(join(workspace.path, 'backend', 'www', 'index.html'), `version=${version}\n`);
  await writeFile(
    join(workspace.path, 'backend', 'Dockerfile'),
    [
      'FROM skiff-testbed/busybox:1',
      'COPY www /www',
      dockerfileExtra,
      'HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/ || exit 1',
      `CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]`,
      '',
    ].join('\n'),
  );
}

beforeAll(async () => {
  await ensureBaseImages();
  [server, registry, remoteRoot, workspace] = await Promise.all([
    startSshd(),
    startRegistry(),
    tempDir('skiffdeploybuild-remote'),
    tempDir('skiffdeploybuild-ws'),
  ]);
  projectDir = join(remoteRoot.path, 'app');
  [webPort, proxyPort] = [await freePort(), await freePort()];
  await buildApp(proxyImage(), 'ok', 'proxy');
  await pushWithOwnLogin(registry, proxyImage());
  await writeBackend('b1');
  // Assets that make the context a real upload (and a .git folder that must not travel).
  await writeFile(join(workspace.path, 'backend', 'www', 'assets.bin'), randomBytes(8 * 1024 * 1024));
  await mkdir(join(workspace.path, 'backend', '.git'), { recursive: true });
  await writeFile(join(workspace.path, 'backend', '.git', 'HEAD'), 'ref: refs/heads/main\n');
  await writeFile(
    join(workspace.path, 'compose.yaml'),
    [
      'services:',
      '  backend:',
      '    build: ./backend',
      '    ports:',
      '      - "127.0.0.1:${WEB_PORT}:8080"',
      '  proxy:',
      `    image: ${registry.address}/skiffdeploybuild-proxy:latest`,
      '    depends_on:',
      '      backend:',
      '        condition: service_healthy',
      '    ports:',
      '      - "127.0.0.1:${PROXY_PORT}:8080"',
      '',
    ].join('\n'),
  );
}, 600_000);

afterAll(async () => {
  await removeProject(PROJECT).catch(() => undefined);
  for (const tag of [...(await builtTags().catch(() => [])), proxyImage()]) await sh('docker', ['image', 'rm', '-f', tag]).catch(() => '');
  await Promise.all([server?.stop(), registry?.stop(), remoteRoot?.remove(), workspace?.remove()]);
});

describe('build: services are built on the server, one image per release', () => {
  let firstImage: [string, string];
  let firstRelease: string;

  it('the first deploy ships the context, builds it and serves it; the image is named after the release', async () => {
    const run = await deploy();
    expect(run.code, run.masked).toBe(0);
    expect(await served()).toBe('version=b1');
    firstRelease = run.outputs['release-id']!;
    firstImage = await backendImage();
    expect(firstImage[0]).toBe(`${PROJECT}-backend:${firstRelease}`);
    expect(JSON.parse(run.outputs.images!).backend).toBe(`${PROJECT}-backend:${firstRelease}`);
    expect(run.stdout).not.toMatch(/Not pinned to a digest/);
    const context = join(projectDir, 'releases', firstRelease, 'build', 'backend');
    expect((await readdir(context)).sort()).toEqual(['Dockerfile', 'www']);
    expect((await readFile(join(context, 'www', 'assets.bin'))).length).toBe(8 * 1024 * 1024);
  });

  it('changed source is rebuilt and served (up -d used to keep the stale image and report deployed)', async () => {
    await writeBackend('b2');
    const run = await deploy();
    expect(run.code, run.masked).toBe(0);
    expect(await served()).toBe('version=b2');
    expect((await backendImage())[0]).toBe(`${PROJECT}-backend:${run.outputs['release-id']}`);
  });

  it('rollback: previous starts exactly the image the earlier release built, without building', async () => {
    const run = await deploy({ rollback: 'previous', images: '', 'env-file': '', 'registry-username': '', 'registry-password': '' });
    expect(run.code, run.masked).toBe(0);
    expect(await served()).toBe('version=b1');
    expect(await backendImage()).toEqual(firstImage);
  });

  it('a build that fails stops the deploy before the switch, with the build output, and the running release keeps serving', async () => {
    await writeBackend('b3', 'RUN echo "the build broke here" >&2; exit 3');
    const run = await deploy();
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.stdout).toMatch(/Building images on the server failed, so nothing was switched/);
    expect(run.stdout).toMatch(/the build broke here/);
    expect(await served()).toBe('version=b1');
  });

  it('build-on-server: false refuses before anything changes, saying how to build instead', async () => {
    const releases = await readdir(join(projectDir, 'releases'));
    const run = await deploy({ 'build-on-server': 'false' });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /Input "build-on-server" is false, and backend \(build: \.\/backend\) has no "images" line: build and push it with action-build-push and pass images: backend=<its image-ref output>/,
    );
    expect(await readdir(join(projectDir, 'releases'))).toEqual(releases);
  });

  it('pruned releases take their images with them; kept ones keep theirs', async () => {
    await writeBackend('b4');
    const run = await deploy();
    expect(run.code, run.masked).toBe(0);
    expect(await served()).toBe('version=b4');
    const kept = (await readdir(join(projectDir, 'releases'))).sort();
    expect(kept).toHaveLength(2);
    const tags = await builtTags();
    expect(tags).toEqual(kept.filter((id) => tags.includes(`${PROJECT}-backend:${id}`)).map((id) => `${PROJECT}-backend:${id}`));
    expect(tags).toContain(`${PROJECT}-backend:${run.outputs['release-id']}`);
    expect(tags).not.toContain(firstImage[0]);
  });
});
