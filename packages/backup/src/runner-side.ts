import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { raw, type Command, type Executor } from '@skiff/shell';
import { withSecretFile } from './operations';
import { DEFAULT_CLIENT_IMAGE, type ServerFlavor, type Source } from './sources';
import { hostTool, mysqlTool, pgTool } from './tools';

/**
 * Databases the runner reaches itself (a managed PostgreSQL): no server shell, so the runner is
 * where the tools run. Before anything is read the server is asked its version, and the dump
 * tools are chosen to match it — a pg_dump older than its server refuses to dump, and one
 * newer writes archives an older pg_restore cannot read and SQL an older server rejects.
 */

/** A PostgreSQL version as its tools and images name it: 17, 16, … and before 10 two parts (9.6). */
export function pgMajor(version: string): string | undefined {
  const match = /^(\d+)(?:\.(\d+))?/.exec(version.trim());
  if (!match) return undefined;
  const first = Number(match[1]);
  return first >= 10 ? String(first) : match[2] !== undefined ? `${first}.${match[2]}` : undefined;
}

/** `server_version_num` (170006, 90624) → 17, 9.6. */
export function majorFromVersionNum(text: string): string | undefined {
  const num = Number(text.trim());
  if (!Number.isInteger(num) || num < 90000) return undefined;
  return num >= 100000 ? String(Math.floor(num / 10000)) : `${Math.floor(num / 10000)}.${Math.floor(num / 100) % 100}`;
}

/** `pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)` → `15.18`. */
export function toolVersion(output: string): string | undefined {
  return /\(PostgreSQL\) (\d+(?:\.\d+)*)/.exec(output)?.[1];
}

export function clientImageFor(source: Source, flavor: ServerFlavor, major: string): string {
  return (source.clientImage ?? DEFAULT_CLIENT_IMAGE[flavor]).replaceAll('{major}', major);
}

/** `10.11.6-MariaDB-0+deb12u1` → mariadb 10.11; `8.0.36` → mysql 8.0. */
export function mysqlServer(version: string): { flavor: 'mariadb' | 'mysql'; major: string } | undefined {
  const match = /^(\d+)\.(\d+)/.exec(version.trim());
  if (!match) return undefined;
  return { flavor: /mariadb/i.test(version) ? 'mariadb' : 'mysql', major: `${match[1]}.${match[2]}` };
}

/**
 * The server version a MySQL-family client tool was built for: `mariadb-dump from 11.8.3-MariaDB`,
 * `mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB` (the Distrib is the server's; Ver is the tool's own),
 * `mysqldump  Ver 8.0.36 for Linux`.
 */
export function mysqlToolVersion(output: string): { flavor: 'mariadb' | 'mysql'; version: string } | undefined {
  const mariadb = /(?:Distrib|from) (\d+\.\d+\.\d+)-MariaDB/i.exec(output);
  if (mariadb) return { flavor: 'mariadb', version: mariadb[1]! };
  const mysql = /Ver (\d+\.\d+\.\d+)/.exec(output);
  return mysql && !/mariadb/i.test(output) ? { flavor: 'mysql', version: mysql[1]! } : undefined;
}

/** What differs between the database types a runner can reach: how to ask, how to read versions. */
interface Engine {
  /** The local client that can ask any server of this type its version. */
  askerPresent: Command;
  /** The client flavor of the asker on this runner (mysql: MariaDB's or MySQL's). */
  askerFlavor(executor: Executor): Promise<'mariadb' | 'mysql' | undefined>;
  ask(source: Source, secretFile: string | undefined): Command;
  /** `tls`: the session's TLS version, empty when it is plain text (absent where the client enforces sslmode itself). */
  server(answer: string): { flavor: ServerFlavor; major: string; tls?: string } | undefined;
  /** The dump tool of that flavor and its version line. */
  dumpVersion(flavor: ServerFlavor): string[];
  toolMajor(output: string, flavor: ServerFlavor): { version: string; major: string } | undefined;
  serverName(flavor: ServerFlavor): string;
  dumpName(flavor: ServerFlavor): string;
}

const POSTGRES: Engine = {
  askerPresent: [raw('command -v psql >/dev/null')],
  askerFlavor: () => Promise.resolve(undefined),
  ask: (source, secretFile) => pgTool(source, ['psql', '-X', '-A', '-t', '-q', `--dbname=${source.database!}`, '-c', 'SHOW server_version_num'], secretFile),
  server: (answer) => {
    const major = majorFromVersionNum(answer);
    return major === undefined ? undefined : { flavor: 'postgres', major };
  },
  dumpVersion: () => ['pg_dump', '--version'],
  toolMajor: (output) => {
    const version = toolVersion(output);
    const major = version === undefined ? undefined : pgMajor(version);
    return version === undefined || major === undefined ? undefined : { version, major };
  },
  serverName: () => 'PostgreSQL',
  dumpName: () => 'pg_dump',
};

const MYSQL: Engine = {
  askerPresent: [raw('command -v mariadb >/dev/null || command -v mysql >/dev/null')],
  askerFlavor: async (executor) => {
    const result = await executor.run([[raw('{ mariadb --version || mysql --version; } 2>/dev/null')]], {
      description: "the runner's MySQL client",
      allowFailure: true,
    });
    return result.code !== 0 ? undefined : /mariadb/i.test(result.stdout) ? 'mariadb' : 'mysql';
  },
  // MariaDB's client falls back to plain text when the server has no TLS, whatever --ssl says: the session tells.
  ask: (source, secretFile) => mysqlTool(source, 'mysql', ['-N', '-B', '-e', "SELECT VERSION(); SHOW SESSION STATUS LIKE 'Ssl_version'"], secretFile),
  server: (answer) => {
    const server = mysqlServer(answer);
    if (server === undefined) return undefined;
    const tls = /^Ssl_version\t(\S+)/m.exec(answer)?.[1];
    return { ...server, ...(tls ? { tls } : { tls: '' }) };
  },
  dumpVersion: (flavor) => (flavor === 'mariadb' ? ['mariadb-dump', '--version'] : ['mysqldump', '--version']),
  toolMajor: (output, flavor) => {
    const tool = mysqlToolVersion(output);
    if (tool?.flavor !== flavor) return undefined;
    return { version: tool.version, major: tool.version.split('.').slice(0, 2).join('.') };
  },
  serverName: (flavor) => (flavor === 'mariadb' ? 'MariaDB' : 'MySQL'),
  dumpName: (flavor) => (flavor === 'mariadb' ? 'mariadb-dump' : 'mysqldump'),
};

function engineOf(source: Source): Engine {
  if (source.type === 'postgres') return POSTGRES;
  if (source.type === 'mysql') return MYSQL;
  throw new Error(`${source.name}: a ${source.type} source cannot be reached from the runner`);
}

export interface RunnerClient {
  source: Source;
  /** The server's flavor and release series (PostgreSQL 17, MariaDB 10.11), as asked. */
  serverFlavor: ServerFlavor;
  serverMajor: string;
  /** What ran the dump: the runner's own tool, or the image. */
  client: string;
  /** One line for the log and the summary. */
  describe: string;
}

export interface RunnerSources {
  /** In the order given: the client chosen for each source, or why none could be (that source alone fails). */
  prepared: ({ source: Source; client: RunnerClient } | { source: Source; error: Error })[];
  /** Removes every private directory (credentials, CA files). */
  cleanup(): Promise<void>;
}

function where(source: Source): string {
  const port = source.port ?? (source.type === 'mysql' ? 3306 : 5432);
  return `${source.hostname!}:${port}${source.user ? ` as ${source.user}` : ''}${source.sslMode ? ` (sslmode ${source.sslMode})` : ''}`;
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' ').trim();
}

async function succeeds(executor: Executor, command: Command, description: string): Promise<boolean> {
  const result = await executor.run([command], { description, allowFailure: true });
  return result.code === 0;
}

/**
 * Gives each source its private directory (0700, under `tempRoot`: the runner's temp dir), its CA
 * file, and the client tools that match its server's release series: the runner's own when they
 * match, else a container of `client-image` (Docker is on GitHub's Ubuntu runners), else an
 * error naming the version needed. Nothing is read from a database before this has passed for it.
 * Each source is prepared on its own, as each is backed up on its own over SSH: one database that
 * cannot be reached must not stop the others' backups. Only when none can be used does this throw.
 */
export async function prepareRunnerSources(
  executor: Executor,
  sources: readonly Source[],
  options: { tempRoot: string; log: (message: string) => void },
): Promise<RunnerSources> {
  const directories: string[] = [];
  const cleanup = async () => {
    for (const directory of directories) await rm(directory, { recursive: true, force: true });
  };
  try {
    let docker: boolean | undefined;
    const dockerAvailable = async () =>
      (docker ??= await succeeds(executor, ['docker', 'version', '--format', '{{.Server.Version}}'], 'is Docker on the runner?'));
    const prepared: RunnerSources['prepared'] = [];
    for (const given of sources) {
      const directory = await mkdtemp(join(options.tempRoot, 'skiff-db-'));
      directories.push(directory);
      try {
        const client = await prepareRunnerSource(executor, given, directory, dockerAvailable);
        options.log(client.describe);
        prepared.push({ source: client.source, client });
      } catch (error) {
        options.log((error as Error).message);
        prepared.push({ source: given, error: error as Error });
      }
    }
    const failures = prepared.flatMap((entry) => ('error' in entry ? [entry.error.message] : []));
    if (failures.length === prepared.length) throw new Error(failures.join('\n'));
    return { prepared, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

async function prepareRunnerSource(executor: Executor, given: Source, directory: string, dockerAvailable: () => Promise<boolean>): Promise<RunnerClient> {
  const engine = engineOf(given);
  const caFile = given.caCertificate !== undefined ? join(directory, 'ca.pem') : undefined;
  if (caFile) await writeFile(caFile, given.caCertificate!, { mode: 0o600 });
  const base: Source = { ...given, runner: { directory, ...(caFile ? { caFile } : {}) } };

  // Any client can ask; without one on the runner, the client image's newest tag does.
  const localAsker = await succeeds(executor, engine.askerPresent, 'is a client on the runner?');
  const askerFlavor = localAsker ? await engine.askerFlavor(executor) : undefined;
  // MariaDB's client speaks to MySQL servers too (caching_sha2_password included), MySQL 9's no longer to every MariaDB.
  const fallbackFlavor: ServerFlavor = given.type === 'postgres' ? 'postgres' : 'mariadb';
  const asker: Source | undefined = localAsker
    ? { ...base, runner: { ...base.runner!, ...(askerFlavor ? { mysqlClient: askerFlavor } : {}) } }
    : (await dockerAvailable())
      ? {
          ...base,
          runner: {
            ...base.runner!,
            clientImage: clientImageFor(base, fallbackFlavor, 'latest'),
            ...(given.type === 'mysql' ? { mysqlClient: 'mariadb' as const } : {}),
          },
        }
      : undefined;
  if (!asker)
    throw new Error(
      `${given.name}: the runner has neither a ${given.type === 'postgres' ? 'PostgreSQL' : 'MySQL or MariaDB'} client nor Docker to ask the server its version; install the client or use a runner with Docker`,
    );
  const asked = await withSecretFile(executor, asker, (secretFile) =>
    executor.run([engine.ask(asker, secretFile)], { description: `ask ${given.name} its server version`, allowFailure: true, timeoutSeconds: 120 }),
  );
  if (asked.code !== 0)
    throw new Error(`${given.name}: cannot connect to the database at ${where(given)}: ${lastLines(asked.stderr) || `exit code ${asked.code}`}`);
  const server = engine.server(asked.stdout);
  if (server === undefined)
    throw new Error(`${given.name}: the server answered its version as ${JSON.stringify(asked.stdout.trim())}, which Skiff cannot read`);
  if (server.tls === '' && ['require', 'verify-ca', 'verify-full'].includes(given.sslMode ?? ''))
    throw new Error(
      `${given.name}: cannot connect to the database at ${where(given)}: the server does not speak TLS, and sslmode ${given.sslMode!} requires it`,
    );
  const serverName = `${engine.serverName(server.flavor)} ${server.major}`;
  const dumpName = engine.dumpName(server.flavor);
  const mysqlClient = given.type === 'mysql' ? { mysqlClient: server.flavor as 'mariadb' | 'mysql' } : {};

  const runnerDump = await executor.run([engine.dumpVersion(server.flavor)], { description: `the runner's ${dumpName} version`, allowFailure: true });
  const runnerTool = runnerDump.code === 0 ? engine.toolMajor(runnerDump.stdout, server.flavor) : undefined;
  if (runnerTool?.major === server.major) {
    return {
      source: { ...base, runner: { ...base.runner!, ...mysqlClient } },
      serverFlavor: server.flavor,
      serverMajor: server.major,
      client: `${dumpName} ${runnerTool.version} (the runner's)`,
      describe: `${given.name}: ${serverName} at ${where(given)}; client: the runner's ${dumpName} ${runnerTool.version}`,
    };
  }
  const image = clientImageFor(given, server.flavor, server.major);
  const runnerSays = runnerTool ? `the runner's ${dumpName} is ${runnerTool.version}` : `the runner has no ${dumpName} of ${engine.serverName(server.flavor)}`;
  if (!(await dockerAvailable()))
    throw new Error(
      `${given.name}: the server runs ${serverName} and ${runnerSays}; a dump needs ${dumpName} ${server.major}: install it on the runner, or use a runner with Docker so ${image} can run it`,
    );
  if (!(await succeeds(executor, ['docker', 'image', 'inspect', '--format', '{{.Id}}', image], `is ${image} on the runner?`))) {
    const pulled = await executor.run([['docker', 'pull', '--quiet', image]], {
      description: `pull ${image}`,
      allowFailure: true,
      live: 'all',
      timeoutSeconds: 600,
    });
    if (pulled.code !== 0)
      throw new Error(
        `${given.name}: the server runs ${serverName} and ${runnerSays}; pulling ${image} for a matching ${dumpName} failed: ${lastLines(pulled.stderr)}. Set "client-image" to an image with ${serverName}'s client tools`,
      );
  }
  const source: Source = { ...base, runner: { ...base.runner!, clientImage: image, ...mysqlClient } };
  const inImage = await executor.run([hostTool(source, engine.dumpVersion(server.flavor))], { description: `${dumpName} in ${image}`, allowFailure: true });
  const imageTool = inImage.code === 0 ? engine.toolMajor(inImage.stdout, server.flavor) : undefined;
  if (imageTool?.major !== server.major)
    throw new Error(
      `${given.name}: the server runs ${serverName}, but ${image} has ${imageTool ? `${dumpName} ${imageTool.version}` : `no working ${dumpName} (${lastLines(inImage.stderr + inImage.stdout)})`}; set "client-image" to an image with ${serverName}'s client tools`,
    );
  return {
    source,
    serverFlavor: server.flavor,
    serverMajor: server.major,
    client: `${dumpName} ${imageTool.version} in ${image}`,
    describe: `${given.name}: ${serverName} at ${where(given)}; client: ${dumpName} ${imageTool.version} in a container of ${image} (${runnerSays})`,
  };
}

export interface ScratchServer {
  /** The source as seen on the scratch server: same name, its own address and credentials. */
  source: Source;
  stop(): Promise<void>;
}

/**
 * A throwaway PostgreSQL of the source's major version on the runner, for a drill that must not
 * write to the production server: a container of the client image (the official image is the
 * server too) on a loopback port, its password in a 0600 env file, removed with the container.
 */
export async function startScratchServer(executor: Executor, client: RunnerClient): Promise<ScratchServer> {
  const source = client.source;
  const directory = source.runner!.directory;
  const image = source.runner!.clientImage ?? clientImageFor(source, client.serverFlavor, client.serverMajor);
  const postgres = source.type === 'postgres';
  const serverName = `${engineOf(source).serverName(client.serverFlavor)} ${client.serverMajor}`;
  const name = `skiff-drill-${randomBytes(6).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const envFile = join(directory, `${name}.env`);
  // The official images' first-start variables; MariaDB's image reads the MYSQL_ name too.
  await writeFile(envFile, postgres ? `POSTGRES_PASSWORD=${password}\n` : `MARIADB_ROOT_PASSWORD=${password}\nMYSQL_ROOT_PASSWORD=${password}\n`, {
    mode: 0o600,
  });
  const stop = async () => {
    await executor.run([['docker', 'rm', '-f', '-v', name]], { description: 'remove the drill server', allowFailure: true }).catch(() => undefined);
    await rm(envFile, { force: true });
  };
  try {
    if (!(await succeeds(executor, ['docker', 'version', '--format', '{{.Server.Version}}'], 'is Docker on the runner?')))
      throw new Error(
        `${source.name}: drill-target runner starts a throwaway ${serverName} in Docker, and the runner has no Docker; use a runner with Docker, or drill-target server (a scratch database on the same server)`,
      );
    if (!(await succeeds(executor, ['docker', 'image', 'inspect', '--format', '{{.Id}}', image], `is ${image} on the runner?`)))
      await executor.run([['docker', 'pull', '--quiet', image]], { description: `pull ${image}`, live: 'all', timeoutSeconds: 600 });
    const innerPort = postgres ? '5432' : '3306';
    await executor.run(
      [
        [
          'docker',
          'run',
          '--detach',
          '--name',
          name,
          '--label',
          `skiff.backup=${source.name}`,
          '--env-file',
          envFile,
          '--publish',
          `127.0.0.1::${innerPort}`,
          image,
        ],
      ],
      { description: `start a throwaway ${serverName} (${image}) for the drill`, live: 'all' },
    );
    const port = (await executor.run([['docker', 'port', name, `${innerPort}/tcp`]], { description: 'its port' })).stdout
      .trim()
      .split('\n')
      .map((line) => /:(\d+)$/.exec(line)?.[1])
      .find(Boolean);
    if (!port) throw new Error(`${source.name}: the drill server ${name} published no port`);
    const scratch: Source = {
      name: source.name,
      type: source.type,
      place: { kind: 'host' },
      compression: source.compression,
      database: postgres ? 'postgres' : 'mysql',
      user: postgres ? 'postgres' : 'root',
      hostname: '127.0.0.1',
      port: Number(port),
      password,
      sslMode: 'disable',
      runner: {
        directory,
        ...(source.runner!.clientImage ? { clientImage: source.runner!.clientImage } : {}),
        ...(source.runner!.mysqlClient ? { mysqlClient: source.runner!.mysqlClient } : {}),
      },
    };
    // First start initialises the data directory; bounded wait for it to take logins over TCP.
    const ready = await withSecretFile(executor, scratch, (secretFile) =>
      executor.run(
        [
          [
            raw('for attempt in $(seq 1 240); do'),
            ...(postgres
              ? pgTool(scratch, ['psql', '-X', '-q', '-t', '-A', '--dbname=postgres', '-c', 'select 1'], secretFile)
              : mysqlTool(scratch, 'mysql', ['-N', '-B', '-e', 'SELECT 1'], secretFile)),
            raw('>/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1'),
          ],
        ],
        { description: 'wait for the drill server', allowFailure: true },
      ),
    );
    if (ready.code !== 0) {
      const logs = await executor.run([['docker', 'logs', '--tail', '20', name]], { allowFailure: true });
      throw new Error(`${source.name}: the throwaway ${serverName} (${image}) did not take logins within 2 minutes: ${lastLines(logs.stderr + logs.stdout)}`);
    }
    return { source: scratch, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
