import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { parseImages, readDeployInputs } from '../src/inputs';
import { useInputsWorkspace } from './inputs-workspace';

const workspace = useInputsWorkspace({ repository: 'acme/My.Shop', files: { 'docker-compose.yml': 'services: {}\n' } });

const FINGERPRINT = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

const masked = () => workspace.stdout.filter((line) => line.startsWith('::add-mask::')).map((line) => line.slice('::add-mask::'.length, -1));

const ssh = { host: 'example.com', username: 'deploy', password: 'pw-123456', fingerprint: FINGERPRINT };

describe('readDeployInputs', () => {
  it('applies the defaults: /opt/<repo>, project name from it, the compose file that exists', () => {
    setInputs(ssh);
    const inputs = readDeployInputs();
    expect(inputs.projectDir).toBe('/opt/My.Shop');
    expect(inputs.projectName).toBe('my-shop');
    expect(inputs.composeFiles.map((f) => [f.path, f.name])).toEqual([['docker-compose.yml', 'docker-compose.yml']]);
    expect(inputs).toMatchObject({
      keepReleases: 5,
      lockTimeoutSeconds: 600,
      lockTtlSeconds: 1800,
      rollbackOnFailure: true,
      sudo: false,
      dryRun: false,
      images: {},
      health: { urls: [], from: 'runner', status: { min: 200, max: 399 }, successes: 2, intervalSeconds: 2, timeoutSeconds: 120 },
    });
  });

  it('masks the env file, each line and each value', () => {
    setInputs({ ...ssh, 'env-file': 'DATABASE_URL=postgres://u:hunter22@db/x\nexport API_KEY="abc-def-ghi"\nDEBUG=1\n# comment' });
    const inputs = readDeployInputs();
    expect(inputs.envFile).toBe('DATABASE_URL=postgres://u:hunter22@db/x\nexport API_KEY="abc-def-ghi"\nDEBUG=1\n# comment\n');
    expect(masked()).toEqual(expect.arrayContaining(['postgres://u:hunter22@db/x', '"abc-def-ghi"', 'abc-def-ghi', 'export API_KEY="abc-def-ghi"']));
    expect(masked()).not.toContain('1');
  });

  it('masks values the env file names as secrets at any length, and others only when long enough to be one: POSTGRES_DB=shop must not turn every path and image name into ***', () => {
    setInputs({
      ...ssh,
      'env-file': [
        'POSTGRES_USER=shop',
        'POSTGRES_DB=shop',
        'POSTGRES_PASSWORD=pw7',
        'API_TOKEN=tok9',
        'REDIS_URL=redis://:s3cr3t-pass@cache:6379/0',
        'SENTRY_ENVIRONMENT=production-eu-1',
        'LOG_LEVEL=info',
      ].join('\n'),
    });
    readDeployInputs();
    expect(masked()).toEqual(expect.arrayContaining(['pw7', 'tok9', 'redis://:s3cr3t-pass@cache:6379/0', 's3cr3t-pass', 'production-eu-1']));
    for (const plain of ['shop', 'info']) expect(masked()).not.toContain(plain);
  });

  it('reports every bad deploy input at once, naming each', () => {
    setInputs({
      ...ssh,
      'project-dir': '/opt/../etc',
      'project-name': 'Bad Name',
      'compose-file': 'missing.yaml',
      images: 'web=ghcr.io/acme/web:1\nweb=ghcr.io/acme/web:2',
      'keep-releases': '0',
      'lock-timeout': 'forever',
      'health-url': 'ftp://x/',
      'health-status': '600',
      'health-successes': '0',
      rollback: 'last-tuesday',
      'rollback-on-failure': 'yes',
    });
    let message = '';
    try {
      readDeployInputs();
    } catch (error) {
      message = (error as Error).message;
    }
    for (const name of [
      'project-dir',
      'project-name',
      'images',
      'keep-releases',
      'lock-timeout',
      'health-url',
      'health-status',
      'health-successes',
      'rollback',
      'rollback-on-failure',
    ]) {
      expect(message).toContain(`Input "${name}"`);
    }
    // A rollback re-deploys what the server keeps: the compose file is not read, so a wrong rollback value is not buried under an unrelated error.
    expect(message).not.toContain('compose-file');
    setInputs({ ...ssh, 'compose-file': 'missing.yaml' });
    expect(() => readDeployInputs()).toThrow('cannot read "missing.yaml" (ENOENT)');
  });

  it('rollback takes previous, a release id, or a git commit SHA (7 to 40 hex digits, any case)', () => {
    for (const [value, read] of [
      ['previous', 'previous'],
      ['20261121T222430Z-1a2b3c4-9f0e', '20261121T222430Z-1a2b3c4-9f0e'],
      ['1A2B3C4', '1a2b3c4'],
      ['1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b', '1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b'],
    ]) {
      setInputs({ ...ssh, rollback: value! });
      expect(readDeployInputs().rollback).toBe(read);
    }
    setInputs({ ...ssh, rollback: '1a2b3c' });
    expect(() => readDeployInputs()).toThrow(/Input "rollback" must be "previous", a release id .* or a git commit SHA \(7 to 40 hex digits\)/);
  });

  it('refuses images and env-file together with a rollback, which re-deploys a kept release as it was', () => {
    setInputs({ ...ssh, rollback: 'previous', images: 'web=r/app:1', 'env-file': 'A=bcdef' });
    expect(() => readDeployInputs()).toThrow(/"rollback" and "images" are both set[\s\S]*"rollback" and "env-file" are both set/);
  });
});

describe('readDeployInputs: many hosts, GitHub Deployments, notifications', () => {
  it('reads several hosts with per-host user and port, the run mode and all-or-nothing; {host} is allowed in project-dir and project-name', () => {
    setInputs({
      ...ssh,
      host: 'web1.example.com, deploy2@10.0.0.5:2222\n[2001:db8::1]:22',
      port: '2200',
      parallel: 'true',
      'max-parallel': '2',
      'all-or-nothing': 'true',
      'project-dir': '/srv/{host}/shop',
    });
    const inputs = readDeployInputs();
    expect(inputs.targets.map((t) => [t.username, t.host, t.port])).toEqual([
      ['deploy', 'web1.example.com', 2200],
      ['deploy2', '10.0.0.5', 2222],
      ['deploy', '2001:db8::1', 22],
    ]);
    expect(inputs.mode).toEqual({ parallel: true, maxParallel: 2 });
    expect(inputs.allOrNothing).toBe(true);
    expect([inputs.projectDir, inputs.projectName]).toEqual(['/srv/{host}/shop', 'shop']);
  });

  it('environment with its URL and token (masked); no Deployment without environment', () => {
    setInputs({ ...ssh, environment: 'production', 'environment-url': 'https://shop.example/', 'github-token': 'ghs_abcdefghijklmnop' });
    expect(readDeployInputs().deployment).toEqual({ environment: 'production', url: 'https://shop.example/', token: 'ghs_abcdefghijklmnop' });
    expect(masked()).toContain('ghs_abcdefghijklmnop');
    setInputs({ ...ssh, 'github-token': 'ghs_abcdefghijklmnop' });
    expect(readDeployInputs().deployment).toBeUndefined();
  });

  it('notify-webhook is masked, and a bad one is refused without showing it; environment-url needs environment', () => {
    setInputs({ ...ssh, 'notify-webhook': 'https://hooks.slack.com/services/T0/B0/s3cretPath' });
    expect(readDeployInputs().notifyWebhooks).toEqual(['https://hooks.slack.com/services/T0/B0/s3cretPath']);
    expect(masked()).toContain('https://hooks.slack.com/services/T0/B0/s3cretPath');
    setInputs({ ...ssh, 'notify-webhook': 'hooks.slack.com/s3cretPath', 'environment-url': 'https://shop.example/' });
    let message = '';
    try {
      readDeployInputs();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('Input "notify-webhook" must be an https:// incoming-webhook URL');
    expect(message).not.toContain('s3cretPath');
    expect(message).toContain('Input "environment-url" is set but "environment" is not');
  });

  it('notify-webhook takes several URLs, one per line (a Discord and a Slack channel): each masked, a bad one named by its line', () => {
    const discord = 'https://discord.com/api/webhooks/1/d1scordToken';
    const slack = 'https://hooks.slack.com/services/T0/B0/s1ackPath';
    setInputs({ ...ssh, 'notify-webhook': `${discord}\n${slack}\n` });
    expect(readDeployInputs().notifyWebhooks).toEqual([discord, slack]);
    expect(masked()).toEqual(expect.arrayContaining([discord, slack]));
    setInputs({ ...ssh, 'notify-webhook': `${discord}\nnot-a-url-s3cret\n` });
    let message = '';
    try {
      readDeployInputs();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('Input "notify-webhook" line 2 must be an https:// incoming-webhook URL');
    expect(message).not.toContain('s3cret');
  });
});

describe('parseImages', () => {
  it('accepts service=image-ref lines with registries, ports, tags and digests', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseImages(['web=ghcr.io/acme/web:1.2.3', `worker = 127.0.0.1:5000/acme/worker@${digest}`, 'db=postgres'])).toEqual({
      web: 'ghcr.io/acme/web:1.2.3',
      worker: `127.0.0.1:5000/acme/worker@${digest}`,
      db: 'postgres',
    });
  });

  it('refuses anything else, showing the line', () => {
    for (const line of ['web', '=img', 'web=Img:UPPER/x', 'web=img:tag;rm -rf /', 'we b=img', 'web=img@sha256:short']) {
      expect(() => parseImages([line]), line).toThrow(/Input "images" must be lines of service=image-ref/);
    }
  });
});

describe('the inputs as the runner passes them: every input with a default in action.yml is set', () => {
  // GitHub's runner sets INPUT_<NAME> for every input that has a default, given or not; an action
  // that treats a default as "the user set this" refuses every workflow that uses it.
  const actionYml = parseYaml(readFileSync(join(import.meta.dirname, '..', 'action.yml'), 'utf8')) as { inputs: Record<string, { default?: string }> };
  const runnerDefaults = Object.fromEntries(
    Object.entries(actionYml.inputs)
      .filter(([, spec]) => spec.default !== undefined)
      .map(([name, spec]) => [name, String(spec.default).replace('${{ github.token }}', 'ghs_runnerDefaultToken000000000000000000')]),
  );
  const byStrategy: Record<string, Record<string, string>> = {
    recreate: ssh,
    rolling: { ...ssh, strategy: 'rolling' },
    swarm: { ...ssh, strategy: 'swarm' },
    systemd: { ...ssh, strategy: 'systemd', 'systemd-unit': 'shop', 'git-repository': 'https://github.com/acme/shop.git' },
    coolify: { strategy: 'coolify', 'coolify-url': 'https://coolify.example.com', 'coolify-token': '3|coolifyTokenValue', 'coolify-uuid': 'abc123' },
  };
  it.each(Object.keys(byStrategy))('strategy %s accepts them', (strategy) => {
    expect(Object.keys(runnerDefaults)).toContain('build-on-server');
    setInputs({ ...runnerDefaults, ...byStrategy[strategy] });
    const sha = process.env.GITHUB_SHA;
    process.env.GITHUB_SHA = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
    try {
      expect(() => readDeployInputs()).not.toThrow();
    } finally {
      if (sha === undefined) delete process.env.GITHUB_SHA;
      else process.env.GITHUB_SHA = sha;
    }
  });
});
