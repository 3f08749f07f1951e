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

/** `docker buildx ls` as the action sees it (buildx keeps its builders under DOCKER_CONFIG). */
async function buildxLs(): Promise<string> {
  return (await run('docker', ['buildx', 'ls'], { env: { ...process.env, DOCKER_CONFIG: dockerConfig } })).stdout;
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
    const builders = await buildxLs();
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
    // builder: auto keeps the engine's docker-driver builder for one platform without a cache: nothing is made.
    expect(result.summary).toContain('docker buildx (builder default, docker driver)');
    expect(result.stdout).not.toContain('making a docker-container builder');
    expect(result.stdout).toMatch(/\[command\][^\n]*buildx build --builder default /);
    expect(result.state.builder).toBeUndefined();
    expect(await buildxLs()).toBe(builders);
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
    expect(
      result.stdout
        .split('\n')
        .filter((line) => !line.startsWith('::add-mask::'))
        .join('\n'),
    ).not.toContain(secret);
    expect(result.stdout).toContain(`::add-mask::${secret}`);
    const history = (await run('docker', ['history', '--no-trunc', '--format', '{{.CreatedBy}}', `${image('secret')}:main`])).stdout;
    expect(history).not.toContain(secret);
  });

  it('builds a pull request from a fork without pushing, and says why', async () => {
    const event = { name: 'pull_request', ref: 'refs/pull/43/merge', sha: MERGE_SHA, payload: await eventPayload('pull_request-fork') };
    const result = await runBuildPush(
      { image: image('fork'), context: 'healthy', 'github-token': 'ghs_readonlyforktoken' },
      options(event, { env: { DOCKER_CONFIG: dockerConfig, GITHUB_ACTOR: 'outsider' } }),
    );
    expect(result.errors).toEqual([]);
    expect(result.code).toBe(0);
    expect(result.summary).toContain('comes from a fork');
    expect(result.outputs.digest).toBe('');
    expect(result.outputs.tags).toBe(`${image('fork')}:pr-43\n${image('fork')}:sha-f00dfee`);
    expect(await registryManifestDigest(registry, repo('fork'), 'pr-43')).toBeUndefined();
    // Built all the same: the image is in the engine.
    await run('docker', ['image', 'inspect', `${image('fork')}:pr-43`]);
  });

  it('a build that fails says so in the job summary too, with what the build printed; nothing is pushed', async () => {
    const result = await runBuildPush({ image: image('broken'), context: 'broken', ...credentials() }, options(await pushMain()));
    expect(result.code).toBe(1);
    expect(result.summary).toContain('### Build and push: failed');
    expect(result.summary).toContain(`Image \`${image('broken')}\``);
    expect(result.summary).toContain('error TS2322: broken on purpose');
    expect(await registryManifestDigest(registry, repo('broken'), 'main')).toBeUndefined();
  });

  it('turns a refused login into the packages: write hint', async () => {
    const result = await runBuildPush({ image: image('denied'), context: 'healthy', ...credentials('wrong-password') }, options(await pushMain()));
    expect(result.code).toBe(1);
    expect(result.errors.join('\n')).toContain('add `permissions: packages: write` to the job, or grant this repository access to the package');
    expect(
      result.stdout
        .split('\n')
        .filter((line) => !line.startsWith('::add-mask::'))
        .join('\n'),
    ).not.toContain('wrong-password');
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

  it('auto makes a docker-container builder for several platforms; when it cannot start, the error names the fix and nothing is left behind', async () => {
    const builders = await buildxLs();
    const multi = await runBuildPush(
      { image: image('multi'), context: 'healthy', ...credentials(), platforms: 'linux/amd64,linux/arm64' },
      options(await pushMain(), { env: { DOCKER_CONFIG: dockerConfig, GITHUB_RUN_ID: '4242', GITHUB_RUN_ATTEMPT: '1' } }),
    );
    expect(multi.code).toBe(1);
    const made = /making a docker-container builder (skiff-4242-1-[0-9a-f]{6}) for this run \(moby\/buildkit:v0\.25\.1\)/.exec(multi.stdout);
    expect(made, multi.stdout).not.toBeNull();
    const error = multi.errors.join('\n');
    expect(error).toContain('Input "platforms" lists 2 platforms, which the current builder default (docker driver) cannot build at once');
    // The engine's own words for why BuildKit could not start (it cannot pull the image here).
    expect(error).toMatch(/it could not start: ERROR: .*registry-1\.docker\.io/);
    expect(error).toContain('let the runner pull moby/buildkit:v0.25.1 (or set "buildkit-image"');
    expect(error).toContain('docker/setup-buildx-action');
    expect(multi.stdout).not.toMatch(/\[command\][^\n]*buildx build/);
    // Removed by main, and the state that tells post to remove it is cleared.
    expect(multi.stdout).toContain(`Removed the builder ${made![1]} made for this run`);
    expect(multi.state.builder).toBe('');
    expect(await buildxLs()).toBe(builders);
    expect((await run('docker', ['ps', '--all', '--quiet', '--filter', `name=buildx_buildkit_${made![1]}`])).stdout.trim()).toBe('');
    expect(await registryManifestDigest(registry, repo('multi'), 'main')).toBeUndefined();

    // builder: docker is used as it is: several platforms fail before anything is made or built.
    const docker = await runBuildPush(
      { image: image('multi'), context: 'healthy', ...credentials(), platforms: 'linux/amd64,linux/arm64', builder: 'docker' },
      options(await pushMain()),
    );
    expect(docker.code).toBe(1);
    expect(docker.errors.join('\n')).toContain('input "builder" is `docker`, a builder with the `docker` driver, which cannot build several platforms at once');
    expect(docker.stdout).not.toContain('making a docker-container builder');
    expect(docker.stdout).not.toMatch(/\[command\][^\n]*buildx build/);
  });

  it('goes on without a cache when the builder a cache export needs cannot start, and says why in the summary', async () => {
    const builders = await buildxLs();
    const cached = await runBuildPush({ image: image('cache'), context: 'healthy', ...credentials(), cache: 'registry' }, options(await pushMain()));
    expect(cached.errors).toEqual([]);
    expect(cached.code).toBe(0);
    expect(cached.stdout).toContain('making a docker-container builder');
    expect(cached.summary).toContain('cache `registry` needs a docker-container builder, and the one made for this run could not start (ERROR:');
    expect(cached.summary).toContain('built with default (docker driver) without the cache');
    expect(cached.stdout).not.toContain('--cache-to');
    expect(await registryManifestDigest(registry, repo('cache'), 'main')).toBe(cached.outputs.digest);
    expect(await buildxLs()).toBe(builders);
  });

  it('post removes a builder a cancelled main left behind', async () => {
    const builders = await buildxLs();
    const name = 'skiff-4243-1-abcdef';
    // Creating only writes buildx's config (booting would pull BuildKit): what a run killed after `create` leaves.
    await run('docker', ['buildx', 'create', '--driver', 'docker-container', '--name', name], { env: { ...process.env, DOCKER_CONFIG: dockerConfig } });
    expect(await buildxLs()).toContain(name);
    const post = await runBuildPush({}, options(await pushMain(), { state: { isPost: 'true', builder: name } }));
    expect(post.code).toBe(0);
    expect(post.stdout).toContain(`Removed the builder ${name} made for this run`);
    expect(await buildxLs()).toBe(builders);
  });

  it('fails clearly before building when a scan is asked for and trivy is not on PATH', async () => {
    const result = await runBuildPush(
      { image: image('scan'), context: 'healthy', ...credentials(), 'scan-severity': 'CRITICAL,HIGH' },
      options(await pushMain()),
    );
    expect(result.code).toBe(1);
    expect(result.errors.join('\n')).toContain('the trivy CLI is not on PATH');
    expect(result.stdout).not.toContain('[command]');
  });
});
