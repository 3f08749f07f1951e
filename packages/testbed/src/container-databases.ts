import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, tempDir, waitFor } from './proc';
import { randomPassword } from './sshd';

export interface ContainerPostgres {
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  database: string;
  /** The server's `SHOW server_version`. */
  version: string;
  /** SQL as the superuser inside the container (local socket, no password). */
  psql(database: string, sql: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * A PostgreSQL server in a container of an official-style image (`postgres:17`) on the machine's
 * engine, published on a loopback port with a password login: a managed database of another
 * major version than the machine's tools.
 */
export async function startContainerPostgres(image: string): Promise<ContainerPostgres> {
  const name = `skiff-pg-${randomBytes(5).toString('hex')}`;
  const user = 'app';
  const password = randomPassword();
  const database = 'app';
  const dir = await tempDir('skiff-container-pg');
  const envFile = join(dir.path, 'env');
  await writeFile(envFile, `POSTGRES_USER=${user}\nPOSTGRES_PASSWORD=${password}\nPOSTGRES_DB=${database}\n`, { mode: 0o600 });
  const stop = async () => {
    await sh('docker', ['rm', '-f', '-v', name], { timeoutMs: 60_000 }).catch(() => undefined);
    await dir.remove();
  };
  try {
    await sh('docker', ['run', '--detach', '--name', name, '--env-file', envFile, '--publish', '127.0.0.1::5432', image, 'postgres', '-c', 'fsync=off'], {
      timeoutMs: 120_000,
    });
    const port = Number(/:(\d+)\s*$/m.exec(await sh('docker', ['port', name, '5432/tcp']))?.[1]);
    const psql = (db: string, sql: string) =>
      sh('docker', ['exec', '-i', '-u', 'postgres', name, 'psql', '-X', '-U', user, '-d', db, '-v', 'ON_ERROR_STOP=1', '-qtA'], {
        input: sql,
        timeoutMs: 600_000,
      });
    await waitFor(
      `${image} on 127.0.0.1:${port}`,
      async () => {
        await sh('docker', ['exec', name, 'pg_isready', '-q', '-h', '127.0.0.1', '-U', user], { timeoutMs: 5_000 });
        return true;
      },
      60_000,
      250,
    );
    const version = (await psql('postgres', 'show server_version')).trim();
    return { host: '127.0.0.1', port, user, password, database, version, psql, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface ContainerMariadb {
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  database: string;
  /** The server's `SELECT VERSION()`. */
  version: string;
  /** SQL as root inside the container (socket login, no password); tab-separated rows. */
  sql(database: string, statement: string): Promise<string>;
  stop(): Promise<void>;
}

/** A MariaDB server in a container of an official-style image (`mariadb:11.8`), on a loopback port with a password login. */
export async function startContainerMariadb(image: string): Promise<ContainerMariadb> {
  const name = `skiff-mariadb-${randomBytes(5).toString('hex')}`;
  const user = 'app';
  const password = randomPassword();
  const database = 'app';
  const dir = await tempDir('skiff-container-mariadb');
  const envFile = join(dir.path, 'env');
  await writeFile(envFile, `MARIADB_ROOT_PASSWORD=${randomPassword()}\nMARIADB_DATABASE=${database}\nMARIADB_USER=${user}\nMARIADB_PASSWORD=${password}\n`, {
    mode: 0o600,
  });
  const stop = async () => {
    await sh('docker', ['rm', '-f', '-v', name], { timeoutMs: 60_000 }).catch(() => undefined);
    await dir.remove();
  };
  try {
    await sh('docker', ['run', '--detach', '--name', name, '--env-file', envFile, '--publish', '127.0.0.1::3306', image], { timeoutMs: 120_000 });
    const port = Number(/:(\d+)\s*$/m.exec(await sh('docker', ['port', name, '3306/tcp']))?.[1]);
    const sql = (db: string, statement: string) =>
      sh('docker', ['exec', '-i', name, 'mariadb', '-uroot', '-N', '-B', db], { input: statement, timeoutMs: 600_000 });
    // The init file runs before the server listens: a TCP login with the user's password is the sign it is ready.
    await waitFor(
      `${image} on 127.0.0.1:${port}`,
      async () => {
        await sh('docker', ['exec', name, 'mariadb-admin', '-uroot', '--silent', 'ping'], { timeoutMs: 5_000 });
        return (await sql(database, 'select 1')).trim() === '1';
      },
      90_000,
      250,
    );
    const version = (await sql(database, 'select version()')).trim();
    return { host: '127.0.0.1', port, user, password, database, version, sql, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
