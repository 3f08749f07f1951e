import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImages,
  ensureHubImages,
  FILES_SEED_SH,
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  startHubMirror,
  startModernHost,
  startRegistry,
  type ModernHost,
  type Registry,
} from '@skiff/testbed';
import { type WorkflowRun } from '../workflow-runner';
import { get, readmeShellBlocks, runExampleWorkflow, runReadmeSetup, userRepository } from './harness';

/**
 * examples/droplet-db-and-files, end to end through its own workflows: a droplet (Docker 28.5,
 * classic image store) with the app, PostgreSQL (~60 MB) and an object store's files (~55 MB in a
 * named volume); every deploy backs both up first; an unhealthy release is rolled back with the
 * data untouched; lost rows and files come back by backup id through restore.yml.
 */

const PROJECT_DIR = '/srv/notes';
let host: ModernHost;
let registry: Registry;
let mirror: Registry;
let repo: Awaited<ReturnType<typeof userRepository>>;
const runs: WorkflowRun[] = [];
const readme = { fingerprint: '' };
const ENV_FILE = ['POSTGRES_USER=notes', 'POSTGRES_PASSWORD=notes-Example-Secret-3', 'POSTGRES_DB=notes', ''].join('\n');
const expected = { postgres: '', files: '' };
const backupIds: string[] = [];

async function run(workflow: string, event: { name: string; inputs?: Record<string, string | boolean> }) {
  const result = await runExampleWorkflow(
    {
      repository: repo.path,
      vars: { DROPLET_HOST: host.address, DROPLET_FINGERPRINT: readme.fingerprint },
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
  host.docker(['exec', 'notes-db-1', 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-U', 'notes', '-d', 'notes', '-tA', '-c', sql], { timeoutMs: 300_000 });
const inObjects = (script: string) =>
  host.docker(['run', '--rm', '--network=none', '-v', 'notes_objects:/data', 'busybox:1.35', 'sh', '-c', script], { timeoutMs: 300_000 });
const filesNow = () => inObjects('cd /data && find . -type f -exec sha256sum {} + | sort');
const dataNow = async () => ({ postgres: (await psql(POSTGRES_CHECKSUM_SQL)).trim(), files: await filesNow() });
const hostsOutput = (result: WorkflowRun) =>
  JSON.parse(result.action('action-deploy').outputs.hosts!) as Record<string, { status: string; backups?: string[] }>;

beforeAll(async () => {
  await ensureBaseImages();
  await ensureHubImages();
  [registry, mirror, repo] = await Promise.all([startRegistry(), startHubMirror(), userRepository('droplet-db-and-files')]);
  host = await startModernHost('skiff-ex-droplet', { imageStore: 'classic', registries: [registry.address], hubMirror: mirror.address });
  const [setup, fingerprint] = await readmeShellBlocks('droplet-db-and-files');
  await runReadmeSetup(host, setup!, "'ssh-ed25519 AAAA… deploy@github'");
  readme.fingerprint = (await host.exec(['bash', '-ec', fingerprint!])).trim();
}, 600_000);

afterAll(async () => {
  for (const result of runs) await result.remove();
  await host?.stop();
  await Promise.all([registry?.stop(), mirror?.stop(), repo?.remove()]);
});

describe('example droplet-db-and-files: backups before every deploy, restore by id', () => {
  it('the first push deploys the app, smoke-tested, with nothing to back up yet', async () => {
    expect(readme.fingerprint).toBe(host.hostFingerprint);
    const ship = await run('ship.yml', { name: 'push' });
    expect(ship.result, ship.log).toBe('success');
    expect(ship.action('action-build-push').log).toMatch(/smoke/i);
    expect(ship.action('action-deploy').outputs.status).toBe('deployed');
    expect(Object.values(hostsOutput(ship))[0]!.backups ?? []).toEqual([]);
    expect(await site('/version')).toBe('notes 1');
    expect(await site('/health')).toBe('ok');

    await psql(POSTGRES_SEED_SQL);
    await inObjects(`${FILES_SEED_SH}\n`.replace('root=$1', 'root=/data'));
    expect(await site('/files/README.txt')).toBe('plain text');
    expect(Number((await psql("select pg_database_size('notes')")).trim())).toBeGreaterThan(50_000_000);
    expect(Number((await inObjects('du -sk /data | cut -f1')).trim())).toBeGreaterThan(50_000);
  });

  it('the next push backs up the database and the files, then migrates and ships', async () => {
    await repo.edit('app/www/cgi-bin/version', (text) => text.replace('notes 1', 'notes 2'));
    const ship = await run('ship.yml', { name: 'push' });
    expect(ship.result, ship.log).toBe('success');
    expect(await site('/version')).toBe('notes 2');
    const backups = Object.values(hostsOutput(ship))[0]!.backups!;
    expect(backups.map((id) => id.replace(/-\d{8}T\d{6}Z$/, ''))).toEqual(['notes-db', 'notes-objects']);
    expect(ship.action('action-deploy').summary).toContain(backups[0]!);
    // The migration in pre-deploy ran after the backups.
    expect((await psql("select to_regclass('schema_migrations') is not null")).trim()).toBe('t');
    const stored = await host.exec(['sh', '-c', `find ${PROJECT_DIR}/backups -type f -name '*.manifest.json' -printf '%f\\n' | sort`]);
    for (const id of backups) expect(stored).toContain(id);
    Object.assign(expected, await dataNow());
  });

  it('an unhealthy release is rolled back by itself; its backups were taken first; data untouched', async () => {
    await repo.edit('app/www/cgi-bin/version', (text) => text.replace('notes 2', 'notes 3'));
    await repo.edit(
      'app/www/cgi-bin/health',
      () => "#!/bin/sh\nprintf 'Status: 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nbroken\\n'\n",
    );
    const ship = await run('ship.yml', { name: 'push' });
    const deploy = ship.action('action-deploy');
    expect(ship.result).toBe('failure');
    expect(deploy.outputs.status, deploy.log).toBe('rolled-back');
    expect(await site('/version')).toBe('notes 2');
    expect(await site('/health')).toBe('ok');
    expect(await dataNow()).toEqual(expected);
    backupIds.push(...Object.values(hostsOutput(ship))[0]!.backups!);
    expect(backupIds).toHaveLength(2);
  });

  it('after rows and files are lost, restore puts each back by id — refused without overwrite, identical with it', async () => {
    await psql('delete from events where id % 2 = 0');
    await inObjects('rm -rf /data/uploads/2024 && echo scribble > /data/README.txt');
    const damaged = await dataNow();
    expect(damaged.postgres).not.toBe(expected.postgres);
    const [dbId, filesId] = backupIds as [string, string];

    const refused = await run('restore.yml', { name: 'workflow_dispatch', inputs: { what: 'database', 'backup-id': dbId } });
    expect(refused.result).toBe('failure');
    expect(refused.action('action-backup').log).toMatch(/force/);
    expect(await dataNow()).toEqual(damaged);

    const database = await run('restore.yml', { name: 'workflow_dispatch', inputs: { what: 'database', 'backup-id': dbId, overwrite: true } });
    expect(database.result, database.log).toBe('success');
    expect(database.action('action-backup').inputs!['restore-target']).toBe('notes');
    expect((await psql(POSTGRES_CHECKSUM_SQL)).trim()).toBe(expected.postgres);

    const files = await run('restore.yml', { name: 'workflow_dispatch', inputs: { what: 'files', 'backup-id': filesId, overwrite: true } });
    expect(files.result, files.log).toBe('success');
    expect(await filesNow()).toBe(expected.files);
    expect(await site('/files/README.txt')).toBe('plain text');
    expect(await site('/health')).toBe('ok');
  });

  it('a restore of an id that does not exist is refused with the reason, changing nothing', async () => {
    const before = await dataNow();
    const missing = await run('restore.yml', {
      name: 'workflow_dispatch',
      inputs: { what: 'database', 'backup-id': 'notes-db-20200101T000000Z', overwrite: true },
    });
    expect(missing.result).toBe('failure');
    expect(missing.action('action-backup').log).toMatch(/notes-db-20200101T000000Z/);
    expect(await dataNow()).toEqual(before);
  });
});
