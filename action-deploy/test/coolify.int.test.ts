import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoolify, startRecordingServer, tempDir, type CoolifyServer, type RecordingServer } from '@skiff/testbed';
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

const resources = [
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
];

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
  await Promise.all([coolify?.stop(), app?.stop(), workspace?.remove(), github?.stop(), hook?.stop()]);
});

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
