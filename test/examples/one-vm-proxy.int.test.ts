import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImages,
  ensureHubImages,
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  REDIS_SEED_LUA,
  startHubMirror,
  startModernHost,
  startRegistry,
  type ModernHost,
  type Registry,
} from '@skiff/testbed';
import { type WorkflowRun } from '../workflow-runner';
import { get, readmeShellBlocks, runExampleWorkflow, runReadmeSetup, userRepository } from './harness';

/**
 * examples/one-vm-proxy, end to end, as its README tells a user to run it: the example's own
 * workflows call Skiff's reusable workflows, and every action input comes from them. One VM
 * (Docker 28.5, containerd image store) runs nginx (bind-mounted config, depends_on a healthy
 * backend), a frontend image built and pushed by the workflow, a backend built on the server,
 * PostgreSQL and Redis (appendonly, password) from Docker Hub names, ~60 MB in each database.
 */

const PROJECT_DIR = '/srv/shop';
let host: ModernHost;
let registry: Registry;
let mirror: Registry;
let repo: Awaited<ReturnType<typeof userRepository>>;
const runs: WorkflowRun[] = [];
const readme = { fingerprint: '', envKeys: [] as string[] };
const expected = { postgres: '', redisKeys: '' };
const ENV_FILE = ['POSTGRES_USER=shop', 'POSTGRES_PASSWORD=pg-Example-Secret-7', 'POSTGRES_DB=shop', 'REDIS_PASSWORD=redis-Example-Secret-9', ''].join('\n');

async function run(workflow: string, event: { name: string; inputs?: Record<string, string> }) {
  const result = await runExampleWorkflow(
    {
      repository: repo.path,
      // DEPLOY_FINGERPRINT as the README's command printed it on the server.
      vars: { DEPLOY_HOST: host.address, DEPLOY_FINGERPRINT: readme.fingerprint },
      secrets: { DEPLOY_SSH_KEY: host.privateKey, ENV_FILE },
      registry,
    },
    workflow,
    event,
  );
  runs.push(result);
  return result;
}

const site = async (path: string) => (await get(`http://${host.address}${path}`)).body.trim();
const psql = (sql: string) =>
  host.docker(['exec', 'shop-db-1', 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', 'shop', '-d', 'shop', '-tA', '-c', sql], { timeoutMs: 300_000 });
const redis = (...args: string[]) =>
  host.docker(['exec', 'shop-redis-1', 'sh', '-c', 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli "$@"', 'sh', ...args], { timeoutMs: 300_000 });
const dataNow = async () => ({ postgres: (await psql(POSTGRES_CHECKSUM_SQL)).trim(), redisKeys: (await redis('dbsize')).trim() });

beforeAll(async () => {
  await ensureBaseImages();
  await ensureHubImages();
  [registry, mirror, repo] = await Promise.all([startRegistry(), startHubMirror(), userRepository('one-vm-proxy')]);
  host = await startModernHost('skiff-ex-onevm', { imageStore: 'containerd', registries: [registry.address], hubMirror: mirror.address });
  // The README's set-up, as a user types it: the deploy user, its key, the project directory.
  const [setup, fingerprint, envFile] = await readmeShellBlocks('one-vm-proxy');
  await runReadmeSetup(host, setup!, "'ssh-ed25519 AAAA… deploy@github'");
  readme.fingerprint = (await host.exec(['bash', '-ec', fingerprint!])).trim();
  readme.envKeys = envFile!
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('=')[0]!);
}, 600_000);

afterAll(async () => {
  for (const result of runs) await result.remove();
  await host?.stop();
  await Promise.all([registry?.stop(), mirror?.stop(), repo?.remove()]);
});

describe('example one-vm-proxy: one VM, nginx in front of a built-on-server backend, PostgreSQL and Redis', () => {
  it("the README's set-up commands prepare the server, and its fingerprint command prints the host key the workflows verify", async () => {
    expect(readme.fingerprint).toBe(host.hostFingerprint);
    expect(await host.exec(['id', '-nG', 'deploy'])).toMatch(/\bdocker\b/);
    expect((await host.exec(['stat', '-c', '%U', PROJECT_DIR])).trim()).toBe('deploy');
    // The .env the README shows names exactly the variables the test's ENV_FILE sets.
    expect(readme.envKeys).toEqual(
      ENV_FILE.split('\n')
        .filter(Boolean)
        .map((line) => line.split('=')[0]),
    );
  });

  it('ships on push: frontend built, smoke-tested and pushed, the whole app deployed as the deploy user, healthy through the proxy', async () => {
    const ship = await run('ship.yml', { name: 'push' });
    const deploy = ship.action('action-deploy');
    expect(ship.result, ship.log).toBe('success');
    expect(deploy.outputs.status).toBe('deployed');
    // The frontend runs exactly the digest the build job pushed; the backend was built on the server.
    const built = ship.action('action-build-push');
    const images = JSON.parse(deploy.outputs.images!) as Record<string, string>;
    expect(images.frontend).toBe(built.outputs['image-ref']);
    expect(images.frontend).toMatch(new RegExp(`^${registry.address}/acme/shop-frontend@sha256:[0-9a-f]{64}$`));
    expect(images.backend).toBe(`shop-backend:${deploy.outputs['release-id']}`);
    expect(await site('/')).toContain('frontend 1');
    expect(await site('/api/version')).toBe('backend 1');
    expect(await site('/api/health')).toBe('{"status":"ok"}');
    // Docker Hub images came through the mirror, by the names the compose file uses, pinned to the digest pulled.
    expect((await host.docker(['inspect', '--format', '{{.Config.Image}}', 'shop-db-1'])).trim()).toMatch(/^postgres@sha256:[0-9a-f]{64}$/);
    expect(images.db).toMatch(/^postgres@sha256:/);
    expect((await redis('config', 'get', 'appendonly')).split('\n')[1]).toBe('yes');

    await psql(POSTGRES_SEED_SQL);
    await redis('eval', REDIS_SEED_LUA, '0');
    Object.assign(expected, await dataNow());
    expect(Number((await psql("select pg_database_size('shop')")).trim())).toBeGreaterThan(50_000_000);
    expect(Number((await redis('info', 'memory')).match(/used_memory:(\d+)/)![1])).toBeGreaterThan(50_000_000);
  });

  it('the next commit ships: new frontend and backend, data untouched', async () => {
    await repo.edit('frontend/www/index.html', (text) => text.replace('frontend 1', 'frontend 2'));
    await repo.edit('backend/www/cgi-bin/version', (text) => text.replace('backend 1', 'backend 2'));
    const ship = await run('ship.yml', { name: 'push' });
    expect(ship.result, ship.log).toBe('success');
    expect(ship.action('action-deploy').outputs.status).toBe('deployed');
    expect(await site('/')).toContain('frontend 2');
    expect(await site('/api/version')).toBe('backend 2');
    expect(await dataNow()).toEqual(expected);
  });

  it('an unhealthy release fails the run and is rolled back by itself: the previous release serves, data intact', async () => {
    await repo.edit('frontend/www/index.html', (text) => text.replace('frontend 2', 'frontend 3'));
    await repo.edit(
      'backend/www/cgi-bin/health',
      () => "#!/bin/sh\nprintf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nbroken\\n'\n",
    );
    const ship = await run('ship.yml', { name: 'push' });
    const deploy = ship.action('action-deploy');
    expect(ship.result).toBe('failure');
    expect(deploy.outputs.status, deploy.log).toBe('rolled-back');
    expect(deploy.summary).toMatch(/rolled back/i);
    expect(await site('/')).toContain('frontend 2');
    expect(await site('/api/version')).toBe('backend 2');
    expect(await site('/api/health')).toBe('{"status":"ok"}');
    expect(await dataNow()).toEqual(expected);
    // The workflow's outputs say so too: the calling job sees status rolled-back.
    expect(ship.jobs.find((job) => job.id === 'ship')!.outputs.status).toBe('rolled-back');
  });

  it("the nightly backup takes both databases, checked, into the VM's backup directory; the weekly drill restores them", async () => {
    const backup = await run('backup.yml', { name: 'schedule' });
    const step = backup.action('action-backup');
    expect(backup.result, backup.log).toBe('success');
    expect(step.inputs!.mode).toBe('backup');
    expect(step.outputs.verified).toBe('true');
    const ids = step.outputs['backup-id']!.split(',');
    expect(ids).toHaveLength(2);
    const listing = await host.exec(['sh', '-c', `find ${PROJECT_DIR}/backups -type f -printf '%u %s %p\\n'`]);
    for (const id of ids) expect(listing).toContain(id);
    // Kept as the deploy user, and at the size of the data (gzip of a 60 MB database is still MBs).
    const dump = listing.split('\n').find((line) => line.includes('shop-db') && !line.endsWith('.json'))!;
    expect(dump.split(' ')[0]).toBe('deploy');
    expect(Number(dump.split(' ')[1])).toBeGreaterThan(5_000_000);

    const drill = await run('drill.yml', { name: 'schedule' });
    const drilled = drill.action('action-backup');
    expect(drill.result, drill.log).toBe('success');
    expect(drilled.summary).toContain('customers');
    expect(drilled.summary).toMatch(/250[,.]?000/);
    expect(drilled.log).toContain(`keys|${expected.redisKeys}`);
  });

  it('a backup that cannot be taken (the database is down) fails the run with the reason, and stores nothing for it', async () => {
    const dbFiles = () => host.exec(['sh', '-c', `find ${PROJECT_DIR}/backups -path '*shop-db*' | sort`]);
    const before = await dbFiles();
    await host.docker(['stop', 'shop-db-1']);
    try {
      const backup = await run('backup.yml', { name: 'schedule' });
      const step = backup.action('action-backup');
      expect(backup.result).toBe('failure');
      expect(step.outputs.verified).not.toBe('true');
      expect(step.log).toMatch(/shop-db/);
      expect(step.log).toMatch(/not running|is not running|No such|exited/i);
      expect(await dbFiles()).toBe(before);
    } finally {
      await host.docker(['start', 'shop-db-1']);
    }
  });
});
