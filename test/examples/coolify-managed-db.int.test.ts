import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import {
  ensureBaseImages,
  ensureHubImages,
  freePortOutsideEphemeralRange,
  makeServerCertificate,
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  sh,
  startConnectProxy,
  startCoolify,
  startPostgres,
  startRecordingServer,
  startRegistry,
  startS3,
  tempDir,
  type ConnectProxy,
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
interface DiscordMessage {
  embeds: { title: string; color: number }[];
}
const APPS = { api: 'apiapp0uuid1coolify', web: 'webapp0uuid1coolify' } as const;
let registry: Registry;
let db: Postgres;
let s3: S3Server;
let coolify: CoolifyServer;
let discord: RecordingServer;
let slack: RecordingServer;
// discord.com and hooks.slack.com, as the actions reach them: through a proxy to local TLS stand-ins.
let webhooks: ConnectProxy;
let tls: { path: string; remove: () => Promise<void> };
let webhookCa = '';
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
        NOTIFY_WEBHOOKS: 'https://discord.com/api/webhooks/1234/discord-token\nhttps://hooks.slack.com/services/T000/B000/slack-token',
        BACKUP_AGE_IDENTITY: identity,
        ...options.secrets,
      },
      registry,
      ...(options.sha ? { sha: options.sha } : {}),
      // The runner's Node 24 takes HTTPS_PROXY (NODE_USE_ENV_PROXY); loopback services go direct.
      env: { NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: webhooks.url, NO_PROXY: '127.0.0.1,localhost', NODE_EXTRA_CA_CERTS: webhookCa },
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
  tls = await tempDir(`${PREFIX}-webhooks-tls`);
  const certificate = await makeServerCertificate(tls.path, ['discord.com', 'hooks.slack.com']);
  webhookCa = certificate.caFile;
  // As the services answer a webhook: Discord 204 with no body, Slack 200 "ok".
  [registry, db, s3, discord, slack, repo, ports.api, ports.web] = await Promise.all([
    startRegistry(),
    startPostgres({ tls: true }),
    startS3('skiffex-coolify'),
    startRecordingServer(() => ({ status: 204 }), { tls: certificate }),
    startRecordingServer(() => ({ status: 200, body: 'ok' }), { tls: certificate }),
    userRepository('coolify-managed-db'),
    freePortOutsideEphemeralRange(),
    freePortOutsideEphemeralRange(),
  ]);
  webhooks = await startConnectProxy({ 'discord.com:443': discord.port, 'hooks.slack.com:443': slack.port });
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
  await Promise.all([
    registry?.stop(),
    db?.stop(),
    s3?.stop(),
    coolify?.stop(),
    discord?.stop(),
    slack?.stop(),
    webhooks?.stop(),
    repo?.remove(),
    tls?.remove(),
  ]);
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
    // Each channel in its own service's format, at the address the secret names.
    const toDiscord = discord.requests.at(-1)!;
    expect(toDiscord.path).toBe('/api/webhooks/1234/discord-token');
    expect(toDiscord.json).toMatchObject({ username: 'Skiff', allowed_mentions: { parse: [] } });
    expect((toDiscord.json as DiscordMessage).embeds[0]!.title).toContain('Deployed');
    const toSlack = slack.requests.at(-1)!;
    expect(toSlack.path).toBe('/services/T000/B000/slack-token');
    expect((toSlack.json as { text: string }).text).toContain('Deployed');
    expect(toSlack.json).toHaveProperty('blocks');
    expect(toSlack.json).not.toHaveProperty('embeds');
    expect(new Set(webhooks.asked)).toEqual(new Set(['discord.com:443', 'hooks.slack.com:443']));
  });

  it('the next push migrates (a backup first) and ships: api 2 on the new schema, data intact', async () => {
    await repo.edit('api/www/cgi-bin/version', (text) => text.replace('api 1', 'api 2'));
    await writeFile(join(repo.path, 'api/migrations/0002_order_status.sql'), "ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'placed';\n");
    const data = await psql(POSTGRES_CHECKSUM_SQL);
    const sha = commit();
    const ship = await run('ship.yml', { name: 'push' }, { sha });
    expect(ship.result, ship.log).toBe('success');
    expect(await site('api', '/cgi-bin/version')).toBe('api 2');
    expect(await runningTag('api')).toBe(sha);
    expect(await psql("select string_agg(version, ',' order by version) from schema_migrations")).toBe('0001_orders,0002_order_status');
    expect(await psql("select column_default from information_schema.columns where table_name = 'orders' and column_name = 'status'")).toBe("'placed'::text");
    expect(await psql(POSTGRES_CHECKSUM_SQL)).toBe(data);
  });

  it('a failing migration changes nothing: the transaction is rolled back, Coolify keeps api 2, the applications go back to their tags', async () => {
    const [previous] = shipped.slice(-1) as [string];
    await repo.edit('api/www/cgi-bin/version', (text) => text.replace('api 2', 'api 3'));
    // Half of it works, then it fails: the half must not stay.
    await writeFile(
      join(repo.path, 'api/migrations/0003_broken.sql'),
      'CREATE TABLE refunds (id bigserial PRIMARY KEY);\nALTER TABLE orders ADD COLUMN status text;\n',
    );
    const data = await psql(POSTGRES_CHECKSUM_SQL);
    const told = { discord: discord.requests.length, slack: slack.requests.length };
    const ship = await run('ship.yml', { name: 'push' }, { sha: commit() });
    expect(ship.result).toBe('failure');
    const deploy = ship.action('action-deploy');
    expect(deploy.outputs.status, deploy.log).toBe('rolled-back');
    expect(deploy.log).toMatch(/column "status" of relation "orders" already exists/);
    expect(await site('api', '/cgi-bin/version')).toBe('api 2');
    expect(await runningTag('api')).toBe(previous);
    expect(await runningTag('web')).toBe(previous);
    expect(await psql("select to_regclass('refunds') is null")).toBe('t');
    expect(await psql("select string_agg(version, ',' order by version) from schema_migrations")).toBe('0001_orders,0002_order_status');
    expect(await psql(POSTGRES_CHECKSUM_SQL)).toBe(data);
    expect(discord.requests.length).toBe(told.discord + 1);
    expect(slack.requests.length).toBe(told.slack + 1);
    expect((slack.requests.at(-1)!.json as { text: string }).text).toMatch(/rolled back/i);
    expect((discord.requests.at(-1)!.json as DiscordMessage).embeds[0]!.title).toMatch(/rolled back/i);
    await rm(join(repo.path, 'api/migrations/0003_broken.sql'));
    await repo.edit('api/www/cgi-bin/version', (text) => text.replace('api 3', 'api 2'));
  });

  it('a backup that cannot be taken stops the push before anything is built or deployed', async () => {
    const deployments = coolify.deployments.length;
    const ship = await run(
      'ship.yml',
      { name: 'push' },
      { sha: commit(), secrets: { DATABASE_URL: appDatabaseUrl().replace(encodeURIComponent(db.password), 'not-the-password') } },
    );
    expect(ship.result).toBe('failure');
    expect(ship.action('action-backup').log).toMatch(/password authentication failed/);
    expect(ship.jobs.flatMap((job) => job.steps).filter((step) => step.uses?.endsWith('/action-build-push'))).toEqual([]);
    expect(coolify.deployments.length).toBe(deployments);
    expect(await site('api', '/cgi-bin/version')).toBe('api 2');
  });

  it('rollback.yml puts both applications back on an earlier commit by its SHA, through the health gate', async () => {
    const [first] = shipped as [string];
    const rollback = await run('rollback.yml', { name: 'workflow_dispatch', inputs: { sha: first } });
    expect(rollback.result, rollback.log).toBe('success');
    expect(rollback.action('action-deploy').outputs.status).toBe('deployed');
    expect(await site('api', '/cgi-bin/version')).toBe('api 1');
    expect(await runningTag('api')).toBe(first);
    expect(await runningTag('web')).toBe(first);
  });

  it('the nightly backup (7 daily, 4 weekly, 3 monthly) and the weekly drill on a throwaway PostgreSQL 15', async () => {
    const nightly = await run('backup.yml', { name: 'schedule' });
    expect(nightly.result, nightly.log).toBe('success');
    const backup = nightly.action('action-backup');
    expect(backup.outputs.location).toMatch(/^s3:\/\/skiffex-coolify\/skiff-backups\/shop\/shop-\d{8}T\d{6}Z\.dump\.age$/);
    expect(backup.inputs).toMatchObject({ 'keep-daily': '7', 'keep-weekly': '4', 'keep-monthly': '3' });

    const databases = await psql("select string_agg(datname, ',' order by datname) from pg_database");
    const drill = await run('drill.yml', { name: 'schedule' });
    expect(drill.result, drill.log).toBe('success');
    const report = drill.action('action-backup');
    expect(report.outputs['backup-id']).toBe(backup.outputs['backup-id']);
    expect(report.summary).toContain('public.customers\\|250000');
    expect(report.summary).toContain('public.events\\|200000');
    expect(report.summary).toContain('public.schema_migrations\\|2');
    expect(report.log).toMatch(/throwaway PostgreSQL 15/);
    expect(await psql("select string_agg(datname, ',' order by datname) from pg_database")).toBe(databases);
    for (const result of [nightly, drill]) expect(result.log).not.toContain(db.password);
  });
});
