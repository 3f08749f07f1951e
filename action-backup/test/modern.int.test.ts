import { randomBytes } from 'node:crypto';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  COMPOSE_POSTGRES_IMAGE,
  FILES_SEED_SH,
  MYSQL_CHECKSUM_SQL,
  MYSQL_SEED_SQL,
  POSTGRES_CHECKSUM_SQL,
  POSTGRES_SEED_SQL,
  REDIS_SEED_LUA,
  SQLITE_CHECKSUM_PY,
  SQLITE_SEED_PY,
  ensureBaseImages,
  ensureComposePostgresImage,
  ensureMariadbImage,
  runBundle,
  startModernHost,
  startS3,
  type ModernHost,
  type S3Server,
  sshdActionInputs,
} from '@skiff/testbed';

/**
 * action-backup on the server users have today (Docker 28.5, Compose 2.40, containerd image
 * store), every source type in one Compose project the way users run it: PostgreSQL (~60 MB),
 * MariaDB (~55 MB, root password from `env_file: .env`), Redis (~55 MB), an app container's
 * SQLite file (~55 MB) and a named volume of uploads (~55 MB). The server has Docker and nothing
 * else: no database client, no redis-check-rdb, no sqlite3 — every tool runs in the services.
 * Backed up to the host and to S3 (gzip, age), verified, drilled, restored, compared.
 */

const PROJECT = 'shop';
const DIR = '/opt/shop';
const MB = 1024 * 1024;
let host: ModernHost;
let s3: S3Server;
const mariadbPassword = randomBytes(12).toString('hex');

const compose = (...args: string[]) => host.exec(['docker', 'compose', '-p', PROJECT, '--project-directory', DIR, ...args], { timeoutMs: 300_000 });
const composeIn = (input: string, ...args: string[]) =>
  host.exec(['docker', 'compose', '-p', PROJECT, '--project-directory', DIR, ...args], { input, timeoutMs: 300_000 });
const psql = (database: string, sql: string) => compose('exec', '-T', 'db', 'psql', '-X', '-q', '-tA', '-v', 'ON_ERROR_STOP=1', '-d', database, '-c', sql);
/** SQL through the service's own client, the password taken from the service's environment. */
const mariadb = (sql: string, database = '') =>
  composeIn(sql, 'exec', '-T', 'mysql', 'sh', '-c', 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb -uroot -N -B "$@"', 'sh', ...(database ? [database] : []));
const sqliteChecksum = (path: string) => compose('exec', '-T', 'app', 'python3', '-c', SQLITE_CHECKSUM_PY, path);
const filesChecksum = () => compose('exec', '-T', 'app', 'sh', '-c', 'cd /srv/uploads && find . -type f -exec sha256sum {} + | sort -k2');

const backup = (inputs: Record<string, string>) =>
  runBundle('action-backup', {
    inputs: { ...sshdActionInputs(host), destination: 'host', 'destination-path': '/var/backups/skiff', ...inputs },
    timeoutMs: 400_000,
  });

const place = `  project: ${PROJECT}\n  project-directory: ${DIR}\n`;
const SOURCE = {
  postgres: `- type: postgres\n  name: shopdb\n  service: db\n${place}  database: shop\n  user: postgres`,
  mysql: `- type: mysql\n  name: orders\n  service: mysql\n${place}  database: orders\n  user: root\n  password-env: MARIADB_ROOT_PASSWORD`,
  redis: `- type: redis\n  name: cache\n  service: cache\n${place}`.trimEnd(),
  sqlite: `- type: sqlite\n  name: notes\n  service: app\n${place}  path: /data/app.db`,
  files: `- type: files\n  name: uploads\n  volumes: [${PROJECT}_uploads]\n  helper-image: ${COMPOSE_POSTGRES_IMAGE}`,
};
const ALL = Object.values(SOURCE).join('\n');

/** MariaDB as a Compose service: initialised on first start, root's password from the env file. */
const MARIADB_START = [
  'set -e',
  'mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld',
  'if [ ! -d /var/lib/mysql/mysql ]; then mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null; fi',
  `printf "ALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\\n" "$MARIADB_ROOT_PASSWORD" > /run/mysqld/init.sql`,
  'chown mysql /run/mysqld/init.sql',
  'exec mariadbd --user=mysql --init-file=/run/mysqld/init.sql --innodb-buffer-pool-size=64M --skip-log-bin',
].join('\n');

/** Compose interpolates `$`: a literal one is written `$$`. */
const literal = (text: string) => text.replaceAll('$', '$$$$');

const expected = { postgres: '', mysql: '', redisKeys: 0, sqlite: '', files: '' };

beforeAll(async () => {
  const { debian } = await ensureBaseImages();
  const [mariadbImage] = await Promise.all([ensureMariadbImage(), ensureComposePostgresImage()]);
  [host, s3] = await Promise.all([startModernHost('skiff-modern-backup', { imageStore: 'containerd' }), startS3('skiff-modern-backup')]);
  for (const image of [COMPOSE_POSTGRES_IMAGE, debian, mariadbImage]) await host.loadImage(image);
  const composeFile = {
    services: {
      db: { image: COMPOSE_POSTGRES_IMAGE, healthcheck: { test: ['CMD', 'pg_isready', '-h', '/tmp'], interval: '1s' } },
      mysql: {
        image: mariadbImage,
        env_file: '.env',
        command: ['bash', '-c', literal(MARIADB_START)],
        volumes: ['mysql:/var/lib/mysql'],
        healthcheck: { test: ['CMD-SHELL', literal('MYSQL_PWD="$MARIADB_ROOT_PASSWORD" mariadb-admin -uroot ping')], interval: '1s', retries: 60 },
      },
      cache: {
        image: debian,
        command: ['redis-server', '--save', '', '--appendonly', 'no', '--dir', '/data', '--protected-mode', 'no'],
        volumes: ['cache:/data'],
      },
      app: { image: mariadbImage, command: ['sleep', 'infinity'], init: true, volumes: ['appdata:/data', 'uploads:/srv/uploads'] },
    },
    volumes: { cache: {}, mysql: {}, appdata: {}, uploads: {} },
  };
  await host.exec(
    ['sh', '-c', `mkdir -p ${DIR} && cat > ${DIR}/compose.yaml && printf 'MARIADB_ROOT_PASSWORD=%s\\n' "$1" > ${DIR}/.env`, 'sh', mariadbPassword],
    {
      input: JSON.stringify(composeFile, null, 2),
    },
  );
  await compose('up', '-d', '--wait');

  await psql('postgres', 'create database shop');
  await compose('exec', '-T', 'db', 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', 'shop', '-c', POSTGRES_SEED_SQL);
  expected.postgres = await psql('shop', POSTGRES_CHECKSUM_SQL);
  await mariadb(`create database orders; use orders; ${MYSQL_SEED_SQL};`);
  expected.mysql = await mariadb(MYSQL_CHECKSUM_SQL, 'orders');
  expected.redisKeys = Number((await compose('exec', '-T', 'cache', 'redis-cli', 'eval', REDIS_SEED_LUA, '0')).trim());
  await compose('exec', '-T', 'app', 'python3', '-c', SQLITE_SEED_PY, '/data/app.db');
  expected.sqlite = await sqliteChecksum('/data/app.db');
  await compose('exec', '-T', 'app', 'sh', '-c', FILES_SEED_SH, 'sh', '/srv/uploads');
  expected.files = await filesChecksum();
}, 900_000);

afterAll(async () => {
  await Promise.all([host?.stop(), s3?.stop()]);
});

describe('action-backup on Docker 28.5 / Compose 2.40 (containerd image store), every source in Compose', () => {
  it('runs on the modern engine, and the server has no database tools of its own', async () => {
    expect(Number(host.versions.docker.split('.')[0])).toBeGreaterThanOrEqual(28);
    for (const tool of ['pg_dump', 'mysqldump', 'redis-check-rdb', 'sqlite3', 'python3']) {
      expect(await host.exec(['sh', '-c', `command -v ${tool} || echo missing`])).toBe('missing\n');
    }
  });

  it('holds data of real size in every source', async () => {
    expect(Number(await psql('shop', "select pg_database_size('shop')"))).toBeGreaterThan(50 * MB);
    await mariadb('analyze table customers, events', 'orders');
    expect(Number(await mariadb("select sum(data_length + index_length) from information_schema.tables where table_schema = 'orders'"))).toBeGreaterThan(
      50 * MB,
    );
    expect(
      expected.mysql
        .split('\n')
        .map((line) => line.split('|').slice(0, 2).join('|'))
        .filter(Boolean),
    ).toEqual(['customers|200000', 'events|250000']);
    expect(expected.redisKeys).toBeGreaterThan(60_000);
    expect(Number((await compose('exec', '-T', 'cache', 'redis-cli', 'info', 'memory')).match(/used_memory:(\d+)/)?.[1])).toBeGreaterThan(40 * MB);
    expect(Number(await compose('exec', '-T', 'app', 'stat', '-c', '%s', '/data/app.db'))).toBeGreaterThan(50 * MB);
    expect(Number((await compose('exec', '-T', 'app', 'du', '-sb', '/srv/uploads')).split('\t')[0])).toBeGreaterThan(50 * MB);
  });

  it('backs up all five to the host, each verified on the server with the tools of its service; a drill restores and counts each', async () => {
    const run = await backup({ sources: ALL });
    expect(run.code, run.masked).toBe(0);
    expect(run.outputs.verified).toBe('true');
    expect(run.outputs['backup-id']!.split(',')).toHaveLength(5);
    const stored = (await host.exec(['sh', '-c', 'find /var/backups/skiff -type f ! -name "*.json" -printf "%s %P\\n" | sort -k2'])).trim().split('\n');
    expect(stored).toHaveLength(5);
    for (const line of stored) expect(Number(line.split(' ')[0]), line).toBeGreaterThan(10 * MB);
    const [firstSha] = (await host.exec(['sh', '-c', 'sha256sum "$1"', 'sh', run.outputs.location!.split(',')[0]!])).split(' ');
    expect(firstSha).toBe(run.outputs.sha256);

    const drill = await backup({ sources: ALL, mode: 'drill' });
    expect(drill.code, drill.masked).toBe(0);
    expect(drill.outputs.verified).toBe('true');
    // What the restored copies hold, as the summary table shows it (| escaped).
    expect(drill.summary).toContain('public.customers\\|250000');
    expect(drill.summary).toContain('customers\\|200000');
    expect(drill.summary).toContain('events\\|250000');
    expect(drill.summary).toContain(`keys\\|${expected.redisKeys}`);
    expect(drill.summary).toContain('notes\\|150000');
    expect(drill.summary).toContain('tags\\|200000');
    expect(drill.summary).toMatch(/files\\\|40[0-9]/);
    // The drill's scratch copies are gone: databases dropped, files removed.
    expect(await mariadb("select count(*) from information_schema.schemata where schema_name like 'skiff_drill%'")).toBe('0\n');
    expect(await host.exec(['sh', '-c', 'ls -d /tmp/skiff_drill_* 2>/dev/null | wc -l'])).toBe('0\n');
  });

  it('restores MariaDB and the SQLite file into new targets with identical rows', async () => {
    const mysql = await backup({ sources: SOURCE.mysql, mode: 'restore', 'restore-target': 'orders_restored' });
    expect(mysql.code, mysql.masked).toBe(0);
    expect(await mariadb(MYSQL_CHECKSUM_SQL, 'orders_restored')).toBe(expected.mysql);

    // The app's volume seen from the server: the restored file appears in the app container.
    const volume = (await host.exec(['docker', 'volume', 'inspect', '--format', '{{.Mountpoint}}', `${PROJECT}_appdata`])).trim();
    const sqlite = await backup({ sources: SOURCE.sqlite, mode: 'restore', 'restore-target': `${volume}/restored.db` });
    expect(sqlite.code, sqlite.masked).toBe(0);
    expect(await sqliteChecksum('/data/restored.db')).toBe(expected.sqlite);
  });

  it('restores the uploads back into their named volume, replacing what changed since', async () => {
    await compose(
      'exec',
      '-T',
      'app',
      'sh',
      '-c',
      'rm /srv/uploads/uploads/video.mp4 && echo stray > /srv/uploads/stray.txt && echo changed > /srv/uploads/README.txt',
    );
    expect(await filesChecksum()).not.toBe(expected.files);
    const refused = await backup({ sources: SOURCE.files, mode: 'restore' });
    expect(refused.code).not.toBe(0);
    expect(refused.stdout).toMatch(/not empty; set force: true/);
    const run = await backup({ sources: SOURCE.files, mode: 'restore', force: 'true' });
    expect(run.code, run.masked).toBe(0);
    expect(await filesChecksum()).toBe(expected.files);
  });

  it('backs up all five to S3 through the runner (gzip, age) and drills them from there', async () => {
    const identity = await generateIdentity();
    const s3Inputs = {
      destination: 's3',
      's3-endpoint': s3.endpoint,
      's3-region': s3.region,
      's3-bucket': s3.bucket,
      's3-access-key-id': s3.accessKeyId,
      's3-secret-access-key': s3.secretAccessKey,
      'destination-path': '',
    };
    const gzipped = ALL.replaceAll(/^- type: (\w+)$/gm, (line, type: string) => (type === 'files' ? line : `${line}\n  compression: gzip`));
    const run = await backup({ ...s3Inputs, sources: gzipped, 'encrypt-recipients': await identityToRecipient(identity) });
    expect(run.code, run.masked).toBe(0);
    expect(run.outputs.verified).toBe('true');
    expect(run.outputs.location!.split(',').every((location) => location.startsWith(`s3://${s3.bucket}/`))).toBe(true);
    expect(Number(run.outputs.size)).toBeGreaterThan(10 * MB);

    const drill = await backup({ ...s3Inputs, sources: gzipped, mode: 'drill', 'decrypt-identity': identity });
    expect(drill.code, drill.masked).toBe(0);
    expect(drill.summary).toContain('events\\|200000');
    expect(drill.summary).toContain('events\\|250000');
    expect(drill.summary).toContain(`keys\\|${expected.redisKeys}`);
    expect(drill.summary).toContain('notes\\|150000');
    expect(drill.summary).toMatch(/files\\\|40[0-9]/);
    expect(drill.masked).not.toContain(identity);
  });

  it('restores PostgreSQL into a new database with identical rows', async () => {
    const run = await backup({ sources: SOURCE.postgres, mode: 'restore', 'restore-target': 'shop_restored' });
    expect(run.code, run.masked).toBe(0);
    expect(await psql('shop_restored', POSTGRES_CHECKSUM_SQL)).toBe(expected.postgres);
  });
});
