import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshConnection } from '@skiff/ssh';
import { sh, sshdConnectOptions, startMariadb, startS3, startSshd, tempDir, waitFor, type Mariadb, type S3Server, type SshdServer } from '@skiff/testbed';
import { S3Store } from '../src/s3-store';
import { BackupFailed, HostStore, backupSource, drillSource, parseSources, restoreBackup, type Source } from '../src';
import { backupOptions } from './fixtures';

let sshd: SshdServer;
let ssh: SshConnection;
let db: Mariadb;
let s3: S3Server;
let dest: { path: string; remove: () => Promise<void> };

let clock = Date.parse('2026-03-01T03:00:00Z');
const tick = () => new Date((clock += 3_600_000));
const options = backupOptions(tick);

beforeAll(async () => {
  [sshd, db, s3, dest] = await Promise.all([startSshd(), startMariadb(), startS3('skiffbk-mysql'), tempDir('skiffbk-mysqldest')]);
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  await db.sql(
    [
      'create table items (id int primary key, name varchar(64), note text, price decimal(10,2))',
      "insert into items select seq, concat('item ', seq), repeat(md5(seq), 4), seq * 1.25 from seq_1_to_4000",
      'create table tags (id int auto_increment primary key, tag varchar(32))',
      "insert into tags (tag) select concat('t', seq) from seq_1_to_250",
      'create function item_total() returns decimal(20,2) reads sql data return (select sum(price) from items)',
    ].join(';\n'),
    db.database,
  );
}, 180_000);

afterAll(async () => {
  await ssh?.close();
  await Promise.all([sshd?.stop(), db?.stop(), s3?.stop(), dest?.remove()]);
});

function source(extra = ''): Source {
  const { sources, problems } = parseSources(
    `- type: mysql\n  name: shop\n  host: 127.0.0.1\n  port: ${db.port}\n  user: root\n  database: ${db.database}\n  password: "${db.password}"\n${extra}`,
  );
  expect(problems).toEqual([]);
  return sources[0]!;
}

const checksum = async (database: string) =>
  (
    await db.sql(
      "set session group_concat_max_len = 67108864; select concat(count(*), ':', md5(group_concat(id, '/', name, '/', note, '/', price order by id separator ','))) from items",
      database,
    )
  ).trim();
const tables = async (database: string) => (await db.sql(`select count(*) from information_schema.tables where table_schema = '${database}'`)).trim();

describe('mysql (MariaDB) on the host', () => {
  it('dumps with --single-transaction --routines, password only in a 0600 defaults file (never in ps or logs), verifies, restores identical', async () => {
    const store = new HostStore(ssh, dest.path);
    const logs: string[] = [];
    // LOCK TABLES … WRITE blocks the dump's SELECT, so there is time to sample `ps` while it runs;
    // the lock is held until the sampling is over (killing the client releases it), however slow the machine.
    const locker = spawn(
      'mariadb',
      ['--no-defaults', `--socket=${db.socket}`, '-u', 'root', db.database, '-e', 'lock tables items write; select sleep(60); unlock tables'],
      { stdio: 'ignore' },
    );
    await waitFor(
      'lock held',
      async () =>
        (await db.sql("select count(*) from information_schema.processlist where info like '%sleep(60)%' and info not like '%processlist%'")).trim() === '1',
      10_000,
    );
    const running = backupSource(ssh, store, source(), options({ log: (message) => logs.push(message) }));
    const samples: string[] = [];
    let sawDump = '';
    for (let i = 0; i < 300 && !sawDump; i++) {
      const ps = await sh('ps', ['-eo', 'args']);
      samples.push(ps);
      // The backup asks `mysqldump --version` first; on a slow machine a sample can catch that probe.
      sawDump = ps.split('\n').find((line) => line.startsWith('mysqldump ') && !line.includes('--version')) ?? '';
      await new Promise((r) => setTimeout(r, 50));
    }
    locker.kill();
    const { manifest } = await running;
    expect(sawDump).toMatch(/^mysqldump --defaults-extra-file=\/tmp\/skiff-backup-[0-9a-f]+\.secret -h 127\.0\.0\.1 .*--single-transaction --routines/);
    expect(samples.join('\n')).not.toContain(db.password);
    expect(logs.join('\n')).not.toContain(db.password);
    expect(JSON.stringify(manifest)).not.toContain(db.password);
    // The defaults file the dump named is gone (other runs may have their own /tmp/skiff-backup-*.secret).
    const secretFile = /--defaults-extra-file=(\S+)/.exec(sawDump)![1]!;
    expect(await sh('sh', ['-c', `ls -- ${secretFile} 2>/dev/null || true`])).toBe('');

    expect(manifest.verification).toEqual(expect.arrayContaining(['exit status 0 (pipefail)', 'gzip -t', 'mysqldump "-- Dump completed" trailer', 'sha256']));
    expect(manifest.file).toMatch(/^shop-\d{8}T\d{6}Z\.sql\.gz$/);
    expect(manifest.tools.mysqldump).toMatch(/MariaDB/);
    const sql = await sh('sh', ['-c', `gzip -dc ${join(dest.path, 'shop', manifest.file)}`]);
    expect(sql).toMatch(/-- Dump completed/);
    expect(sql).not.toMatch(/^USE /m);
    expect(sql).toMatch(/CREATE DEFINER=.* FUNCTION `item_total`/);

    await restoreBackup(ssh, store, source(), manifest, { database: 'shop_copy', force: false });
    expect(await checksum('shop_copy')).toBe(await checksum(db.database));
    expect(await checksum('shop_copy')).toMatch(/^4000:[0-9a-f]{32}$/);
    expect((await db.sql('select count(*) from tags', 'shop_copy')).trim()).toBe('250');
    expect((await db.sql('select shop_copy.item_total()')).trim()).toBe((await db.sql(`select ${db.database}.item_total()`)).trim());

    // A non-empty target is refused (and untouched) unless forced.
    await db.sql('delete from items where id > 10', 'shop_copy');
    await expect(restoreBackup(ssh, store, source(), manifest, { database: 'shop_copy', force: false })).rejects.toThrow(
      /database shop_copy is not empty; set force: true/,
    );
    expect((await db.sql('select count(*) from items', 'shop_copy')).trim()).toBe('10');
    await restoreBackup(ssh, store, source(), manifest, { database: 'shop_copy', force: true });
    expect(await checksum('shop_copy')).toBe(await checksum(db.database));
  });

  it('a drill restores into a scratch database, reports exact row counts, and drops it', async () => {
    const store = new HostStore(ssh, dest.path);
    const result = await drillSource(ssh, store, source(), {});
    expect(result.report).toEqual(['items|4000', 'tags|250']);
    const report = JSON.parse(await readFile(join(dest.path, 'shop', `${result.manifest.id}.drill.json`), 'utf8'));
    expect(report.rows).toEqual(['items|4000', 'tags|250']);
    expect((await db.sql("select count(*) from information_schema.schemata where schema_name like 'skiff_drill_%'")).trim()).toBe('0');
  });

  it('a failing mysqldump (wrong password, missing database) fails the backup: no manifest, nothing stored', async () => {
    const store = new HostStore(ssh, dest.path);
    const before = (await store.list('shop')).map((m) => m.id);
    const { sources } = parseSources(
      `- type: mysql\n  name: shop\n  host: 127.0.0.1\n  port: ${db.port}\n  user: root\n  database: no_such_db\n  password: "${db.password}"\n`,
    );
    await expect(backupSource(ssh, store, sources[0]!, options())).rejects.toThrow(BackupFailed);
    const wrong = parseSources(
      `- type: mysql\n  name: shop\n  host: 127.0.0.1\n  port: ${db.port}\n  user: root\n  database: ${db.database}\n  password: "not-the-password"\n`,
    ).sources[0]!;
    await expect(backupSource(ssh, store, wrong, options())).rejects.toThrow(/Access denied/);
    expect((await store.list('shop')).map((m) => m.id)).toEqual(before);
    expect((await sh('ls', [join(dest.path, 'shop')])).split('\n').filter((name) => name.endsWith('.partial'))).toEqual([]);
  });
});

describe('mysql (MariaDB) to S3 through the runner, encrypted', () => {
  it('round trip through s3rver with age gives identical data', async () => {
    const store = new S3Store({
      endpoint: s3.endpoint,
      region: s3.region,
      bucket: s3.bucket,
      prefix: 'db',
      accessKeyId: s3.accessKeyId,
      secretAccessKey: s3.secretAccessKey,
    });
    try {
      const identity = await generateIdentity();
      const { manifest } = await backupSource(ssh, store, source(), options({ encryptRecipients: [await identityToRecipient(identity)] }));
      expect(manifest.file).toMatch(/\.sql\.gz\.age$/);
      expect(manifest.verification).toContain('mysqldump "-- Dump completed" trailer');
      await restoreBackup(ssh, store, source(), manifest, { database: 'shop_s3', force: false }, { identities: [identity] });
      expect(await checksum('shop_s3')).toBe(await checksum(db.database));
      expect(await tables('shop_s3')).toBe('2');
    } finally {
      store.client.destroy();
    }
  });
});
