import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBaseImages } from './images';
import { sh, tempDir, waitFor } from './proc';

export const COMPOSE_POSTGRES_IMAGE = 'skiffbk-postgres:15';

export interface ComposePostgres {
  project: string;
  /** Directory holding compose.yaml (pass as project-directory). */
  dir: string;
  service: 'db';
  /** Runs SQL as postgres inside the service; returns psql -tA output. */
  psql(database: string, sql: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * PostgreSQL 15 from the test bed's Debian image, run as the postgres user in a Compose stack.
 * Local socket connections are trusted inside the container, which is how `docker compose exec`
 * tools reach it (no password anywhere).
 */
/** Builds (or rebuilds from cache) the PostgreSQL 15 image the Compose stacks run; returns its tag. */
export async function ensureComposePostgresImage(): Promise<string> {
  const { debian } = await ensureBaseImages();
  const build = await tempDir('skiffbk-pg-image');
  try {
    await writeFile(
      join(build.path, 'Dockerfile'),
      [
        `FROM ${debian}`,
        'RUN mkdir -p /var/lib/skiffbk && chown postgres:postgres /var/lib/skiffbk && ' +
          'su postgres -c "/usr/lib/postgresql/15/bin/initdb -D /var/lib/skiffbk/data -U postgres --auth-local=trust --auth-host=reject --encoding=UTF8 --locale=C.UTF-8" >/dev/null',
        'ENV PGHOST=/tmp PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'USER postgres',
        'CMD ["postgres", "-D", "/var/lib/skiffbk/data", "-c", "listen_addresses=", "-k", "/tmp", "-c", "fsync=off"]',
        '',
      ].join('\n'),
    );
    await sh('docker', ['build', '-q', '-t', COMPOSE_POSTGRES_IMAGE, build.path], { timeoutMs: 300_000 });
  } finally {
    await build.remove();
  }
  return COMPOSE_POSTGRES_IMAGE;
}

export async function startComposePostgres(project: string): Promise<ComposePostgres> {
  if (!project.startsWith('skiffbk')) throw new Error('compose project names of backup tests start with skiffbk');
  await ensureComposePostgresImage();
  const dir = await tempDir(project);
  await writeFile(join(dir.path, 'compose.yaml'), `services:\n  db:\n    image: ${COMPOSE_POSTGRES_IMAGE}\n    stop_grace_period: 2s\n`);
  const compose = (args: string[], timeoutMs = 120_000) => sh('docker', ['compose', '-p', project, '--project-directory', dir.path, ...args], { timeoutMs });
  const stop = async () => {
    await compose(['down', '-v', '--timeout', '2']).catch(() => undefined);
    await dir.remove();
  };
  try {
    // A run that was killed leaves its container (and the data in it) under the same project name: replace it, never reuse it.
    await compose(['down', '-v', '--timeout', '2']).catch(() => undefined);
    await compose(['up', '-d', '--wait']).catch(() => compose(['up', '-d']));
    await waitFor(
      `postgres in compose project ${project}`,
      async () => {
        await compose(['exec', '-T', 'db', 'pg_isready', '-q'], 10_000);
        return true;
      },
      60_000,
      250,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    project,
    dir: dir.path,
    service: 'db',
    psql: (database, sql) => compose(['exec', '-T', 'db', 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-tA', '-d', database, '-c', sql]),
    stop,
  };
}
