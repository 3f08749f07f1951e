import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshConnection } from '@skiff/ssh';
import {
  sh,
  sshdConnectOptions,
  startComposePostgres,
  startPostgres,
  startSshd,
  tempDir,
  waitFor,
  type ComposePostgres,
  type Postgres,
  type SshdServer,
} from '@skiff/testbed';
import { BackupFailed, HostStore, backupSource, drillSource, findBackup, pruneSource, restoreBackup, type BackupOptions } from '../src';
import { oneSource } from './fixtures';

let sshd: SshdServer;
let ssh: SshConnection;
let pg: ComposePostgres;
let hostPg: Postgres;
let dest: { path: string; remove: () => Promise<void> };
const cleanups: (() => Promise<unknown>)[] = [];

const source = oneSource;

const options = (overrides: Partial<BackupOptions> = {}): BackupOptions => ({
  minSize: 1024,
  maxShrinkPercent: 50,
  encryptRecipients: [],
  retention: { keepDays: 14, minKeep: 3 },
  ...overrides,
});

let clock = Date.parse('2026-01-01T03:00:00Z');
const tick = () => new Date((clock += 3_600_000));

async function files(dir: string): Promise<string[]> {
  return readdir(dir).then(
    (names) => names.sort(),
    () => [],
  );
}

beforeAll(async () => {
  [sshd, pg, hostPg, dest] = await Promise.all([startSshd(), startComposePostgres('skiffbk-host'), startPostgres(), tempDir('skiffbk-dest')]);
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  await pg.psql('postgres', 'create database app');
  await pg.psql(
    'app',
    "create table items (id int primary key, name text, note text); insert into items select g, 'item ' || g, repeat(md5(g::text), 4) from generate_series(1, 5000) g; create table tags (id serial primary key, tag text); insert into tags (tag) select 't' || g from generate_series(1, 300) g",
  );
});

afterAll(async () => {
  await ssh?.close();
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  await Promise.all([sshd?.stop(), pg?.stop(), hostPg?.stop(), dest?.remove()]);
});

// The password goes in the environment, never argv: the test samples `ps` for it.
async function hostPsql(database: string, sql: string): Promise<string> {
  const { stdout } = await promisify(execFile)('psql', ['-h', '127.0.0.1', '-p', String(hostPg.port), '-U', hostPg.user, '-d', database, '-X', '-tAc', sql], {
    env: { ...process.env, PGPASSWORD: hostPg.password },
  });
  return stdout;
}

const appSource = () => source(`- type: postgres\n  service: db\n  project: skiffbk-host\n  project-directory: ${pg.dir}\n  database: app\n  user: postgres\n`);
const checksum = (db: string) => pg.psql(db, "select count(*) || ':' || md5(string_agg(id || name || note, ',' order by id)) from items");

describe('postgres in a Compose service → host destination', () => {
  it('backs up with verification and a manifest, restores identical data, refuses a non-empty target unless forced', async () => {
    const store = new HostStore(ssh, dest.path);
    const result = await backupSource(ssh, store, appSource(), options({ now: tick }));
    const m = result.manifest;
    expect(m.id).toMatch(/^postgres-app-20260101T040000Z$/);
    expect(m.verification).toEqual(expect.arrayContaining(['PostgreSQL custom-format header PGDMP', 'pg_restore read every data block', 'sha256']));
    expect(m.tools.pg_dump).toMatch(/PostgreSQL\) 15/);
    const stored = await readFile(join(dest.path, 'postgres-app', m.file));
    expect(stored.subarray(0, 5).toString()).toBe('PGDMP');
    expect(stored.length).toBe(m.size);
    expect((await sh('sha256sum', [join(dest.path, 'postgres-app', m.file)])).split(' ')[0]).toBe(m.sha256);
    expect(await readFile(join(dest.path, 'postgres-app', `${m.id}.manifest.json`), 'utf8')).toContain(m.sha256);

    await restoreBackup(ssh, store, appSource(), await findBackup(store, appSource(), 'latest'), { database: 'app_copy', force: false });
    expect(await checksum('app_copy')).toBe(await checksum('app'));
    expect(await pg.psql('app_copy', 'select count(*) from tags')).toBe('300\n');

    await expect(restoreBackup(ssh, store, appSource(), m, { database: 'app_copy', force: false })).rejects.toThrow(/not empty; set force: true/);
    await pg.psql('app_copy', 'delete from items where id > 10');
    await restoreBackup(ssh, store, appSource(), m, { database: 'app_copy', force: true });
    expect(await checksum('app_copy')).toBe(await checksum('app'));
  });

  it('a drill restores into a scratch database, reports row counts next to the manifest, and drops the scratch copy', async () => {
    const store = new HostStore(ssh, dest.path);
    const result = await drillSource(ssh, store, appSource(), {});
    expect(result.report).toEqual(['public.items|5000', 'public.tags|300']);
    const report = JSON.parse(await readFile(join(dest.path, 'postgres-app', `${result.manifest.id}.drill.json`), 'utf8'));
    expect(report.rows).toEqual(['public.items|5000', 'public.tags|300']);
    expect(await pg.psql('postgres', "select count(*) from pg_database where datname like 'skiff_drill_%'")).toBe('0\n');
    // A failing drill query fails the drill (and still drops the scratch copy).
    await expect(drillSource(ssh, store, appSource(), { drillQuery: 'select * from no_such_table' })).rejects.toThrow(/no_such_table/);
    expect(await pg.psql('postgres', "select count(*) from pg_database where datname like 'skiff_drill_%'")).toBe('0\n');
  });

  it('a tampered stored file fails the sha256 check before the target is touched', async () => {
    const store = new HostStore(ssh, dest.path);
    const m = await findBackup(store, appSource(), 'latest');
    const path = join(dest.path, 'postgres-app', m.file);
    const original = await readFile(path);
    const tampered = Buffer.from(original);
    tampered[tampered.length - 10] = tampered[tampered.length - 10]! ^ 0xff;
    await sh('cp', [path, `${path}.orig`]);
    await sh('sh', ['-c', `printf '' > /dev/null`]);
    await import('node:fs/promises').then((fs) => fs.writeFile(path, tampered));
    await expect(restoreBackup(ssh, store, appSource(), m, { database: 'app_tampered', force: false })).rejects.toThrow(/sha256 .* does not match/);
    expect(await pg.psql('postgres', "select count(*) from pg_database where datname = 'app_tampered'")).toBe('0\n');
    await sh('mv', [`${path}.orig`, path]);
  });

  it('a failing pg_dump (bad database, or killed midway) fails the backup: no manifest, no partial, nothing pruned', async () => {
    const store = new HostStore(ssh, dest.path);
    for (let i = 0; i < 3; i++) await backupSource(ssh, store, appSource(), options({ now: tick }));
    const before = await files(join(dest.path, 'postgres-app'));
    const strict = options({ now: tick, retention: { keepDaily: 1, minKeep: 1 } });

    const bad = source(
      `- type: postgres\n  name: postgres-app\n  service: db\n  project: skiffbk-host\n  project-directory: ${pg.dir}\n  database: no_such_db\n  user: postgres\n`,
    );
    await expect(backupSource(ssh, store, bad, strict)).rejects.toThrow(BackupFailed);
    expect(await files(join(dest.path, 'postgres-app'))).toEqual(before);

    // Hold a lock so pg_dump blocks, then kill exactly that pg_dump by its pid.
    const locker = spawn(
      'docker',
      [
        'compose',
        '-p',
        'skiffbk-host',
        '--project-directory',
        pg.dir,
        'exec',
        '-T',
        'db',
        'psql',
        '-d',
        'app',
        '-c',
        'begin; lock table items in access exclusive mode; select pg_sleep(20); commit;',
      ],
      { stdio: 'ignore' },
    );
    cleanups.push(async () => locker.kill());
    await waitFor(
      'lock held',
      async () => (await pg.psql('app', "select count(*) from pg_locks where mode = 'AccessExclusiveLock' and relation = 'items'::regclass")).trim() === '1',
      10_000,
    );
    // Its outcome is taken at once: the kill below can make it fail before anything awaits it.
    const running = backupSource(ssh, store, appSource(), strict).then(
      () => undefined,
      (error: unknown) => error,
    );
    let pid = '';
    await waitFor(
      'pg_dump running',
      async () => {
        pid = (await sh('pgrep', ['-f', '-n', '^pg_dump .*--dbname=app$']).catch(() => '')).trim();
        return pid !== '';
      },
      10_000,
    );
    await sh('kill', ['-9', pid]);
    expect(await running).toBeInstanceOf(BackupFailed);
    locker.kill();
    await pg.psql('postgres', "select pg_terminate_backend(pid) from pg_stat_activity where query like '%pg_sleep(20)%' and pid <> pg_backend_pid()");
    expect(await files(join(dest.path, 'postgres-app'))).toEqual(before);
  });

  it('a full disk on the destination removes the partial file and keeps older backups', async () => {
    const small = await tempDir('skiffbk-tmpfs');
    cleanups.push(() => small.remove());
    await sh('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'skiffbk-tmpfs', small.path]);
    cleanups.push(() => sh('umount', [small.path]));
    await pg.psql('postgres', 'create database grows');
    await pg.psql('grows', 'create table t (id int, v text); insert into t select g, md5(g::text) from generate_series(1, 200) g');
    const grows = source(`- type: postgres\n  service: db\n  project: skiffbk-host\n  project-directory: ${pg.dir}\n  database: grows\n  user: postgres\n`);
    const store = new HostStore(ssh, small.path);
    const first = await backupSource(ssh, store, grows, options({ now: tick, retention: { keepDaily: 1, minKeep: 1 } }));
    const before = await files(join(small.path, 'postgres-grows'));
    const firstBytes = await readFile(join(small.path, 'postgres-grows', first.manifest.file));
    // Random text barely compresses: the next dump cannot fit in 256 KiB.
    await pg.psql('grows', "insert into t select g, string_agg(md5(random()::text), '') from generate_series(1, 400) g, generate_series(1, 100) h group by g");
    await expect(backupSource(ssh, store, grows, options({ now: tick, retention: { keepDaily: 1, minKeep: 1 } }))).rejects.toThrow(
      /No space left|could not write/i,
    );
    expect(await files(join(small.path, 'postgres-grows'))).toEqual(before);
    expect(await readFile(join(small.path, 'postgres-grows', first.manifest.file))).toEqual(firstBytes);
  });

  it('host-level pg_dump gets its password from a 0600 file: never in ps on the server or in the logs', async () => {
    await hostPsql(hostPg.database, 'create table secrets_test (id int); insert into secrets_test select generate_series(1, 2000)');
    const hostSource = source(
      `- type: postgres\n  name: hostpg\n  host: 127.0.0.1\n  port: ${hostPg.port}\n  user: ${hostPg.user}\n  database: ${hostPg.database}\n  password: "${hostPg.password}"\n`,
    );
    const store = new HostStore(ssh, dest.path);
    const logs: string[] = [];
    // Make the dump wait on a lock so there is time to sample `ps` while it runs.
    const locker = spawn(
      'psql',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(hostPg.port),
        '-U',
        hostPg.user,
        '-d',
        hostPg.database,
        '-c',
        'begin; lock table secrets_test in access exclusive mode; select pg_sleep(3); commit;',
      ],
      { stdio: 'ignore', env: { ...process.env, PGPASSWORD: hostPg.password } },
    );
    cleanups.push(async () => locker.kill());
    await waitFor(
      'lock held',
      async () =>
        (await hostPsql(hostPg.database, "select count(*) from pg_locks where mode = 'AccessExclusiveLock' and relation = 'secrets_test'::regclass")).trim() ===
        '1',
      10_000,
    );
    const running = backupSource(ssh, store, hostSource, options({ now: tick, log: (message) => logs.push(message) }));
    const samples: string[] = [];
    let sawDump = false;
    for (let i = 0; i < 40 && !sawDump; i++) {
      const ps = await sh('ps', ['-eo', 'args']);
      samples.push(ps);
      sawDump = ps.includes(`pg_dump -h 127.0.0.1 -p ${hostPg.port}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const result = await running;
    for (let i = 0; i < 5; i++) samples.push(await sh('ps', ['-eo', 'args']));
    expect(sawDump).toBe(true);
    expect(samples.join('\n')).not.toContain(hostPg.password);
    expect(logs.join('\n')).not.toContain(hostPg.password);
    expect(JSON.stringify(result)).not.toContain(hostPg.password);
    // No credentials file holding this password is left (other runs may have their own at this moment).
    expect(await sh('sh', ['-c', 'grep -lF -- "$1" /tmp/skiff-backup-*.secret 2>/dev/null || true', 'sh', hostPg.password])).toBe('');
    await restoreBackup(ssh, store, hostSource, result.manifest, { database: 'hostcopy', force: false });
    const count = await hostPsql('hostcopy', 'select count(*) from secrets_test');
    expect(count.trim()).toBe('2000');
  });

  it('prune applies retention over manifests; dry-run only reports; a prune that would delete everything is refused', async () => {
    const store = new HostStore(ssh, dest.path);
    const all = await store.list('postgres-app');
    expect(all.length).toBeGreaterThanOrEqual(4);
    const now = new Date(Date.parse(all[0]!.time) + 1000);
    const dry = await pruneSource(store, 'postgres-app', { keepDaily: 1, minKeep: 2 }, { now, dryRun: true });
    expect(dry.kept).toEqual(all.slice(0, 2).map((m) => m.id));
    expect((await store.list('postgres-app')).length).toBe(all.length);
    const real = await pruneSource(store, 'postgres-app', { keepDaily: 1, minKeep: 2 }, { now, dryRun: false });
    expect(real.pruned).toEqual(all.slice(2).map((m) => m.id));
    expect((await store.list('postgres-app')).map((m) => m.id)).toEqual(real.kept);
    const left = await files(join(dest.path, 'postgres-app'));
    for (const id of real.pruned) expect(left.some((name) => name.startsWith(id))).toBe(false);
    await expect(pruneSource(store, 'postgres-app', { minKeep: 0 }, { now, dryRun: false })).rejects.toThrow(/refusing to prune/);
    expect((await store.list('postgres-app')).length).toBe(2);
  });
});
