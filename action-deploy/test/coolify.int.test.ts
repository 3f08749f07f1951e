import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUSYBOX_IMAGE,
  ensureBaseImages,
  freePort,
  sh,
  startCoolify,
  startRecordingServer,
  tempDir,
  type CoolifyResource,
  type CoolifyServer,
  type RecordingServer,
} from '@skiff/testbed';
import { runAction, type ActionRun } from './helpers';

/**
 * strategy: coolify, run as the runner runs the bundle, against a local stand-in that answers in
 * Coolify's own format (packages/testbed/src/coolify.ts) and a local app for the health gate.
 * Coolify itself is out of reach; everything else is real: HTTP, polling, timing, the log.
 */

const PREFIX = 'coolifyskiff';
let coolify: CoolifyServer;
let app: RecordingServer;
let github: RecordingServer;
let hook: RecordingServer;
const GITHUB_TOKEN = `ghs_${Math.random().toString(36).slice(2)}CoolifyRun`;
let appHealthy = true;
let workspace: { path: string; remove: () => Promise<void> };

const resources: CoolifyResource[] = [
  {
    uuid: 'web0ok1app2uuid3',
    name: 'shop-web',
    kind: 'application' as const,
    tags: ['production'],
    logs: [
      [{ output: 'Starting deployment of shop-web.' }],
      [{ output: 'Building docker image.' }, { output: 'docker build --secret internal', hidden: true }],
      [{ output: 'New container started.' }],
    ],
  },
  { uuid: 'cache0svc1uuid2', name: 'shop-cache', kind: 'service' as const, tags: ['production'] },
  {
    uuid: 'broken0app1uuid2',
    name: 'shop-api',
    kind: 'application' as const,
    statuses: ['queued', 'in_progress', 'failed'],
    logs: [
      [{ output: 'Starting deployment of shop-api.' }],
      [{ output: 'Step 4/9 : RUN npm ci' }],
      [
        { output: 'npm ERR! missing script: build', type: 'stderr' as const },
        { output: 'Deployment failed. Removing the new version of your application.', type: 'stderr' as const },
      ],
    ],
  },
  { uuid: 'slow0app1uuid2', name: 'shop-slow', kind: 'application' as const, statuses: ['queued', 'in_progress'] },
  // A Docker-image application Coolify really deploys: the tag it is given is pulled and started on this machine.
  {
    uuid: 'image0app1uuid2',
    name: 'shop-image',
    kind: 'application' as const,
    image: { name: `${PREFIX}/app`, tag: 'v1' },
    run: (image: string) => runImage(image),
  },
  // Another registry-image application, never deployed: the PATCH refusals are tried on it.
  { uuid: 'image1app2uuid3', name: 'shop-image-b', kind: 'application' as const, image: { name: `${PREFIX}/app`, tag: 'v1' } },
];

const CONTAINER = `${PREFIX}-image-app`;
let imagePort = 0;
/** What Coolify does with a Docker-image application: the new container replaces the old one, or the deployment fails. */
async function runImage(image: string): Promise<void> {
  await sh('docker', ['image', 'inspect', '--format', '{{.Id}}', image]).catch(() => {
    throw new Error(`Error response from daemon: manifest for ${image} not found: manifest unknown`);
  });
  await sh('docker', ['rm', '-f', CONTAINER]);
  await sh('docker', [
    'run',
    '-d',
    '--name',
    CONTAINER,
    '--label',
    `${PREFIX}=1`,
    '-p',
    `127.0.0.1:${imagePort}:80`,
    image,
    'httpd',
    '-f',
    '-p',
    '80',
    '-h',
    '/www',
  ]);
}

/** Versions of a tiny site: /version says which, /health answers ok — except in the broken one, which has none (404). */
async function buildSiteImages(): Promise<void> {
  for (const [tag, healthy] of [
    ['v1', true],
    ['v2', true],
    ['v3-broken', false],
  ] as const) {
    const context = await tempDir(`${PREFIX}-site`);
    try {
      await sh('mkdir', ['-p', `${context.path}/www`]);
      await sh('sh', ['-c', `echo ${tag} > ${context.path}/www/version${healthy ? ` && echo ok > ${context.path}/www/health` : ''}`]);
      await sh('sh', ['-c', `printf 'FROM ${BUSYBOX_IMAGE}\nCOPY www /www\n' > ${context.path}/Dockerfile`]);
      await sh('docker', ['build', '-q', '--label', `${PREFIX}=1`, '-t', `${PREFIX}/app:${tag}`, context.path], { timeoutMs: 120_000 });
    } finally {
      await context.remove();
    }
  }
}

const inputs = (extra: Record<string, string>) => ({
  strategy: 'coolify',
  'coolify-url': coolify.url,
  'coolify-token': coolify.token,
  'coolify-poll-interval': '1s',
  'health-url': `${app.url}/health`,
  'health-interval': '1s',
  'health-successes': '1',
  'health-timeout': '10s',
  ...extra,
});
const deploy = (extra: Record<string, string>): Promise<ActionRun> => runAction(inputs(extra), { workspace: workspace.path });

/** The token must appear nowhere a person could read it: not the log (even before masking), not the summary, not the outputs. */
function expectNoToken(run: ActionRun): void {
  for (const text of [run.stdout.replaceAll(`::add-mask::${coolify.token}`, ''), run.summary, JSON.stringify(run.outputs)])
    expect(text).not.toContain(coolify.token);
}

beforeAll(async () => {
  await ensureBaseImages();
  imagePort = await freePort();
  await buildSiteImages();
  [coolify, app, workspace, hook] = await Promise.all([
    startCoolify(resources),
    startRecordingServer(() => (appHealthy ? { status: 200, body: 'ok' } : { status: 503, body: 'starting' })),
    tempDir(`${PREFIX}-ws`),
    startRecordingServer(() => ({ status: 200, body: 'ok' })),
  ]);
  github = await startRecordingServer((request) => {
    if (request.method === 'POST' && request.path === '/repos/acme/skiffdeploy-app/deployments')
      return { status: 201, body: { id: 77, sha: '1a2b3c4d5e6f', environment: 'production' } };
    if (request.method === 'POST' && request.path === '/repos/acme/skiffdeploy-app/deployments/77/statuses')
      return { status: 201, body: { id: 770, state: (request.json as { state: string }).state } };
    return { status: 404, body: { message: 'Not Found' } };
  });
});

afterAll(async () => {
  await sh('docker', ['rm', '-f', CONTAINER]).catch(() => undefined);
  await sh('sh', ['-c', `docker image ls -q --filter label=${PREFIX}=1 | xargs -r docker image rm -f`]).catch(() => undefined);
  await Promise.all([coolify?.stop(), app?.stop(), workspace?.remove(), github?.stop(), hook?.stop()]);
});

/**
 * Every request a real run sent to Coolify (method, URL and body) is in the dry run's plan; the
 * deployment Coolify queued is `{deployment_uuid}` there, since only Coolify's answer names it.
 */
function expectPlanListsRequests(plan: string, requests: readonly { method: string; path: string; body: string }[]): void {
  expect(requests.length).toBeGreaterThan(3);
  const deployment = /^\/api\/v1\/deployments\/[^/?]+$/;
  for (const request of requests) {
    const path = deployment.test(request.path) ? '/api/v1/deployments/{deployment_uuid}' : request.path;
    expect(plan, `${request.method} ${path}`).toContain(`${request.method} ${coolify.url}${path}`);
    if (request.body) expect(plan).toContain(request.body);
  }
}

describe('strategy: coolify', () => {
  it('deploys by uuid: an application followed to finished and a service started, then the health gate; the exact requests, the token only in Authorization', async () => {
    coolify.requests.length = 0;
    appHealthy = true;
    const run = await runAction(
      inputs({
        'coolify-uuid': `${resources[0]!.uuid},${resources[1]!.uuid}`,
        'coolify-force': 'true',
        environment: 'production',
        'github-token': GITHUB_TOKEN,
        // Two channels, one per line: each gets the message.
        'notify-webhook': `${hook.url}/hooks/coolify-secret-path\n${hook.url}/hooks/second-channel\n`,
      }),
      { workspace: workspace.path, env: { GITHUB_API_URL: github.url } },
    );
    expect(run.code, run.stdout).toBe(0);
    const deployment = coolify.deployments.at(-1)!;
    expect(deployment).toMatchObject({ resource: { uuid: resources[0]!.uuid }, force: true });
    expect(coolify.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /api/v1/deploy?uuid=${resources[0]!.uuid},${resources[1]!.uuid}&force=true`,
      // queued, in_progress, finished: three questions, one per poll interval.
      ...Array(3).fill(`GET /api/v1/deployments/${deployment.deploymentUuid}`),
    ]);
    for (const request of coolify.requests) {
      expect(request.headers.authorization).toBe(`Bearer ${coolify.token}`);
      expect(request.path).not.toContain(coolify.token.split('|')[1]);
    }
    expect(run.outputs.status).toBe('deployed');
    expect(run.outputs['release-id']).toBe(deployment.deploymentUuid);
    const hosts = JSON.parse(run.outputs.hosts!) as Record<string, { status: string; release: string }>;
    expect(Object.keys(hosts)).toEqual([`coolify:${resources[0]!.uuid}`, `coolify:${resources[1]!.uuid}`]);
    expect(hosts[`coolify:${resources[0]!.uuid}`]).toMatchObject({ status: 'deployed', release: deployment.deploymentUuid });
    expect(run.masked).toMatch(/queued → in_progress[\s\S]*in_progress → finished/);
    expect(run.masked).toContain('Service shop-cache started');
    expect(run.masked).toMatch(/health round 1: http:\/\/127\.0\.0\.1:\d+\/health ok \(HTTP 200\)/);
    expect(app.requests.some((r) => r.path === '/health')).toBe(true);
    expect(run.summary).toMatch(/Health gate: Coolify deployment .* passed/);
    expectNoToken(run);
    // GitHub Deployments and the notification work as for SSH hosts, one entry per Coolify resource.
    expect(github.requests.map((r) => (r.json as { state?: string }).state ?? r.path)).toEqual([
      '/repos/acme/skiffdeploy-app/deployments',
      'in_progress',
      'success',
    ]);
    expect(hook.requests.map((request) => request.path).sort()).toEqual(['/hooks/coolify-secret-path', '/hooks/second-channel']);
    expect(hook.requests[0]!.body).toBe(hook.requests[1]!.body);
    const slack = (hook.requests[0]!.json as { text: string }).text;
    expect(slack).toContain('✅ Deployed: acme/skiffdeploy-app 1a2b3c4 to 2 hosts');
    expect(slack).toContain(`coolify:${resources[0]!.uuid}: deployed`);
    expect(slack).toContain(`coolify:${resources[1]!.uuid}: deployed`);
    for (const text of [hook.requests[0]!.body, ...github.requests.map((r) => r.body)]) expect(text).not.toContain(coolify.token);
  });

  it('a failed deployment: its log is printed (hidden lines left out) and is in the summary; status failed, no health gate', async () => {
    coolify.requests.length = 0;
    app.requests.length = 0;
    const run = await deploy({ 'coolify-uuid': resources[2]!.uuid });
    expect(run.code).toBe(1);
    const deployment = coolify.deployments.at(-1)!;
    expect(run.outputs.status).toBe('failed');
    expect(run.errors.join('\n')).toContain(`Coolify deployment ${deployment.deploymentUuid} of ${resources[2]!.uuid} ended failed`);
    expect(run.masked).toMatch(
      /::group::Coolify log of deployment \S+ \(4 lines\)\nStarting deployment of shop-api\.\nStep 4\/9 : RUN npm ci\nnpm ERR! missing script: build\nDeployment failed/,
    );
    expect(run.summary).toContain('npm ERR! missing script: build');
    expect(run.summary).toContain('Diagnostics');
    expect(app.requests).toEqual([]);
    expectNoToken(run);
  });

  it('a deployment that never ends is given up after coolify-timeout, bounded; by tag', async () => {
    coolify.requests.length = 0;
    const slow = { ...resources[3]!, tags: ['slowtag'] };
    const local = await startCoolify([slow], coolify.token);
    try {
      const started = performance.now();
      const run = await runAction(
        { ...inputs({ 'coolify-tag': 'slowtag', 'coolify-timeout': '3s' }), 'coolify-url': `${local.url}/api/v1` },
        { workspace: workspace.path },
      );
      const seconds = (performance.now() - started) / 1000;
      expect(run.code, run.masked).toBe(1);
      expect(seconds).toBeLessThan(12);
      expect(local.requests[0]!.path).toBe('/api/v1/deploy?tag=slowtag&force=false');
      const polls = local.requests.length - 1;
      expect(polls).toBeGreaterThanOrEqual(2);
      expect(polls).toBeLessThanOrEqual(5);
      expect(run.errors.join('\n')).toMatch(/did not finish within coolify-timeout \(3 s; last status: in_progress\); Coolify may still complete it/);
      expect(JSON.parse(run.outputs.hosts!)).toHaveProperty(`coolify:${slow.uuid}`);
      expectNoToken(run);
    } finally {
      await local.stop();
    }
  });

  it('a healthy Coolify deployment whose health-url fails is reported failed', async () => {
    appHealthy = false;
    try {
      const run = await deploy({ 'coolify-tag': 'production', 'health-timeout': '3s' });
      expect(run.code).toBe(1);
      expect(run.outputs.status).toBe('failed');
      expect(run.errors.join('\n')).toMatch(/finished, but the health gate failed: .*HTTP 503.*roll back in Coolify/s);
    } finally {
      appHealthy = true;
    }
  });

  describe('coolify-image-tag: the exact build, rollback to the tags the applications had', () => {
    let v2Requests: typeof coolify.requests = [];
    const imageApp = () => resources[4]!;
    const site = async (path: string) => {
      const response = await fetch(`http://127.0.0.1:${imagePort}${path}`, { signal: AbortSignal.timeout(5_000) });
      return `${response.status} ${(await response.text()).trim()}`;
    };
    const tagged = (tag: string, extra: Record<string, string> = {}) =>
      deploy({
        'coolify-uuid': imageApp().uuid,
        'coolify-image-tag': tag,
        'health-url': `http://127.0.0.1:${imagePort}/health`,
        'health-timeout': '6s',
        ...extra,
      });

    it('sets the tag, then deploys it: the site runs that build; an earlier tag deployed the same way is the manual rollback', async () => {
      coolify.requests.length = 0;
      const v2 = await tagged('v2');
      v2Requests = [...coolify.requests];
      expect(v2.code, v2.masked).toBe(0);
      expect(await site('/version')).toBe('200 v2');
      const deployment = coolify.deployments.at(-1)!;
      expect(deployment.imageTag).toBe('v2');
      expect(coolify.requests.slice(0, 3).map((r) => `${r.method} ${r.path} ${r.body}`)).toEqual([
        `GET /api/v1/applications/${imageApp().uuid} `,
        `PATCH /api/v1/applications/${imageApp().uuid} {"docker_registry_image_tag":"v2"}`,
        `GET /api/v1/deploy?uuid=${imageApp().uuid}&force=false `,
      ]);
      expect(v2.outputs.status).toBe('deployed');
      expect(JSON.parse(v2.outputs.images!)).toEqual({ 'shop-image': `${PREFIX}/app:v2` });
      expect(v2.masked).toContain(`shop-image runs ${PREFIX}/app:v2 (was v1)`);
      expectNoToken(v2);

      const back = await tagged('v1');
      expect(back.code, back.masked).toBe(0);
      expect(await site('/version')).toBe('200 v1');
      expect(imageApp().image!.tag).toBe('v1');
    });

    it("the dry run's plan lists every request the v2 deploy sent to Coolify: read, set the tag, trigger, follow", async () => {
      const plan = await tagged('v2', { 'dry-run': 'true' });
      expect(plan.code, plan.masked).toBe(0);
      expectPlanListsRequests(plan.outputs.plan!, v2Requests);
    });

    it('a release that fails the health gate is deployed again with the tag it replaced: rolled-back, the old build serves', async () => {
      const v2 = await tagged('v2');
      expect(v2.code, v2.masked).toBe(0);
      coolify.requests.length = 0;
      const broken = await tagged('v3-broken');
      expect(broken.code).toBe(1);
      expect(broken.outputs.status).toBe('rolled-back');
      expect(broken.errors.join('\n')).toMatch(/health gate failed: .*HTTP 404.* Rolled back \(shop-image → v2\), which passed the health gate/s);
      expect(await site('/version')).toBe('200 v2');
      expect(imageApp().image!.tag).toBe('v2');
      expect(coolify.deployments.slice(-2).map((d) => d.imageTag)).toEqual(['v3-broken', 'v2']);
      expect(JSON.parse(broken.outputs.images!)).toEqual({ 'shop-image': `${PREFIX}/app:v2` });
      expect(broken.summary).toMatch(/rollback to shop-image → v2/);
    });

    it('a tag Coolify cannot pull fails its deployment and is rolled back too; with rollback-on-failure false it is left failed', async () => {
      const missing = await tagged('v9-never-pushed');
      expect(missing.code).toBe(1);
      expect(missing.outputs.status).toBe('rolled-back');
      expect(missing.errors.join('\n')).toMatch(/ended failed.*Rolled back \(shop-image → v2\)/s);
      expect(missing.summary).toContain('manifest unknown');
      expect(await site('/version')).toBe('200 v2');

      const kept = await tagged('v3-broken', { 'rollback-on-failure': 'false' });
      expect(kept.code).toBe(1);
      expect(kept.outputs.status).toBe('failed');
      expect(kept.errors.join('\n')).toMatch(/rollback-on-failure is false, so Coolify keeps v3-broken for inspection/);
      expect(await site('/version')).toBe('200 v3-broken');
      expect(imageApp().image!.tag).toBe('v3-broken');
    });

    it('a tag Coolify refuses for one application puts back those already set, and nothing is deployed', async () => {
      const second = resources[5]!;
      const before = imageApp().image!.tag;
      const deployments = coolify.deployments.length;
      second.refuseTags = ['v1'];
      coolify.requests.length = 0;
      try {
        const run = await tagged('v1', { 'coolify-uuid': `${imageApp().uuid},${second.uuid}` });
        expect(run.code).toBe(1);
        expect(run.errors.join('\n')).toMatch(
          /Setting the image tag of shop-image-b to v1 failed, nothing was deployed: Coolify answered HTTP 422 .*docker_registry_image_tag: The docker registry image tag format is invalid/,
        );
        expect(coolify.requests.map((r) => `${r.method} ${r.path.replace(/\/api\/v1\/applications\//, '')} ${r.body}`)).toEqual([
          `GET ${imageApp().uuid} `,
          `GET ${second.uuid} `,
          `PATCH ${imageApp().uuid} {"docker_registry_image_tag":"v1"}`,
          `PATCH ${second.uuid} {"docker_registry_image_tag":"v1"}`,
          `PATCH ${imageApp().uuid} {"docker_registry_image_tag":"${before}"}`,
        ]);
        expect(imageApp().image!.tag).toBe(before);
        expect(coolify.deployments.length).toBe(deployments);
        expect(run.outputs.status).toBe('failed');
      } finally {
        delete second.refuseTags;
      }
    });

    it('a rollback whose tag Coolify refuses says so, and the failed release is what runs', async () => {
      const v2 = await tagged('v2');
      expect(v2.code, v2.masked).toBe(0);
      imageApp().refuseTags = ['v2'];
      try {
        const broken = await tagged('v3-broken');
        expect(broken.code).toBe(1);
        expect(broken.outputs.status).toBe('failed');
        expect(broken.errors.join('\n')).toMatch(
          /Setting the image tag of shop-image to v2 failed, so the rollback could not start: The Coolify deployments finished, but the health gate failed: .* Coolify keeps v3-broken: Coolify answered HTTP 422/s,
        );
        expect(imageApp().image!.tag).toBe('v3-broken');
        expect(await site('/version')).toBe('200 v3-broken');
      } finally {
        delete imageApp().refuseTags;
      }
    });

    it('an application not built from a registry image is refused before anything changes', async () => {
      coolify.requests.length = 0;
      const run = await deploy({ 'coolify-uuid': `${imageApp().uuid},${resources[0]!.uuid}`, 'coolify-image-tag': 'v2' });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(/shop-web \(web0ok1app2uuid3\) is built with the dockerfile build pack, not from a registry image/);
      expect(coolify.requests.map((r) => r.method)).toEqual(['GET', 'GET']);
      expect(run.outputs.status).toBe('failed');
    });
  });

  it('refuses bad inputs before any request: neither uuid nor tag, a bad URL, a wrong token', async () => {
    coolify.requests.length = 0;
    const neither = await deploy({});
    expect(neither.code).toBe(1);
    expect(neither.errors.join('\n')).toMatch(/needs "coolify-uuid".*or "coolify-tag"/);
    const badUrl = await deploy({ 'coolify-uuid': 'abc', 'coolify-url': 'ftp://coolify.example.com' });
    expect(badUrl.code).toBe(1);
    expect(badUrl.errors.join('\n')).toMatch(/Input "coolify-url" must be the http:\/\/ or https:\/\/ address/);
    expect(coolify.requests).toEqual([]);
    // A token Coolify refuses: one request, answered 401, and nothing followed.
    const wrong = await runAction({ ...inputs({ 'coolify-uuid': resources[0]!.uuid }), 'coolify-token': 'wrong-token-value' }, { workspace: workspace.path });
    expect(wrong.code).toBe(1);
    expect(wrong.errors.join('\n')).toMatch(/Coolify answered HTTP 401 .*Unauthenticated\. Check coolify-token/);
    // Refused before any deployment existed, it still ends with outputs and a summary (and no token).
    expect(wrong.outputs.status).toBe('failed');
    expect(wrong.summary).toMatch(/Skiff deploy failed[\s\S]*HTTP 401/);
    expect(wrong.summary + JSON.stringify(wrong.outputs)).not.toContain('wrong-token-value');
    expect(coolify.requests.length).toBe(1);
  });

  it('dry-run shows the requests with the token as *** and sends none', async () => {
    coolify.requests.length = 0;
    const run = await deploy({ 'coolify-uuid': resources[0]!.uuid, 'dry-run': 'true' });
    expect(run.code, run.stdout).toBe(0);
    expect(run.outputs.plan).toContain(`GET ${coolify.url}/api/v1/deploy?uuid=${resources[0]!.uuid}&force=false`);
    expect(run.outputs.plan).toContain('Authorization: Bearer ***');
    expect(coolify.requests).toEqual([]);
    expectNoToken(run);
  });
});
