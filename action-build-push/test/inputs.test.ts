import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readBuildPushInputs, registryOf } from '../src/inputs';

let workspace: string;
let cwd: string;

function setInputs(inputs: Record<string, string>): void {
  for (const [name, value] of Object.entries(inputs)) vi.stubEnv(`INPUT_${name.toUpperCase()}`, value);
}

beforeEach(() => {
  workspace = mkdtempSync(join(tmpdir(), 'skiffbp-inputs-'));
  mkdirSync(join(workspace, 'app'));
  writeFileSync(join(workspace, 'app/Dockerfile'), 'FROM scratch\n');
  cwd = process.cwd();
  process.chdir(workspace);
  vi.stubEnv('GITHUB_REPOSITORY', 'Acme-Corp/Shop-App');
  vi.stubEnv('GITHUB_ACTOR', 'Jane-Dev');
});

afterEach(() => {
  process.chdir(cwd);
  vi.unstubAllEnvs();
  rmSync(workspace, { recursive: true, force: true });
});

describe('readBuildPushInputs', () => {
  it('defaults the image to ghcr.io/owner/repo in lowercase, the registry to its host and the login to the actor and token', () => {
    setInputs({ context: 'app', 'github-token': 'ghs_token123456' });
    const inputs = readBuildPushInputs();
    expect(inputs).toMatchObject({
      image: 'ghcr.io/acme-corp/shop-app',
      imageLowercased: true,
      registry: 'ghcr.io',
      username: 'Jane-Dev',
      password: 'ghs_token123456',
      file: join(workspace, 'app/Dockerfile'),
      push: true,
      cache: 'auto',
      builder: { mode: 'auto' },
      buildkitImage: 'moby/buildkit:v0.25.1',
      platforms: [],
      scanSeverities: [],
    });
    expect(inputs.smoke).toBeUndefined();
  });

  it('lowercases a given image, reads lists and the smoke test options', () => {
    setInputs({
      image: '127.0.0.1:5000/Acme/App',
      context: 'app',
      password: 'pw-123456',
      'build-args': 'NODE_ENV=production\nEMPTY=',
      'build-secrets': 'npm_token=abc=def',
      labels: 'team=shop',
      platforms: 'linux/amd64, linux/arm64',
      tags: 'stable,canary\nnightly',
      'smoke-test': 'true',
      'smoke-url': ':8000/health',
      'smoke-timeout': '2m',
      'scan-severity': 'critical,HIGH',
      builder: 'ci-builder',
      'buildkit-image': '127.0.0.1:5000/mirror/buildkit:v0.25.1',
    });
    expect(readBuildPushInputs()).toMatchObject({
      builder: { mode: 'named', name: 'ci-builder' },
      buildkitImage: '127.0.0.1:5000/mirror/buildkit:v0.25.1',
      image: '127.0.0.1:5000/acme/app',
      registry: '127.0.0.1:5000',
      buildArgs: ['NODE_ENV=production', 'EMPTY='],
      buildSecrets: { npm_token: 'abc=def' },
      labels: { team: 'shop' },
      platforms: ['linux/amd64', 'linux/arm64'],
      tags: ['stable', 'canary', 'nightly'],
      smoke: { url: { port: 8000, path: '/health' }, timeoutSeconds: 120 },
      scanSeverities: ['CRITICAL', 'HIGH'],
    });
  });

  it('reports every bad input at once, never showing a secret', () => {
    setInputs({
      image: 'ghcr.io/acme/app:latest',
      context: 'app',
      file: 'nope/Dockerfile',
      password: 'pw-123456',
      'build-secrets': 'not-a-pair-s3cret',
      platforms: 'linux/amd65',
      tags: 'bad tag',
      cache: 'redis',
      'smoke-url': 'health',
      'scan-severity': 'SEVERE',
      builder: 'my builder',
      'buildkit-image': 'moby/buildkit:v0.25.1 --privileged',
    });
    let message = '';
    try {
      readBuildPushInputs();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toContain('10 problems with the inputs');
    expect(message).toContain('Input "builder" must be auto, docker, or the name of a buildx builder (letters, digits, _, . or -); got "my builder"');
    expect(message).toContain('Input "buildkit-image" must be an image reference like moby/buildkit:v0.25.1');
    expect(message).toContain('Input "image" must be an image name without a tag');
    expect(message).toContain('Input "file" must be the path of a Dockerfile in the workspace; got "nope/Dockerfile"');
    expect(message).toContain('Input "build-secrets" must be one id=VALUE per line');
    expect(message).not.toContain('s3cret');
    expect(message).toContain('Input "platforms" has unknown platform(s) "linux/amd65"');
    expect(message).toContain('Input "tags" has invalid tag(s) "bad tag"');
    expect(message).toContain('Input "cache" must be one of "auto", "gha", "registry", "none"; got "redis"');
    expect(message).toContain('Input "smoke-url" must be a container port and path like :8000/health; got "health"');
    expect(message).toContain('Input "scan-severity" must be a comma-separated list of UNKNOWN, LOW, MEDIUM, HIGH, CRITICAL');
  });

  it('needs a token to push, and smoke-test turned on for smoke options', () => {
    vi.stubEnv('GITHUB_ACTOR', '');
    setInputs({ context: 'app', 'smoke-command': 'true' });
    expect(() => readBuildPushInputs()).toThrow(/"password" and "github-token" are both empty but "push" is true[\s\S]*"smoke-test" is not true/);
    setInputs({ push: 'false' });
    expect(() => readBuildPushInputs()).toThrow(/"smoke-test" is not true/);
  });

  it("takes docker as the engine's own builder", () => {
    setInputs({ context: 'app', push: 'false', builder: 'docker' });
    expect(readBuildPushInputs().builder).toEqual({ mode: 'docker' });
  });
});

describe('registryOf', () => {
  it('finds the registry host the way docker does', () => {
    expect(registryOf('ghcr.io/acme/app')).toBe('ghcr.io');
    expect(registryOf('127.0.0.1:5000/acme/app')).toBe('127.0.0.1:5000');
    expect(registryOf('localhost/app')).toBe('localhost');
    expect(registryOf('acme/app')).toBe('docker.io');
    expect(registryOf('app')).toBe('docker.io');
  });
});
