import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlanRecorder, script } from '@skiff/shell';
import { describe, expect, it, vi } from 'vitest';
import { readDeployInputs } from '../src/inputs';
import { planDeploy } from '../src/plan';
import { serverClockMs, stackDeploy, stackDiagnostics, stackState, swarmNodeState } from '../src/strategies/swarm/swarm-commands';
import { STATE_SEPARATOR, parseStackState, stackOverride } from '../src/strategies/swarm/stack-file';

describe('skiff-stack.yml', () => {
  it('fills in update_config and rollback_config only where the files leave them unset, and pins images', () => {
    const base = [
      'version: "3.8"',
      'services:',
      '  web:',
      '    image: ghcr.io/acme/web:1',
      '    deploy:',
      '      replicas: 2',
      '      update_config:',
      '        parallelism: 2',
      '        order: stop-first',
      '  worker:',
      '    image: ghcr.io/acme/worker:1',
      '  proxy:',
      '    image: nginx:1',
      '    ports:',
      '      - target: 80',
      '        published: 80',
      '        mode: host',
      '',
    ].join('\n');
    const override = [
      'services:',
      '  worker:',
      '    deploy:',
      '      update_config:',
      '        failure_action: pause',
      '      rollback_config:',
      '        order: stop-first',
      '  cron:',
      '    image: busybox',
      '',
    ].join('\n');
    const result = stackOverride(
      [
        { name: 'compose.yaml', content: base },
        { name: 'compose.prod.yaml', content: override },
      ],
      { web: 'ghcr.io/acme/web@sha256:aaaa', cron: 'busybox@sha256:bbbb' },
    );
    expect(result.content).toBe(
      [
        '# Written by Skiff (strategy: swarm): update and rollback settings the compose files leave unset, and the pinned images.',
        'version: "3.8"',
        'services:',
        '  web:',
        '    image: ghcr.io/acme/web@sha256:aaaa',
        '    deploy:',
        '      update_config:',
        '        failure_action: rollback',
        '      rollback_config:',
        '        order: start-first',
        '  worker:',
        '    deploy:',
        '      update_config:',
        '        order: start-first',
        '  proxy:',
        '    deploy:',
        '      update_config:',
        '        order: stop-first',
        '        failure_action: rollback',
        '      rollback_config:',
        '        order: stop-first',
        '  cron:',
        '    image: busybox@sha256:bbbb',
        '    deploy:',
        '      update_config:',
        '        order: start-first',
        '        failure_action: rollback',
        '      rollback_config:',
        '        order: start-first',
        '',
      ].join('\n'),
    );
    // proxy publishes a host-mode port: two of its tasks cannot share it on one node.
    expect(result.stopFirst).toEqual(['proxy']);
  });

  it('leaves a service alone entirely when the user set every key it would fill', () => {
    const content =
      'services:\n  app:\n    image: a\n    deploy:\n      update_config: {order: stop-first, failure_action: continue}\n      rollback_config: {order: stop-first}\n';
    expect(
      stackOverride([{ name: 'compose.yaml', content }])
        .content.split('\n')
        .slice(1)
        .join('\n'),
    ).toBe('services:\n  app: {}\n');
  });

  it('refuses a compose file that is not YAML, naming it', () => {
    expect(() => stackOverride([{ name: 'compose.yaml', content: 'services: [\n' }])).toThrow(/compose file compose.yaml is not valid YAML/);
  });
});

describe('swarm commands', () => {
  const cli = { sudo: false };

  it('deploys the stack from the release directory, the env file exported for ${VAR} substitution', () => {
    expect(script(stackDeploy(cli, 'shop', '/opt/shop/releases/r1', ['compose.yaml', 'skiff-stack.yml'], true))).toBe(
      [
        'set -euo pipefail',
        'cd /opt/shop/releases/r1',
        'set -a',
        '. ./.env',
        'set +a',
        'docker stack deploy --prune --with-registry-auth --resolve-image always --compose-file compose.yaml --compose-file skiff-stack.yml shop',
      ].join('\n'),
    );
    expect(script(stackDeploy({ sudo: true }, 'shop', '/opt/shop/releases/r1', ['a b.yml'], false))).toBe(
      [
        'set -euo pipefail',
        'cd /opt/shop/releases/r1',
        "sudo -n docker stack deploy --prune --with-registry-auth --resolve-image always --compose-file 'a b.yml' shop",
      ].join('\n'),
    );
  });

  it('reads the stack: services, a separator, tasks; the node state; the clock; diagnostics', () => {
    expect(script(stackState(cli, 'shop'))).toBe(
      [
        'set -euo pipefail',
        "docker service ls --quiet --filter 'label=com.docker.stack.namespace=shop' | xargs -r docker service inspect",
        `echo '${STATE_SEPARATOR}'`,
        "docker stack ps --no-trunc --format '{{json .}}' shop 2>/dev/null || true",
      ].join('\n'),
    );
    expect(script(swarmNodeState(cli))).toBe("set -euo pipefail\ndocker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'");
    expect(script(serverClockMs())).toBe('set -euo pipefail\ndate +%s%3N');
    expect(stackDiagnostics(cli, 'shop', ['web']).map((step) => `${step.title}: ${script(step.commands).split('\n')[1]}`)).toEqual([
      'docker stack ps shop: docker stack ps --no-trunc shop',
      'docker service logs --tail 100 shop_web: docker service logs --no-task-ids --timestamps --tail 100 shop_web',
    ]);
  });
});

describe('parseStackState', () => {
  const since = Date.parse('2026-11-22T01:00:00Z');
  const image = (tag: string) => `127.0.0.1:5000/app:${tag}@sha256:${tag.repeat(64).slice(0, 64)}`;
  const service = (name: string, img: string, update?: Record<string, string>, replicas = 1) => ({
    Spec: { Name: `shop_${name}`, Mode: { Replicated: { Replicas: replicas } }, TaskTemplate: { ContainerSpec: { Image: img } } },
    ...(update ? { UpdateStatus: update } : {}),
  });
  const task = (name: string, img: string, desired: string, current: string, error = '') =>
    JSON.stringify({ Name: `shop_${name}`, Image: img, DesiredState: desired, CurrentState: current, Error: error });
  const stdout = (services: unknown[], tasks: string[]) => `${JSON.stringify(services)}\n${STATE_SEPARATOR}\n${tasks.join('\n')}\n`;

  it('converged: the update completed and the wanted tasks run the spec image', () => {
    const out = stdout(
      [service('web', image('2'), { State: 'completed', StartedAt: '2026-11-22T01:00:01Z', Message: 'update completed' }, 2)],
      [
        task('web.1', image('2'), 'Running', 'Running 3 seconds ago'),
        task('web.2', image('2'), 'Running', 'Running 1 second ago'),
        task('web.1', image('1'), 'Shutdown', 'Shutdown 2 seconds ago'),
      ],
    );
    expect(parseStackState(out, 'shop', since)).toEqual([
      { service: 'web', image: image('2'), state: 'ok', detail: '2/2 running', rolledBack: false, moving: false },
    ]);
  });

  it('waiting while Swarm updates or until the tasks run the new image; failed once Swarm rolled back or paused', () => {
    const out = stdout(
      [
        service('api', image('2'), { State: 'updating', StartedAt: '2026-11-22T01:00:01Z' }),
        service('web', image('1'), { State: 'rollback_completed', StartedAt: '2026-11-22T01:00:02Z', Message: 'rollback completed' }),
        service('worker', image('2'), { State: 'paused', StartedAt: '2026-11-22T01:00:02Z', Message: 'update paused due to failure' }),
        // An update from an earlier run does not count: the tasks decide.
        service('cron', image('3'), { State: 'completed', StartedAt: '2026-11-21T09:00:00Z' }),
      ],
      [
        task('cron.1', image('2'), 'Running', 'Running 1 hour ago'),
        task('cron.1', image('3'), 'Running', 'Starting 1 second ago'),
        task('cron.1', image('3'), 'Shutdown', 'Failed 5 seconds ago', 'task: non-zero exit (1)'),
      ],
    );
    expect(parseStackState(out, 'shop', since)).toEqual([
      { service: 'api', image: image('2'), state: 'waiting', detail: 'updating', rolledBack: false, moving: true },
      { service: 'cron', image: image('3'), state: 'waiting', detail: '0/1 running (last error: task: non-zero exit (1))', rolledBack: false, moving: false },
      { service: 'web', image: image('1'), state: 'failed', detail: 'Swarm rolled the update back: rollback completed', rolledBack: true, moving: false },
      {
        service: 'worker',
        image: image('2'),
        state: 'failed',
        detail: 'Swarm paused the update: update paused due to failure',
        rolledBack: false,
        moving: false,
      },
    ]);
  });

  it('an empty stack is no services', () => {
    expect(parseStackState(`\n${STATE_SEPARATOR}\n`, 'shop', since)).toEqual([]);
  });
});

describe('swarm dry-run', () => {
  it('plans the real commands: lock, manager check, release upload with skiff-stack.yml, stack deploy; the env file never shown', async () => {
    const workspace = await mkdtemp(join(tmpdir(), 'swarmskiff-plan-'));
    const saved = { ...process.env };
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await writeFile(join(workspace, 'compose.yaml'), 'services:\n  web:\n    image: ghcr.io/acme/web:1\n');
      for (const key of Object.keys(process.env)) if (key.startsWith('INPUT_')) delete process.env[key];
      Object.assign(process.env, {
        GITHUB_WORKSPACE: workspace,
        INPUT_STRATEGY: 'swarm',
        INPUT_HOST: 'manager.example.com',
        INPUT_USERNAME: 'deploy',
        INPUT_PASSWORD: 'pw-123456',
        'INPUT_INSECURE-IGNORE-HOST-KEY': 'true',
        'INPUT_PROJECT-DIR': '/opt/shop',
        'INPUT_ENV-FILE': 'API_KEY=very-secret-value\n',
        'INPUT_DRY-RUN': 'true',
      });
      const steps = await planDeploy(new PlanRecorder(), readDeployInputs(), { actor: 'a', sha: 'abc1234', ref: 'refs/heads/main', runUrl: '', token: 't' });
      expect(steps.map((step) => step.description)).toEqual([
        'find docker compose',
        'take the deploy lock',
        'check the Swarm node (must be a manager)',
        'read releases',
        expect.stringMatching(/^create release /),
        'upload compose.yaml',
        'upload the env file',
        'upload the requested images',
        'upload meta.json',
        'upload skiff-stack.yml',
        'read the server clock',
        expect.stringMatching(/^docker stack deploy release /),
        expect.stringMatching(/^health gate: every service converged/),
        'inspect containers',
        'pin the stack to the digests Swarm runs',
        'record the running digests',
        'record the running digests in meta.json',
        expect.stringMatching(/^mark release \S+ current, append to the audit log$/),
      ]);
      const deploy = steps.find((step) => step.description.startsWith('docker stack deploy'));
      expect(deploy?.kind === 'run' && deploy.script).toMatch(
        /docker stack deploy --prune --with-registry-auth --resolve-image always --compose-file compose.yaml --compose-file skiff-stack.yml shop$/,
      );
      expect(JSON.stringify(steps)).not.toContain('very-secret-value');
    } finally {
      process.env = saved;
      vi.restoreAllMocks();
      await rm(workspace, { recursive: true, force: true });
    }
  });
});
