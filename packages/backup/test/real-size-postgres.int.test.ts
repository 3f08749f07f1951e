import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SshConnection } from '@skiff/ssh';
import { POSTGRES_CHECKSUM_SQL, POSTGRES_SEED_SQL, sh, sshdConnectOptions, startComposePostgres, startSshd, tempDir, type ComposePostgres, type SshdServer } from '@skiff/testbed';
import { HostStore, backupSource, drillSource, restoreBackup } from '../src/index';
import { backupOptions, oneSource } from './fixtures';

let sshd: SshdServer;
let ssh: SshConnection;
let pg: ComposePostgres;
let dest: { path: string; remove: () => Promise<void> };
let expected: string;

let clock = Date.parse('2026-06-01T03:00:00Z');
const options = backupOptions(() => new Date((clock += 3_600_000)));

beforeAll(async () => {
  [sshd, pg, dest] = await Promise.all([startSshd(), startComposePostgres('skiffbk-realpg'), tempDir('skiffbk-realpg-dest')]);
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  await pg.psql('postgres', 'create database shop');
  await pg.psql('shop', POSTGRES_SEED_SQL);
  expected = await pg.psql('shop', POSTGRES_CHECKSUM_SQL);
});

afterAll(async () => {
  await ssh?.close();
  await Promise.all([sshd?.stop(), pg?.stop(), dest?.remove()]);
});

const shop = (extra = '') => oneSource(`- type: postgres\n  service: db\n  project: skiffbk-realpg\n  project-directory: ${pg.dir}\n  database: shop\n  user: postgres\n${extra}`);

describe('PostgreSQL at a real size (450,000 rows, ~60 MB) in a Compose service', () => {
  it('the data is the size it claims', async () => {
    const bytes = Number(await pg.psql('shop', "select pg_database_size('shop')"));
    expect(bytes).toBeGreaterThan(50 * 1024 * 1024);
    expect(expected.trim().split('\n').map((line) => line.split('|').slice(0, 2).join('|'))).toEqual(['customers|250000', 'events|200000']);
  });

  for (const compression of ['none', 'gzip'] as const) {
    it(`host destination, compression ${compression}: verified, sha256 = the stored file, restore gives identical rows, drill passes`, async () => {
      const store = new HostStore(ssh, dest.path);
      const { manifest } = await backupSource(ssh, store, shop(`  compression: ${compression}\n`), options());
      const path = join(dest.path, 'postgres-shop', manifest.file);
      expect(manifest.size).toBeGreaterThan(10 * 1024 * 1024);
      expect((await sh('sha256sum', [path])).split(' ')[0]).toBe(manifest.sha256);
      expect((await readFile(path)).length).toBe(manifest.size);
      const copy = `shop_${compression}`;
      await restoreBackup(ssh, store, shop(`  compression: ${compression}\n`), manifest, { database: copy, force: false });
      expect(await pg.psql(copy, POSTGRES_CHECKSUM_SQL)).toBe(expected);
      const drill = await drillSource(ssh, store, shop(`  compression: ${compression}\n`), {});
      expect(drill.report).toEqual(['public.customers|250000', 'public.events|200000']);
    });
  }
});
