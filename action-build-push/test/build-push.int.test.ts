import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBaseImages, registryManifestDigest, startRegistry, withoutCliPlugins, type Registry } from '@skiff/testbed';
import { CONTEXTS, eventPayload, runBuildPush, type RunOptions } from './run-bundle';

const run = promisify(execFile);
const MAIN_SHA = '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a';
const MERGE_SHA = 'e1e2e3e4e5e6e7e8e9e0e1e2e3e4e5e6e7e8e9e0';

let registry: Registry;
let dockerConfig: string;
const repo = (name: string) => `acme/skiffbp-${name}`;
const image = (name: string) => `${registry.address}/${repo(name)}`;

async function pushMain(): Promise<RunOptions['event']> {
  return { name: 'push', ref: 'refs/heads/main', sha: MAIN_SHA, payload: await eventPayload('push-main') };
}

function options(event: RunOptions['event'], extra: Partial<RunOptions> = {}): RunOptions {
  return { cwd: CONTEXTS, event, env: { DOCKER_CONFIG: dockerConfig }, ...extra };
}

function credentials(password = registry.password): Record<string, string> {
  return { username: registry.username, password };
}

async function smokeContainers(): Promise<string> {
  return (await run('docker', ['ps', '--all', '--quiet', '--filter', 'label=org.skiff.smoke-test=true'])).stdout.trim();
}

beforeAll(async () => {
  await ensureBaseImages();
  registry = await startRegistry();
  dockerConfig = await mkdtemp(join(tmpdir(), 'skiffbp-docker-config-'));
});

afterAll(async () => {
  // Only this file's images: everything under ADDRESS/acme/skiffbp-*, by ID, so the untagged
  // leftovers of earlier builds (shown as <none>) go too.
  if (registry) {
    const ids = (await run('docker', ['images', '--quiet', '--filter', `reference=${registry.address}/acme/skiffbp-*`])).stdout.split('\n').filter(Boolean);
    if (ids.length > 0) await run('docker', ['rmi', '--force', ...new Set(ids)]).catch(() => undefined);
  }
  await registry?.stop();
  await rm(dockerConfig, { recursive: true, force: true });
});

describe('action-build-push against a real engine and registry', () => {
  it('builds, smoke-tests (HEALTHCHECK) and pushes; every tag serves the digest it outputs; post logs out', async () => {
    const result = await runBuildPush(
      { image: `${registry.address}/Acme/SkiffBP-Healthy`, context: 'healthy', ...credentials(), 'smoke-test': 'true', 'smoke-timeout': '30s', tags: 'stable' },
      options(await pushMain()),
    );
    expect(result.errors).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('GHCR refuses uppercase');
    const digest = result.outputs.digest!;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.outputs.image).toBe(image('healthy'));
    expect(result.outputs['image-ref']).toBe(`${image('healthy')}@${digest}`);
    const tags = result.outputs.tags!.split('\n');
    expect(tags).toEqual(['main', 'latest', 'sha-8f3c2a1', 'stable'].map((tag) => `${image('healthy')}:${tag}`));
    for (const tag of ['main', 'latest', 'sha-8f3c2a1', 'stable']) {
      expect(await registryManifestDigest(registry, repo('healthy'), tag), tag).toBe(digest);
    }
    expect(result.summary).toContain('HEALTHCHECK reported healthy');
    expect(result.stdout).toContain(`::add-mask::${registry.password}`);
    expect(result.stdout).not.toMatch(new RegExp(`login[^\\n]*${registry.password}`));
    const metadata = JSON.parse(result.outputs.metadata!);
    expect(metadata).toMatchObject({ digest, version: 'main', revision: MAIN_SHA, pushed: true });
    expect(metadata.labels['org.opencontainers.image.source']).toBe('https://github.com/Acme-Corp/Shop-App');
    const labels = JSON.parse((await run('docker', ['image', 'inspect', '--format', '{{json .Config.Labels}}', tags[0]!])).stdout);
    expect(labels['org.opencontainers.image.revision']).toBe(MAIN_SHA);
    expect(await smokeContainers()).toBe('');

    // The post phase undoes the login main recorded.
    expect(result.state.registry).toBe(registry.address);
    expect(JSON.parse(await readFile(join(dockerConfig, 'config.json'), 'utf8')).auths).toHaveProperty(registry.address);
    const post = await runBuildPush({}, options(await pushMain(), { state: { isPost: 'true', registry: registry.address } }));
    expect(post.code).toBe(0);
    expect(JSON.parse(await readFile(join(dockerConfig, 'config.json'), 'utf8')).auths ?? {}).not.toHaveProperty(registry.address);
  });

  it('rebuilds no layer when the context has not changed, and gives the same digest', async () => {
    const inputs = { image: image('healthy'), context: 'healthy', ...credentials() };
    const first = await runBuildPush(inputs, options(await pushMain()));
    expect(first.code).toBe(0);
    const second = await runBuildPush(inputs, options(await pushMain()));
    expect(second.code).toBe(0);
    // buildx's plain progress: every Dockerfile step `#N [i/n] ...` must be followed by `#N CACHED`.
    const steps = [...second.stdout.matchAll(/^#(\d+) \[\d+\/\d+\] (RUN|COPY)/gm)].map((m) => m[1]!);
    expect(steps.length).toBeGreaterThanOrEqual(2);
    for (const step of steps) expect(second.stdout).toMatch(new RegExp(`^#${step} CACHED$`, 'm'));
    expect(second.outputs.digest).toBe(first.outputs.digest);
  });

  it('smoke-tests an HTTP endpoint and pushes with docker build + docker push when buildx is missing', async () => {
    const hidden = await withoutCliPlugins([]);
    try {
      const result = await runBuildPush(
        { image: image('http'), context: 'http', ...credentials(), 'smoke-test': 'true', 'smoke-url': ':8000/health', 'smoke-timeout': '20' },
        options(await pushMain(), { wrap: (argv) => [...hidden.argv, ...argv] }),
      );
      expect(result.errors).toEqual([]);
      expect(result.code).toBe(0);
      expect(result.summary).toContain('buildx is not installed');
      expect(result.summary).toContain(':8000/health answered 2xx');
      expect(result.stdout).toContain('docker push');
      const digest = result.outputs.digest!;
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      for (const tag of ['main', 'latest', 'sha-8f3c2a1']) expect(await registryManifestDigest(registry, repo('http'), tag), tag).toBe(digest);
    } finally {
      await hidden.cleanup();
    }
  });

  it('pushes nothing when the smoke test fails, shows the last 100 log lines and removes the container', async () => {
    const result = await runBuildPush(
      { image: image('failing'), context: 'failing', ...credentials(), 'smoke-test': 'true', 'smoke-timeout': '20s' },
      options(await pushMain()),
    );
    expect(result.code).toBe(1);
    expect(result.errors.join('\n')).toContain('Smoke test failed: the container exited with code 3');
    expect(result.summary).toContain('fatal: DATABASE_URL is not set');
    expect(result.summary).toContain('boot line 150');
    expect(result.summary).toContain('boot line 52');
    // 149 stdout lines + the stderr line make the last 100.
    expect(result.summary).not.toContain('boot line 51\n');
    expect(result.outputs.digest).toBeUndefined();
    for (const tag of ['main', 'latest', 'sha-8f3c2a1']) expect(await registryManifestDigest(registry, repo('failing'), tag)).toBeUndefined();
    expect(await smokeContainers()).toBe('');
  });

  it('passes build secrets to BuildKit without putting them on a command line or in the log', async () => {
    const secret = 's3cret-build-value';
    const result = await runBuildPush(
      { image: image('secret'), context: 'secret', ...credentials(), 'build-secrets': `npm_token=${secret}`, push: 'false' },
      options(await pushMain()),
    );
    expect(result.errors).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('id=npm_token,env=SKIFF_BUILD_SECRET_0');
    expect(result.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::')).join('\n')).not.toContain(secret);
    expect(result.stdout).toContain(`::add-mask::${secret}`);
    const history = (await run('docker', ['history', '--no-trunc', '--format', '{{.CreatedBy}}', `${image('secret')}:main`])).stdout;
    expect(history).not.toContain(secret);
  });

  it('builds a pull request from a fork without pushing, and says why', async () => {
    const event = { name: 'pull_request', ref: 'refs/pull/43/merge', sha: MERGE_SHA, payload: await eventPayload('pull_request-fork') };
    const result = await runBuildPush({ image: image('fork'), context: 'healthy', 'github-token': 'ghs_readonlyforktoken' }, options(event, { env: { DOCKER_CONFIG: dockerConfig, GITHUB_ACTOR: 'outsider' } }));
    expect(result.errors).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.summary).toContain('comes from a fork');
    expect(result.outputs.digest).toBe('');
    expect(result.outputs.tags).toBe(`${image('fork')}:pr-43\n${image('fork')}:sha-f00dfee`);
    expect(await registryManifestDigest(registry, repo('fork'), 'pr-43')).toBeUndefined();
    // Built all the same: the image is in the engine.
    await run('docker', ['image', 'inspect', `${image('fork')}:pr-43`]);
  });

  it('turns a refused login into the packages: write hint', async () => {
    const result = await runBuildPush({ image: image('denied'), context: 'healthy', ...credentials('wrong-password') }, options(await pushMain()));
    expect(result.code).toBe(1);
    expect(result.errors.join('\n')).toContain('add `permissions: packages: write` to the job, or grant this repository access to the package');
    expect(result.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::')).join('\n')).not.toContain('wrong-password');
    expect(await registryManifestDigest(registry, repo('denied'), 'main')).toBeUndefined();
  });

  it('reports an unknown platform, a missing Dockerfile and an invalid tag together, before building', async () => {
    const result = await runBuildPush(
      { image: image('bad'), context: '.', ...credentials(), platforms: 'linux/amd64,linux/amd65', tags: 'ok-tag\nnot a tag!' },
      options(await pushMain()),
    );
    expect(result.code).toBe(1);
    const [error] = result.errors;
    expect(result.errors).toHaveLength(1);
    expect(error).toContain('Input "platforms" has unknown platform(s) "linux/amd65"');
    expect(error).toContain('the context has no Dockerfile');
    expect(error).toContain('Input "tags" has invalid tag(s) "not a tag!"');
    expect(result.stdout).not.toContain('[command]');
  });

  it('refuses several platforms on the default docker driver before building, and notes an unsupported cache', async () => {
    const multi = await runBuildPush({ image: image('multi'), context: 'healthy', ...credentials(), platforms: 'linux/amd64,linux/arm64' }, options(await pushMain()));
    expect(multi.code).toBe(1);
    expect(multi.errors.join('\n')).toContain('cannot build several platforms at once');
    expect(multi.stdout).not.toMatch(/\[command\][^\n]*buildx build/);

    const cached = await runBuildPush({ image: image('cache'), context: 'healthy', ...credentials(), cache: 'registry' }, options(await pushMain()));
    expect(cached.errors).toEqual([]);
    expect(cached.code).toBe(0);
    expect(cached.summary).toContain('cache `registry` is not supported by the default `docker` buildx driver');
    expect(cached.stdout).not.toContain('--cache-to');
    expect(await registryManifestDigest(registry, repo('cache'), 'main')).toBe(cached.outputs.digest);
  });

  it('fails clearly before building when a scan is asked for and trivy is not on PATH', async () => {
    const result = await runBuildPush({ image: image('scan'), context: 'healthy', ...credentials(), 'scan-severity': 'CRITICAL,HIGH' }, options(await pushMain()));
    expect(result.code).toBe(1);
    expect(result.errors.join('\n')).toContain('the trivy CLI is not on PATH');
    expect(result.stdout).not.toContain('[command]');
  });
});
