import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { raw, type Command, type Executor } from '@skiff/shell';
import { withSecretFile } from './operations';
import { DEFAULT_CLIENT_IMAGE, type Source } from './sources';
import { hostTool, pgTool } from './tools';

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

export function clientImageFor(source: Source, major: string): string {
  return (source.clientImage ?? DEFAULT_CLIENT_IMAGE).replaceAll('{major}', major);
}

export interface RunnerClient {
  source: Source;
  /** The server's major version, as asked. */
  serverMajor: string;
  /** What ran the dump: the runner's own pg_dump, or the image. */
  client: string;
  /** One line for the log and the summary. */
  describe: string;
}

export interface RunnerSources {
  clients: RunnerClient[];
  /** Removes every private directory (credentials, CA files). */
  cleanup(): Promise<void>;
}

function where(source: Source): string {
  return `${source.hostname!}:${source.port ?? 5432}${source.user ? ` as ${source.user}` : ''}${source.sslMode ? ` (sslmode ${source.sslMode})` : ''}`;
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
 * file, and the client tools that match its server's major version: the runner's own when they
 * match, else a container of `client-image` (Docker is on GitHub's Ubuntu runners), else an
 * error naming the version needed. Nothing is read from a database before this has passed.
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
    const runnerPsql = await succeeds(executor, [raw('command -v psql >/dev/null')], 'is psql on the runner?');
    const runnerDump = await executor.run([['pg_dump', '--version']], { description: "the runner's pg_dump version", allowFailure: true });
    const runnerVersion = runnerDump.code === 0 ? toolVersion(runnerDump.stdout) : undefined;
    let docker: boolean | undefined;
    const dockerAvailable = async () =>
      (docker ??= await succeeds(executor, ['docker', 'version', '--format', '{{.Server.Version}}'], 'is Docker on the runner?'));
    const clients: RunnerClient[] = [];
    for (const given of sources) {
      const directory = await mkdtemp(join(options.tempRoot, 'skiff-db-'));
      directories.push(directory);
      const caFile = given.caCertificate !== undefined ? join(directory, 'ca.pem') : undefined;
      if (caFile) await writeFile(caFile, given.caCertificate!, { mode: 0o600 });
      const base: Source = { ...given, runner: { directory, ...(caFile ? { caFile } : {}) } };

      // Any psql can ask; without one on the runner, the client image's newest tag does.
      const asker: Source | undefined = runnerPsql
        ? base
        : (await dockerAvailable())
          ? { ...base, runner: { ...base.runner!, clientImage: clientImageFor(base, 'latest') } }
          : undefined;
      if (!asker)
        throw new Error(
          `${given.name}: the runner has neither psql nor Docker to ask the server its version; install the PostgreSQL client (apt-get install postgresql-client) or use a runner with Docker`,
        );
      const asked = await withSecretFile(executor, asker, (secretFile) =>
        executor.run([pgTool(asker, ['psql', '-X', '-A', '-t', '-q', `--dbname=${asker.database!}`, '-c', 'SHOW server_version_num'], secretFile)], {
          description: `ask ${given.name} its server version`,
          allowFailure: true,
          timeoutSeconds: 120,
        }),
      );
      if (asked.code !== 0)
        throw new Error(`${given.name}: cannot connect to the database at ${where(given)}: ${lastLines(asked.stderr) || `exit code ${asked.code}`}`);
      const serverMajor = majorFromVersionNum(asked.stdout);
      if (serverMajor === undefined)
        throw new Error(`${given.name}: the server answered its version as ${JSON.stringify(asked.stdout.trim())}, which is not a PostgreSQL version`);

      const runnerMajor = runnerVersion !== undefined ? pgMajor(runnerVersion) : undefined;
      if (runnerMajor === serverMajor) {
        clients.push({
          source: base,
          serverMajor,
          client: `pg_dump ${runnerVersion!} (the runner's)`,
          describe: `${given.name}: PostgreSQL ${serverMajor} at ${where(given)}; client: the runner's pg_dump ${runnerVersion!}`,
        });
        continue;
      }
      const image = clientImageFor(given, serverMajor);
      const runnerSays = runnerVersion ? `the runner's pg_dump is ${runnerVersion}` : 'the runner has no pg_dump';
      if (!(await dockerAvailable()))
        throw new Error(
          `${given.name}: the server runs PostgreSQL ${serverMajor} and ${runnerSays}; a dump needs pg_dump ${serverMajor}: install postgresql-client-${serverMajor} on the runner, or use a runner with Docker so ${image} can run it`,
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
            `${given.name}: the server runs PostgreSQL ${serverMajor} and ${runnerSays}; pulling ${image} for a matching pg_dump failed: ${lastLines(pulled.stderr)}. Set "client-image" to an image with PostgreSQL ${serverMajor}'s client tools`,
          );
      }
      const source: Source = { ...base, runner: { ...base.runner!, clientImage: image } };
      const inImage = await executor.run([hostTool(source, ['pg_dump', '--version'])], { description: `pg_dump in ${image}`, allowFailure: true });
      const imageVersion = inImage.code === 0 ? toolVersion(inImage.stdout) : undefined;
      if (imageVersion === undefined || pgMajor(imageVersion) !== serverMajor)
        throw new Error(
          `${given.name}: the server runs PostgreSQL ${serverMajor}, but ${image} has ${imageVersion ? `pg_dump ${imageVersion}` : `no working pg_dump (${lastLines(inImage.stderr)})`}; set "client-image" to an image with PostgreSQL ${serverMajor}'s client tools`,
        );
      clients.push({
        source,
        serverMajor,
        client: `pg_dump ${imageVersion} in ${image}`,
        describe: `${given.name}: PostgreSQL ${serverMajor} at ${where(given)}; client: pg_dump ${imageVersion} in a container of ${image} (${runnerSays})`,
      });
    }
    for (const client of clients) options.log(client.describe);
    return { clients, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
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
  const image = source.runner!.clientImage ?? clientImageFor(source, client.serverMajor);
  const name = `skiff-drill-${randomBytes(6).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  const envFile = join(directory, `${name}.env`);
  await writeFile(envFile, `POSTGRES_PASSWORD=${password}\n`, { mode: 0o600 });
  const stop = async () => {
    await executor.run([['docker', 'rm', '-f', '-v', name]], { description: 'remove the drill server', allowFailure: true }).catch(() => undefined);
    await rm(envFile, { force: true });
  };
  try {
    if (!(await succeeds(executor, ['docker', 'version', '--format', '{{.Server.Version}}'], 'is Docker on the runner?')))
      throw new Error(
        `${source.name}: drill-target runner starts a throwaway PostgreSQL ${client.serverMajor} in Docker, and the runner has no Docker; use a runner with Docker, or drill-target server (a scratch database on the same server)`,
      );
    if (!(await succeeds(executor, ['docker', 'image', 'inspect', '--format', '{{.Id}}', image], `is ${image} on the runner?`)))
      await executor.run([['docker', 'pull', '--quiet', image]], { description: `pull ${image}`, live: 'all', timeoutSeconds: 600 });
    await executor.run(
      [['docker', 'run', '--detach', '--name', name, '--label', `skiff.backup=${source.name}`, '--env-file', envFile, '--publish', '127.0.0.1::5432', image]],
      { description: `start a throwaway PostgreSQL ${client.serverMajor} (${image}) for the drill`, live: 'all' },
    );
    const port = (await executor.run([['docker', 'port', name, '5432/tcp']], { description: 'its port' })).stdout
      .trim()
      .split('\n')
      .map((line) => /:(\d+)$/.exec(line)?.[1])
      .find(Boolean);
    if (!port) throw new Error(`${source.name}: the drill server ${name} published no port`);
    const scratch: Source = {
      name: source.name,
      type: 'postgres',
      place: { kind: 'host' },
      compression: source.compression,
      database: 'postgres',
      user: 'postgres',
      hostname: '127.0.0.1',
      port: Number(port),
      password,
      sslMode: 'disable',
      runner: { directory, ...(source.runner!.clientImage ? { clientImage: source.runner!.clientImage } : {}) },
    };
    // First start initialises the cluster; bounded wait for it to take logins over TCP.
    const ready = await withSecretFile(executor, scratch, (secretFile) =>
      executor.run(
        [
          [
            raw('for attempt in $(seq 1 120); do'),
            ...pgTool(scratch, ['psql', '-X', '-q', '-t', '-A', '--dbname=postgres', '-c', 'select 1'], secretFile),
            raw('>/dev/null 2>&1 && exit 0; sleep 0.5; done; exit 1'),
          ],
        ],
        { description: 'wait for the drill server', allowFailure: true },
      ),
    );
    if (ready.code !== 0) {
      const logs = await executor.run([['docker', 'logs', '--tail', '20', name]], { allowFailure: true });
      throw new Error(`${source.name}: the throwaway PostgreSQL (${image}) did not take logins within 60 s: ${lastLines(logs.stderr + logs.stdout)}`);
    }
    return { source: scratch, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
