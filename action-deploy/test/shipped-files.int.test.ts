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
import { auditLines, buildApp, httpGet, removeProject, runAction } from './helpers';

/**
 * The `files` input: configuration the compose file bind-mounts from beside itself (a file, a
 * folder, a top-level `configs:` file), shipped with each release. The repository keeps its
 * compose file in a folder (deploy/), as many do, so "beside it" is not the repository root.
 */

const PROJECT = `skiffdeployfiles${process.pid}`;

let server: SshdServer;
let registry: Registry;
let remoteRoot: { path: string; remove: () => Promise<void> };
let workspace: { path: string; remove: () => Promise<void> };
let projectDir: string;
let webPort: number;
const image = (tag: string) => `${registry.address}/skiffdeployfiles:${tag}`;
const FILES = 'deploy/site/notice.txt\ndeploy/conf\ndeploy/banner.*';

const deploy = (extra: Record<string, string> = {}) =>
  runAction(
    {
      ...sshdActionInputs(server),
      'project-dir': projectDir,
      'project-name': PROJECT,
      'compose-file': 'deploy/compose.yaml',
      'env-file': `WEB_PORT=${webPort}\n`,
      images: `web=${image('v1')}\nworker=${image('v1')}`,
      files: FILES,
      'keep-releases': '2',
      'health-url': `http://127.0.0.1:${webPort}/`,
      'health-interval': '1s',
      'health-timeout': '30s',
      registry: registry.address,
      'registry-username': registry.username,
      'registry-password': registry.password,
      ...extra,
    },
    { workspace: workspace.path },
  );

const served = async (path: string) => (await httpGet(`http://127.0.0.1:${webPort}/${path}`)).body.trim();
const containerId = async (service: string) =>
  (
    await sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--filter', `label=com.docker.compose.service=${service}`])
  ).trim();
const store = () => readdir(join(projectDir, '.skiff', 'files')).then((names) => names.sort());

async function writeRepo(files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(workspace.path, path, '..'), { recursive: true });
    await writeFile(join(workspace.path, path), content);
  }
}

beforeAll(async () => {
  await ensureBaseImages();
  [server, registry, remoteRoot, workspace] = await Promise.all([
    startSshd(),
    startRegistry(),
    tempDir('skiffdeployfiles-remote'),
    tempDir('skiffdeployfiles-ws'),
  ]);
  projectDir = join(remoteRoot.path, 'site');
  webPort = await freePort();
  await buildApp(image('v1'), 'ok', 'v1');
  await pushWithOwnLogin(registry, image('v1'));
  await writeRepo({
    'deploy/compose.yaml': [
      'services:',
      '  web:',
      `    image: ${image('v1')}`,
      '    ports:',
      '      - "127.0.0.1:${WEB_PORT}:8080"',
      '    volumes:',
      '      - ./site/notice.txt:/www/notice.txt:ro',
      '      - type: bind',
      '        source: ./conf',
      '        target: /www/conf',
      '        read_only: true',
      '    configs:',
      '      - source: banner',
      '        target: /www/banner.txt',
      '  worker:',
      `    image: ${image('v1')}`,
      '    volumes:',
      // Data beside the config: not shipped, kept across releases.
      '      - ./data:/data',
      'configs:',
      '  banner:',
      '    file: ./banner.txt',
      '',
    ].join('\n'),
    'deploy/site/notice.txt': 'notice one\n',
    'deploy/conf/a.txt': 'a one\n',
    'deploy/conf/nested/b.txt': 'b one\n',
    'deploy/banner.txt': 'banner one\n',
  });
}, 600_000);

afterAll(async () => {
  await removeProject(PROJECT).catch(() => undefined);
  await sh('docker', ['image', 'rm', '-f', image('v1')]).catch(() => '');
  await Promise.all([server?.stop(), registry?.stop(), remoteRoot?.remove(), workspace?.remove()]);
});

describe('files: configuration the compose file mounts, shipped with each release', () => {
  it('a file, a folder and a configs: file reach the service where the compose file expects them', async () => {
    const run = await deploy();
    expect(run.code, run.masked).toBe(0);
    expect(await served('notice.txt')).toBe('notice one');
    expect(await served('conf/a.txt')).toBe('a one');
    expect(await served('conf/nested/b.txt')).toBe('b one');
    expect(await served('banner.txt')).toBe('banner one');
    // One store entry per mount; nothing of the config lands where data lives.
    expect(await store()).toHaveLength(3);
    expect(await readdir(projectDir)).not.toContain('conf');
  });

  it('nothing changed: no service is recreated', async () => {
    const [web, worker] = [await containerId('web'), await containerId('worker')];
    const run = await deploy();
    expect(run.code, run.masked).toBe(0);
    expect([await containerId('web'), await containerId('worker')]).toEqual([web, worker]);
    expect(await store()).toHaveLength(3);
  });

  it('a changed file in the folder recreates the service that mounts it, and only that one', async () => {
    const [web, worker] = [await containerId('web'), await containerId('worker')];
    await writeRepo({ 'deploy/conf/nested/b.txt': 'b two\n', 'deploy/banner.txt': 'banner two\n' });
    const run = await deploy();
    expect(run.code, run.masked).toBe(0);
    expect(await served('conf/nested/b.txt')).toBe('b two');
    expect(await served('banner.txt')).toBe('banner two');
    expect(await served('notice.txt')).toBe('notice one');
    expect(await containerId('web')).not.toBe(web);
    expect(await containerId('worker')).toBe(worker);
  });

  it('rollback: previous brings back the files that release shipped', async () => {
    const run = await deploy({ rollback: 'previous', images: '', files: '', 'env-file': '', 'registry-username': '', 'registry-password': '' });
    expect(run.code, run.masked).toBe(0);
    expect(await served('conf/nested/b.txt')).toBe('b one');
    expect(await served('banner.txt')).toBe('banner one');
    expect((await auditLines(projectDir)).at(-1)).toMatchObject({ event: 'rollback', status: 'deployed' });
  });

  it('pruning drops the store entries only pruned releases used', async () => {
    await writeRepo({ 'deploy/site/notice.txt': 'notice three\n' });
    const run = await deploy();
    expect(run.code, run.masked).toBe(0);
    expect(await served('notice.txt')).toBe('notice three');
    const kept = await readdir(join(projectDir, 'releases'));
    expect(kept).toHaveLength(2);
    const referenced = new Set<string>();
    for (const release of kept) {
      const override = await readFile(join(projectDir, 'releases', release, 'files.override.json'), 'utf8');
      for (const match of override.matchAll(/\.skiff\/files\/([0-9a-f]+)\//g)) referenced.add(match[1]!);
    }
    expect(await store()).toEqual([...referenced].sort());
  });

  it('a shipped file that nothing mounts fails the deploy before the switch, naming the input and the path; the running release keeps serving', async () => {
    await writeRepo({ 'deploy/stray.conf': 'nobody reads me\n' });
    const run = await deploy({ files: `${FILES}\ndeploy/stray.conf` });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('failed');
    expect(run.stdout).toMatch(
      /Input "files": stray\.conf \(Compose would find it at \S+\/site\/stray\.conf\) is not read by any bind mount, config or secret/,
    );
    expect(await served('notice.txt')).toBe('notice three');
  });
});
