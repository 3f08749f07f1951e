import { readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshConnection } from '@skiff/ssh';
import {
  sh,
  sshdConnectOptions,
  startComposePostgres,
  startRedis,
  startS3,
  startSshd,
  tempDir,
  type ComposePostgres,
  type Redis,
  type S3Server,
  type SshdServer,
} from '@skiff/testbed';
import { S3Store } from '../src/s3-store';
import { BackupFailed, backupSource, drillSource, dumpCommand, pruneSource, restoreBackup, type BackupRequest } from '../src';
import { backupOptions, oneSource } from './fixtures';

let sshd: SshdServer;
let ssh: SshConnection;
let pg: ComposePostgres;
let s3: S3Server;
let redis: Redis;
let work: { path: string; remove: () => Promise<void> };
let store: S3Store;

const source = oneSource;
let clock = Date.parse('2026-02-01T03:00:00Z');
const tick = () => new Date((clock += 86_400_000));
const options = backupOptions(tick);

beforeAll(async () => {
  [sshd, pg, s3, redis, work] = await Promise.all([startSshd(), startComposePostgres('skiffbk-s3'), startS3(), startRedis(), tempDir('skiffbk-s3work')]);
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  store = new S3Store({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    prefix: 'nightly',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  });
  await pg.psql('postgres', 'create database shop');
  await pg.psql(
    'shop',
    'create table orders (id int primary key, total numeric, note text); insert into orders select g, g * 1.5, md5(g::text) from generate_series(1, 3000) g',
  );
});

afterAll(async () => {
  await ssh?.close();
  store?.client.destroy();
  await Promise.all([sshd?.stop(), pg?.stop(), s3?.stop(), redis?.stop(), work?.remove()]);
});

const shop = () => source(`- type: postgres\n  service: db\n  project: skiffbk-s3\n  project-directory: ${pg.dir}\n  database: shop\n  user: postgres\n`);
const checksum = (db: string) => pg.psql(db, "select count(*) || ':' || md5(string_agg(id || '/' || total || note, ',' order by id)) from orders");
const keys = async () => ((await store.client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((o) => o.Key!).sort();

describe('runner destination: S3 (s3rver) with streaming gzip/age', () => {
  it('an encrypted backup restores only with the matching identity', async () => {
    const identity = await generateIdentity();
    const recipient = await identityToRecipient(identity);
    const { manifest } = await backupSource(ssh, store, shop(), options({ encryptRecipients: [recipient] }));
    expect(manifest.file).toMatch(/^postgres-shop-\d{8}T\d{6}Z\.dump\.age$/);
    expect(manifest.encryption).toEqual({ recipients: [recipient] });
    expect(manifest.rawSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await keys()).toEqual([`nightly/postgres-shop/${manifest.id}.dump.age`, `nightly/postgres-shop/${manifest.id}.manifest.json`]);

    const wrong = await generateIdentity();
    await expect(restoreBackup(ssh, store, shop(), manifest, { database: 'shop_wrong', force: false }, { identities: [wrong] })).rejects.toThrow(
      /could not be decrypted/,
    );
    await expect(restoreBackup(ssh, store, shop(), manifest, { database: 'shop_wrong', force: false })).rejects.toThrow(/decrypt-identity/);
    expect(await pg.psql('postgres', "select count(*) from pg_database where datname = 'shop_wrong'")).toBe('0\n');

    await restoreBackup(ssh, store, shop(), manifest, { database: 'shop_copy', force: false }, { identities: [identity] });
    expect(await checksum('shop_copy')).toBe(await checksum('shop'));
    const drill = await drillSource(ssh, store, shop(), { identities: [identity] });
    expect(drill.report).toEqual(['public.orders|3000']);
    expect(await keys()).toContain(`nightly/postgres-shop/${manifest.id}.drill.json`);
  });

  it('a tampered object fails the sha256 check before anything is written', async () => {
    const { manifest } = await backupSource(ssh, store, shop(), options());
    // s3rver keeps object bodies under <dir>/<bucket>/<key>._S3rver_object
    const path = join(s3.directory, s3.bucket, 'nightly/postgres-shop', `${manifest.file}._S3rver_object`);
    const bytes = await readFile(path);
    bytes[bytes.length - 20] = bytes[bytes.length - 20]! ^ 0x01;
    await writeFile(path, bytes);
    await expect(restoreBackup(ssh, store, shop(), manifest, { database: 'shop_tampered', force: false })).rejects.toThrow(/sha256 .* refusing to restore/);
    expect(await pg.psql('postgres', "select count(*) from pg_database where datname = 'shop_tampered'")).toBe('0\n');
  });

  it('a failing dump aborts the upload: no object, no manifest, nothing pruned', async () => {
    const before = await keys();
    const bad = source(
      `- type: postgres\n  name: postgres-shop\n  service: db\n  project: skiffbk-s3\n  project-directory: ${pg.dir}\n  database: missing\n  user: postgres\n`,
    );
    await expect(backupSource(ssh, store, bad, options({ retention: { keepDaily: 1, minKeep: 1 } }))).rejects.toThrow(BackupFailed);
    expect(await keys()).toEqual(before);
  });

  it('retention on S3 prunes by manifest time', async () => {
    await backupSource(ssh, store, shop(), options());
    const all = await store.list('postgres-shop');
    expect(all.length).toBe(3);
    const result = await pruneSource(store, 'postgres-shop', { keepDaily: 1, minKeep: 1 }, { now: new Date(clock), dryRun: false });
    expect(result.pruned).toEqual(all.slice(1).map((m) => m.id));
    expect((await keys()).filter((k) => k.endsWith('.manifest.json'))).toEqual([`nightly/postgres-shop/${all[0]!.id}.manifest.json`]);
  });

  it('redis (host, password from a file) streams an RDB; restore writes the file; the drill reads it', async () => {
    for (let i = 0; i < 200; i++)
      await sh('redis-cli', ['-p', String(redis.port), '--no-auth-warning', '-a', redis.password, 'SET', `key:${i}`, 'v'.repeat(50)]);
    const rs = source(`- type: redis\n  host: 127.0.0.1\n  port: ${redis.port}\n  password: "${redis.password}"\n`);
    const { manifest } = await backupSource(ssh, store, rs, options({ minSize: 100 }));
    expect(manifest.verification).toContain('RDB header REDIS');
    const target = join(work.path, 'restored.rdb');
    await restoreBackup(ssh, store, rs, manifest, { path: target, force: false });
    expect((await readFile(target)).subarray(0, 5).toString()).toBe('REDIS');
    await expect(restoreBackup(ssh, store, rs, manifest, { path: target, force: false })).rejects.toThrow(/not empty/);
    const drill = await drillSource(ssh, store, rs, {});
    expect(drill.report).toEqual(['keys|200']);
  });

  it('sqlite: a .backup snapshot round-trips with identical rows', async () => {
    const db = join(work.path, 'app.sqlite');
    await sh('sqlite3', [
      db,
      'create table notes (id integer primary key, body text); with recursive n(i) as (select 1 union all select i + 1 from n where i < 500) insert into notes select i, hex(randomblob(16)) from n;',
    ]);
    const lite = source(`- type: sqlite\n  path: ${db}\n`);
    const { manifest } = await backupSource(ssh, store, lite, options());
    expect(manifest.verification).toContain('PRAGMA integrity_check on the snapshot (VACUUM INTO)');
    const target = join(work.path, 'restored.sqlite');
    await restoreBackup(ssh, store, lite, manifest, { path: target, force: false });
    const q = "select count(*) || ':' || (select group_concat(body, ',') from (select body from notes order by id)) from notes";
    expect(await sh('sqlite3', [target, q])).toBe(await sh('sqlite3', [db, q]));
    // Compared with before: a run killed earlier may have left scratch copies of its own.
    const scratch = async () => (await readdir('/tmp')).filter((n) => n.startsWith('skiff_drill_'));
    const before = await scratch();
    expect((await drillSource(ssh, store, lite, {})).report).toEqual(['notes|500']);
    expect(await scratch()).toEqual(before);
  });

  it('multipart: a dump of several parts round-trips byte for byte; one failing after some parts leaves no object', async () => {
    const dir = `${work.path}/big`;
    await sh('mkdir', ['-p', dir]);
    // Random data does not compress: 12 MiB makes three 5 MiB parts (the last one short).
    await writeFile(`${dir}/blob.bin`, (await import('node:crypto')).randomBytes(12 * 1024 * 1024));
    const big = source(`- type: files\n  name: big\n  paths: [${dir}]\n  compression: none\n`);
    const { manifest } = await backupSource(ssh, store, big, options());
    expect(manifest.size).toBeGreaterThan(12 * 1024 * 1024);
    const target = `${work.path}/big-restored`;
    await restoreBackup(ssh, store, big, manifest, { path: target, force: false });
    const sum = async (path: string) => (await sh('sha256sum', [path])).split(' ')[0];
    expect(await sum(`${target}${dir}/blob.bin`)).toBe(await sum(`${dir}/blob.bin`));

    // tar writes the big file, then fails on the missing path (exit 2): parts were already sent.
    const before = await keys();
    const failing = source(`- type: files\n  name: big\n  paths: [${dir}, ${work.path}/no-such-path]\n  compression: none\n`);
    await expect(backupSource(ssh, store, failing, options({ maxShrinkPercent: 100 }))).rejects.toThrow(/exit code 2/);
    expect(await keys()).toEqual(before);
  });

  it('files: a tar cut short or corrupted by a dump that still exits 0 is caught by the runner-side header walk: no object, no manifest', async () => {
    const dir = `${work.path}/walked`;
    await sh('mkdir', ['-p', dir]);
    await writeFile(`${dir}/a.bin`, (await import('node:crypto')).randomBytes(300_000));
    await writeFile(`${dir}/b.txt`, 'b\n'.repeat(2000));
    const files = source(`- type: files\n  name: walked\n  paths: [${dir}]\n`);
    const request = (id: string, dump: BackupRequest['dump']): BackupRequest => ({
      source: files,
      id,
      time: new Date(),
      dump,
      minSize: 1024,
      maxShrinkPercent: 100,
      encryptRecipients: [],
      tools: {},
    });
    // The real dump, stored whole: the walk passes it and says so in the manifest.
    const good = await store.backup(ssh, { ...request('walked-20260301T000000Z', [...dumpCommand(files)]) });
    expect(good.verification).toContain('tar headers walked (checksums, sizes, end-of-archive)');
    const before = await keys();
    expect(before).toContain(`nightly/walked/${good.file}`);
    // Without pipefail the wrapper's status is head's: 0, though tar's output was cut at 200000 bytes.
    const cut = ['sh', '-c', 'tar --create --file=- --directory=/ -- "$1" | head -c 200000', 'sh', dir.slice(1)];
    await expect(store.backup(ssh, request('walked-20260302T000000Z', cut))).rejects.toThrow(
      /tar archive is truncated: \d+ bytes of the member at offset \d+ are missing/,
    );
    // Ten bytes gone from the middle of a header: everything after it is misaligned.
    const corrupt = [
      'sh',
      '-c',
      't=$(mktemp); tar --create --file="$t" --directory=/ -- "$1"; head -c 1000 "$t"; tail -c +1011 "$t"; rm -f "$t"',
      'sh',
      dir.slice(1),
    ];
    await expect(store.backup(ssh, request('walked-20260303T000000Z', corrupt))).rejects.toThrow(/tar header checksum mismatch at offset 512/);
    expect(await keys()).toEqual(before);
  });

  it('postgres in a Compose service with globals: both objects streamed (gzip, age) and checked; restore in the same cluster leaves its roles alone; a failed dump takes its globals with it', async () => {
    await pg.psql('postgres', 'create role skiffbk_s3_reader nologin');
    await pg.psql('shop', 'grant select on orders to skiffbk_s3_reader');
    const identity = await generateIdentity();
    const yaml = (database: string) =>
      `- type: postgres\n  name: shop-globals\n  service: db\n  project: skiffbk-s3\n  project-directory: ${pg.dir}\n  database: ${database}\n  user: postgres\n  globals: true\n  compression: gzip\n`;
    const before = await keys();
    await expect(backupSource(ssh, store, source(yaml('missing')), options({ encryptRecipients: [await identityToRecipient(identity)] }))).rejects.toThrow(
      /database "missing" does not exist/,
    );
    expect(await keys()).toEqual(before);

    const { manifest } = await backupSource(ssh, store, source(yaml('shop')), options({ encryptRecipients: [await identityToRecipient(identity)] }));
    expect(manifest.globals).toMatchObject({
      file: `${manifest.id}.globals.sql.gz.age`,
      verification: ['exit status 0', 'pg_dumpall cluster dump header and "complete" trailer', 'sha256 (raw and stored)'],
    });
    const objects = (await store.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'nightly/shop-globals/' }))).Contents ?? [];
    expect(objects.map((o) => [o.Key, o.Size]).sort()).toEqual(
      [
        [`nightly/shop-globals/${manifest.file}`, manifest.size],
        [`nightly/shop-globals/${manifest.globals!.file}`, manifest.globals!.size],
        [`nightly/shop-globals/${manifest.id}.manifest.json`, expect.any(Number)],
      ].sort(),
    );
    await expect(restoreBackup(ssh, store, source(yaml('shop')), manifest, { database: 'shop_globals', force: false })).rejects.toThrow(/decrypt-identity/);

    const result = await restoreBackup(ssh, store, source(yaml('shop')), manifest, { database: 'shop_globals', force: false }, { identities: [identity] });
    expect(result.globals).toBe('applied');
    expect(await checksum('shop_globals')).toBe(await checksum('shop'));
    expect(await pg.psql('shop_globals', "select has_table_privilege('skiffbk_s3_reader', 'orders', 'select')")).toBe('t\n');

    await store.remove(manifest);
    expect((await keys()).filter((k) => k.includes(manifest.id))).toEqual([]);
  });
});
