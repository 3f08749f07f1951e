import { spawn } from 'node:child_process';
import { access, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, runnerEnv, sh, spawnDaemon, startPostgres, stopPid, tempDir, waitFor, type Postgres, type SshdServer, startSshd } from '@skiff/testbed';
import type { BenchCase, Benchmark } from './harness';
import { sshArgs, timedOk } from './lib';

/**
 * A PostgreSQL database of BENCH_BACKUP_MB (default 1024) MiB of table data, backed up by the
 * built action bundle to S3 (s3rver on loopback) with age encryption, against the floor
 * `ssh host pg_dump -Fc > file`. Peak RSS of the action process is measured by GNU time.
 */
const TARGET_MB = Number(process.env.BENCH_BACKUP_MB ?? 1024);
// A fixed, valid age recipient: the bench never decrypts, so nobody needs its identity.
const RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';
const BUCKET = 'skiffbk-bench';
/** A directory holding backup.sh and env.sh of prodrigestivill/docker-postgres-backup-local, from a checkout outside this repository. */
const PG_BACKUP_LOCAL = 'SKIFF_BENCH_POSTGRES_BACKUP_LOCAL';

/**
 * Informational: the same host backup against what many users run instead, the backup.sh of
 * prodrigestivill/postgres-backup-local (pg_dump -Z1 plain SQL, hard links into daily/weekly/
 * monthly, find-based cleanup; no verification), run over the same SSH with its documented
 * environment. None of its code is in this repository.
 */
function pgBackupLocal(workDir: string, ssh: readonly string[], db: Postgres, pgpass: string, oursHost: () => Promise<number>): BenchCase {
  const name = 'backup postgres → host vs postgres-backup-local';
  const dir = process.env[PG_BACKUP_LOCAL];
  if (!dir)
    return {
      name,
      what: '',
      ours: async () => 0,
      notRun: `${PG_BACKUP_LOCAL} is not set (a directory with backup.sh and env.sh of prodrigestivill/docker-postgres-backup-local, outside this repository)`,
    };
  const target = join(workDir, 'pbl-backups');
  const env = [
    `POSTGRES_DB=${db.database}`,
    'POSTGRES_DB_FILE=**None**',
    'POSTGRES_HOST=127.0.0.1',
    `POSTGRES_PORT=${db.port}`,
    `POSTGRES_USER=${db.user}`,
    'POSTGRES_USER_FILE=**None**',
    'POSTGRES_PASSWORD=**None**',
    'POSTGRES_PASSWORD_FILE=**None**',
    `POSTGRES_PASSFILE_STORE=${pgpass}`,
    'POSTGRES_EXTRA_OPTS=-Z1',
    'POSTGRES_CLUSTER=FALSE',
    `BACKUP_DIR=${target}`,
    'BACKUP_SUFFIX=.sql.gz',
    'BACKUP_LATEST_TYPE=symlink',
    'BACKUP_KEEP_DAYS=7',
    'BACKUP_KEEP_WEEKS=4',
    'BACKUP_KEEP_MONTHS=6',
    'BACKUP_KEEP_MINS=1440',
  ].join(' ');
  return {
    name,
    what: 'the host backup above (verified, hashed, manifest) against postgres-backup-local',
    ours: oursHost,
    floor: {
      label: 'postgres-backup-local',
      what: `ssh host 'mkdir -p dir && env … bash ${dir}/backup.sh' (its defaults: pg_dump -Z1 plain SQL into last/, hard links into daily/weekly/monthly, cleanup)`,
      measure: async () => {
        await rm(target, { recursive: true, force: true });
        return timedOk('ssh', [...ssh, `mkdir -p ${target} && env ${env} bash ${dir}/backup.sh >/dev/null`]);
      },
    },
  };
}

async function generate(pg: Postgres): Promise<number> {
  const psql = (sql: string) =>
    sh('psql', ['-h', pg.dir, '-p', String(pg.port), '-U', 'postgres', '-d', pg.database, '-X', '-v', 'ON_ERROR_STOP=1', '-qtAc', sql], {
      timeoutMs: 3_600_000,
    });
  // ~260 bytes per row of half-random text (compresses about 2:1, like real application data).
  const rows = Math.ceil((TARGET_MB * 1024 * 1024) / 260);
  const batch = 500_000;
  await psql(`create table events (id bigint, at timestamptz, kind text, payload text); alter table events owner to ${pg.user}`);
  for (let from = 1; from <= rows; from += batch) {
    const to = Math.min(rows, from + batch - 1);
    await psql(
      `insert into events select g, now() - g * interval '1 second', 'kind-' || (g % 17), md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) || repeat('x', 60) || md5(random()::text) from generate_series(${from}, ${to}) g`,
    );
  }
  await psql('analyze events');
  return Number((await psql("select pg_total_relation_size('events')")).trim());
}

export const backupToS3: Benchmark = {
  name: 'backup',
  description: `action-backup: a ~${TARGET_MB} MiB PostgreSQL database to S3 through the runner with age encryption, and kept on the host`,
  async setup({ root, node24 }) {
    const bundle = join(root, 'action-backup/dist/index.js');
    await access(bundle).catch(() => {
      throw new Error('action-backup/dist/index.js is missing; run node scripts/build.mjs');
    });
    const work = await tempDir('skiffbk-bench');
    let server: SshdServer | undefined;
    let pg: Postgres | undefined;
    let s3Pid: number | undefined;
    const teardown = async () => {
      if (s3Pid) await stopPid(s3Pid);
      await server?.stop();
      await pg?.stop();
      await work.remove();
    };
    try {
      [server, pg] = await Promise.all([startSshd(), startPostgres()]);
      const s3Port = await freePort();
      s3Pid = spawnDaemon('s3rver', join(root, 'node_modules/.bin/s3rver'), [
        '-d',
        join(work.path, 's3'),
        '-a',
        '127.0.0.1',
        '-p',
        String(s3Port),
        '-s',
        '--configure-bucket',
        BUCKET,
      ]);
      await waitFor('s3rver', async () => (await fetch(`http://127.0.0.1:${s3Port}/`)).status < 500, 30_000, 200);
      const started = Date.now();
      const bytes = await generate(pg);
      process.stderr.write(
        `backup bench: generated ${(bytes / 1024 / 1024).toFixed(0)} MiB (table + indexes) in ${((Date.now() - started) / 1000).toFixed(0)}s\n`,
      );

      const pgpass = join(work.path, 'pgpass');
      await writeFile(pgpass, `*:*:*:*:${pg.password}\n`, { mode: 0o600 });
      const ssh = await sshArgs(server);
      const floorFile = join(work.path, 'floor.dump');
      const dumpLine = `PGPASSFILE=${pgpass} pg_dump -Fc -h 127.0.0.1 -p ${pg.port} -U ${pg.user} -d ${pg.database}`;
      const rss: number[] = [];
      let sizes = '';
      const db = pg;
      const sshd = server;

      const hostRss: number[] = [];
      /** One run of the bundle against `destination` inputs; its peak RSS goes to `rssInto`. */
      const runAction = async (destination: Record<string, string>, rssInto: number[]): Promise<number> => {
        const dir = await tempDir('skiffbk-bench-run');
        try {
          const { env } = await runnerEnv(dir.path, {
            env: process.env.BENCH_BACKUP_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_BACKUP_NODE_OPTIONS } : {},
            inputs: {
              host: sshd.host,
              port: String(sshd.port),
              username: sshd.username,
              key: sshd.privateKey,
              fingerprint: sshd.hostFingerprint,
              sources: `- type: postgres\n  name: bench\n  host: 127.0.0.1\n  port: ${db.port}\n  user: ${db.user}\n  database: ${db.database}\n  password: "${db.password}"\n`,
              ...destination,
            },
          });
          const timeFile = join(dir.path, 'time');
          const start = performance.now();
          const code = await new Promise<number | null>((resolve, reject) => {
            const child = spawn('/usr/bin/time', ['-f', '%M', '-o', timeFile, node24, bundle], { env, cwd: dir.path, stdio: ['ignore', 'ignore', 'ignore'] });
            child.on('error', reject);
            child.on('close', resolve);
          });
          const ms = performance.now() - start;
          const output = await readFile(join(dir.path, 'output'), 'utf8');
          if (code !== 0 || !/verified<<.*\ntrue/.test(output))
            throw new Error(`action-backup exited ${code}: ${await readFile(join(dir.path, 'summary'), 'utf8')}`);
          rssInto.push(Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop()) / 1024);
          sizes = /size<<.*\n(\d+)/.exec(output)?.[1] ?? '';
          return ms;
        } finally {
          await dir.remove();
          await rm(join(work.path, 's3', BUCKET), { recursive: true, force: true }).then(() => sh('mkdir', ['-p', join(work.path, 's3', BUCKET)]));
          await rm(join(work.path, 'host-backups'), { recursive: true, force: true });
        }
      };
      const ours = () =>
        runAction(
          {
            destination: 's3',
            's3-endpoint': `http://127.0.0.1:${s3Port}`,
            's3-bucket': BUCKET,
            's3-prefix': `run-${Date.now()}`,
            's3-access-key-id': 'S3RVER',
            's3-secret-access-key': 'S3RVER',
            'encrypt-recipients': RECIPIENT,
          },
          rss,
        );
      // Each run starts from an empty directory, so the shrink guard and retention see no earlier backup.
      const oursHost = () => runAction({ destination: 'host', 'destination-path': join(work.path, 'host-backups') }, hostRss);
      const floor = {
        label: 'ssh pg_dump > file',
        what: `ssh host "${dumpLine}" > file (OpenSSH, no verification, no encryption, local disk)`,
        measure: async () => {
          const ms = await timedOk('bash', ['-c', `ssh ${ssh.map((a) => `'${a}'`).join(' ')} '${dumpLine}' > ${floorFile}`]);
          const { size } = await stat(floorFile);
          if (size < 1024) throw new Error('the floor produced an empty dump');
          process.stderr.write(
            `backup bench: floor dump ${(size / 1024 / 1024).toFixed(0)} MiB, ours stored ${(Number(sizes) / 1024 / 1024).toFixed(0)} MiB\n`,
          );
          return ms;
        },
      };

      return {
        teardown,
        cases: [
          {
            name: 'backup postgres → s3 (age)',
            what: `action-backup bundle on Node 24: pg_dump -Fc of ${(bytes / 1024 / 1024).toFixed(0)} MiB over SSH → sha256 → age → multipart upload to s3rver`,
            ours,
            floor,
            target: { maxRatio: 1.25 },
          },
          {
            name: 'backup peak RSS (MiB, in the ms column)',
            what: 'peak resident memory of the action process (GNU time %M) during the run above',
            // Reads the figure the wall-time case just recorded, so the 1 GB dump is not run twice.
            ours: async () => {
              const value = rss.shift();
              if (value === undefined) throw new Error('no RSS recorded: the wall-time case did not run first');
              return value;
            },
            target: { maxMs: 150 },
          },
          pgBackupLocal(work.path, ssh, db, pgpass, oursHost),
          {
            name: 'backup postgres → host',
            what: `action-backup bundle on Node 24: pg_dump -Fc of ${(bytes / 1024 / 1024).toFixed(0)} MiB kept on the server, checked by pg_restore reading every block while it is written, hashed, manifest`,
            ours: oursHost,
            floor,
            target: { maxRatio: 1.15 },
          },
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
