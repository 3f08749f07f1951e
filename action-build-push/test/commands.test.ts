import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildxBuildCommand,
  cacheFlags,
  containerLogsCommand,
  dockerBuildCommand,
  dockerPushCommand,
  execInContainerCommand,
  loginCommand,
  logoutCommand,
  buildxCreateCommand,
  buildxInspectCommand,
  buildxRemoveCommand,
  parseHostPort,
  parseMetadataDigest,
  parsePushDigest,
  removeContainerCommand,
  runContainerCommand,
  trivyCommand,
  type BuildSpec,
} from '../src/commands';
import { ghaCacheAvailable, planCache, type Builder } from '../src/builder';
import { findingsAtOrAbove, findingsTable, parseTrivyReport } from '../src/scan';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const spec: BuildSpec = {
  context: '/w/app',
  file: '/w/app/Dockerfile',
  target: 'runtime',
  platforms: ['linux/amd64'],
  buildArgs: ['NODE_ENV=production'],
  labels: { 'org.opencontainers.image.revision': 'abc', team: 'a b' },
  refs: ['ghcr.io/acme/app:main', 'ghcr.io/acme/app:sha-abc1234'],
  secretEnv: { npmrc: 'SKIFF_BUILD_SECRET_0' },
  cacheFrom: ['type=gha,scope=ghcr.io/acme/app'],
  cacheTo: ['type=gha,scope=ghcr.io/acme/app,mode=max'],
  output: 'push',
  metadataFile: '/tmp/m.json',
};

describe('command builders', () => {
  it('logs in with the password on stdin, never on the command line', () => {
    expect(loginCommand('ghcr.io', 'jane')).toEqual(['docker', 'login', 'ghcr.io', '--username', 'jane', '--password-stdin']);
    expect(logoutCommand('ghcr.io')).toEqual(['docker', 'logout', 'ghcr.io']);
  });

  it('builds with buildx: secrets by environment variable name, cache, push and metadata file', () => {
    expect(buildxBuildCommand(spec)).toEqual([
      'docker',
      'buildx',
      'build',
      '--progress',
      'plain',
      '--file',
      '/w/app/Dockerfile',
      '--target',
      'runtime',
      '--platform',
      'linux/amd64',
      '--build-arg',
      'NODE_ENV=production',
      '--label',
      'org.opencontainers.image.revision=abc',
      '--label',
      'team=a b',
      '--tag',
      'ghcr.io/acme/app:main',
      '--tag',
      'ghcr.io/acme/app:sha-abc1234',
      '--secret',
      'id=npmrc,env=SKIFF_BUILD_SECRET_0',
      '--cache-from',
      'type=gha,scope=ghcr.io/acme/app',
      '--cache-to',
      'type=gha,scope=ghcr.io/acme/app,mode=max',
      '--push',
      '--metadata-file',
      '/tmp/m.json',
      '/w/app',
    ]);
    expect(
      buildxBuildCommand({
        ...spec,
        platforms: [],
        target: undefined,
        buildArgs: [],
        labels: {},
        refs: ['x:1'],
        secretEnv: {},
        cacheFrom: [],
        cacheTo: [],
        output: 'load',
        metadataFile: undefined,
      }),
    ).toEqual(['docker', 'buildx', 'build', '--progress', 'plain', '--file', '/w/app/Dockerfile', '--tag', 'x:1', '--load', '/w/app']);
    // A builder made for the run is named on every build; `none` leaves the result in the builder's cache.
    expect(
      buildxBuildCommand({
        context: '/w',
        file: '/w/Dockerfile',
        builder: 'skiff-7-1-abc123',
        platforms: ['linux/amd64', 'linux/arm64'],
        buildArgs: [],
        labels: {},
        refs: ['x:1'],
        output: 'none',
      }),
    ).toEqual([
      'docker',
      'buildx',
      'build',
      '--builder',
      'skiff-7-1-abc123',
      '--progress',
      'plain',
      '--file',
      '/w/Dockerfile',
      '--platform',
      'linux/amd64,linux/arm64',
      '--tag',
      'x:1',
      '/w',
    ]);
  });

  it('inspects, creates (docker-container, pinned BuildKit, not --use) and removes builders', () => {
    expect(buildxInspectCommand()).toEqual(['docker', 'buildx', 'inspect']);
    expect(buildxInspectCommand('skiff-7-1-abc123', { bootstrap: true })).toEqual(['docker', 'buildx', 'inspect', '--bootstrap', 'skiff-7-1-abc123']);
    expect(buildxCreateCommand('skiff-7-1-abc123', 'moby/buildkit:v0.25.1')).toEqual([
      'docker',
      'buildx',
      'create',
      '--driver',
      'docker-container',
      '--name',
      'skiff-7-1-abc123',
      '--driver-opt',
      'image=moby/buildkit:v0.25.1',
      '--driver-opt',
      'network=host',
    ]);
    expect(buildxRemoveCommand('skiff-7-1-abc123')).toEqual(['docker', 'buildx', 'rm', 'skiff-7-1-abc123']);
  });

  it('builds with the classic builder and pushes tag by tag', () => {
    expect(dockerBuildCommand({ ...spec, platforms: [] })).toEqual([
      'docker',
      'build',
      '--file',
      '/w/app/Dockerfile',
      '--target',
      'runtime',
      '--build-arg',
      'NODE_ENV=production',
      '--label',
      'org.opencontainers.image.revision=abc',
      '--label',
      'team=a b',
      '--tag',
      'ghcr.io/acme/app:main',
      '--tag',
      'ghcr.io/acme/app:sha-abc1234',
      '/w/app',
    ]);
    expect(dockerPushCommand('ghcr.io/acme/app:main')).toEqual(['docker', 'push', 'ghcr.io/acme/app:main']);
  });

  it('runs the smoke test container detached, publishing only on loopback', () => {
    expect(runContainerCommand('skiff-smoke-1', 'x:1', { publishPort: 8000, platform: 'linux/amd64' })).toEqual([
      'docker',
      'run',
      '--detach',
      '--name',
      'skiff-smoke-1',
      '--label',
      'org.skiff.smoke-test=true',
      '--publish',
      '127.0.0.1::8000',
      '--platform',
      'linux/amd64',
      'x:1',
    ]);
    expect(runContainerCommand('n', 'x:1')).toEqual(['docker', 'run', '--detach', '--name', 'n', '--label', 'org.skiff.smoke-test=true', 'x:1']);
    expect(execInContainerCommand('n', 'test -f /ready')).toEqual(['docker', 'exec', 'n', 'sh', '-c', 'test -f /ready']);
    expect(containerLogsCommand('n')).toEqual(['docker', 'logs', '--tail', '100', 'n']);
    expect(removeContainerCommand('n')).toEqual(['docker', 'rm', '--force', '--volumes', 'n']);
  });

  it('runs trivy for a JSON report and judges findings itself', () => {
    expect(trivyCommand(`ghcr.io/acme/app@${DIGEST}`, ['CRITICAL', 'HIGH'], '/tmp/r.json')).toEqual([
      'trivy',
      'image',
      '--format',
      'json',
      '--output',
      '/tmp/r.json',
      '--severity',
      'CRITICAL,HIGH',
      '--exit-code',
      '0',
      '--no-progress',
      `ghcr.io/acme/app@${DIGEST}`,
    ]);
  });
});

describe('parsers', () => {
  it('reads the digest from buildx metadata and from docker push', () => {
    expect(parseMetadataDigest(JSON.stringify({ 'containerimage.config.digest': `sha256:${'cd'.repeat(32)}`, 'containerimage.digest': DIGEST }))).toBe(DIGEST);
    expect(parseMetadataDigest('{}')).toBeUndefined();
    expect(parsePushDigest(`The push refers to repository [127.0.0.1:5000/acme/app]\n5f70bf18a086: Pushed\nmain: digest: ${DIGEST} size: 527\n`)).toBe(DIGEST);
    expect(parsePushDigest('no digest here')).toBeUndefined();
  });

  it('reads the published port', () => {
    expect(parseHostPort('127.0.0.1:49153\n')).toBe(49153);
    expect(parseHostPort('')).toBeUndefined();
  });
});

describe('builder and cache planning', () => {
  const buildx: Builder = { kind: 'buildx', name: 'default', driver: 'docker', platforms: ['linux/amd64'], containerdStore: false, created: false };
  const container: Builder = { kind: 'buildx', name: 'skiff-7-1-abc123', driver: 'docker-container', platforms: [], containerdStore: false, created: true };
  const classic: Builder = { kind: 'classic' };
  const v1 = { ACTIONS_CACHE_URL: 'https://acghubeus1.actions.githubusercontent.com/x/', ACTIONS_RUNTIME_TOKEN: 't' };
  const v2 = { ACTIONS_RESULTS_URL: 'https://results-receiver.actions.githubusercontent.com/', ACTIONS_CACHE_SERVICE_V2: 'True', ACTIONS_RUNTIME_TOKEN: 't' };

  it('finds the runner cache service, v1 or v2', () => {
    expect(ghaCacheAvailable(v1)).toBe(true);
    expect(ghaCacheAvailable(v2)).toBe(true);
    expect(ghaCacheAvailable({ ACTIONS_CACHE_URL: 'x' })).toBe(false);
    expect(ghaCacheAvailable({})).toBe(false);
  });

  it('uses gha by default when the service is there and the driver can export', () => {
    expect(planCache('auto', container, 'ghcr.io/acme/app', v1)).toEqual({ type: 'gha', ...cacheFlags('gha', 'ghcr.io/acme/app') });
    expect(planCache('auto', container, 'ghcr.io/acme/app', {})).toEqual({ cacheFrom: [], cacheTo: [] });
    expect(planCache('registry', container, 'ghcr.io/acme/app', {})).toEqual({
      type: 'registry',
      cacheFrom: ['type=registry,ref=ghcr.io/acme/app:buildcache'],
      cacheTo: ['type=registry,ref=ghcr.io/acme/app:buildcache,mode=max'],
    });
    expect(planCache('none', container, 'ghcr.io/acme/app', v1)).toEqual({ cacheFrom: [], cacheTo: [] });
  });

  it('goes on without a cache the docker driver or the classic builder cannot export, and says why', () => {
    const docker = planCache('registry', buildx, 'a/b', {});
    expect(docker.cacheTo).toEqual([]);
    expect(docker.note).toContain('not supported by the `docker` buildx driver');
    expect(planCache('gha', classic, 'a/b', v2).note).toContain('needs buildx');
    expect(planCache('gha', container, 'a/b', {}).note).toContain("needs the runner's cache service");
  });

  it('exports a cache with the docker driver on the containerd image store, and explains a builder that could not be made', () => {
    expect(planCache('registry', { ...buildx, containerdStore: true }, 'a/b', {}).cacheTo).toEqual(['type=registry,ref=a/b:buildcache,mode=max']);
    expect(planCache('registry', buildx, 'a/b', {}, 'needs a builder that could not start').note).toBe('cache `registry` needs a builder that could not start');
    expect(planCache('gha', buildx, 'a/b', {}).note).toContain("needs the runner's cache service");
  });
});

describe('trivy report', () => {
  // A hand-made report in trivy's JSON format (SchemaVersion 2): trivy cannot be installed here.
  const report = readFileSync(join(import.meta.dirname, 'fixtures/trivy-report.json'), 'utf8');

  it('reads every vulnerability, worst first', () => {
    const findings = parseTrivyReport(report);
    expect(findings.map((f) => `${f.severity} ${f.id} ${f.pkg}`)).toEqual([
      'CRITICAL CVE-2024-45490 libexpat1',
      'HIGH CVE-2024-2961 libc6',
      'HIGH CVE-2024-45590 body-parser',
      'MEDIUM CVE-2023-50495 libtinfo6',
      'MEDIUM CVE-2024-29041 express',
      'LOW CVE-2011-3374 apt',
    ]);
    expect(findings[0]).toEqual({
      target: 'ghcr.io/acme/shop@sha256:5f1c3e0a7d9b2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e (debian 12.5)',
      id: 'CVE-2024-45490',
      pkg: 'libexpat1',
      installed: '2.5.0-1',
      fixed: '2.5.0-1+deb12u1',
      severity: 'CRITICAL',
      title: 'libexpat: Negative Length Parsing Vulnerability in libexpat',
      url: 'https://avd.aquasec.com/nvd/cve-2024-45490',
    });
  });

  it('keeps only the severities asked for and renders a table', () => {
    const high = findingsAtOrAbove(parseTrivyReport(report), ['CRITICAL', 'HIGH']);
    expect(high).toHaveLength(3);
    const markdown = findingsTable(high);
    expect(markdown.split('\n')[0]).toBe('| Severity | ID | Package | Installed | Fixed in | Title |');
    expect(markdown).toContain('| HIGH | [CVE-2024-2961](https://avd.aquasec.com/nvd/cve-2024-2961) | libc6 | 2.36-9+deb12u4 | 2.36-9+deb12u7 |');
    expect(findingsTable(findingsAtOrAbove(parseTrivyReport(report), ['LOW']))).toContain('| (no fix yet) |');
  });

  it("is shaped like the schema-2 reports trivy writes: every field the parser reads, with trivy's types", () => {
    // Field names and types as in the reports trivy's own integration tests expect (SchemaVersion 2);
    // trivy's documentation still shows the pre-2021 top-level array, which the parser refuses.
    const parsed = JSON.parse(report) as Record<string, any>;
    expect(parsed.SchemaVersion).toBe(2);
    expect(typeof parsed.ArtifactName).toBe('string');
    expect(parsed.ArtifactType).toBe('container_image');
    for (const result of parsed.Results) {
      expect(Object.keys(result).slice(0, 3)).toEqual(['Target', 'Class', 'Type']);
      expect(['os-pkgs', 'lang-pkgs']).toContain(result.Class);
      for (const v of result.Vulnerabilities ?? []) {
        for (const field of ['VulnerabilityID', 'PkgName', 'InstalledVersion', 'Severity', 'Title', 'PrimaryURL'])
          expect(typeof v[field], field).toBe('string');
        // trivy leaves FixedVersion out (omitempty) when there is no fix, with Status "affected".
        expect(v.FixedVersion === undefined ? v.Status : typeof v.FixedVersion).toBe(v.FixedVersion === undefined ? 'affected' : 'string');
      }
    }
    expect(() => parseTrivyReport('[{"Target":"x","Vulnerabilities":null}]')).toThrow('SchemaVersion undefined');
  });

  it('refuses a report in another schema version', () => {
    expect(() => parseTrivyReport('{"SchemaVersion":1,"Results":[]}')).toThrow('SchemaVersion 1');
  });
});
