import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { readDeployInputs } from '../src/inputs';
import { buildOverride } from '../src/server-build';
import { useInputsWorkspace } from './inputs-workspace';

const workspace = useInputsWorkspace({ repository: 'acme/shop', files: { 'README.md': 'x\n' } });
const ssh = { host: 'example.com', username: 'deploy', password: 'pw-123456', fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' };

async function repo(files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(workspace.path, path, '..'), { recursive: true });
    await writeFile(join(workspace.path, path), content);
  }
}

const COMPOSE = [
  'services:',
  '  api:',
  '    build:',
  '      context: ..',
  '      dockerfile: deploy/api.Dockerfile',
  '  web:',
  '    build: ./web',
  '  cache:',
  '    image: redis:7',
  '',
].join('\n');

describe('build: services', () => {
  it('finds each local context from the first compose file folder; services with an images line are pulled, not built', async () => {
    await repo({ 'deploy/compose.yaml': COMPOSE, 'deploy/web/Dockerfile': 'FROM x\n', 'deploy/api.Dockerfile': 'FROM x\n' });
    setInputs({ ...ssh, 'compose-file': 'deploy/compose.yaml', images: 'web=ghcr.io/acme/web@sha256:' + 'a'.repeat(64) });
    const inputs = readDeployInputs();
    expect(inputs.serverBuilds.map((b) => [b.service, b.localContext, b.declared])).toEqual([['api', workspace.path, '..']]);
    expect(inputs.composeServices).toEqual(['api', 'web', 'cache']);
  });

  it('build-on-server: false names each service to build elsewhere and how', async () => {
    await repo({ 'deploy/compose.yaml': COMPOSE, 'deploy/web/Dockerfile': 'FROM x\n' });
    setInputs({ ...ssh, 'compose-file': 'deploy/compose.yaml', 'build-on-server': 'false' });
    expect(() => readDeployInputs()).toThrow(
      'Input "build-on-server" is false, and api (build: ..), web (build: ./web) have no "images" line: build and push them with action-build-push and pass images: api=<its image-ref output>, web=<its image-ref output>; or set build-on-server: true to build on the server',
    );
  });

  it('refuses a context it cannot ship: a variable, outside the repository, not a folder; and build: with swarm', async () => {
    await repo({
      'compose.yaml': ['services:', '  a:', '    build: ${CTX}', '  b:', '    build: ../elsewhere', '  c:', '    build: ./missing', ''].join('\n'),
    });
    setInputs({ ...ssh });
    expect(() => readDeployInputs()).toThrow(
      /service a: build context "\$\{CTX\}" uses a variable.*; service b: build context \.\.\/elsewhere is outside the repository; service c: build context \.\/missing is not a folder/,
    );
    await repo({ 'compose.yaml': ['services:', '  a:', '    build: .', ''].join('\n') });
    setInputs({ ...ssh, strategy: 'swarm', 'swarm-stack': 'shop' });
    expect(() => readDeployInputs()).toThrow(/Strategy swarm cannot build: docker stack deploy ignores build:, so a would run a stale or missing image/);
    // false (not the default, which the runner always passes) is a choice swarm cannot honour.
    setInputs({ ...ssh, strategy: 'swarm', 'swarm-stack': 'shop', images: 'a=reg/a:1', 'build-on-server': 'false' });
    expect(() => readDeployInputs()).toThrow(/Input "build-on-server" works with strategy recreate or rolling/);
  });

  it('the override points the context at the release and names the image after it', () => {
    expect(JSON.parse(buildOverride('/srv/app/releases/R1', 'shop', 'R1', [{ service: 'api' }]))).toEqual({
      services: { api: { build: { context: '/srv/app/releases/R1/build/api' }, image: 'shop-api:R1' } },
    });
  });
});
