import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sh, spawnDaemon, stopPid, tempDir, waitFor, processAlive } from './proc';
import { requirePart } from './parts';
import { freePort, randomPassword } from './sshd';
import { makeServerCertificate } from './tls';

const execFileAsync = promisify(execFile);
const PG_BIN = '/usr/lib/postgresql/15/bin';

export interface Postgres {
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  database: string;
  /** `postgres://user:password@127.0.0.1:port/database` (password is URL-safe). */
  url: string;
  dir: string;
  logPath: string;
  /** With tls: the PEM of the CA that signed the server's certificate (for 127.0.0.1 and localhost). */
  caPem?: string;
  /** SQL as the superuser over the local socket (no password); returns psql's unaligned output. */
  psql(database: string, sql: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL 15 cluster on a loopback port, with a password-only test user and
 * database; with `tls`, the server also speaks TLS with a certificate from its own CA.
 */
export async function startPostgres(options: { tls?: boolean } = {}): Promise<Postgres> {
  await requirePart('postgresql-15', [join(PG_BIN, 'postgres'), '--version']);
  await requirePart('postgres OS user', ['id', '-u', 'postgres']);
  await requirePart('psql', ['psql', '--version']);
  // initdb and postgres refuse to run as root.
  const uid = Number((await sh('id', ['-u', 'postgres'])).trim());
  const gid = Number((await sh('id', ['-g', 'postgres'])).trim());
  const asPostgres = { uid, gid, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8', HOME: '/tmp' } };

  const dir = await tempDir('postgres');
  const p = (name: string) => join(dir.path, name);
  const data = p('data');
  const user = 'skiff';
  const password = randomPassword();
  const database = 'skiff_test';
  const superPassword = randomPassword();
  await writeFile(p('superpw'), `${superPassword}\n`);
  const tls = options.tls ? await makeServerCertificate(dir.path) : undefined;
  await sh('chown', ['-R', 'postgres:postgres', dir.path]);
  if (tls) await sh('chmod', ['600', tls.keyFile]);

  // Local socket stays trust so setup needs no password; TCP (what tests use) demands scram.
  await execFileAsync(
    join(PG_BIN, 'initdb'),
    ['-D', data, '-U', 'postgres', `--pwfile=${p('superpw')}`, '--auth-local=trust', '--auth-host=scram-sha-256', '--encoding=UTF8', '--locale=C.UTF-8'],
    { ...asPostgres, timeout: 120_000 },
  );

  const port = await freePort();
  const logPath = p('postgres.log');
  let pid: number;
  try {
    pid = spawnDaemon(
      'postgres',
      join(PG_BIN, 'postgres'),
      [
        '-D',
        data,
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-k',
        dir.path,
        '-c',
        'password_encryption=scram-sha-256',
        '-c',
        'fsync=off',
        // log_connections: the log says whether each connection used TLS.
        ...(tls ? ['-c', 'ssl=on', '-c', `ssl_cert_file=${tls.certFile}`, '-c', `ssl_key_file=${tls.keyFile}`, '-c', 'log_connections=on'] : []),
      ],
      { ...asPostgres, logPath },
    );
  } catch (error) {
    await dir.remove();
    throw error;
  }

  const stop = async () => {
    // SIGINT is postgres's "fast" shutdown: it does not wait for clients to disconnect.
    if (processAlive(pid)) process.kill(pid, 'SIGINT');
    await waitFor('postgres to shut down', async () => !processAlive(pid), 15_000, 50).catch(() => undefined);
    await stopPid(pid);
    await dir.remove();
  };

  const psqlSocket = (db: string, sql: string) =>
    sh('psql', ['-X', '-h', dir.path, '-p', String(port), '-U', 'postgres', '-d', db, '-v', 'ON_ERROR_STOP=1', '-qtA'], { input: sql, timeoutMs: 600_000 });
  try {
    await waitFor(
      `postgres on 127.0.0.1:${port}`,
      async () => {
        await sh('pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(port)], { timeoutMs: 5_000 });
        return true;
      },
      30_000,
      100,
    );
    await psqlSocket('postgres', `CREATE ROLE ${user} LOGIN CREATEDB PASSWORD '${password}'`);
    await psqlSocket('postgres', `CREATE DATABASE ${database} OWNER ${user}`);
  } catch (error) {
    const logTail = await readFile(logPath, 'utf8').then(
      (t) => t.slice(-2000),
      () => '',
    );
    await stop();
    throw new Error(`${(error as Error).message}\n${logTail}`);
  }

  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    database,
    url: `postgres://${user}:${password}@127.0.0.1:${port}/${database}`,
    dir: dir.path,
    logPath,
    ...(tls ? { caPem: tls.caPem } : {}),
    psql: psqlSocket,
    stop,
  };
}
