import { createHash } from 'node:crypto';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  answerFrom,
  CF_IPV4,
  CF_IPV6,
  cfBody,
  ensureBaseImages,
  ensureHubImages,
  linkPrivateNetwork,
  makeServerCertificate,
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  registryManifestDigest,
  startFakeCloudflare,
  startHubMirror,
  startModernHost,
  startRegistry,
  tempDir,
  type FakeCloudflare,
  type ModernHost,
  type PrivateNetwork,
  type Registry,
} from '@skiff/testbed';
import { type WorkflowRun } from '../workflow-runner';
import { readmeShellBlocks, runExampleWorkflow, runReadmeSetup, userRepository } from './harness';

/**
 * examples/two-vms-cloudflare, end to end, as its README tells a user to run it: a data VM
 * (PostgreSQL and Redis, published on its private address only) and an app VM (backend and
 * frontend from GHCR, tagged by commit SHA) joined by a private network, the app VM's port 80
 * open to Cloudflare only. Both are servers with Docker 28.5 in network namespaces of their own;
 * Cloudflare's API is a local stand-in served over TLS under its real name; "Cloudflare's edge"
 * is an address on the app VM's link that the stand-in lists among Cloudflare's ranges.
 */

let app: ModernHost;
let data: ModernHost;
let privateNetwork: PrivateNetwork;
let registry: Registry;
let mirror: Registry;
let cloudflare: FakeCloudflare;
let tls: { path: string; remove: () => Promise<void> };
let caFile = '';
let repo: Awaited<ReturnType<typeof userRepository>>;
const runs: WorkflowRun[] = [];
const readme = { appFingerprint: '', dataFingerprint: '', dataEnvKeys: [] as string[], appEnvKeys: [] as string[] };
const sources = { edge: '', stranger: '' };
const expected = { postgres: '' };
const env = { data: '', app: '' };
const shas: string[] = [];

const commit = (n: number) => createHash('sha1').update(`two-vms-cloudflare commit ${n}`).digest('hex');

async function run(workflow: string, event: { name: string; inputs?: Record<string, string> }, sha = shas.at(-1)) {
  const result = await runExampleWorkflow(
    {
      repository: repo.path,
      vars: {
        APP_HOST: app.address,
        DATA_HOST: data.address,
        APP_FINGERPRINT: readme.appFingerprint,
        DATA_FINGERPRINT: readme.dataFingerprint,
        SITE_DOMAIN: 'shop.example.com',
        // The runner's address as the app VM sees it: the only source allowed to SSH.
        SSH_ALLOW: `${app.ns.hostAddress}/32`,
      },
      // One deploy key for both VMs (the README puts its public half on each); root's key for the firewall.
      secrets: { DEPLOY_SSH_KEY: app.privateKey, ROOT_SSH_KEY: app.privateKey, DATA_ENV_FILE: env.data, APP_ENV_FILE: env.app },
      registry,
      ...(sha ? { sha } : {}),
      hostAliases: { 'api.cloudflare.com': `127.0.0.1:${cloudflare.port}` },
      env: { NODE_EXTRA_CA_CERTS: caFile },
    },
    workflow,
    event,
  );
  runs.push(result);
  return result;
}

/** The site as Cloudflare's edge fetches it from the app VM (or as another source would). */
const site = async (path: string, source = sources.edge) => (await answerFrom(source, `http://${app.address}${path}`)).trim();
const psql = (sql: string) =>
  data.docker(['exec', 'data-db-1', 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', 'shop', '-d', 'shop', '-tA', '-c', sql], { timeoutMs: 300_000 });

/** The SSH server's banner as seen from `source` ('' when nothing answers within 3 s). */
function sshBanner(host: string, source: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port: 22, localAddress: source, timeout: 3_000 });
    const done = (banner: string) => {
      socket.destroy();
      resolve(banner);
    };
    socket.once('data', (chunk) => done(chunk.toString().trim()));
    socket.once('timeout', () => done(''));
    socket.once('error', () => done(''));
  });
}

/** Whether anything accepts a TCP connection there from this machine. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port, timeout: 3_000 });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/** The variable names of a .env file's lines. */
const keysOf = (envFile: string) =>
  envFile
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split('=')[0]!);

beforeAll(async () => {
  await ensureBaseImages();
  await ensureHubImages();
  [registry, mirror, repo, tls] = await Promise.all([startRegistry(), startHubMirror(), userRepository('two-vms-cloudflare'), tempDir('skiff-ex-cf-tls')]);
  const certificate = await makeServerCertificate(tls.path);
  caFile = certificate.caFile;
  const options = { registries: [registry.address], hubMirror: mirror.address };
  [app, data] = await Promise.all([
    startModernHost('skiff-ex-2vm-app', { ...options, imageStore: 'containerd' }),
    startModernHost('skiff-ex-2vm-data', { ...options, imageStore: 'classic' }),
  ]);
  privateNetwork = await linkPrivateNetwork(data.ns, app.ns);
  const prefix = app.ns.hostAddress.split('.').slice(0, 3).join('.');
  sources.edge = `${prefix}.70`;
  sources.stranger = `${prefix}.150`;
  await app.ns.addHostAddress(sources.edge);
  await app.ns.addHostAddress(sources.stranger);
  cloudflare = await startFakeCloudflare(cfBody({ ipv4: [...CF_IPV4, `${sources.edge}/32`], ipv6: CF_IPV6 }), certificate);

  // The README's set-up on each VM, as a user types it, with the same deploy key on both.
  const [setup, fingerprint, dataEnv, appEnv] = await readmeShellBlocks('two-vms-cloudflare');
  for (const host of [app, data]) await runReadmeSetup(host, setup!, "'ssh-ed25519 AAAA… deploy@github'", app);
  readme.appFingerprint = (await app.exec(['bash', '-ec', fingerprint!])).trim();
  readme.dataFingerprint = (await data.exec(['bash', '-ec', fingerprint!])).trim();
  readme.dataEnvKeys = keysOf(dataEnv!);
  readme.appEnvKeys = keysOf(appEnv!);

  const dataAddress = privateNetwork.addressOf(data.ns);
  env.data = [
    `PRIVATE_IP=${dataAddress}`,
    'POSTGRES_USER=shop',
    'POSTGRES_PASSWORD=pg-Example-Secret-7',
    'POSTGRES_DB=shop',
    'REDIS_PASSWORD=redis-Example-Secret-9',
    '',
  ].join('\n');
  env.app = [
    `PGHOST=${dataAddress}`,
    'PGUSER=shop',
    'PGPASSWORD=pg-Example-Secret-7',
    'PGDATABASE=shop',
    'PGCONNECT_TIMEOUT=3',
    `REDIS_HOST=${dataAddress}`,
    'REDIS_PASSWORD=redis-Example-Secret-9',
    '',
  ].join('\n');
}, 600_000);

afterAll(async () => {
  for (const result of runs) await result.remove();
  await privateNetwork?.remove();
  await Promise.all([app?.stop(), data?.stop()]);
  await Promise.all([registry?.stop(), mirror?.stop(), cloudflare?.close(), repo?.remove(), tls?.remove()]);
});

describe('example two-vms-cloudflare: a data VM and an app VM on a private network, the app open to Cloudflare only', () => {
  it("the README's set-up prepares both VMs, its fingerprint command prints each host key, its .env files name what the test sets", async () => {
    expect(readme.appFingerprint).toBe(app.hostFingerprint);
    expect(readme.dataFingerprint).toBe(data.hostFingerprint);
    for (const host of [app, data]) expect(await host.exec(['id', '-nG', 'deploy'])).toMatch(/\bdocker\b/);
    expect(readme.dataEnvKeys).toEqual(keysOf(env.data));
    expect(readme.appEnvKeys).toEqual(keysOf(env.app));
  });

  it('data: PostgreSQL and Redis deployed on the data VM, healthy, published on its private address only', async () => {
    const deployed = await run('data.yml', { name: 'workflow_dispatch' }, commit(0));
    const step = deployed.action('action-deploy');
    expect(deployed.result, deployed.log).toBe('success');
    expect(step.outputs.status).toBe('deployed');
    for (const container of ['data-db-1', 'data-redis-1'])
      expect((await data.docker(['inspect', '--format', '{{.State.Health.Status}}', container])).trim()).toBe('healthy');
    // Nothing answers on the VM's public address; the private one is where Docker published them.
    expect(await accepts(data.address, 5432)).toBe(false);
    expect(await accepts(data.address, 6379)).toBe(false);
    const bindings = await data.docker(['port', 'data-db-1']);
    expect(bindings.trim()).toBe(`5432/tcp -> ${privateNetwork.addressOf(data.ns)}:5432`);

    await psql(POSTGRES_SEED_SQL);
    expected.postgres = (await psql(POSTGRES_CHECKSUM_SQL)).trim();
    expect(Number((await psql("select pg_database_size('shop')")).trim())).toBeGreaterThan(50_000_000);
  });

  it('ships by commit SHA: both images built, pushed with the SHA as tag, deployed by digest; the backend reads the data VM', async () => {
    shas.push(commit(1));
    const ship = await run('ship.yml', { name: 'push' });
    const deploy = ship.action('action-deploy');
    expect(ship.result, ship.log).toBe('success');
    expect(deploy.outputs.status).toBe('deployed');
    const images = JSON.parse(deploy.outputs.images!) as Record<string, string>;
    for (const service of ['backend', 'frontend']) {
      expect(images[service]).toMatch(new RegExp(`^${registry.address}/acme/shop-${service}@sha256:[0-9a-f]{64}$`));
      const tagged = await registryManifestDigest(registry, `acme/shop-${service}`, shas[0]!);
      expect(images[service]!.endsWith(`@${tagged}`)).toBe(true);
    }
    expect(await site('/')).toContain('frontend 1');
    expect(await site('/api/version')).toBe('backend 1');
    expect(await site('/api/health')).toBe('{"status":"ok"}');
    expect(await site('/api/customers')).toBe('250000');
  });

  it('firewall: port 80 answers Cloudflare and nobody else; SSH answers the runner and nobody else', async () => {
    // Before: anyone reaches the site.
    expect(await site('/api/version', sources.stranger)).toBe('backend 1');
    const firewall = await run('firewall.yml', { name: 'schedule' });
    const step = firewall.action('action-cf-allowlist');
    expect(firewall.result, firewall.log).toBe('success');
    expect(step.outputs.changed).toBe('true');
    expect(cloudflare.requests).toBeGreaterThan(0);
    expect(await site('/api/version')).toBe('backend 1');
    expect(await site('/api/version', sources.stranger)).toBe('');
    expect(await site('/api/version', app.ns.hostAddress)).toBe('');
    expect(await sshBanner(app.address, app.ns.hostAddress)).toMatch(/^SSH-2\.0-/);
    expect(await sshBanner(app.address, sources.stranger)).toBe('');
    expect(await sshBanner(app.address, sources.edge)).toBe('');
  });

  it('the next commit ships behind the firewall (health asked on the VM), data untouched', async () => {
    shas.push(commit(2));
    await repo.edit('app/frontend/www/index.html', (text) => text.replace('frontend 1', 'frontend 2'));
    await repo.edit('app/backend/www/cgi-bin/version', (text) => text.replace('backend 1', 'backend 2'));
    const ship = await run('ship.yml', { name: 'push' });
    expect(ship.result, ship.log).toBe('success');
    expect(ship.action('action-deploy').outputs.status).toBe('deployed');
    expect(await site('/')).toContain('frontend 2');
    expect(await site('/api/version')).toBe('backend 2');
    expect((await psql(POSTGRES_CHECKSUM_SQL)).trim()).toBe(expected.postgres);
  });

  it('a release that cannot reach the data VM fails its health gate and is rolled back by itself, data untouched', async () => {
    shas.push(commit(3));
    await repo.edit('app/frontend/www/index.html', (text) => text.replace('frontend 2', 'frontend 3'));
    // The new backend asks the wrong port: every check of the data VM fails.
    await repo.edit('app/backend/www/cgi-bin/health', (text) => text.replace('psql -X', 'psql -X -p 5433'));
    const ship = await run('ship.yml', { name: 'push' });
    const deploy = ship.action('action-deploy');
    expect(ship.result).toBe('failure');
    expect(deploy.outputs.status, deploy.log).toBe('rolled-back');
    expect(deploy.summary).toMatch(/rolled back/i);
    expect(await site('/')).toContain('frontend 2');
    expect(await site('/api/version')).toBe('backend 2');
    expect(await site('/api/health')).toBe('{"status":"ok"}');
    expect((await psql(POSTGRES_CHECKSUM_SQL)).trim()).toBe(expected.postgres);
  });

  it("rollback.yml deploys the first commit's images again by its SHA, through the health gate", async () => {
    const rollback = await run('rollback.yml', { name: 'workflow_dispatch', inputs: { sha: shas[0]! } });
    const deploy = rollback.action('action-deploy');
    expect(rollback.result, rollback.log).toBe('success');
    expect(deploy.outputs.status).toBe('deployed');
    const images = JSON.parse(deploy.outputs.images!) as Record<string, string>;
    for (const service of ['backend', 'frontend'])
      expect(images[service]).toBe(`${registry.address}/acme/shop-${service}@${await registryManifestDigest(registry, `acme/shop-${service}`, shas[0]!)}`);
    expect(await site('/')).toContain('frontend 1');
    expect(await site('/api/version')).toBe('backend 1');
    expect(await site('/api/customers')).toBe('250000');
  });

  it('the nightly backup stores a checked custom-format dump of PostgreSQL on the data VM, 14 days kept', async () => {
    const backup = await run('backup.yml', { name: 'schedule' });
    const step = backup.action('action-backup');
    expect(backup.result, backup.log).toBe('success');
    expect(step.outputs.verified).toBe('true');
    expect(step.inputs!['keep-days']).toBe('14');
    const id = step.outputs['backup-id']!;
    const listing = await data.exec(['sh', '-c', `find /srv/data/backups -type f -name '${id}*' -printf '%u %s %p\\n'`]);
    const dump = listing.split('\n').find((line) => line && !line.endsWith('.json'))!;
    expect(dump.split(' ')[0]).toBe('deploy');
    expect(Number(dump.split(' ')[1])).toBeGreaterThan(5_000_000);
    // Custom format (PGDMP), uncompressed on top: its table of contents names the customers' table.
    const path = dump.split(' ')[2]!;
    expect(await data.exec(['head', '-c', '5', path])).toBe('PGDMP');
    expect(await data.exec(['sh', '-c', `grep -a -c 'CREATE TABLE public.customers' ${path}`])).not.toBe('0\n');
  });
});
