import { readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBaseImages, machineEngineSwarmState, sh, startSwarmHost, tempDir, type SwarmHost } from '@skiff/testbed';
import { auditLines, buildApp, expectPlanCoversRun, httpGet, runAction, type ActionRun, swarmServiceImages } from './helpers';

/**
 * strategy: swarm against a real single-node Swarm: a second dockerd in a network namespace made
 * a manager, its own registry, and an sshd there whose docker commands reach that engine (see
 * packages/testbed/src/swarm-host.ts). The machine's shared engine never joins a swarm.
 * The registry requires a login and the swarm's engine holds none of the images: every deploy
 * pulls through the registry-username/registry-password inputs.
 * Two services from the same tiny image (busybox httpd with a HEALTHCHECK): `web` publishes a
 * host-mode port (so it updates stop-first) and is checked by health-url from the runner;
 * `worker` publishes nothing and updates start-first.
 */

const PREFIX = 'swarmskiff';
const STACK = `${PREFIX}-shop`;
const WEB_PORT = 18080;
let swarm: SwarmHost;
let remote: { path: string; remove: () => Promise<void> };
let workspace: { path: string; remove: () => Promise<void> };
const digests: Record<string, string> = {};
const repository = () => `${swarm.registry}/${PREFIX}/app`;

const COMPOSE = [
  'services:',
  '  web:',
  `    image: ${'${REGISTRY}'}/${PREFIX}/app:v1`,
  '    environment:',
  '      SECRET_TOKEN: ${SECRET_TOKEN}',
  '    ports:',
  '      - target: 8080',
  '        published: ${WEB_PORT}',
  '        mode: host',
  '  worker:',
  `    image: ${'${REGISTRY}'}/${PREFIX}/app:v1`,
  '    deploy:',
  '      replicas: 1',
  '      update_config:',
  '        monitor: 3s',
  '',
].join('\n');

const inputs = (extra: Record<string, string>) => ({
  strategy: 'swarm',
  host: swarm.address,
  username: 'root',
  key: swarm.sshd.privateKey,
  'known-hosts': swarm.sshd.knownHostsLine,
  'project-dir': join(remote.path, 'shop'),
  'project-name': STACK,
  'env-file': `REGISTRY=${swarm.registry}\nWEB_PORT=${WEB_PORT}\nSECRET_TOKEN=swarm-secret-value\n`,
  'health-url': `http://${swarm.address}:${WEB_PORT}/`,
  'health-interval': '1s',
  'health-successes': '2',
  'health-timeout': '90s',
  registry: swarm.registry,
  'registry-username': swarm.registryLogin!.username,
  'registry-password': swarm.registryLogin!.password,
  ...extra,
});
const deploy = (extra: Record<string, string>): Promise<ActionRun> => runAction(inputs(extra), { workspace: workspace.path });
const pin = (version: string) => `web=${repository()}:${version}\nworker=${repository()}:${version}`;

const running = (service: string) => swarmServiceImages((args) => swarm.docker(args), STACK, service);
const serving = async () => (await httpGet(`http://${swarm.address}:${WEB_PORT}/`)).body.trim();

beforeAll(async () => {
  await ensureBaseImages();
  [swarm, remote, workspace] = await Promise.all([
    startSwarmHost(`${PREFIX}-${process.pid}`, { registryAuth: true }),
    tempDir(`${PREFIX}-remote`),
    tempDir(`${PREFIX}-ws`),
  ]);
  for (const [version, kind] of [
    ['v1', 'ok'],
    ['v2', 'ok'],
    ['v3', 'crash'],
    ['v4', 'ok'],
  ] as const) {
    const local = `${PREFIX}-app:${version}`;
    await buildApp(local, kind, version);
    digests[version] = await swarm.pushImage(local, `${PREFIX}/app:${version}`);
    await sh('docker', ['image', 'rm', local]).catch(() => '');
  }
  await writeFile(join(workspace.path, 'compose.yaml'), COMPOSE);
}, 300_000);

afterAll(async () => {
  await swarm?.stop();
  await Promise.all([remote?.remove(), workspace?.remove()]);
});

describe('strategy: swarm', () => {
  let v2Run: ActionRun | undefined;

  it('deploys v1 as a stack, then a healthy v2 update converges: the services run the new digest, recorded in the release', async () => {
    const first = await deploy({});
    expect(first.code, first.masked).toBe(0);
    expect(await serving()).toBe('version=v1');

    const second = await deploy({ images: pin('v2') });
    v2Run = second;
    expect(second.code, second.masked).toBe(0);
    expect(second.outputs.status).toBe('deployed');
    expect(second.outputs['rolled-back']).toBe('false');
    expect(second.outputs['previous-release-id']).toBe(first.outputs['release-id']);
    const images = JSON.parse(second.outputs.images!) as Record<string, string>;
    // Swarm pinned the tag to the registry digest; the output, meta.json and the running containers agree.
    const v2 = `${repository()}:v2@${digests.v2!.split('@')[1]}`;
    expect(images).toEqual({ web: v2, worker: v2 });
    for (const service of ['web', 'worker']) expect(await running(service)).toEqual({ spec: v2, containers: [v2] });
    expect(await serving()).toBe('version=v2');

    const dir = join(remote.path, 'shop');
    const id = second.outputs['release-id']!;
    expect(await readlink(join(dir, 'current'))).toBe(`releases/${id}`);
    const meta = JSON.parse(await readFile(join(dir, 'releases', id, 'meta.json'), 'utf8')) as Record<string, unknown>;
    expect(meta).toMatchObject({ services: { web: v2, worker: v2 }, strategy: 'swarm', stackFile: 'skiff-stack.yml' });
    // The stack file kept the user's monitor and filled in only what was unset; host-mode web updates stop-first.
    const stackFile = await readFile(join(dir, 'releases', id, 'skiff-stack.yml'), 'utf8');
    expect(stackFile).toContain(`web:\n    image: ${v2}\n    deploy:\n      update_config:\n        order: stop-first\n        failure_action: rollback`);
    expect(stackFile).toContain(`worker:\n    image: ${v2}\n    deploy:\n      update_config:\n        order: start-first\n        failure_action: rollback`);
    const specUpdate = JSON.parse(await swarm.docker(['service', 'inspect', '--format', '{{json .Spec.UpdateConfig}}', `${STACK}_worker`])) as Record<
      string,
      unknown
    >;
    expect(specUpdate).toMatchObject({ Order: 'start-first', FailureAction: 'rollback', Monitor: 3_000_000_000 });
    expect((await auditLines(dir)).map((e) => [e.event, e.status])).toEqual([
      ['deploy', 'deployed'],
      ['deploy', 'deployed'],
    ]);
    expect(second.masked).not.toContain('swarm-secret-value');
    // The machine's shared engine was never made a swarm node.
    expect(await machineEngineSwarmState()).toBe('inactive');
  });

  it("the dry run's plan lists every remote step the v2 update took, in order (the plan is the same story, recorded)", async () => {
    const plan = await deploy({ images: pin('v2'), 'dry-run': 'true' });
    expect(plan.code, plan.masked).toBe(0);
    expectPlanCoversRun(plan.outputs.plan!, v2Run!);
  });

  it('without the registry login the new image cannot be pulled: not deployed, v2 keeps serving; with it, no login is left on the server', async () => {
    // The pull never succeeds: a short gate ends it (the default waits its whole 90 s for nothing).
    const run = await deploy({ images: pin('v4'), 'registry-username': '', 'registry-password': '', 'health-timeout': '20s' });
    expect(run.code).toBe(1);
    expect(run.outputs.status).not.toBe('deployed');
    expect(await serving()).toBe('version=v2');
    // The successful deploys before logged in for their stack deploy only.
    expect(await readFile('/root/.docker/config.json', 'utf8').catch(() => '')).not.toContain(swarm.registry);
    expect((await sh('sh', ['-c', 'ls -d /tmp/skiff-docker-config.* 2>/dev/null || true'])).trim()).toBe('');
    expect(run.masked).not.toContain(swarm.registryLogin!.password);
  });

  it('a failing update (v3 exits at once) is rolled back by Swarm and reported rolled-back; v2 runs again', async () => {
    const before = await auditLines(join(remote.path, 'shop'));
    const current = await readlink(join(remote.path, 'shop', 'current'));
    const run = await deploy({ images: pin('v3') });
    expect(run.code).toBe(1);
    expect(run.outputs.status).toBe('rolled-back');
    expect(run.outputs['rolled-back']).toBe('true');
    expect(run.errors.join('\n')).toMatch(
      /Swarm rolled back its update of web, worker \((web|worker): update rolled back due to failure or early termination of task \w+/,
    );
    expect(run.masked).toMatch(/Swarm rolled the update back/);
    const v2 = `${repository()}:v2@${digests.v2!.split('@')[1]}`;
    expect(JSON.parse(run.outputs.images!)).toEqual({ web: v2, worker: v2 });
    for (const service of ['web', 'worker']) expect((await running(service)).containers).toEqual([v2]);
    expect(await serving()).toBe('version=v2');
    expect(await readlink(join(remote.path, 'shop', 'current'))).toBe(current);
    expect(run.summary).toContain('docker stack ps');
    const after = await auditLines(join(remote.path, 'shop'));
    expect(after.slice(before.length).map((e) => [e.event, e.status])).toEqual([['rollback', 'rolled-back']]);
  });

  it('rollback: previous re-deploys the kept v1 release, pinned to its digests', async () => {
    const run = await deploy({ rollback: 'previous', 'env-file': '' });
    expect(run.code, run.masked).toBe(0);
    const v1 = `${repository()}:v1@${digests.v1!.split('@')[1]}`;
    expect(JSON.parse(run.outputs.images!)).toEqual({ web: v1, worker: v1 });
    expect(await serving()).toBe('version=v1');
  });

  it('refuses a server whose engine is not in a swarm, before anything is uploaded', async () => {
    await swarm.docker(['swarm', 'leave', '--force']);
    try {
      const run = await deploy({ 'project-dir': join(remote.path, 'not-a-swarm') });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(/strategy: swarm needs a Swarm.*Swarm state: inactive.*docker swarm init/);
      await expect(readFile(join(remote.path, 'not-a-swarm', 'audit.log'), 'utf8')).rejects.toThrow();
      const releases = await sh('find', [join(remote.path, 'not-a-swarm'), '-name', 'meta.json']).catch(() => '');
      expect(releases.trim()).toBe('');
    } finally {
      await swarm.docker(['swarm', 'init', '--advertise-addr', swarm.address]).catch(() => '');
    }
  });
});
