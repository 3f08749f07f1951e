import { execFile } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshConnection } from '@skiff/ssh';
import { sshdConnectOptions, startPostgres, startSshd, tempDir, type Postgres, type SshdServer } from '@skiff/testbed';
import { BackupFailed, HostStore, backupSource, drillSource, parseSources, restoreBackup, type Source } from '../src';
import { backupOptions } from './fixtures';

/**
 * `globals: true` on a host-level PostgreSQL: pg_dumpall --globals-only beside the dump, and a
 * restore into a fresh cluster that lacks the roles the dump's grants name.
 */
let sshd: SshdServer;
let ssh: SshConnection;
let origin: Postgres;
let fresh: Postgres;
let dest: { path: string; remove: () => Promise<void> };
const readerPassword = 'reader-pw-7f3a';

let clock = Date.parse('2026-06-01T03:00:00Z');
const tick = () => new Date((clock += 3_600_000));
const options = backupOptions(tick);

const superPassword = async (pg: Postgres) => (await readFile(join(pg.dir, 'superpw'), 'utf8')).trim();

async function psql(pg: Postgres, database: string, sql: string, as: { user: string; password: string }): Promise<string> {
  const { stdout } = await promisify(execFile)(
    'psql',
    ['-h', '127.0.0.1', '-p', String(pg.port), '-U', as.user, '-d', database, '-X', '-v', 'ON_ERROR_STOP=1', '-tAc', sql],
    { env: { ...process.env, PGPASSWORD: as.password } },
  );
  return stdout.trim();
}
const asSuper = async (pg: Postgres) => ({ user: 'postgres', password: await superPassword(pg) });

/** The same source, pointed at a cluster: host-level tools, the superuser's password in a 0600 file. */
async function sourceFor(pg: Postgres, extra = ''): Promise<Source> {
  const { sources, problems } = parseSources(
    `- type: postgres\n  name: shop\n  host: 127.0.0.1\n  port: ${pg.port}\n  user: postgres\n  password: "${await superPassword(pg)}"\n  database: shop\n  globals: true\n${extra}`,
  );
  expect(problems).toEqual([]);
  return sources[0]!;
}

beforeAll(async () => {
  [sshd, origin, fresh, dest] = await Promise.all([startSshd(), startPostgres(), startPostgres(), tempDir('skiffbk-globals')]);
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  const su = await asSuper(origin);
  await psql(origin, 'postgres', `create role skiffbk_reader login connection limit 7 password '${readerPassword}'`, su);
  await psql(origin, 'postgres', 'create role skiffbk_owner nologin', su);
  await psql(origin, 'postgres', 'create database shop', su);
  await psql(
    origin,
    'shop',
    'create table notes (id int primary key, body text); insert into notes select g, md5(g::text) from generate_series(1, 2000) g; alter table notes owner to skiffbk_owner; grant select on notes to skiffbk_reader',
    su,
  );
});

afterAll(async () => {
  await ssh?.close();
  await Promise.all([sshd?.stop(), origin?.stop(), fresh?.stop(), dest?.remove()]);
});

describe('postgres globals: true (pg_dumpall --globals-only) → host destination', () => {
  it('stores the globals beside the dump with their own size and sha256, verified; a fresh cluster gets the roles back before the database', async () => {
    const store = new HostStore(ssh, dest.path);
    const { manifest } = await backupSource(ssh, store, await sourceFor(origin), options());
    expect(manifest.globals).toEqual({
      file: `${manifest.id}.globals.sql`,
      size: expect.any(Number),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      verification: ['exit status 0 (pipefail)', 'not empty', 'pg_dumpall cluster dump header and "complete" trailer', 'sha256'],
    });
    const dir = join(dest.path, 'shop');
    expect((await readdir(dir)).sort()).toEqual([manifest.file, `${manifest.id}.globals.sql`, `${manifest.id}.manifest.json`].sort());
    const globals = await readFile(join(dir, manifest.globals!.file));
    expect(globals.length).toBe(manifest.globals!.size);
    expect((await import('node:crypto')).createHash('sha256').update(globals).digest('hex')).toBe(manifest.globals!.sha256);
    expect(globals.toString()).toMatch(/^--\n-- PostgreSQL database cluster dump\n/);
    expect(globals.toString()).toContain('CREATE ROLE skiffbk_reader;');

    // The dump grants to roles the fresh cluster does not have: without the globals the restore fails (and changes nothing).
    const target = await sourceFor(fresh);
    await expect(restoreBackup(ssh, store, target, manifest, { database: 'shop_without', force: false }, { globals: false })).rejects.toThrow(
      /role "skiffbk_(owner|reader)" does not exist/,
    );
    expect(await psql(fresh, 'postgres', "select count(*) from pg_roles where rolname like 'skiffbk_%'", await asSuper(fresh))).toBe('0');

    const result = await restoreBackup(ssh, store, target, manifest, { database: 'shop', force: false });
    expect(result.globals).toBe('applied');
    const su = await asSuper(fresh);
    expect(
      await psql(fresh, 'postgres', "select rolname || '|' || rolcanlogin || '|' || rolconnlimit from pg_roles where rolname like 'skiffbk_%' order by 1", su),
    ).toBe('skiffbk_owner|false|-1\nskiffbk_reader|true|7');
    expect(await psql(fresh, 'shop', "select tableowner from pg_tables where tablename = 'notes'", su)).toBe('postgres');
    // The role came with its password hash: it logs in to the fresh cluster and reads what it was granted.
    expect(
      await psql(fresh, 'shop', "select count(*) || ':' || md5(string_agg(body, ',' order by id)) from notes", {
        user: 'skiffbk_reader',
        password: readerPassword,
      }),
    ).toBe(await psql(origin, 'shop', "select count(*) || ':' || md5(string_agg(body, ',' order by id)) from notes", await asSuper(origin)));
    // The roles the fresh cluster already had were left alone: its superuser's password still works.
    expect(await psql(fresh, 'postgres', 'select 1', su)).toBe('1');

    // Restoring again (roles now present): CREATE ROLE / ALTER ROLE for them are left out, nothing fails.
    await psql(fresh, 'postgres', 'alter role skiffbk_reader connection limit 9', su);
    await restoreBackup(ssh, store, target, manifest, { database: 'shop_again', force: false });
    expect(await psql(fresh, 'postgres', "select rolconnlimit from pg_roles where rolname = 'skiffbk_reader'", su)).toBe('9');
    expect(await psql(fresh, 'shop_again', 'select count(*) from notes', su)).toBe('2000');
  });

  it('a drill checks the globals but does not apply them; a tampered globals file stops a restore before anything is written', async () => {
    const store = new HostStore(ssh, dest.path);
    const drill = await drillSource(ssh, store, await sourceFor(origin), {});
    expect(drill.globals).toBe('verified');
    expect(drill.report).toEqual(['public.notes|2000']);

    const manifest = drill.manifest;
    const path = join(dest.path, 'shop', manifest.globals!.file);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.replace('CREATE ROLE skiffbk_reader;', 'CREATE ROLE skiffbk_intruder;'));
    await expect(restoreBackup(ssh, store, await sourceFor(fresh), manifest, { database: 'shop_tampered', force: false })).rejects.toThrow(
      /sha256 of .*globals\.sql does not match its manifest/,
    );
    expect(await psql(fresh, 'postgres', "select count(*) from pg_database where datname = 'shop_tampered'", await asSuper(fresh))).toBe('0');
    expect(await psql(fresh, 'postgres', "select count(*) from pg_roles where rolname = 'skiffbk_intruder'", await asSuper(fresh))).toBe('0');

    // Pruning a backup removes its globals with it.
    const before = await readdir(join(dest.path, 'shop'));
    expect(before).toContain(manifest.globals!.file);
    await store.remove(manifest);
    expect((await readdir(join(dest.path, 'shop'))).filter((name) => name.startsWith(manifest.id))).toEqual([]);
  });

  it('without the privilege to read pg_authid the backup fails before the dump: no manifest, no partial files', async () => {
    const store = new HostStore(ssh, dest.path);
    const { sources } = parseSources(
      `- type: postgres\n  name: unprivileged\n  host: 127.0.0.1\n  port: ${origin.port}\n  user: ${origin.user}\n  password: "${origin.password}"\n  database: ${origin.database}\n  globals: true\n`,
    );
    await expect(backupSource(ssh, store, sources[0]!, options())).rejects.toThrow(BackupFailed);
    await expect(backupSource(ssh, store, sources[0]!, options())).rejects.toThrow(/permission denied/);
    expect(await readdir(join(dest.path, 'unprivileged')).catch(() => [])).toEqual([]);
  });
});
