import { afterEach, describe, expect, it, vi } from 'vitest';
import { script, type Command, type ExecResult } from '@skiff/shell';
import type { Deployer } from '../src/deploy';
import { containerGate, healthGate } from '../src/health-gate';

/** `docker inspect` of one running container of service `web`, healthy by its HEALTHCHECK. */
const HEALTHY_WEB = JSON.stringify([
  {
    Name: '/shop-web-1',
    State: { Status: 'running', ExitCode: 0, Health: { Status: 'healthy', Log: [] } },
    RestartCount: 0,
    Config: { Labels: { 'com.docker.compose.service': 'web' } },
  },
]);

function deployer(run: (description: string) => ExecResult): { d: Deployer; ran: string[] } {
  const ran: string[] = [];
  const server = {
    run: vi.fn(async (_commands: unknown, options: { description?: string } = {}) => {
      ran.push(options.description ?? '');
      return run(options.description ?? '');
    }),
    upload: vi.fn(),
  };
  const health = { urls: [], from: 'runner', status: { min: 200, max: 399 }, successes: 2, intervalSeconds: 1, timeoutSeconds: 10 };
  const d = { server, cli: { compose: 'v2', sudo: false }, inputs: { projectDir: '/opt/shop', health }, ctx: { token: 'token' } } as unknown as Deployer;
  return { d, ran };
}

describe('containerGate', () => {
  afterEach(() => vi.restoreAllMocks());

  it('takes its first look at the containers from the round trip before it, and inspects itself from the second round on', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const once = deployer(() => ({ code: 0, stdout: HEALTHY_WEB, stderr: '' }));
    const passed = await containerGate(once.d, [['docker', 'inspect', 'x']], ['web'], 'gate', { successes: 1, firstInspection: HEALTHY_WEB });
    expect(passed.ok).toBe(true);
    expect(passed.containers.map((c) => c.name)).toEqual(['shop-web-1']);
    expect(once.ran).toEqual([]);

    const twice = deployer(() => ({ code: 0, stdout: HEALTHY_WEB, stderr: '' }));
    const again = await containerGate(twice.d, [['docker', 'inspect', 'x']], ['web'], 'gate', { successes: 2, firstInspection: HEALTHY_WEB });
    expect(again.ok).toBe(true);
    expect(twice.ran).toEqual(['inspect containers']);
  });

  it('judges what it was given: an exited container in that first look fails the round', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const exited = HEALTHY_WEB.replace('"Status":"running","ExitCode":0', '"Status":"exited","ExitCode":1');
    const { d } = deployer(() => ({ code: 0, stdout: exited, stderr: '' }));
    const failed = await containerGate(d, [['docker', 'inspect', 'x']], ['web'], 'gate', { successes: 1, firstInspection: exited });
    expect(failed.ok).toBe(false);
    expect(failed.failingServices).toEqual(['web']);
  });
});

describe('healthGate', () => {
  afterEach(() => vi.restoreAllMocks());

  it('lists the project once, then inspects the containers it saw; a service it saw without a container is listed again', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const withId = JSON.stringify([{ ...JSON.parse(HEALTHY_WEB)[0], Id: 'c0ffee' }]);
    const scripts: string[] = [];
    const gated = deployer(() => ({ code: 0, stdout: withId, stderr: '' }));
    gated.d.inputs = { ...gated.d.inputs, projectName: 'shop' };
    gated.d.server.run = vi.fn(async (commands: readonly Command[]) => {
      scripts.push(script(commands));
      return { code: 0, stdout: withId, stderr: '' };
    });
    expect((await healthGate(gated.d, ['web'], 3)).ok).toBe(true);
    expect(scripts).toHaveLength(3);
    expect(scripts[0]).toContain("docker ps -aq --filter 'label=com.docker.compose.project=shop' | xargs -r docker inspect");
    for (const later of scripts.slice(1)) expect(later).toContain('if seen=$( docker inspect c0ffee 2>/dev/null); then');

    // web and db expected, only web seen: db's container may still come, so the project is listed every round.
    scripts.length = 0;
    gated.d.inputs = { ...gated.d.inputs, health: { ...gated.d.inputs.health, timeoutSeconds: 2 } };
    const stillListing = await healthGate(gated.d, ['web', 'db'], 2);
    expect(stillListing.ok).toBe(false);
    expect(scripts.length).toBeGreaterThan(1);
    for (const each of scripts) expect(each).not.toContain('if seen=');
  });
});
