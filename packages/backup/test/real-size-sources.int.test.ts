import { randomBytes } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quote, raw, type Command } from '@skiff/shell';
import { SshConnection } from '@skiff/ssh';
import {
  FILES_SEED_SH,
  MYSQL_CHECKSUM_SQL,
  MYSQL_SEED_SQL,
  REDIS_SEED_LUA,
  SQLITE_CHECKSUM_PY,
  SQLITE_SEED_PY,
  ensureBaseImages,
  ensureDocker,
  sh,
  sshdConnectOptions,
  startArtifactService,
  startMariadb,
  startS3,
  startSshd,
  tempDir,
  waitFor,
  type ArtifactService,
  type Mariadb,
  type S3Server,
  type SshdServer,
} from '@skiff/testbed';
import { ArtifactStore } from '../src/artifact-store';
import { S3Store } from '../src/s3-store';
import {
  HostStore,
  PREVIOUS_DIR,
  backupSource,
  drillSource,
  dumpCommand,
  secretFileContent,
  filesInPlace,
  findBackup,
  restoreBackup,
  restoreCommand,
  type BackupRequest,
  type Source,
  type Store,
} from '../src';
import { backupOptions, oneSource, setProcessEnv } from './fixtures';

/**
 * Every other source type at a size users have (50-60 MB of mixed, random content each), each
 * backed up to the host, restored into a fresh target with identical content, and drilled.
 */

let sshd: SshdServer;
let ssh: SshConnection;
let db: Mariadb;
let s3: S3Server;
let artifacts: ArtifactService;
let work: { path: string; remove: () => Promise<void> };
let s3Store: S3Store;
let debian: string;
let restoreEnv = () => undefined as void;
const suffix = randomBytes(4).toString('hex');
const redisContainer = `skiffbk-realredis-${suffix}`;
const volume = `skiffbk-realvol-${suffix}`;

let clock = Date.parse('2026-07-01T03:00:00Z');
const options = backupOptions(() => new Date((clock += 3_600_000)));
const MB = 1024 * 1024;
/** What the seeded Redis holds: its key count and DEBUG DIGEST (a hash of the whole dataset). */
const expectedRedis = { keys: 0, digest: '' };

beforeAll(async () => {
  await ensureDocker();
  ({ debian } = await ensureBaseImages());
  [sshd, db, s3, artifacts, work] = await Promise.all([
    startSshd(),
    startMariadb(),
    startS3('skiffbk-realsrc'),
    startArtifactService(),
    tempDir('skiffbk-realsrc'),
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
}, 600_000);

afterAll(async () => {
  restoreEnv();
  await ssh?.close();
  s3Store?.client.destroy();
  await sh('docker', ['rm', '-f', redisContainer]).catch(() => undefined);
  // A refused dump's helper container may still be ending (its reader stopped early), holding the volume: it goes first.
  const users = (await sh('docker', ['ps', '-aq', '--filter', `volume=${volume}`]).catch(() => '')).split('\n').filter(Boolean);
  if (users.length > 0) await sh('docker', ['rm', '-f', '-v', ...users]).catch(() => undefined);
  await sh('docker', ['volume', 'rm', '-f', volume]).catch(() => undefined);
  await Promise.all([sshd?.stop(), db?.stop(), s3?.stop(), artifacts?.stop(), work?.remove()]);
});

type StoreKind = 'host' | 's3' | 'artifact';
/**
 * The host keeps it on the server. Runner destinations at this size run elsewhere, once per
 * source: every source to S3 with gzip and age, verified on the runner and drilled back through
 * it, on the modern server (action-backup/test/modern.int.test.ts); PostgreSQL to S3 and to
 * artifact with restores into fresh databases (real-size-postgres); the examples' own backups
 * (test/examples/). The runner's stream code is one for every source, so it is not repeated here.
 */
const DESTINATIONS = ['host'] as const;
const storeFor = (destination: StoreKind): Store =>
  destination === 'host' ? new HostStore(ssh, join(work.path, 'host')) : destination === 's3' ? s3Store : new ArtifactStore('nightly');
const titled = (destination: string) => `${destination}${destination === 'host' ? '' : ' (age)'}`;

/** Backup → stored bytes' sha256 = manifest → restore into a fresh target → `same()` → drill. */
async function roundTrip(
  store: Store,
  source: Source,
  encrypted: boolean,
  restoreTo: (destination: string) => { database?: string; path?: string },
  same: (target: { database?: string; path?: string }) => Promise<void>,
) {
  const identity = await generateIdentity();
  const { manifest } = await backupSource(ssh, store, source, options({ encryptRecipients: encrypted ? [await identityToRecipient(identity)] : [] }));
  expect(manifest.size).toBeGreaterThan(10 * MB);
  if (store.kind === 'host') expect((await sh('sha256sum', [manifest.location])).split(' ')[0]).toBe(manifest.sha256);
  if (store.kind === 'artifact') expect(artifacts.artifacts.find((a) => a.name === `nightly.${manifest.file}`)!.digest).toBe(`sha256:${manifest.sha256}`);
  if (store.kind === 's3') {
    const listed =
      (await s3Store.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `nightly/${source.name}/${manifest.file}` }))).Contents ?? [];
    expect(listed.map((o) => o.Size)).toEqual([manifest.size]);
  }
  const target = { ...restoreTo(store.kind), force: false };
  await restoreBackup(ssh, store, source, manifest, target, { identities: [identity] });
  await same(target);
  const drill = await drillSource(ssh, store, source, { backupId: manifest.id, identities: [identity] });
  expect(drill.report?.length).toBeGreaterThan(0);
  return drill.report!;
}

describe('MySQL (MariaDB) at a real size', () => {
  let expected: string;
  const shop = () =>
    oneSource(`- type: mysql\n  name: shop\n  host: 127.0.0.1\n  port: ${db.port}\n  user: root\n  database: ${db.database}\n  password: "${db.password}"\n`);

  beforeAll(async () => {
    await db.sql(MYSQL_SEED_SQL, db.database);
    expected = await db.sql(MYSQL_CHECKSUM_SQL, db.database);
  }, 300_000);

  it('holds 450,000 rows in more than 50 MB', async () => {
    await db.sql('analyze table customers, events', db.database);
    expect(Number(await db.sql(`select sum(data_length + index_length) from information_schema.tables where table_schema = '${db.database}'`))).toBeGreaterThan(
      50 * MB,
    );
    expect(
      expected
        .trim()
        .split('\n')
        .map((line) => line.split('|').slice(0, 2).join('|')),
    ).toEqual(['customers|200000', 'events|250000']);
  });

  for (const destination of DESTINATIONS) {
    it(`${titled(destination)}: gzip, trailer checked, restores identical rows, drill counts them`, async () => {
      const report = await roundTrip(
        storeFor(destination),
        shop(),
        destination !== 'host',
        () => ({ database: `shop_${destination}` }),
        async (target) => {
          expect(await db.sql(MYSQL_CHECKSUM_SQL, target.database)).toBe(expected);
        },
      );
      expect(report).toEqual(['customers|200000', 'events|250000']);
    });
  }
});

describe('Redis at a real size, in a container', () => {
  const cli = (container: string, ...args: string[]) =>
    sh('docker', ['exec', container, 'sh', '-c', 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli --no-auth-warning "$@"', 'sh', ...args], {
      timeoutMs: 300_000,
    });
  const cache = () => oneSource(`- type: redis\n  name: cache\n  container: ${redisContainer}\n  password-env: REDIS_PASSWORD\n`);

  beforeAll(async () => {
    await sh('docker', [
      'run',
      '-d',
      '--name',
      redisContainer,
      '--network=none',
      '-e',
      `REDIS_PASSWORD=${randomBytes(12).toString('hex')}`,
      '--entrypoint',
      'sh',
      debian,
      '-c',
      'exec redis-server --requirepass "$REDIS_PASSWORD" --save "" --enable-debug-command yes',
    ]);
    await waitFor('redis', async () => (await cli(redisContainer, 'ping')).trim() === 'PONG', 30_000, 200);
    expectedRedis.keys = Number((await cli(redisContainer, 'eval', REDIS_SEED_LUA, '0')).trim());
    expectedRedis.digest = (await cli(redisContainer, 'debug', 'digest')).trim();
  }, 300_000);

  /** DEBUG DIGEST of what a fresh redis-server loads from the restored RDB: the same dataset, key for key. */
  async function loadedDigest(path: string): Promise<{ keys: number; digest: string }> {
    const name = `skiffbk-realredis-load-${randomBytes(3).toString('hex')}`;
    const dir = path.replace(/\/[^/]*$/, '');
    const file = path.replace(/^.*\//, '');
    await sh('docker', [
      'run',
      '-d',
      '--name',
      name,
      '--network=none',
      '-e',
      'REDIS_PASSWORD=x',
      '-v',
      `${dir}:/data`,
      '--entrypoint',
      'redis-server',
      debian,
      '--dir',
      '/data',
      '--dbfilename',
      file,
      '--save',
      '',
      '--enable-debug-command',
      'yes',
      '--requirepass',
      'x',
    ]);
    try {
      await waitFor('the restored RDB to load', async () => (await cli(name, 'ping').catch(() => '')).trim() === 'PONG', 60_000, 200);
      return { keys: Number((await cli(name, 'dbsize')).trim()), digest: (await cli(name, 'debug', 'digest')).trim() };
    } finally {
      await sh('docker', ['rm', '-f', name]);
    }
  }

  it('holds more than 50 MB in 80,000 keys of every type', async () => {
    expect(expectedRedis.keys).toBeGreaterThan(80_000);
    expect(Number((await cli(redisContainer, 'info', 'memory')).match(/used_memory:(\d+)/)![1])).toBeGreaterThan(50 * MB);
  });

  for (const destination of DESTINATIONS) {
    it(`${titled(destination)}: redis-check-rdb read it all, the restored RDB loads the same dataset`, async () => {
      const report = await roundTrip(
        storeFor(destination),
        cache(),
        destination !== 'host',
        () => ({ path: join(work.path, `redis-${destination}`, 'dump.rdb') }),
        async (target) => {
          expect(await loadedDigest(target.path!)).toEqual(expectedRedis);
        },
      );
      expect(report).toEqual([`keys|${expectedRedis.keys}`]);
    });
  }
});

describe('Redis with appendonly yes: a restore takes effect', () => {
  const aofContainer = `skiffbk-realredis-aof-${suffix}`;
  const cli = (...args: string[]) => sh('docker', ['exec', aofContainer, 'redis-cli', '--no-auth-warning', '-a', 'x', ...args], { timeoutMs: 120_000 });
  const cache = () => oneSource(`- type: redis\n  name: cache\n  container: ${redisContainer}\n  password-env: REDIS_PASSWORD\n`);
  const dataDir = () => join(work.path, 'redis-aof-data');

  afterAll(() => sh('docker', ['rm', '-f', aofContainer]).catch(() => ''));

  it('into the data directory of a Redis running as its own user with an append-only file: after its restart it serves the backup, key for key', async () => {
    // A live Redis 7 with appendonly (multi-part AOF in appendonlydir/), running as uid 999 on its own data directory.
    await sh('sh', ['-c', `mkdir -p ${dataDir()} && chown 999:999 ${dataDir()}`]);
    await sh('docker', [
      'run',
      '-d',
      '--name',
      aofContainer,
      '--network=none',
      '--user',
      '999:999',
      '-v',
      `${dataDir()}:/data`,
      '--entrypoint',
      'redis-server',
      debian,
      '--dir',
      '/data',
      '--appendonly',
      'yes',
      '--save',
      '',
      '--enable-debug-command',
      'yes',
      '--requirepass',
      'x',
    ]);
    await waitFor('redis with AOF', async () => (await cli('ping').catch(() => '')).trim() === 'PONG', 30_000, 200);
    await cli('set', 'only-in-the-live-data', 'yes');
    await waitFor(
      'the AOF to hold it',
      async () => (await sh('sh', ['-c', `cat ${dataDir()}/appendonlydir/*.incr.aof 2>/dev/null || true`])).includes('only-in-the-live-data'),
      10_000,
      200,
    );

    const store = new HostStore(ssh, join(work.path, 'host'));
    const manifest = await findBackup(store, cache(), 'latest');
    // An RDB written beside the AOF would be ignored at start: refused, with the way out.
    await expect(restoreBackup(ssh, store, cache(), manifest, { path: join(dataDir(), 'dump.rdb'), force: true })).rejects.toThrow(
      /holds an append-only file .* give the data directory .* as restore-target/,
    );
    await sh('docker', ['stop', '-t', '10', aofContainer]);
    await expect(restoreBackup(ssh, store, cache(), manifest, { path: dataDir(), force: false })).rejects.toThrow(
      /refusing to restore: .* is not empty; set force: true/,
    );
    await restoreBackup(ssh, store, cache(), manifest, { path: dataDir(), force: true });

    await sh('docker', ['start', aofContainer]);
    await waitFor('redis to load the restored AOF', async () => (await cli('ping').catch(() => '')).trim() === 'PONG', 60_000, 200).catch(async (error) => {
      throw new Error(`${(error as Error).message}\n${await sh('sh', ['-c', `docker logs --tail 20 ${aofContainer} 2>&1; ls -laR ${dataDir()}`])}`);
    });
    const loaded = await waitForLoaded();
    expect(loaded).toEqual({ keys: expectedRedis.keys, digest: expectedRedis.digest });
    expect((await cli('exists', 'only-in-the-live-data')).trim()).toBe('0');
    // Redis writes its own files there again: its AOF directory is its own.
    await cli('set', 'after-restore', 'yes');
    await waitFor(
      'a write after the restore to reach the AOF',
      async () => (await sh('sh', ['-c', `cat ${dataDir()}/appendonlydir/*.incr.aof 2>/dev/null || true`])).includes('after-restore'),
      10_000,
      200,
    );
    expect(await sh('sh', ['-c', `ls -A ${dataDir()}; stat -c %u ${dataDir()}/appendonlydir ${dataDir()}/dump.rdb`])).toMatch(
      /^appendonlydir\ndump\.rdb\n999\n999\n$/,
    );
  });

  async function waitForLoaded(): Promise<{ keys: number; digest: string }> {
    let keys = 0;
    await waitFor('the dataset to load', async () => !(await cli('info', 'persistence')).includes('loading:1'), 60_000, 200);
    keys = Number((await cli('dbsize')).trim());
    return { keys, digest: (await cli('debug', 'digest')).trim() };
  }
});

describe('SQLite at a real size', () => {
  const path = () => join(work.path, 'app', 'app.sqlite');
  const lite = () => oneSource(`- type: sqlite\n  name: app-db\n  path: ${path()}\n`);
  const checksum = (file: string) => sh('python3', ['-c', SQLITE_CHECKSUM_PY, file], { timeoutMs: 120_000 });
  let expected: string;

  beforeAll(async () => {
    await sh('mkdir', ['-p', join(work.path, 'app')]);
    await sh('python3', ['-c', SQLITE_SEED_PY, path()], { timeoutMs: 300_000 });
    expected = await checksum(path());
  }, 300_000);

  it('is more than 50 MB in 350,000 rows', async () => {
    expect(Number((await sh('stat', ['-c', '%s', path()])).trim())).toBeGreaterThan(50 * MB);
    expect(
      expected
        .trim()
        .split('\n')
        .map((line) => line.split('|').slice(0, 2).join('|')),
    ).toEqual(['notes|150000', 'tags|200000']);
  });

  for (const destination of DESTINATIONS) {
    it(`${titled(destination)}: a consistent snapshot restores with identical rows`, async () => {
      const report = await roundTrip(
        storeFor(destination),
        lite(),
        destination !== 'host',
        () => ({ path: join(work.path, `sqlite-${destination}`, 'app.sqlite') }),
        async (target) => {
          expect(await checksum(target.path!)).toBe(expected);
        },
      );
      expect(report).toEqual(['notes|150000', 'tags|200000']);
    });
  }

  it('a snapshot cut short (the tool exits 0) is refused by the host and by S3: the header says how long it must be', async () => {
    // A stream cut off after 20 MB, in place of the snapshot's own output.
    const cut: Command = [raw('{'), ...dumpCommand(lite()), raw('|| true; } | head -c 20000000')];
    const request: BackupRequest = {
      source: lite(),
      id: 'app-db-20270101T000000Z',
      time: new Date(),
      dump: cut,
      minSize: 0,
      maxShrinkPercent: 100,
      encryptRecipients: [],
      tools: {},
    };
    const host = new HostStore(ssh, join(work.path, 'sqlite-refused'));
    await expect(host.backup(ssh, request)).rejects.toThrow(/the SQLite backup is 20000000 bytes, but its header says \d+ pages of \d+ bytes/);
    expect(await readdir(join(work.path, 'sqlite-refused')).catch(() => [])).toEqual([]);
    await expect(s3Store.backup(ssh, request)).rejects.toThrow(/the SQLite backup is 20000000 bytes/);
    const listed =
      (await s3Store.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'nightly/app-db/app-db-20270101T000000Z' }))).Contents ?? [];
    expect(listed).toEqual([]);
  });
});

describe('files at a real size: host paths and a named volume', () => {
  const uploads = () => join(work.path, 'srv', 'uploads');
  const site = () => oneSource(`- type: files\n  name: site\n  paths: [${uploads()}]\n  volumes: [${volume}]\n  helper-image: ${debian}\n`);
  /** `path  sha256` of every file, with its owner, sorted. */
  const tree = async (dir: string) =>
    (
      await sh('sh', ['-c', 'cd "$1" && find . -type f -printf "%p %U:%G " -exec sha256sum {} \\; | awk \'{print $1, $2, $3}\'', 'sh', dir], {
        timeoutMs: 120_000,
      })
    )
      .split('\n')
      .filter(Boolean)
      .sort();
  let volumeTree: string[];
  const volumeFiles = async () =>
    (
      await sh(
        'docker',
        [
          'run',
          '--rm',
          '--network=none',
          '-v',
          `${volume}:/v:ro`,
          debian,
          'sh',
          '-c',
          'cd /v && find . -type f -printf "%p %U:%G " -exec sha256sum {} \\; | awk \'{print $1, $2, $3}\'',
        ],
        { timeoutMs: 120_000 },
      )
    )
      .split('\n')
      .filter(Boolean)
      .sort();

  beforeAll(async () => {
    await writeFile(join(work.path, 'seed-files.sh'), FILES_SEED_SH);
    await sh('sh', [join(work.path, 'seed-files.sh'), uploads()], { timeoutMs: 120_000 });
    await sh('docker', ['volume', 'create', '--label', 'skiffbk=test', volume]);
    await sh('docker', [
      'run',
      '--rm',
      '--network=none',
      '-v',
      `${volume}:/v`,
      '-v',
      `${join(work.path, 'seed-files.sh')}:/seed.sh:ro`,
      debian,
      'sh',
      '-c',
      'sh /seed.sh /v/media && chown -R 999:999 /v/media',
    ]);
    volumeTree = await volumeFiles();
  }, 300_000);

  it('moves more than 100 MB in 800 files', async () => {
    expect(Number((await sh('du', ['-sb', uploads()])).split('\t')[0])).toBeGreaterThan(50 * MB);
    expect(volumeTree.length).toBeGreaterThan(400);
  });

  for (const destination of DESTINATIONS) {
    it(`${titled(destination)}: tar read whole, restored trees identical (owners kept)`, async () => {
      const report = await roundTrip(
        storeFor(destination),
        site(),
        destination !== 'host',
        () => ({ path: join(work.path, `files-${destination}`) }),
        async (target) => {
          expect(await tree(join(target.path!, 'host', uploads()))).toEqual(await tree(uploads()));
          expect(await tree(join(target.path!, 'volumes', volume))).toEqual(volumeTree);
        },
      );
      expect(report[0]).toBe(`files|${(await tree(uploads())).length + volumeTree.length}`);
    });
  }

  it('restores in place, back into the named volume and the host path: refused while they hold data unless forced; then identical, nothing kept aside', async () => {
    const store = new HostStore(ssh, join(work.path, 'host'));
    const manifest = await findBackup(store, site(), 'latest');
    const uploadsTree = await tree(uploads());
    // Life goes on after the backup: a file deleted, one added, in both places.
    await sh('sh', ['-c', `rm -f ${uploads()}/video.mp4 && echo new > ${uploads()}/added.txt`]);
    await sh('docker', ['run', '--rm', '--network=none', '-v', `${volume}:/v`, debian, 'sh', '-c', 'rm -rf /v/media/uploads/2024 && echo new > /v/added.txt']);
    const changedVolume = await volumeFiles();
    const changedUploads = await tree(uploads());

    await expect(restoreBackup(ssh, store, site(), manifest, { inPlace: true, force: false })).rejects.toThrow(
      /refusing to restore: \/backup\/host\/.* is not empty; set force: true/,
    );
    expect(await volumeFiles()).toEqual(changedVolume);
    expect(await tree(uploads())).toEqual(changedUploads);

    await restoreBackup(ssh, store, site(), manifest, { inPlace: true, force: true });
    expect(await volumeFiles()).toEqual(volumeTree);
    expect(await tree(uploads())).toEqual(uploadsTree);
    expect(await sh('sh', ['-c', `ls -A ${uploads()}`])).not.toContain(PREVIOUS_DIR);
  });

  it('an in-place restore whose feed breaks off puts the previous contents back: nothing lost, even when tar itself saw no error', async () => {
    await sh('docker', ['run', '--rm', '--network=none', '-v', `${volume}:/v`, debian, 'sh', '-c', 'echo today > /v/today.txt']);
    const before = await volumeFiles();
    const beforeUploads = await tree(uploads());
    const store = new HostStore(ssh, join(work.path, 'host'));
    const manifest = await findBackup(store, site(), 'latest');
    // The stored archive cut in the middle and fed to the extract step, as restoreBackup runs it.
    // tar may stop on a member boundary and exit 0, so the previous contents are still aside:
    // only the runner knows the feed failed, and it runs the undo step.
    const cut = [
      raw(`head -c ${Math.floor(manifest.size / 2)} -- ${quote(manifest.location)} | gzip -dc 2>/dev/null |`),
      ...restoreCommand(site(), { inPlace: true, force: true }),
    ];
    await expect(ssh.run([cut], { description: 'in-place restore of a broken feed' })).rejects.toThrow(
      /in-place restore of a broken feed failed with exit code/,
    );
    await ssh.run([filesInPlace(site(), true, 'undo')], { description: 'put the previous contents back' });
    expect(await volumeFiles()).toEqual(before);
    expect(await tree(uploads())).toEqual(beforeUploads);
    expect(await volumeFiles()).not.toContain(expect.stringContaining(PREVIOUS_DIR));
    expect(await sh('sh', ['-c', `ls -A ${uploads()}`])).not.toContain(PREVIOUS_DIR);
  });
});

describe('each check still refuses what it should, at this size: no manifest, nothing left behind', () => {
  // Dumps that exit 0 but are not what they should be, in place of the real dump's own output.
  const cut = (dump: Command): Command => [raw('{'), ...dump, raw('|| true; } | head -c 20000000')];
  const zero: Command = ['true'];
  const text: Command = [raw("head -c 3000000 /dev/zero | tr '\\000' x")];
  const tempFile = '/tmp/skiffbk-realsrc-corrupt.bin';
  /** The real dump with one byte changed 20 MB in (the trap removes the copy whatever happens). */
  const corrupt = (dump: Command): Command => [
    raw(`{ trap 'rm -f ${tempFile}' EXIT;`),
    ...dump,
    raw(`> ${tempFile}; printf '\\245' | dd of=${tempFile} bs=1 seek=20000000 conv=notrunc status=none; cat ${tempFile}; }`),
  ];
  let n = 0;
  async function refused(source: Source, dump: Command, error: RegExp, secretFile?: string): Promise<void> {
    const dir = join(work.path, `refused-${n}`);
    const request: BackupRequest = {
      source,
      id: `${source.name}-20270101T0000${String(n++).padStart(2, '0')}Z`,
      time: new Date(),
      dump,
      minSize: 0,
      maxShrinkPercent: 100,
      encryptRecipients: [],
      tools: {},
      ...(secretFile ? { secretFile } : {}),
    };
    await expect(new HostStore(ssh, dir).backup(ssh, request)).rejects.toThrow(error);
    expect(await readdir(dir).catch(() => [])).toEqual([]);
    expect(await sh('sh', ['-c', `ls ${tempFile} 2>/dev/null || true`])).toBe('');
  }

  it('MySQL: cut off after 20 MB, zero bytes and plain text lack the "-- Dump completed" trailer', async () => {
    const source = oneSource(
      `- type: mysql\n  name: shop\n  host: 127.0.0.1\n  port: ${db.port}\n  user: root\n  database: ${db.database}\n  password: "${db.password}"\n`,
    );
    // The defaults file a real backup uploads for its run, written here (the SSH server is this machine).
    const secret = join(work.path, 'refused-mysql.cnf');
    await writeFile(secret, secretFileContent(source)!, { mode: 0o600 });
    for (const dump of [cut(dumpCommand(source, secret)), zero, text]) await refused(source, dump, /lacks the mysqldump "-- Dump completed" trailer/, secret);
  });

  it('Redis: cut off, one byte changed in the middle, zero bytes and plain text fail redis-check-rdb', async () => {
    const source = oneSource(`- type: redis\n  name: cache\n  container: ${redisContainer}\n  password-env: REDIS_PASSWORD\n`);
    for (const dump of [cut(dumpCommand(source)), corrupt(dumpCommand(source)), zero, text])
      await refused(source, dump, /redis-check-rdb found the RDB dump broken/);
  });

  it('files: cut off inside a member, zero bytes and plain text fail tar --list', async () => {
    const source = oneSource(
      `- type: files\n  name: site\n  paths: [${join(work.path, 'srv', 'uploads')}]\n  volumes: [${volume}]\n  helper-image: ${debian}\n`,
    );
    for (const dump of [cut(dumpCommand(source)), zero, text]) await refused(source, dump, /tar could not read the whole archive/);
  });
});
