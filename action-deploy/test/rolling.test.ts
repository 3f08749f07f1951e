import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PlanRecorder, script } from '@skiff/shell';
import { runContext } from '../src/run-context';
import { readDeployInputs } from '../src/inputs';
import { planDeploy } from '../src/plan';
import { withFakeDocker } from './fake-docker';
import {
  configHashes,
  inspectContainers,
  listContainers,
  scaleUp,
  scaleUpThenList,
  LISTED_MARK,
  startMissing,
  stopAndRemove,
  type ComposeProject,
  type DockerCli,
} from '../src/compose-commands';
import { readRollingInputs } from '../src/strategies/rolling/inputs';
import {
  drainLeft,
  hashesIfOnlyImagesChanged,
  leftForUp,
  newContainers,
  parseConfigHashes,
  planRoll,
  scalesFor,
  serviceShapes,
  whyNotRolled,
  withRolled,
  type ServiceShape,
} from '../src/strategies/rolling/roll-plan';
import { parseContainerRows, type ContainerRow } from '../src/compose-commands';
import { AFTER_UP_MARK, releaseCheckSuccesses, upBetweenLists } from '../src/release-check';

const V2: DockerCli = { compose: 'v2', sudo: false };
const project: ComposeProject = {
  name: 'shop',
  directory: '/opt/my shop',
  files: ['/opt/my shop/releases/r2/compose.yaml', '/opt/my shop/releases/r2/images.lock.json'],
};
const composeLine =
  "docker compose --project-name shop --project-directory '/opt/my shop' -f '/opt/my shop/releases/r2/compose.yaml' -f '/opt/my shop/releases/r2/images.lock.json'";

describe('rolling builders', () => {
  it('reads the configuration hashes Compose compares with the containers, from the project directory', () => {
    expect(script(configHashes(V2, project))).toBe(['set -euo pipefail', "cd '/opt/my shop'", `${composeLine} config --hash '*'`].join('\n'));
  });

  it('lists the containers after a scale-up in the same script, also when the scale-up failed, and keeps its exit status', async () => {
    // The fake compose creates a container, prints to stdout and stderr, then exits UP_EXIT.
    const fake =
      'if [ "$1" = ps ]; then cat "$(dirname "$0")/rows"; exit "${PS_EXIT:-0}"; fi\necho "compose says hello"; echo "id2\tweb" >> "$(dirname "$0")/rows"; exit "${UP_EXIT:-0}"\n';
    await withFakeDocker(fake, async (run, dir) => {
      const commands = scaleUpThenList(V2, { ...project, directory: dir }, 'shop', { web: 2 });
      await writeFile(join(dir, 'rows'), 'id1\tweb\n');
      const ok = run(commands);
      expect([ok.status, ok.stdout]).toEqual([0, `id1\tweb\nid2\tweb\n${LISTED_MARK}\n`]);
      expect(ok.stderr).toContain('compose says hello');
      await writeFile(join(dir, 'rows'), 'id1\tweb\n');
      const failed = run(commands, { UP_EXIT: '17' });
      expect([failed.status, failed.stdout]).toEqual([17, `id1\tweb\nid2\tweb\n${LISTED_MARK}\n`]);
      // A list that fails leaves no mark: the caller reads it again on its own.
      const unlisted = run(commands, { UP_EXIT: '17', PS_EXIT: '3' });
      expect(unlisted.status).toBe(3);
      expect(unlisted.stdout).not.toContain(LISTED_MARK);
    });
  });

  it('lists every container of the project with its service, one-off flag, config hash, state and image (tabs left to docker)', () => {
    expect(script(listContainers({ compose: 'v2', sudo: true }, 'shop'))).toBe(
      [
        'set -euo pipefail',
        `sudo -n docker ps -a --no-trunc --filter 'label=com.docker.compose.project=shop' --format '{{.ID}}\\t{{.Label "com.docker.compose.service"}}\\t{{.Label "com.docker.compose.oneoff"}}\\t{{.Label "com.docker.compose.config-hash"}}\\t{{.State}}\\t{{.Names}}\\t{{.Image}}'`,
      ].join('\n'),
    );
  });

  it('scales up next to the old containers without recreating them or touching other services', () => {
    expect(script(scaleUp(V2, project, { web: 4, 'api.v2': 2 }))).toBe(
      ['set -euo pipefail', "cd '/opt/my shop'", `${composeLine} up -d --no-deps --no-recreate --scale 'web=4' --scale 'api.v2=2' web api.v2`].join('\n'),
    );
  });

  it('starts missing dependencies first and waits for them', () => {
    expect(script(startMissing(V2, project, ['cache']))).toBe(
      ['set -euo pipefail', "cd '/opt/my shop'", `${composeLine} up -d --wait --no-recreate cache`].join('\n'),
    );
  });

  it('inspects only the given containers, tolerating one that is gone; stops then removes', () => {
    expect(script(inspectContainers(V2, ['abc', 'd e']))).toBe("set -euo pipefail\ndocker inspect abc 'd e' || true");
    expect(script(stopAndRemove({ compose: 'v2', sudo: true }, ['abc', 'def']))).toBe(
      'set -euo pipefail\nsudo -n docker stop abc def\nsudo -n docker rm abc def',
    );
    expect(inspectContainers(V2, [])).toEqual([]);
    expect(stopAndRemove(V2, [])).toEqual([]);
  });
});

// What `docker compose config` (v2.26) prints for a project with every kind of port, mount and dependency.
const CONFIG = `name: shop
services:
  proxy:
    image: nginx
    ports:
      - mode: ingress
        host_ip: 127.0.0.1
        target: 80
        published: "8080"
        protocol: tcp
  web:
    depends_on:
      cache:
        condition: service_healthy
        required: true
    deploy:
      replicas: 2
    image: registry/web@sha256:abc
    ports:
      - mode: ingress
        target: 3000
        protocol: tcp
    volumes:
      - type: bind
        source: /opt/shop/conf
        target: /conf
        read_only: true
        bind:
          create_host_path: true
      - type: volume
        target: /tmp/cache
        volume: {}
  db:
    image: postgres
    volumes:
      - type: volume
        source: pgdata
        target: /var/lib/postgresql/data
        volume: {}
  worker:
    container_name: shop-worker
    image: registry/web@sha256:abc
    scale: 1
  agent:
    image: agent
    network_mode: host
  cache:
    image: redis
    depends_on:
      base:
        condition: service_started
        required: true
  base:
    image: busybox
volumes:
  pgdata:
    name: shop_pgdata
`;

const shapes = serviceShapes(CONFIG);
const shape = (name: string): ServiceShape => shapes.find((s) => s.name === name)!;

describe('which services can roll', () => {
  it('reads ports, names, mounts, network mode, replicas and dependencies from compose config', () => {
    expect(shape('proxy')).toMatchObject({ fixedPorts: ['127.0.0.1:8080:80'], replicas: 1 });
    expect(shape('web')).toEqual({ name: 'web', fixedPorts: [], hostNetwork: false, writableMounts: [], replicas: 2, dependsOn: ['cache'] });
    expect(shape('db').writableMounts).toEqual(['pgdata']);
    expect(shape('worker').containerName).toBe('shop-worker');
    expect(shape('agent').hostNetwork).toBe(true);
  });

  it('says why a service cannot roll', () => {
    expect(whyNotRolled(shape('web'), false)).toBeUndefined();
    expect(whyNotRolled(shape('proxy'), false)).toBe('publishes fixed host port 127.0.0.1:8080:80, which a second container cannot bind');
    expect(whyNotRolled(shape('worker'), false)).toBe('sets container_name shop-worker, and two containers cannot share a name');
    expect(whyNotRolled(shape('agent'), false)).toBe('uses network_mode: host, so a second container would bind the same ports');
    expect(whyNotRolled(shape('db'), false)).toBe(
      'mounts pgdata read-write, and two copies writing at once could corrupt its data (name it in rolling-services to roll it anyway)',
    );
    // Naming a service overrides the data-safety rule, never what makes a second container impossible.
    expect(whyNotRolled(shape('db'), true)).toBeUndefined();
    expect(whyNotRolled(shape('proxy'), true)).toMatch(/^publishes fixed host port/);
  });

  it('counts a port range as fixed ports, an ephemeral one as none', () => {
    const [ranged] = serviceShapes(
      'services:\n  a:\n    ports:\n      - {target: 90, published: "9000", host_ip: 127.0.0.1}\n      - {target: 91, published: "9001", host_ip: 127.0.0.1}\n      - {target: 4000, host_ip: 127.0.0.1}\n',
    );
    expect(ranged!.fixedPorts).toEqual(['127.0.0.1:9000:90', '127.0.0.1:9001:91']);
  });
});

const HASHES = parseConfigHashes('proxy h-proxy\nweb h-web2\ndb h-db2\nworker h-worker2\nagent h-agent\ncache h-cache\nbase h-base\n');
const row = (id: string, service: string, hash: string, extra: Partial<ContainerRow> = {}): ContainerRow => ({
  id,
  service,
  hash,
  oneOff: false,
  state: 'running',
  name: `shop-${service}-${id}`,
  image: `r/${service}@sha256:old`,
  ...extra,
});

describe('planRoll', () => {
  const rows = [
    row('p1', 'proxy', 'h-proxy'),
    row('w1', 'web', 'h-web1'),
    row('w2', 'web', 'h-web1', { state: 'exited' }),
    row('run1', 'web', 'h-web1', { oneOff: true }),
    row('d1', 'db', 'h-db1'),
    row('k1', 'worker', 'h-worker1'),
    row('a1', 'agent', 'h-agent'),
  ];

  it('rolls changed services that can; recreates changed ones that cannot, with a warning naming them and why; leaves unchanged ones', () => {
    const plan = planRoll(shapes, HASHES, rows);
    // Every old container goes (an exited one too); one-off `compose run` containers are not the service's.
    expect(plan.roll).toEqual([{ service: 'web', old: ['w1', 'w2'], replicas: 2 }]);
    expect(scalesFor(plan.roll)).toEqual({ web: 4 });
    expect(plan.recreate).toEqual([
      { service: 'db', why: expect.stringMatching(/^mounts pgdata read-write/) },
      { service: 'worker', why: 'sets container_name shop-worker, and two containers cannot share a name' },
    ]);
    expect(plan.unchanged).toEqual(['proxy', 'agent']);
    // web needs cache, which needs base; neither has a container yet.
    expect(plan.startFirst).toEqual(['base', 'cache']);
    expect(plan.warnings).toEqual([
      'Not rolled, so recreated by compose up (a short downtime for each): db mounts pgdata read-write, and two copies writing at once could corrupt its data (name it in rolling-services to roll it anyway); worker sets container_name shop-worker, and two containers cannot share a name',
    ]);
  });

  describe('leftForUp: whether compose up after the roll would change anything', () => {
    const config = (services: Record<string, number>) =>
      serviceShapes(
        `services:\n${Object.entries(services)
          .map(([name, replicas]) => `  ${name}:\n    image: x\n    deploy: {replicas: ${replicas}}\n`)
          .join('')}`,
      );
    const twoWeb = config({ web: 2, proxy: 1 });
    const hashes = parseConfigHashes('web h-new\nproxy h-proxy\n');
    const before = [
      row('w1', 'web', 'h-old'),
      row('w2', 'web', 'h-old'),
      row('p1', 'proxy', 'h-proxy'),
      row('run1', 'proxy', 'h-x', { oneOff: true, state: 'exited' }),
    ];
    const left = (shapes: ServiceShape[], rows: ContainerRow[]) => leftForUp(shapes, rows, planRoll(shapes, hashes, rows));

    it('nothing, when every changed service rolled and every other runs its configuration with all its replicas (one-offs aside)', () => {
      expect(left(twoWeb, before)).toBeUndefined();
    });

    it('something, when a container of an unchanged service is not running, or it runs another number of them', () => {
      expect(left(twoWeb, [...before.slice(0, 2), row('p1', 'proxy', 'h-proxy', { state: 'exited' })])).toBe('proxy has a container that is not running');
      expect(left(config({ web: 2, proxy: 2 }), before)).toBe('proxy runs 1 container(s) and the release asks for 2');
    });

    it('something, when a service the release dropped still has containers (up --remove-orphans removes them)', () => {
      expect(left(twoWeb, [...before, row('o1', 'oldjob', 'h-o')])).toBe('it removes the containers of oldjob, which the release no longer defines');
    });

    it('something, when a service is new, has no container, or must be recreated', () => {
      expect(left(config({ web: 2, proxy: 1, cache: 1 }), before)).toBe('it starts cache');
      const recreated = planRoll(shapes, HASHES, rows);
      expect(leftForUp(shapes, rows, recreated)).toBe('it recreates db, worker');
    });
  });

  it('with rolling-services: rolls only those; names unknown services and listed ones that cannot roll', () => {
    const plan = planRoll(shapes, HASHES, rows, ['db', 'worker', 'nope']);
    expect(plan.roll).toEqual([{ service: 'db', old: ['d1'], replicas: 1 }]);
    expect(plan.recreate.map((entry) => [entry.service, entry.why])).toEqual([
      ['web', 'is not listed in rolling-services'],
      ['worker', 'sets container_name shop-worker, and two containers cannot share a name'],
    ]);
    expect(plan.startFirst).toEqual([]);
    expect(plan.warnings[0]).toBe('rolling-services names nope, which the release does not define');
    expect(plan.warnings[1]).toBe(
      'rolling-services names services that cannot roll: worker sets container_name shop-worker, and two containers cannot share a name',
    );
    expect(plan.warnings[2]).toMatch(
      /^Not rolled, so recreated by compose up \(a short downtime for each\): web is not listed in rolling-services; worker sets/,
    );
  });

  it('first deploy: nothing runs yet, so nothing rolls and compose up starts everything', () => {
    const plan = planRoll(shapes, HASHES, []);
    expect(plan).toEqual({ roll: [], startFirst: [], recreate: [], unchanged: [], warnings: [] });
  });

  it('a service whose containers already run the new configuration is not rolled again', () => {
    const plan = planRoll(shapes, HASHES, [row('w9', 'web', 'h-web2'), row('w8', 'web', 'h-web2')]);
    expect(plan.roll).toEqual([]);
    expect(plan.unchanged).toEqual(['web']);
  });

  it("finds the new containers: the rolled services' containers that were not there before", () => {
    const plan = planRoll(shapes, HASHES, rows);
    const after = [
      ...rows,
      row('w3', 'web', 'h-web2'),
      row('w4', 'web', 'h-web2'),
      row('run2', 'web', 'h-web2', { oneOff: true }),
      row('x1', 'proxy', 'h-proxy'),
    ];
    expect(newContainers(plan.roll, after)).toEqual(['w3', 'w4']);
  });

  describe('before the hashes are in: a new image is a change for certain', () => {
    const images = { proxy: 'r/proxy@sha256:old', web: 'r/web@sha256:new', db: 'r/db@sha256:new', worker: 'r/worker@sha256:old', agent: 'r/agent@sha256:old' };

    it('rolls the services whose containers run another image; takes the others as unchanged until the hashes say', () => {
      const guess = planRoll(shapes, hashesIfOnlyImagesChanged(shapes, rows, images), rows);
      expect(guess.roll).toEqual([{ service: 'web', old: ['w1', 'w2'], replicas: 2 }]);
      expect(guess.startFirst).toEqual(['base', 'cache']);
      // db has a new image but cannot roll: as with the hashes, compose up recreates it.
      expect(guess.recreate.map((entry) => entry.service)).toEqual(['db']);
      expect(guess.unchanged).toEqual(['proxy', 'worker', 'agent']);
    });

    it('is part of the plan by the hashes, whatever the hashes say of the services it took as unchanged', () => {
      const guess = planRoll(shapes, hashesIfOnlyImagesChanged(shapes, rows, images), rows);
      const real = planRoll(shapes, HASHES, rows);
      for (const entry of guess.roll) expect(real.roll).toContainEqual(entry);
      expect(withRolled(real, guess.roll)).toBe(real);
    });

    it('a service whose image is the same but whose configuration changed is added by the hashes, not guessed', () => {
      const same = { ...images, web: 'r/web@sha256:old' };
      const guess = planRoll(shapes, hashesIfOnlyImagesChanged(shapes, rows, same), rows);
      expect(guess.roll).toEqual([]);
      expect(planRoll(shapes, HASHES, rows).roll.map((entry) => entry.service)).toEqual(['web']);
    });

    it('keeps rolling a guessed service the hashes call unchanged (a moved tag lists an image id): its new containers exist', () => {
      const unchanged = planRoll(shapes, parseConfigHashes('proxy h-proxy\nweb h-web1\ndb h-db1\nworker h-worker1\nagent h-agent\n'), rows);
      expect(unchanged.roll).toEqual([]);
      const kept = withRolled(unchanged, [{ service: 'web', old: ['w1', 'w2'], replicas: 2 }]);
      expect(kept.roll).toEqual([{ service: 'web', old: ['w1', 'w2'], replicas: 2 }]);
      expect(kept.unchanged).not.toContain('web');
    });
  });

  it('parses docker ps and config --hash output', () => {
    expect(
      parseContainerRows('0123abc\tweb\tFalse\tdeadbeef\trunning\tshop-web-2\tr/app@sha256:1\n9f\tweb\tTrue\t\texited\tshop-web-run-1\tr/app:v1\n'),
    ).toEqual([
      { id: '0123abc', service: 'web', oneOff: false, hash: 'deadbeef', state: 'running', name: 'shop-web-2', image: 'r/app@sha256:1' },
      { id: '9f', service: 'web', oneOff: true, hash: '', state: 'exited', name: 'shop-web-run-1', image: 'r/app:v1' },
    ]);
    expect([...parseConfigHashes('web abc\n\nproxy def\n')]).toEqual([
      ['web', 'abc'],
      ['proxy', 'def'],
    ]);
  });
});

describe('rolling inputs', () => {
  const saved = { ...process.env };
  const set = (inputs: Record<string, string>) => {
    for (const key of Object.keys(process.env)) if (key.startsWith('INPUT_')) delete process.env[key];
    for (const [name, value] of Object.entries(inputs)) process.env[`INPUT_${name.toUpperCase()}`] = value;
  };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('reads services (lines or commas) and the drain', () => {
    set({ 'rolling-services': 'web, api\nworker', 'rolling-drain': '5s' });
    expect(readRollingInputs('rolling')).toEqual({ services: ['web', 'api', 'worker'], drainSeconds: 5 });
    set({});
    expect(readRollingInputs('rolling')).toEqual({ drainSeconds: 2 });
  });

  it('reports every bad value together, naming the input, the value and the form', () => {
    set({ 'rolling-services': 'web,$(id)', 'rolling-drain': 'soon' });
    expect(() => readRollingInputs('rolling')).toThrow(
      /2 problems with the inputs:\n- Input "rolling-services" must be Compose service names .*; got "\$\(id\)"\n- Input "rolling-drain" must be a duration like 90, 90s or 2m \(in seconds from 0 to 600\); got "soon"/,
    );
  });

  it('refuses rolling-services with another strategy; ignores the defaulted drain', () => {
    set({ 'rolling-services': 'web', 'rolling-drain': '2s' });
    expect(() => readRollingInputs('recreate')).toThrow('Input "rolling-services" is set but strategy is recreate; it only applies with strategy: rolling');
    set({ 'rolling-drain': '2s' });
    expect(readRollingInputs('swarm')).toBeUndefined();
  });
});

describe('rolling dry-run', () => {
  const saved = { ...process.env };
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
  });

  async function plan(workspace: string, extra: Record<string, string> = {}) {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    await writeFile(join(workspace, 'compose.yaml'), 'services:\n  web:\n    image: app\n');
    for (const key of Object.keys(process.env)) if (key.startsWith('INPUT_')) delete process.env[key];
    const inputs: Record<string, string> = {
      host: 'example.com',
      username: 'deploy',
      password: 'pw-123456',
      fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      strategy: 'rolling',
      'rolling-services': 'web',
      'rolling-drain': '3s',
      'project-dir': '/opt/shop',
      'dry-run': 'true',
      ...extra,
    };
    for (const [name, value] of Object.entries(inputs)) process.env[`INPUT_${name.toUpperCase()}`] = value;
    process.env.GITHUB_WORKSPACE = workspace;
    return planDeploy(new PlanRecorder(), readDeployInputs(), runContext({ GITHUB_SHA: '0123456789abcdef' }));
  }

  it('with pre-deploy (which may start or stop containers), what runs is listed after it, with the env link, before the hashes', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'rollingskiff-plan-'));
    try {
      const steps = await plan(workspace, { 'pre-deploy': 'docker compose run --rm web migrate' });
      const descriptions = steps.map((step) => step.description);
      const at = (description: string) => descriptions.indexOf(description);
      expect(descriptions).not.toContain('list the running containers');
      const linkStep = 'link the env file, list the running containers';
      expect(at(linkStep)).toBeGreaterThan(at('pre-deploy (pre-deploy-timeout)'));
      expect(at('pre-deploy (pre-deploy-timeout)')).toBeGreaterThan(-1);
      const link = steps[at(linkStep)];
      expect(link?.kind === 'run' ? link.script : '').toContain('/opt/shop/.env');
      expect(at('read the configuration hashes')).toBeGreaterThan(at(linkStep));
    } finally {
      await rm(workspace, { recursive: true, force: true });
    }
  });

  it('plans the read-only look, the roll of each changed service (scale-up, gate, drain, stop+rm) and compose up', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'rollingskiff-plan-'));
    try {
      const steps = await plan(workspace);
      const descriptions = steps.map((step) => step.description);
      const at = (description: string) => descriptions.indexOf(description);
      // No env-file here: the round trip that creates the release removes a .env link an earlier release left.
      const created = descriptions.findIndex((d) => /^create release \S+, remove the \.env link$/.test(d));
      expect(created).toBeGreaterThan(-1);
      const id = descriptions[created]!.split(' ')[2]!.replace(/,$/, '');
      // With no pre-deploy or backup before the switch, what runs is listed beside the pull, after the upload.
      const uploaded = at('upload meta.json');
      expect(uploaded).toBeGreaterThan(created);
      expect(at('list the running containers')).toBe(uploaded + 1);
      expect(at('pull images (pull-timeout)')).toBe(uploaded + 2);
      expect(descriptions).not.toContain('link the env file, list the running containers');
      // The hashes are read with the release's .env linked: `env_file: .env` is part of a service's configuration.
      const hashes = steps[at('read the configuration hashes')];
      expect(at('read the configuration hashes')).toBeGreaterThan(at('resolve image digests'));
      expect(hashes?.kind === 'run' ? hashes.script : '').toContain("config --hash '*'");
      const roll = steps.find((step) => step.description.startsWith('roll each changed service'));
      expect(roll?.kind === 'run' && roll.script).toBe(
        [
          '# for each changed service S that can roll (of web), with N old containers and R replicas:',
          `cd /opt/shop && docker compose --project-name shop --project-directory /opt/shop -f /opt/shop/releases/${id}/compose.yaml -f /opt/shop/releases/${id}/images.lock.json up -d --no-deps --no-recreate --scale S=N+R S`,
          '# health gate on the new containers only (plus health-url and health-command); if it fails: diagnostics, then docker stop + docker rm of the new ones, the old keep serving',
          'sleep 3  # rolling-drain: the proxy picks up the new containers (counted from their first healthy round)',
          'docker stop OLD-CONTAINER-IDS',
          'docker rm OLD-CONTAINER-IDS',
          "# then compose up of the release (next step), unless every changed service rolled and up would change nothing: then the release check's one round alone",
        ].join('\n'),
      );
      const start = at(descriptions.find((d) => d.startsWith('start release '))!);
      expect(start).toBeGreaterThan(descriptions.indexOf(roll!.description));
      const up = steps[start];
      expect(up?.kind === 'run' && up.script.split('\n').filter((line) => /docker ps|compose .* up -d|^echo/.test(line))).toEqual([
        expect.stringMatching(/^docker ps -a /),
        expect.stringMatching(/compose .* up -d --remove-orphans >&2$/),
        `echo '${AFTER_UP_MARK}'`,
        expect.stringMatching(/^docker ps -a /),
      ]);
    } finally {
      await rm(workspace, { recursive: true, force: true });
    }
  });
});

describe('after the roll', () => {
  it('lists the containers, runs compose up with its output on stderr, and lists them again, in one script', async () => {
    // The fake compose prints to stdout too: none of it may land among the rows.
    const fake =
      'if [ "$1" = ps ]; then cat "$(dirname "$0")/rows"; exit 0; fi\necho "compose says hello"; echo "progress" >&2; echo "id2\tweb" >> "$(dirname "$0")/rows"; exit "${UP_EXIT:-0}"\n';
    await withFakeDocker(fake, async (run, dir) => {
      await writeFile(join(dir, 'rows'), 'id1\tweb\n');
      const commands = upBetweenLists({ cli: V2, inputs: { projectName: 'shop' } as never }, { project: { ...project, directory: dir } }, [
        ['touch', join(dir, 'prefix-ran')],
      ]);
      const ok = run(commands);
      expect([ok.status, ok.stdout]).toEqual([0, `id1\tweb\n${AFTER_UP_MARK}\nid1\tweb\nid2\tweb\n`]);
      expect(ok.stderr).toContain('compose says hello\nprogress\n');
      expect(existsSync(join(dir, 'prefix-ran'))).toBe(true);
      expect(run(commands, { UP_EXIT: '1' }).status).toBe(1);
    });
  });

  const row = (id: string, name: string, oneOff = false): ContainerRow => ({
    id,
    service: name.split('-')[1]!,
    oneOff,
    hash: 'h',
    state: 'running',
    name,
    image: 'i',
  });
  const rolled = [row('n1', 'shop-web-3'), row('n2', 'shop-web-4'), row('p1', 'shop-proxy-1')];

  it('the release check needs one round when compose up created nothing: every container ran before it (the rolled ones through the full gate)', () => {
    expect(releaseCheckSuccesses(rolled, rolled, 2)).toMatchObject({ successes: 1 });
    // A one-off container (compose run) is no part of the release.
    expect(releaseCheckSuccesses(rolled, [...rolled, row('x', 'shop-web-run-1', true)], 3)).toMatchObject({ successes: 1 });
  });

  it('anything compose up created or replaced gets the full count; a first deploy creates everything', () => {
    expect(releaseCheckSuccesses(rolled, [row('n1', 'shop-web-3'), row('n2', 'shop-web-4'), row('p2', 'shop-proxy-1')], 2)).toEqual({
      successes: 2,
      why: 'compose up created shop-proxy-1',
    });
    expect(releaseCheckSuccesses([], rolled, 3)).toMatchObject({ successes: 3 });
    expect(releaseCheckSuccesses(rolled, rolled, 1)).toMatchObject({ successes: 1 });
  });

  it('the drain counts from the first round of the final streak, never less than rolling-drain after it', () => {
    expect(drainLeft(2, 10_000, 11_000)).toBe(1);
    expect(drainLeft(2, 10_000, 13_000)).toBe(0);
    expect(drainLeft(2, undefined, 13_000)).toBe(2);
    expect(drainLeft(0, 10_000, 10_000)).toBe(0);
  });
});
