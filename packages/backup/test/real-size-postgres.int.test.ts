import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raw, type Command } from '@skiff/shell';
import { SshConnection } from '@skiff/ssh';
import {
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  sh,
  sshdConnectOptions,
  startArtifactService,
  startComposePostgres,
  startS3,
  startSshd,
  tempDir,
  type ArtifactService,
  type ComposePostgres,
  type S3Server,
  type SshdServer,
} from '@skiff/testbed';
import { ArtifactStore } from '../src/artifact-store';
import { S3Store } from '../src/s3-store';
import { BackupFailed, HostStore, backupSource, drillSource, dumpCommand, restoreBackup, type BackupRequest, type Store } from '../src';
import { backupOptions, oneSource, setProcessEnv } from './fixtures';

/**
 * PostgreSQL as users have it: 450,000 rows of mixed types (~115 MB with its index, a ~43 MB
 * custom-format dump), far beyond any pipe buffer. A 5,000-row table once hid that every backup
 * over a few hundred kB was thrown away (pg_restore --list stopped reading; SIGPIPE; exit 141).
 */

let sshd: SshdServer;
let ssh: SshConnection;
let pg: ComposePostgres;
let s3: S3Server;
let artifacts: ArtifactService;
let work: { path: string; remove: () => Promise<void> };
let s3Store: S3Store;
let expected: string;
let restoreEnv = () => undefined as void;

let clock = Date.parse('2026-06-01T03:00:00Z');
const options = backupOptions(() => new Date((clock += 3_600_000)));

beforeAll(async () => {
  [sshd, pg, s3, artifacts, work] = await Promise.all([
    startSshd(),
    startComposePostgres('skiffbk-realpg'),
    startS3('skiffbk-realpg'),
    startArtifactService(),
    tempDir('skiffbk-realpg'),
  ]);
  restoreEnv = setProcessEnv({ ...artifacts.env, RUNNER_TEMP: work.path });
  ssh = await SshConnection.connect(sshdConnectOptions(sshd));
  s3Store = new S3Store({
    endpoint: s3.endpoint,
    region: s3.region,
    bucket: s3.bucket,
    prefix: 'nightly',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
  });
  await pg.psql('postgres', 'create database shop');
  await pg.psql('shop', POSTGRES_SEED_SQL);
  expected = await pg.psql('shop', POSTGRES_CHECKSUM_SQL);
});

afterAll(async () => {
  restoreEnv();
  await ssh?.close();
  s3Store?.client.destroy();
  await Promise.all([sshd?.stop(), pg?.stop(), s3?.stop(), artifacts?.stop(), work?.remove()]);
});

const shop = (compression: 'none' | 'gzip') =>
  oneSource(
    `- type: postgres\n  service: db\n  project: skiffbk-realpg\n  project-directory: ${pg.dir}\n  database: shop\n  user: postgres\n  compression: ${compression}\n`,
  );
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const s3Keys = async () => ((await s3Store.client.send(new ListObjectsV2Command({ Bucket: s3.bucket }))).Contents ?? []).map((o) => o.Key!).sort();
const hostDir = () => join(work.path, 'host');

/** What was stored, read back from where it lives, to compare with the manifest's sha256. */
async function storedBytes(store: Store, file: string): Promise<Buffer> {
  if (store.kind === 'host') return readFile(join(hostDir(), 'postgres-shop', file));
  if (store.kind === 's3') {
    const object = await s3Store.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `nightly/postgres-shop/${file}` }));
    return Buffer.from(await object.Body!.transformToByteArray());
  }
  return artifacts.artifacts.find((a) => a.name === `nightly.${file}`)!.data;
}

describe('PostgreSQL at a real size (450,000 rows) in a Compose service', () => {
  it('the data is the size it claims', async () => {
    expect(Number(await pg.psql('shop', "select pg_database_size('shop')"))).toBeGreaterThan(100 * 1024 * 1024);
    expect(
      expected
        .trim()
        .split('\n')
        .map((line) => line.split('|').slice(0, 2).join('|')),
    ).toEqual(['customers|250000', 'events|200000']);
  });

  const cases = [
    { destination: 'host', compression: 'none', encrypted: false },
    // host with gzip: the gzip layer is the one S3 uses here; examples/one-vm-proxy keeps gzip on the host, drilled.
    { destination: 's3', compression: 'gzip', encrypted: true },
    // s3 without compression or age: the same upload path as the row above, less two transforms.
    { destination: 'artifact', compression: 'none', encrypted: true },
  ] as const;
  for (const { destination, compression, encrypted } of cases) {
    it(`${destination}, compression ${compression}${encrypted ? ', age' : ''}: verified, stored sha256 = output, restore into a fresh database gives identical rows, drill passes`, async () => {
      const store: Store = destination === 'host' ? new HostStore(ssh, hostDir()) : destination === 's3' ? s3Store : new ArtifactStore('nightly');
      const identity = await generateIdentity();
      const { manifest } = await backupSource(
        ssh,
        store,
        shop(compression),
        options({ encryptRecipients: encrypted ? [await identityToRecipient(identity)] : [] }),
      );
      expect(manifest.size).toBeGreaterThan(15 * 1024 * 1024);
      expect(manifest.verification.join('; ')).toMatch(/pg_restore read every data block/);
      const stored = await storedBytes(store, manifest.file);
      expect(stored.length).toBe(manifest.size);
      expect(sha256(stored)).toBe(manifest.sha256);

      const copy = `shop_${destination}_${compression}${encrypted ? '_age' : ''}`;
      await restoreBackup(ssh, store, shop(compression), manifest, { database: copy, force: false }, { identities: [identity] });
      expect(await pg.psql(copy, POSTGRES_CHECKSUM_SQL)).toBe(expected);
      await pg.psql('postgres', `drop database ${copy}`);

      const drill = await drillSource(ssh, store, shop(compression), { backupId: manifest.id, identities: [identity] });
      expect(drill.report).toEqual(['public.customers|250000', 'public.events|200000']);
      expect(await pg.psql('postgres', "select count(*) from pg_database where datname like 'skiff_drill_%'")).toBe('0\n');
    });
  }
});

describe('each check still refuses what it should, at this size: no manifest, nothing left behind', () => {
  // Dumps that exit 0 but are not what they should be, in place of pg_dump's own output.
  const tempFile = '/tmp/skiffbk-realpg-corrupt.dump';
  const broken: Record<string, { dump: (dump: Command) => Command; error: RegExp }> = {
    'cut off after 20 MB': { dump: (dump) => [raw('{'), ...dump, raw('|| true; } | head -c 20000000')], error: /pg_restore could not read the whole archive/ },
    'one byte changed in the middle': {
      // The check stops reading at the bad block, so cat dies of SIGPIPE: the trap still removes the file.
      dump: (dump) => [
        raw(`{ trap 'rm -f ${tempFile}' EXIT;`),
        ...dump,
        raw(`> ${tempFile}; printf '\\245' | dd of=${tempFile} bs=1 seek=20000000 conv=notrunc status=none; cat ${tempFile}; }`),
      ],
      error: /pg_restore could not read the whole archive/,
    },
    'zero bytes': { dump: () => ['true'], error: /pg_restore could not read the whole archive/ },
    'plain SQL instead of the custom format': {
      dump: (dump) => [...dump.slice(0, -2), '--format=plain', '--dbname=shop'],
      error: /pg_restore could not read the whole archive/,
    },
  };
  // A run killed earlier may have left it; this run must prove its own dumps remove it.
  beforeAll(() => sh('rm', ['-f', tempFile]));
  const request = (id: string, brokenDump: Command): BackupRequest => ({
    source: shop('gzip'),
    id,
    time: new Date(),
    dump: brokenDump,
    minSize: 0,
    maxShrinkPercent: 100,
    encryptRecipients: [],
    tools: {},
  });

  let n = 0;
  for (const [what, { dump: breakDump, error }] of Object.entries(broken)) {
    it(`${what}: refused by the host and by S3`, async () => {
      const brokenDump = breakDump(dumpCommand(shop('none')));
      const id = `postgres-shop-20270101T0000${String(n++).padStart(2, '0')}Z`;
      const host = new HostStore(ssh, join(work.path, 'refused'));
      await expect(host.backup(ssh, request(id, brokenDump))).rejects.toThrow(BackupFailed);
      await expect(host.backup(ssh, request(id, brokenDump))).rejects.toThrow(error);
      expect(await readdir(join(work.path, 'refused')).catch(() => [])).toEqual([]);
      const before = await s3Keys();
      await expect(s3Store.backup(ssh, request(id, brokenDump))).rejects.toThrow(error);
      expect(await s3Keys()).toEqual(before);
      expect(await sh('sh', ['-c', `ls ${tempFile} 2>/dev/null || true`])).toBe('');
    });
  }
});
