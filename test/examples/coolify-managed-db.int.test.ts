import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import {
  ensureBaseImages,
  ensureHubImages,
  freePort,
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  sh,
  startCoolify,
  startPostgres,
  startRecordingServer,
  startRegistry,
  startS3,
  type CoolifyServer,
  type Postgres,
  type RecordingServer,
  type Registry,
  type S3Server,
} from '@skiff/testbed';
import { type WorkflowRun } from '../workflow-runner';
import { get, runExampleWorkflow, userRepository } from './harness';

/**
 * examples/coolify-managed-db, end to end through its own workflows: two images built, smoke-tested
 * and pushed by commit SHA; Coolify (a stand-in that really pulls the tag it is given and runs it
 * on this machine's engine, running the API's pre-deployment command — its migrations — in the new
 * image first, as Coolify does) deploys that SHA; a managed PostgreSQL over TLS holding ~60 MB is
 * backed up from the runner before every deploy and nightly, and drilled on a throwaway server.
 * Failure paths: a failing migration (data and running version untouched), a backup that cannot be
 * taken (nothing deployed). Manual rollback by SHA.
 */

const PREFIX = 'skiffex-coolify';
const APPS = { api: 'apiapp0uuid1coolify', web: 'webapp0uuid1coolify' } as const;
let registry: Registry;
let db: Postgres;
let s3: S3Server;
let coolify: CoolifyServer;
let discord: RecordingServer;
let slack: RecordingServer;
let repo: Awaited<ReturnType<typeof userRepository>>;
let dockerConfig = '';
const ports = { api: 0, web: 0 };
const runs: WorkflowRun[] = [];
let identity = '';
const shipped: string[] = [];

const appDatabaseUrl = () => `postgresql://${db.user}:${encodeURIComponent(db.password)}@127.0.0.1:${db.port}/${db.database}?sslmode=require`;
const psql = (sql: string) => db.psql(db.database, sql).then((out) => out.trim());
const site = async (app: 'api' | 'web', path: string) => (await get(`http://127.0.0.1:${ports[app]}${path}`)).body.trim();
const runningTag = async (app: 'api' | 'web') =>
  (await sh('docker', ['inspect', '--format', '{{.Config.Image}}', `${PREFIX}-${app}`])).trim().replace(/^.*:/, '');

/**
 * What Coolify does with a Docker-image application on deploy: pull the tag (with the registry
 * login configured in Coolify), run the pre-deployment command in a container of the new image
 * (the old one keeps serving; a failure fails the deployment), then replace the running container.
 */
async function coolifyDeploys(app: 'api' | 'web', image: string, preDeployment?: string): Promise<void> {
  const ref = image.replace(/^ghcr\.io\//, `${registry.address}/`);
  try {
    await sh('docker', ['--config', dockerConfig, 'pull', '-q', ref], { timeoutMs: 120_000 });
  } catch (error) {
    throw new Error(`Pulling ${image} failed: ${(error as Error).message.split('\n').slice(-3).join(' ')}`);
  }
  if (preDeployment) {
    try {
      await sh('docker', ['run', '--rm', '--network', 'host', '-e', `DATABASE_URL=${appDatabaseUrl()}`, ref, 'sh', '-c', preDeployment], {
        timeoutMs: 300_000,
      });
    } catch (error) {
      throw new Error(`Pre-deployment command failed: ${(error as Error).message.replaceAll(db.password, '***')}`);
    }
  }
  await sh('docker', ['rm', '-f', `${PREFIX}-${app}`]);
  await sh('docker', ['run', '-d', '--name', `${PREFIX}-${app}`, '--label', `${PREFIX}=1`, '-p', `127.0.0.1:${ports[app]}:8080`, ref]);
}

async function run(
  workflow: string,
  event: { name: string; inputs?: Record<string, string | boolean> },
  options: { sha?: string; secrets?: Record<string, string> } = {},
) {
  const result = await runExampleWorkflow(
    {
      repository: repo.path,
      vars: {
        S3_ENDPOINT: s3.endpoint,
        S3_BUCKET: s3.bucket,
        BACKUP_AGE_RECIPIENT: await identityToRecipient(identity),
        SHOP_URL: `http://127.0.0.1:${ports.web}`,
        API_URL: `http://127.0.0.1:${ports.api}`,
        COOLIFY_URL: coolify.url,
        COOLIFY_API_UUID: APPS.api,
        COOLIFY_WEB_UUID: APPS.web,
      },
      secrets: {
        DATABASE_URL: appDatabaseUrl(),
        S3_ACCESS_KEY_ID: s3.accessKeyId,
        S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
        COOLIFY_TOKEN: coolify.token,
        NOTIFY_WEBHOOKS: `${discord.url}/api/webhooks/1234/discord-token\n${slack.url}/services/T000/B000/slack-token`,
        BACKUP_AGE_IDENTITY: identity,
        ...options.secrets,
      },
      registry,
      ...(options.sha ? { sha: options.sha } : {}),
    },
    workflow,
    event,
  );
  runs.push(result);
  return result;
}

/** A commit of the user's: its SHA, as GITHUB_SHA gives it to the push's run. */
function commit(): string {
  const sha = Array.from({ length: 40 }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  shipped.push(sha);
  return sha;
}

beforeAll(async () => {
  await Promise.all([ensureBaseImages(), ensureHubImages()]);
  identity = await generateIdentity();
  [registry, db, s3, discord, slack, repo, ports.api, ports.web] = await Promise.all([
    startRegistry(),
    startPostgres({ tls: true }),
    startS3('skiffex-coolify'),
    startRecordingServer(() => ({ status: 204 })),
    startRecordingServer(() => ({ status: 200, body: 'ok' })),
    userRepository('coolify-managed-db'),
    freePort(),
    freePort(),
  ]);
  dockerConfig = await mkdtemp(join(tmpdir(), `${PREFIX}-docker-`));
  await sh('docker', ['--config', dockerConfig, 'login', '-u', registry.username, '--password-stdin', registry.address], { input: registry.password });
  // The applications as set up in Coolify: registry images, the API with its migrations as the pre-deployment command.
  coolify = await startCoolify([
    {
      uuid: APPS.api,
      name: 'shop-api',
      kind: 'application',
      image: { name: 'ghcr.io/acme/shop-api', tag: 'latest' },
      run: (image) => coolifyDeploys('api', image, '/app/migrate'),
    },
    {
      uuid: APPS.web,
      name: 'shop-web',
      kind: 'application',
      image: { name: 'ghcr.io/acme/shop-web', tag: 'latest' },
      run: (image) => coolifyDeploys('web', image),
    },
  ]);
  // The managed database as the team has it: their data, ~60 MB of it, owned by the app's user.
  await db.psql(db.database, `set role ${db.user};\n${POSTGRES_SEED_SQL}`);
}, 600_000);

afterAll(async () => {
  for (const result of runs) await result.remove();
  await sh('sh', ['-c', `docker ps -aq --filter label=${PREFIX}=1 | xargs -r docker rm -f`]).catch(() => undefined);
  await Promise.all([registry?.stop(), db?.stop(), s3?.stop(), coolify?.stop(), discord?.stop(), slack?.stop(), repo?.remove()]);
  if (dockerConfig) await rm(dockerConfig, { recursive: true, force: true });
});

describe('example coolify-managed-db: Coolify deploys by SHA, the managed database backed up first', () => {
  it('a push backs the database up, builds both images, and Coolify deploys that SHA; its migration ran; both channels told', async () => {
    expect(Number(await psql(`select pg_database_size('${db.database}')`))).toBeGreaterThan(50_000_000);
    const before = await psql(POSTGRES_CHECKSUM_SQL);
    const sha = commit();
    const ship = await run('ship.yml', { name: 'push' }, { sha });
    expect(ship.result, ship.log).toBe('success');
    const backup = ship.action('action-backup');
    expect(backup.outputs.verified).toBe('true');
    expect(backup.outputs.location).toMatch(/^s3:\/\/skiffex-coolify\/before-deploy\/shop\/shop-\d{8}T\d{6}Z\.dump\.age$/);
    const builds = ship.jobs.flatMap((job) => job.steps).filter((step) => step.uses?.endsWith('/action-build-push'));
    expect(builds.map((step) => step.outputs['image-ref'])).toEqual([
      expect.stringMatching(/\/acme\/shop-api@sha256:[0-9a-f]{64}$/),
      expect.stringMatching(/\/acme\/shop-web@sha256:[0-9a-f]{64}$/),
    ]);
    // Tagged with the commit SHA Coolify is told to run, and latest (a push to the default branch).
    for (const [index, step] of builds.entries()) {
      const name = ['shop-api', 'shop-web'][index]!;
      expect(step.outputs.tags!.split('\n').map((tag) => tag.replace(/^.*\//, ''))).toEqual(expect.arrayContaining([`${name}:${sha}`, `${name}:latest`]));
    }
    for (const step of builds) expect(step.log).toMatch(/smoke/i);
    const deploy = ship.action('action-deploy');
    expect(deploy.outputs.status, deploy.log).toBe('deployed');
    expect(coolify.deployments.map((d) => d.imageTag)).toEqual([sha, sha]);
    expect(await site('api', '/cgi-bin/version')).toBe('api 1');
    expect(await site('web', '/')).toContain('shop web 1');
    expect(await runningTag('api')).toBe(sha);
    expect(await runningTag('web')).toBe(sha);
    expect(await psql("select string_agg(version, ',' order by version) from schema_migrations")).toBe('0001_orders');
    expect(await psql(POSTGRES_CHECKSUM_SQL)).toBe(before);
    expect((discord.requests.at(-1)?.json as { text?: string } | undefined)?.text ?? '').toContain('Deployed');
    expect((slack.requests.at(-1)?.json as { text?: string } | undefined)?.text ?? '').toContain('Deployed');
  });
});
