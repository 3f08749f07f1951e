import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { readDeployInputs, type DeployInputs } from '../src/inputs';
import {
  answerError,
  deploymentRequest,
  deployRequest,
  describeRequest,
  parseApplication,
  parseDeployment,
  parseTriggered,
  setImageTagRequest,
} from '../src/strategies/coolify/api';
import { planCoolify } from '../src/strategies/coolify';
import { useInputsWorkspace } from './inputs-workspace';

/** The coolify strategy's own settings, when it is the chosen one. */
const coolifyOf = (inputs: DeployInputs) => (inputs.strategy.name === 'coolify' ? inputs.strategy.settings : undefined);

// No compose file in the workspace: Coolify deploys from its own configuration.
const workspace = useInputsWorkspace({ repository: 'acme/shop' });

const TOKEN = '7|s3cretCoolifyTokenValue';
const base = { strategy: 'coolify', 'coolify-url': 'https://coolify.example.com/', 'coolify-token': TOKEN };

const errorOf = (inputs: Record<string, string>): string => {
  setInputs(inputs);
  try {
    readDeployInputs();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('readDeployInputs accepted the inputs');
};

describe('coolify inputs', () => {
  it('reads uuids from lines and commas, needs no host and no compose file, masks the token', () => {
    setInputs({ ...base, 'coolify-uuid': 'abc123,def456\n ghi789 ', 'coolify-timeout': '2m', 'health-url': 'https://shop.example.com/health' });
    const inputs = readDeployInputs();
    expect(inputs.targets).toEqual([]);
    expect(inputs.composeFiles).toEqual([]);
    expect(coolifyOf(inputs)).toEqual({
      apiUrl: 'https://coolify.example.com/api/v1',
      token: TOKEN,
      uuids: ['abc123', 'def456', 'ghi789'],
      tags: [],
      force: false,
      timeoutSeconds: 120,
      pollSeconds: 5,
    });
    expect(workspace.stdout).toContain(`::add-mask::${TOKEN}\n`);
  });

  it('accepts the API address as copied from the docs (…/api/v1) and a sub-path install', () => {
    setInputs({ ...base, 'coolify-url': 'http://127.0.0.1:8000/coolify/api/v1/', 'coolify-tag': 'production' });
    expect(coolifyOf(readDeployInputs())).toMatchObject({ apiUrl: 'http://127.0.0.1:8000/coolify/api/v1', tags: ['production'], uuids: [] });
  });

  it('refuses neither uuid nor tag, both, and a bad URL — all in one message, before any request', () => {
    expect(errorOf({ ...base })).toMatch(/needs "coolify-uuid".*or "coolify-tag".*neither is set/);
    expect(errorOf({ ...base, 'coolify-uuid': 'a1', 'coolify-tag': 'prod' })).toMatch(/both set; Coolify deploys by uuid or by tag, not both/);
    const message = errorOf({ ...base, 'coolify-url': 'coolify.example.com', 'coolify-uuid': 'bad uuid!' });
    expect(message).toMatch(/Input "coolify-url" must be the http:\/\/ or https:\/\/ address of the Coolify instance.*got "coolify.example.com"/);
    expect(message).toMatch(/Input "coolify-uuid" must be Coolify resource UUIDs.*got "bad uuid!"/);
    expect(errorOf({ ...base, 'coolify-url': 'https://user:pw@coolify.example.com', 'coolify-uuid': 'a1' })).toMatch(/coolify-url/);
  });

  it('refuses a missing token without showing anything secret, and what needs an SSH host', () => {
    expect(errorOf({ strategy: 'coolify', 'coolify-url': 'https://c.example', 'coolify-uuid': 'a1' })).toMatch(/Input "coolify-token" is required/);
    const message = errorOf({ ...base, 'coolify-uuid': 'a1', 'health-command': 'true', 'health-from': 'host', rollback: 'previous' });
    expect(message).toMatch(/"health-command" runs on an SSH host/);
    expect(message).toMatch(/"health-from: host" needs an SSH host/);
    expect(message).toMatch(/"rollback" is not available with strategy: coolify/);
    expect(message).not.toContain(TOKEN);
  });

  it('coolify-image-tag: a Docker tag for the applications of coolify-uuid; rollback-on-failure only with it', () => {
    setInputs({ ...base, 'coolify-uuid': 'abc', 'coolify-image-tag': '4f9c2e1b7a3d', 'rollback-on-failure': 'false' });
    expect(coolifyOf(readDeployInputs())).toMatchObject({ imageTag: '4f9c2e1b7a3d' });
    expect(readDeployInputs()).toMatchObject({ rollbackOnFailure: false });
    expect(errorOf({ ...base, 'coolify-uuid': 'abc', 'coolify-image-tag': 'v1:latest' })).toMatch(
      /Input "coolify-image-tag" must be a Docker image tag.*got "v1:latest"/,
    );
    expect(errorOf({ ...base, 'coolify-uuid': 'abc', 'coolify-image-tag': '-v1' })).toMatch(/coolify-image-tag/);
    expect(errorOf({ ...base, 'coolify-tag': 'prod', 'coolify-image-tag': 'v1' })).toMatch(
      /"coolify-image-tag" sets the tag of the applications named in "coolify-uuid"/,
    );
    expect(errorOf({ ...base, 'coolify-uuid': 'abc', 'rollback-on-failure': 'false' })).toMatch(
      /"rollback-on-failure" is used by strategy: coolify only with coolify-image-tag/,
    );
    // The runner passes the default (true) whatever the workflow says: that is not a choice.
    setInputs({ ...base, 'coolify-uuid': 'abc', 'rollback-on-failure': 'true' });
    expect(coolifyOf(readDeployInputs())?.imageTag).toBeUndefined();
    expect(errorOf({ ...base, 'coolify-uuid': 'abc', rollback: 'previous' })).toMatch(/deploy the earlier image with coolify-image-tag/);
  });

  it('refuses the coolify inputs with other strategies, naming them', async () => {
    await writeFile(join(workspace.path, 'compose.yaml'), 'services: {}\n');
    const ssh = { host: 'example.com', username: 'u', password: 'pw-123456', 'insecure-ignore-host-key': 'true', 'project-dir': '/opt/x' };
    expect(errorOf({ ...ssh, 'coolify-url': 'https://c.example', 'coolify-uuid': 'abc' })).toContain(
      'Inputs "coolify-url", "coolify-uuid" are not used by strategy: recreate, so they would be ignored',
    );
    // Left at their defaults, they are not "set".
    setInputs({ ...ssh, 'coolify-timeout': '20m', 'coolify-force': 'false' });
    expect(coolifyOf(readDeployInputs())).toBeUndefined();
  });

  it('refuses what a Coolify deploy would silently ignore: pre-deploy, env-file, images, the SSH host', () => {
    const message = errorOf({
      ...base,
      'coolify-uuid': 'abc',
      'pre-deploy': 'npm run migrate',
      'env-file': 'A=1',
      images: 'web=ghcr.io/a/web:1',
      host: 'example.com',
      port: '22',
      registry: 'ghcr.io',
    });
    expect(message).toContain('Inputs "host", "env-file", "pre-deploy", "images" are not used by strategy: coolify, so they would be ignored');
    // port 22 and registry ghcr.io are the defaults the runner passes anyway.
    expect(message).not.toContain('"port"');
    expect(message).not.toContain('"registry"');
  });

  it('refuses Compose inputs with strategy: systemd', async () => {
    await writeFile(join(workspace.path, 'app.txt'), 'x\n');
    const message = errorOf({
      strategy: 'systemd',
      host: 'example.com',
      username: 'u',
      password: 'pw-123456',
      'insecure-ignore-host-key': 'true',
      'systemd-unit': 'app.service',
      'artifact-path': 'app.txt',
      'compose-file': 'compose.yaml',
      images: 'web=x/y:1',
      'pull-timeout': '5m',
    });
    expect(message).toContain('Inputs "compose-file", "images", "pull-timeout" are not used by strategy: systemd');
  });
});

describe('coolify requests', () => {
  const coolify = { apiUrl: 'https://c.example/api/v1', token: TOKEN, uuids: ['abc', 'd e'], tags: [] as string[], force: true };

  it('deploys by uuid or tag in one request; the token only in the Authorization header', () => {
    expect(deployRequest(coolify)).toEqual({
      method: 'GET',
      url: 'https://c.example/api/v1/deploy?uuid=abc,d%20e&force=true',
      headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json' },
    });
    expect(deployRequest({ ...coolify, uuids: [], tags: ['prod', 'eu'], force: false }).url).toBe('https://c.example/api/v1/deploy?tag=prod,eu&force=false');
    expect(deploymentRequest(coolify, 'xyz789').url).toBe('https://c.example/api/v1/deployments/xyz789');
    expect(describeRequest(deployRequest(coolify))).toBe('GET https://c.example/api/v1/deploy?uuid=abc,d%20e&force=true\nAuthorization: Bearer ***');
  });

  it('reads both answers of the deploy endpoint: by uuid (deployments) and by tag (message + details)', () => {
    expect(
      parseTriggered({
        deployments: [
          { message: 'Application web deployment queued.', resource_uuid: 'abc', deployment_uuid: 'dep1' },
          { message: 'Service cache started. It could take a while, be patient.', resource_uuid: 'svc' },
        ],
      }),
    ).toEqual({
      deployments: [
        { resourceUuid: 'abc', deploymentUuid: 'dep1', message: 'Application web deployment queued.' },
        { resourceUuid: 'svc', message: 'Service cache started. It could take a while, be patient.' },
      ],
      messages: [],
    });
    expect(parseTriggered({ message: ['Application web deployment queued.'], details: [{ resource_uuid: 'abc', deployment_uuid: 'dep2' }] })).toEqual({
      deployments: [{ resourceUuid: 'abc', deploymentUuid: 'dep2' }],
      messages: ['Application web deployment queued.'],
    });
  });

  it('reads a deployment: status and the visible lines of its logs (a JSON string), or no logs without read:sensitive', () => {
    const logs = JSON.stringify([
      { command: null, output: 'Starting deployment of web.', type: 'stdout', hidden: false, batch: 1, order: 1 },
      { command: 'docker build …', output: 'internal command', type: 'stdout', hidden: true, batch: 1, order: 2 },
      { command: null, output: 'ERROR: npm ci failed', type: 'stderr', hidden: false, batch: 1, order: 3 },
    ]);
    expect(parseDeployment({ status: 'failed', logs })).toEqual({ status: 'failed', logs: ['Starting deployment of web.', 'ERROR: npm ci failed'] });
    expect(parseDeployment({ status: 'in_progress' })).toEqual({ status: 'in_progress' });
    expect(() => parseDeployment({ message: 'x' })).toThrow(/no status/);
  });

  it('dry-run plan shows the requests with the token as ***', () => {
    setInputs({ ...base, 'coolify-tag': 'prod', 'health-url': 'https://shop.example.com/health' });
    const steps = planCoolify(readDeployInputs());
    const text = JSON.stringify(steps);
    expect(text).not.toContain(TOKEN);
    expect(steps.map((s) => (s.kind === 'run' ? s.script : ''))).toEqual([
      'GET https://coolify.example.com/api/v1/deploy?tag=prod&force=false\nAuthorization: Bearer ***',
      'GET https://coolify.example.com/api/v1/deployments/{deployment_uuid}\nAuthorization: Bearer ***',
      'GET https://shop.example.com/health',
    ]);
  });

  it('with coolify-image-tag the plan reads each application, then sets its tag, before the deploy', () => {
    setInputs({ ...base, 'coolify-uuid': 'abc', 'coolify-image-tag': 'v2' });
    const steps = planCoolify(readDeployInputs());
    expect(steps.map((s) => (s.kind === 'run' ? s.script : ''))).toEqual([
      'GET https://coolify.example.com/api/v1/applications/abc\nAuthorization: Bearer ***',
      'PATCH https://coolify.example.com/api/v1/applications/abc\nAuthorization: Bearer ***\n{"docker_registry_image_tag":"v2"}',
      'GET https://coolify.example.com/api/v1/deploy?uuid=abc&force=false\nAuthorization: Bearer ***',
      'GET https://coolify.example.com/api/v1/deployments/{deployment_uuid}\nAuthorization: Bearer ***',
    ]);
    expect(JSON.stringify(steps)).not.toContain(TOKEN);
  });

  it("reads an application as Coolify answers it: a registry image's name and tag, or why it cannot take one", () => {
    expect(
      parseApplication('abc', {
        uuid: 'abc',
        name: 'api',
        build_pack: 'dockerimage',
        docker_registry_image_name: 'ghcr.io/acme/api',
        docker_registry_image_tag: null,
      }),
    ).toEqual({
      uuid: 'abc',
      name: 'api',
      image: 'ghcr.io/acme/api',
      tag: 'latest',
    });
    expect(() => parseApplication('abc', { name: 'web', build_pack: 'nixpacks' })).toThrow(
      /web \(abc\) is built with the nixpacks build pack, not from a registry image/,
    );
    // A 422 names the field Coolify refused; a 403 on PATCH says which permission is missing.
    const patch = setImageTagRequest({ apiUrl: 'https://c.example/api/v1', token: TOKEN }, 'abc', 'v2');
    expect(
      answerError('Setting', patch, {
        status: 422,
        body: { message: 'Validation failed.', errors: { docker_registry_image_tag: ['This field is not allowed.'] } },
      }),
    ).toContain('Validation failed. (docker_registry_image_tag: This field is not allowed.)');
    expect(answerError('Setting', patch, { status: 403, body: { message: 'Forbidden' } })).toContain('and `write` to set coolify-image-tag');
  });
});
