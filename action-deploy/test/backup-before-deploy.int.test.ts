import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  ensureBaseImages,
  ensureComposePostgresImage,
  freePort,
  pushWithOwnLogin,
  sh,
  startRegistry,
  startSshd,
  tempDir,
  type Registry,
  type SshdServer,
  sshdActionInputs,
} from '@skiff/testbed';
import { auditLines, buildApp, httpGet, removeProject, runAction } from './helpers';

/**
 * backup-before-deploy: a verified pg_dump of the project's running database is on the server
 * before pre-deploy runs; a backup that fails stops the deploy with nothing switched.
 */

const PROJECT = `skiffdeploybbd${process.pid}`;

let server: SshdServer;
let registry: Registry;
let remoteRoot: { path: string; remove: () => Promise<void> };
let workspace: { path: string; remove: () => Promise<void> };
let webPort: number;
let app: string;
let db: string;
let projectDir: string;

const psql = (sql: string, database = 'app') =>
  sh('docker', [
    'compose',
    '-p',
    PROJECT,
    '--project-directory',
    projectDir,
    '-f',
    join(projectDir, 'current', 'compose.yaml'),
    'exec',
    '-T',
    'db',
    'psql',
    '-X',
    '-v',
    'ON_ERROR_STOP=1',
    '-tA',
    '-d',
    database,
    '-c',
    sql,
  ]);

const inputs = (extra: Record<string, string> = {}) => ({
  ...sshdActionInputs(server),
  'project-dir': projectDir,
  'project-name': PROJECT,
  'env-file': `WEB_PORT=${webPort}\n`,
  'health-url': `http://127.0.0.1:${webPort}/`,
  'health-interval': '1s',
  'health-timeout': '60s',
  'backup-before-deploy': 'type: postgres\nservice: db\ndatabase: app\nuser: postgres\n',
  'backup-keep': '2',
  // The machine's own docker login is left alone (other test files run beside this one): each pull logs in for itself.
  registry: registry.address,
  'registry-username': registry.username,
  'registry-password': registry.password,
  // Runs after the backup: proves the order by finding its manifest already there.
  'pre-deploy': `ls ${projectDir}/backups/postgres-app/*.manifest.json > ${projectDir}/pre-deploy-saw.txt 2>&1 || echo none > ${projectDir}/pre-deploy-saw.txt`,
  ...extra,
});

const deploy = (extra: Record<string, string> = {}) => runAction(inputs(extra), { workspace: workspace.path });

beforeAll(async () => {
  await ensureBaseImages();
  [server, registry, remoteRoot, workspace] = await Promise.all([startSshd(), startRegistry(), tempDir('skiffdeploybbd-remote'), tempDir('skiffdeploybbd-ws')]);
  projectDir = join(remoteRoot.path, 'app');
  webPort = await freePort();
  app = `${registry.address}/skiffdeploybbd-app:v1`;
  db = `${registry.address}/skiffdeploybbd-pg:15`;
  await buildApp(app, 'ok', 'v1');
  await sh('docker', ['tag', await ensureComposePostgresImage(), db]);
  for (const image of [app, db]) await pushWithOwnLogin(registry, image);
  await writeFile(
    join(workspace.path, 'compose.yaml'),
    [
      'services:',
      '  web:',
      `    image: ${app}`,
      '    ports:',
      '      - "127.0.0.1:${WEB_PORT}:8080"',
      '  db:',
      `    image: ${db}`,
      '    stop_grace_period: 2s',
      '',
    ].join('\n'),
  );
}, 600_000);

afterAll(async () => {
  await removeProject(PROJECT).catch(() => undefined);
  await sh('docker', ['image', 'rm', '-f', app, db]).catch(() => '');
  await Promise.all([server?.stop(), registry?.stop(), remoteRoot?.remove(), workspace?.remove()]);
});

describe('backup-before-deploy', () => {
  it('skips the first deploy (nothing runs yet), then dumps the running database before pre-deploy and names it in the summary', async () => {
    const first = await deploy();
    expect(first.code, first.masked).toBe(0);
    expect(first.stdout).toContain('this is the first release, so there is nothing running to back up yet');
    expect(await readFile(join(projectDir, 'pre-deploy-saw.txt'), 'utf8')).toContain('none');

    // The first release's database gets real data, which the next deploy must back up.
    await sh('bash', [
      '-c',
      'for i in $(seq 1 60); do if docker compose -p "$0" ps --status running db | grep -q db; then exit 0; fi; sleep 0.5; done; exit 1',
      PROJECT,
    ]);
    await sh('bash', [
      '-c',
      'for i in $(seq 1 60); do docker exec "$(docker ps -q --filter label=com.docker.compose.project=$0 --filter label=com.docker.compose.service=db)" pg_isready -q && exit 0; sleep 0.5; done; exit 1',
      PROJECT,
    ]);
    await psql('CREATE DATABASE app', 'postgres');
    await psql("CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders SELECT g, repeat('x', 40) || g FROM generate_series(1, 500) g");
    // And a database of the size users have (450,000 rows; a ~43 MB dump): a few hundred kB once made every backup fail.
    await psql(POSTGRES_SEED_SQL);
    const expected = await psql(POSTGRES_CHECKSUM_SQL);

    const second = await deploy();
    expect(second.code, second.masked).toBe(0);
    const hosts = JSON.parse(second.outputs.hosts!) as Record<string, { backups?: string[] }>;
    const [backupId] = Object.values(hosts)[0]!.backups ?? [];
    expect(backupId).toMatch(/^postgres-app-\d{8}T\d{6}Z/);
    // pre-deploy ran after the backup's manifest existed.
    expect(await readFile(join(projectDir, 'pre-deploy-saw.txt'), 'utf8')).toContain(`${backupId}.manifest.json`);
    expect(second.summary).toContain('Backup before deploy');
    expect(second.summary).toContain(backupId);

    const manifest = JSON.parse(await readFile(join(projectDir, 'backups/postgres-app', `${backupId}.manifest.json`), 'utf8')) as {
      file: string;
      size: number;
      verification: string[];
    };
    expect(manifest.verification.join(' ')).toMatch(/pg_restore read every data block/);
    const dump = await readFile(join(projectDir, 'backups/postgres-app', manifest.file));
    expect(dump.subarray(0, 5).toString()).toBe('PGDMP');
    expect(dump.length).toBe(manifest.size);
    // The dump restores: its table of contents names the table the deploy was about to migrate.
    const container = (
      await sh('docker', ['ps', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`, '--filter', 'label=com.docker.compose.service=db'])
    ).trim();
    const toc = await sh('bash', ['-c', 'docker exec -i "$0" pg_restore --list < "$1"', container, join(projectDir, 'backups/postgres-app', manifest.file)]);
    expect(toc).toMatch(/TABLE public orders/);
    expect(manifest.size).toBeGreaterThan(15 * 1024 * 1024);
    await psql('CREATE DATABASE app_restored', 'postgres');
    await sh(
      'bash',
      ['-c', 'docker exec -i "$0" pg_restore --exit-on-error -d app_restored < "$1"', container, join(projectDir, 'backups/postgres-app', manifest.file)],
      { timeoutMs: 300_000 },
    );
    expect(await psql(POSTGRES_CHECKSUM_SQL, 'app_restored')).toBe(expected);
  }, 300_000);

  it('keeps backup-keep backups per source', async () => {
    const third = await deploy();
    expect(third.code, third.masked).toBe(0);
    const manifests = (await readdir(join(projectDir, 'backups/postgres-app'))).filter((name) => name.endsWith('.manifest.json'));
    expect(manifests).toHaveLength(2);
  }, 300_000);

  it('a backup that fails stops the deploy before pre-deploy: nothing switched, the running release stays current', async () => {
    const currentBefore = await readFile(join(projectDir, 'current', 'meta.json'), 'utf8');
    await writeFile(join(projectDir, 'pre-deploy-saw.txt'), 'untouched');
    const failed = await deploy({ 'backup-before-deploy': 'type: postgres\nservice: db\ndatabase: no_such_db\nuser: postgres\n' });
    expect(failed.code).not.toBe(0);
    expect(failed.stdout).toMatch(/backup-before-deploy failed, so nothing was switched/);
    expect(await readFile(join(projectDir, 'pre-deploy-saw.txt'), 'utf8')).toBe('untouched');
    expect(await readFile(join(projectDir, 'current', 'meta.json'), 'utf8')).toBe(currentBefore);
    // The failed dump left nothing behind, not even the directory it made for its source.
    expect(await readdir(join(projectDir, 'backups'))).toEqual(['postgres-app']);
    const last = (await auditLines(projectDir)).at(-1)!;
    expect(last).toMatchObject({ event: 'failure', reason: 'backup-before-deploy failed' });
    expect((await httpGet(`http://127.0.0.1:${webPort}/`)).body).toContain('version=v1');
  }, 300_000);
});
