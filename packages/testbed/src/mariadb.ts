import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, spawnDaemon, stopPid, tempDir, waitFor, processAlive } from './proc';
import { requirePart } from './parts';
import { freePort, randomPassword } from './sshd';
import { makeServerCertificate } from './tls';

export interface Mariadb {
  host: '127.0.0.1';
  port: number;
  /** `root@127.0.0.1`, password-only over TCP (the socket keeps unix_socket auth for setup). */
  user: 'root';
  password: string;
  database: string;
  socket: string;
  dir: string;
  logPath: string;
  /** With tls: the PEM of the CA that signed the server's certificate (for 127.0.0.1 and localhost). */
  caPem?: string;
  /** Runs SQL as root over the socket (no password needed there); returns the tab-separated rows. */
  sql(statement: string, database?: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A throwaway MariaDB server: its own data dir, socket and pid file in a temp dir, on a loopback
 * port, run as the `mysql` OS user; root gets a password for TCP and a test database exists.
 * With `tls`, the server also speaks TLS with a certificate from its own CA.
 */
export async function startMariadb(options: { tls?: boolean } = {}): Promise<Mariadb> {
  await requirePart('mariadb-server', ['mariadbd', '--version']);
  await requirePart('mariadb client', ['mariadb', '--version']);
  await requirePart('mysql OS user', ['id', '-u', 'mysql']);
  const uid = Number((await sh('id', ['-u', 'mysql'])).trim());
  const gid = Number((await sh('id', ['-g', 'mysql'])).trim());

  const dir = await tempDir('mariadb');
  const p = (name: string) => join(dir.path, name);
  const data = p('data');
  const socket = p('mysqld.sock');
  const pidFile = p('mysqld.pid');
  const logPath = p('mariadb.log');
  const password = randomPassword();
  const database = 'skiff_test';
  const tls = options.tls ? await makeServerCertificate(dir.path) : undefined;
  await sh('chown', ['-R', 'mysql:mysql', dir.path]);
  if (tls) await sh('chmod', ['600', tls.keyFile]);
  await sh('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=socket', '--skip-test-db'], {
    timeoutMs: 120_000,
  }).catch(async (error) => {
    await dir.remove();
    throw error;
  });

  const port = await freePort();
  let pid: number;
  try {
    pid = spawnDaemon(
      'mariadbd',
      '/usr/sbin/mariadbd',
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--socket=${socket}`,
        `--pid-file=${pidFile}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        '--skip-name-resolve',
        '--innodb-buffer-pool-size=32M',
        '--innodb-log-file-size=16M',
        '--skip-log-bin',
        ...(tls ? [`--ssl-cert=${tls.certFile}`, `--ssl-key=${tls.keyFile}`, `--ssl-ca=${join(dir.path, 'ca.crt')}`] : []),
      ],
      { uid, gid, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/tmp' }, logPath },
    );
  } catch (error) {
    await dir.remove();
    throw error;
  }

  const sql = (statement: string, db?: string) =>
    sh('mariadb', ['--no-defaults', `--socket=${socket}`, '-u', 'root', '-N', '-B', ...(db ? [db] : []), '-e', statement], { timeoutMs: 120_000 });

  const stop = async () => {
    if (processAlive(pid)) process.kill(pid, 'SIGTERM');
    await waitFor('mariadbd to shut down', async () => !processAlive(pid), 20_000, 50).catch(() => undefined);
    await stopPid(pid);
    await dir.remove();
  };

  try {
    await waitFor(
      `mariadbd on 127.0.0.1:${port}`,
      async () => {
        await sql('select 1');
        return true;
      },
      60_000,
      200,
    );
    // The password goes in through stdin, never an argv.
    const setup = [
      `CREATE USER 'root'@'127.0.0.1' IDENTIFIED BY '${password}'`,
      `GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION`,
      `CREATE DATABASE ${database}`,
    ].join(';\n');
    await writeFile(p('setup.sql'), `${setup};\n`, { mode: 0o600 });
    await sh('mariadb', ['--no-defaults', `--socket=${socket}`, '-u', 'root'], { input: await readFile(p('setup.sql'), 'utf8') });
    await sh('rm', ['-f', p('setup.sql')]);
  } catch (error) {
    const logTail = await readFile(logPath, 'utf8').then(
      (t) => t.slice(-2000),
      () => '',
    );
    await stop();
    throw new Error(`${(error as Error).message}\n${logTail}`);
  }

  return { host: '127.0.0.1', port, user: 'root', password, database, socket, dir: dir.path, logPath, ...(tls ? { caPem: tls.caPem } : {}), sql, stop };
}
