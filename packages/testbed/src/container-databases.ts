import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, tempDir, waitFor } from './proc';
import { randomPassword } from './sshd';

/** What every database in a container offers the tests: a password login on a loopback port. */
interface ContainerDatabase {
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  database: string;
  /** The server's own version string. */
  version: string;
  stop(): Promise<void>;
}

export interface ContainerPostgres extends ContainerDatabase {
  /** SQL as the superuser inside the container (local socket, no password). */
  psql(database: string, sql: string): Promise<string>;
}

export interface ContainerMariadb extends ContainerDatabase {
  /** SQL as root inside the container (socket login, no password); tab-separated rows. */
  sql(database: string, statement: string): Promise<string>;
}

/**
 * A container of an official-style database image on the machine's engine, its first-start
 * variables from a 0600 env file, its port published on loopback, removed by `stop`; `ready`
 * resolves once it takes logins.
 */
async function startPublished(
  image: string,
  options: { prefix: string; environment: Record<string, string>; innerPort: number; args?: string[] },
): Promise<{ name: string; port: number; stop: () => Promise<void> }> {
  const name = `${options.prefix}-${randomBytes(5).toString('hex')}`;
  const dir = await tempDir(`${options.prefix}-container`);
  const envFile = join(dir.path, 'env');
  await writeFile(
    envFile,
    Object.entries(options.environment)
      .map(([key, value]) => `${key}=${value}\n`)
      .join(''),
    { mode: 0o600 },
  );
  const stop = async () => {
    await sh('docker', ['rm', '-f', '-v', name], { timeoutMs: 60_000 }).catch(() => undefined);
    await dir.remove();
  };
  try {
    await sh(
      'docker',
      ['run', '--detach', '--name', name, '--env-file', envFile, '--publish', `127.0.0.1::${options.innerPort}`, image, ...(options.args ?? [])],
      {
        timeoutMs: 120_000,
      },
    );
    const port = Number(/:(\d+)\s*$/m.exec(await sh('docker', ['port', name, `${options.innerPort}/tcp`]))?.[1]);
    return { name, port, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A PostgreSQL server in a container of an official-style image (`postgres:17`), published on a
 * loopback port with a password login: a managed database of another major version than the
 * machine's tools.
 */
export async function startContainerPostgres(image: string): Promise<ContainerPostgres> {
  const user = 'app';
  const password = randomPassword();
  const database = 'app';
  const { name, port, stop } = await startPublished(image, {
    prefix: 'skiff-pg',
    environment: { POSTGRES_USER: user, POSTGRES_PASSWORD: password, POSTGRES_DB: database },
    innerPort: 5432,
    args: ['postgres', '-c', 'fsync=off'],
  });
  try {
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

/** A MariaDB server in a container of an official-style image (`mariadb:11.8`), on a loopback port with a password login. */
export async function startContainerMariadb(image: string): Promise<ContainerMariadb> {
  const user = 'app';
  const password = randomPassword();
  const database = 'app';
  const { name, port, stop } = await startPublished(image, {
    prefix: 'skiff-mariadb',
    environment: { MARIADB_ROOT_PASSWORD: randomPassword(), MARIADB_DATABASE: database, MARIADB_USER: user, MARIADB_PASSWORD: password },
    innerPort: 3306,
  });
  try {
    const sql = (db: string, statement: string) =>
      sh('docker', ['exec', '-i', name, 'mariadb', '-uroot', '-N', '-B', db], { input: statement, timeoutMs: 600_000 });
    // The init file runs before the server listens: a query on the new database is the sign it is ready.
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
