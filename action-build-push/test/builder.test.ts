import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decideBuilder, isMissingEmulation, missingPlatforms, qemuHint, shortfalls, SETUP_QEMU, throwawayBuilderName, type BuilderNeeds } from '../src/builder';
import { parseBuildxInspect, usesContainerdStore, type BuildxInspect } from '../src/commands';

// Real `docker buildx inspect` output from the test bed's engine (see fixtures/buildx/README.md).
const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures/buildx', name), 'utf8');
const inspected = (name: string, containerdStore = false) => ({ ...(parseBuildxInspect(fixture(name)) as BuildxInspect), containerdStore });
const engineBuilder = inspected('inspect-default-docker.txt');
const containerBuilder = inspected('inspect-container-inactive.txt');

const needs = (platforms: string[], cacheExport = false, secrets = 0): BuilderNeeds => ({ platforms, cacheExport, secrets });
const AUTO = { mode: 'auto' } as const;
const DOCKER = { mode: 'docker' } as const;

describe('docker buildx inspect, as the engine prints it', () => {
  it('reads the engine builder: docker driver, running, the platforms it can run', () => {
    expect(parseBuildxInspect(fixture('inspect-default-docker.txt'))).toEqual({
      name: 'default',
      driver: 'docker',
      statuses: ['running'],
      platforms: ['linux/amd64', 'linux/386'],
    });
  });

  it('reads a docker-container builder that has not booted: no platforms known yet', () => {
    expect(parseBuildxInspect(fixture('inspect-container-inactive.txt'))).toEqual({
      name: 'skiff-1234567890-1-a1b2c3',
      driver: 'docker-container',
      statuses: ['inactive'],
      platforms: [],
    });
  });

  it('drops the * buildx puts on platforms set by hand, and joins the nodes', () => {
    const twoNodes =
      'Name: b\nDriver: docker-container\n\nNodes:\nName: b0\nStatus: running\nPlatforms: linux/amd64*, linux/arm64\n\nName: b1\nStatus: running\nPlatforms: linux/arm64, linux/arm/v7\n';
    expect(parseBuildxInspect(twoNodes)?.platforms).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7']);
    expect(parseBuildxInspect('ERROR: no builder "x" found\n')).toBeUndefined();
  });

  it('tells the containerd image store from the classic one by the storage driver status', () => {
    expect(usesContainerdStore('[["driver-type","io.containerd.snapshotter.v1"]]')).toBe(true);
    expect(usesContainerdStore('[["Backing Filesystem","extfs"],["Supports d_type","true"],["Native Overlay Diff","true"],["userxattr","false"]]')).toBe(false);
  });
});

describe('which builder builds', () => {
  it('auto keeps the engine builder for one platform without a cache export: nothing is made', () => {
    expect(decideBuilder(AUTO, engineBuilder, needs([]))).toEqual({ action: 'keep' });
    expect(decideBuilder(AUTO, engineBuilder, needs(['linux/amd64'], false, 1))).toEqual({ action: 'keep' });
  });

  it('auto makes a docker-container builder when the docker driver falls short: several platforms, a cache export, or both', () => {
    expect(decideBuilder(AUTO, engineBuilder, needs(['linux/amd64', 'linux/arm64']))).toEqual({ action: 'create', because: ['platforms'] });
    expect(decideBuilder(AUTO, engineBuilder, needs(['linux/amd64'], true))).toEqual({ action: 'create', because: ['cache'] });
    expect(decideBuilder(AUTO, engineBuilder, needs(['linux/amd64', 'linux/arm64'], true))).toEqual({ action: 'create', because: ['platforms', 'cache'] });
  });

  it('auto keeps a docker-container builder (e.g. from setup-buildx-action) and a docker driver on the containerd store', () => {
    expect(decideBuilder(AUTO, containerBuilder, needs(['linux/amd64', 'linux/arm64'], true))).toEqual({ action: 'keep' });
    expect(shortfalls(inspected('inspect-default-docker.txt', true), needs(['linux/amd64', 'linux/arm64'], true))).toEqual([]);
  });

  it('docker and a named builder are used as they are: several platforms on the docker driver fail and say how to fix it, a cache is only noted', () => {
    const [problem] = (decideBuilder(DOCKER, engineBuilder, needs(['linux/amd64', 'linux/arm64'])) as { problems: string[] }).problems;
    expect(problem).toContain('Input "platforms" lists 2 platforms, but input "builder" is `docker`');
    expect(problem).toContain('set "builder" to auto');
    expect(decideBuilder({ mode: 'named', name: 'default' }, engineBuilder, needs(['linux/amd64', 'linux/arm64'])).action).toBe('fail');
    expect(decideBuilder(DOCKER, engineBuilder, needs(['linux/amd64'], true))).toEqual({ action: 'keep' });
    expect(decideBuilder({ mode: 'named', name: 'skiff-1234567890-1-a1b2c3' }, containerBuilder, needs(['linux/amd64', 'linux/arm64'], true))).toEqual({
      action: 'keep',
    });
  });

  it('without buildx: docker build for one platform; several platforms, secrets or a named builder fail', () => {
    expect(decideBuilder(AUTO, 'classic', needs(['linux/amd64'], true))).toEqual({ action: 'classic' });
    expect((decideBuilder(AUTO, 'classic', needs(['linux/amd64', 'linux/arm64'], false, 1)) as { problems: string[] }).problems).toHaveLength(2);
    expect((decideBuilder({ mode: 'named', name: 'ci' }, 'classic', needs([])) as { problems: string[] }).problems[0]).toContain(
      'docker buildx is not installed',
    );
  });

  it('names a throwaway builder after the run, unique per job', () => {
    expect(throwawayBuilderName({ GITHUB_RUN_ID: '1234567890', GITHUB_RUN_ATTEMPT: '2' }, 'a1b2c3')).toBe('skiff-1234567890-2-a1b2c3');
    expect(throwawayBuilderName({}, 'a1b2c3')).toBe('skiff-local-1-a1b2c3');
    expect(throwawayBuilderName({ GITHUB_RUN_ID: '1;rm' })).toMatch(/^skiff-local-1-[0-9a-f]{6}$/);
  });
});

describe('QEMU emulation', () => {
  it('finds the platforms the engine builder can neither run nor emulate (no QEMU on the test bed)', () => {
    expect(missingPlatforms(engineBuilder.platforms, ['linux/amd64', 'linux/arm64'])).toEqual(['linux/arm64']);
    expect(missingPlatforms(engineBuilder.platforms, ['linux/amd64', 'linux/386'])).toEqual([]);
    // Emulation is per architecture: a variant runs where its architecture does.
    expect(missingPlatforms(['linux/amd64', 'linux/arm64', 'linux/arm/v7'], ['linux/arm/v6', 'linux/arm64/v8', 'linux/amd64/v2'])).toEqual([]);
    // A builder that has not booted does not know its platforms yet: nothing is claimed.
    expect(missingPlatforms(containerBuilder.platforms, ['linux/arm64'])).toEqual([]);
  });

  it('says how to fix it with setup-qemu-action pinned by commit SHA, and knows the failure it prevents', () => {
    const hint = qemuHint(['linux/arm64'], engineBuilder.platforms);
    expect(hint).toContain('cannot run linux/arm64 (it offers linux/amd64, linux/386)');
    expect(hint).toContain(`uses: ${SETUP_QEMU}`);
    expect(SETUP_QEMU).toMatch(/^docker\/setup-qemu-action@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
    expect(isMissingEmulation('#8 0.112 exec /bin/sh: exec format error')).toBe(true);
    expect(isMissingEmulation(fixture('bootstrap-unpullable.stderr.txt'))).toBe(false);
  });
});
