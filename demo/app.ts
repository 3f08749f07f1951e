import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BUSYBOX_IMAGE } from '@skiff/testbed';

/**
 * The demo's app: a tiny HTTP "shop" in a busybox image (nothing can be pulled from the internet,
 * so it is built FROM the test bed's local base image), and the Compose file that runs it next to
 * PostgreSQL. v1 is healthy; v2 is the bad release whose /health answers 500.
 */

/** Every image the demo builds carries this label, so cleanup (and a later run after a crash) finds them all. */
export const DEMO_LABEL = 'org.skiff.demo';
/** PostgreSQL for the stack, built from the test bed's Debian image (Docker Hub's postgres:15 is out of reach here). */
export const POSTGRES_IMAGE = 'skiffdemo-postgres:15';

export type AppVersion = 'v1' | 'v2';

// One shell script per connection (busybox `nc -ll -e`): reads the request line, answers, logs a line.
function handler(version: AppVersion): string {
  const health =
    version === 'v1'
      ? `status='200 OK'; body="ok version=$APP_VERSION"`
      : `status='500 Internal Server Error'; body="error: version=$APP_VERSION is broken on purpose (the demo's bad release)"`;
  return [
    '#!/bin/sh',
    'read -r method path version',
    'while read -r line; do',
    `  line=$(printf '%s' "$line" | tr -d '\\r')`,
    '  [ -z "$line" ] && break',
    'done',
    'case "$path" in',
    `  /health) ${health} ;;`,
    `  *) status='200 OK'; body="Skiff demo shop $APP_VERSION" ;;`,
    'esac',
    'echo "$method $path -> $status" >&2',
    `printf 'HTTP/1.0 %s\\r\\nContent-Type: text/plain\\r\\nContent-Length: %s\\r\\nConnection: close\\r\\n\\r\\n%s\\n' "$status" "$((\${#body} + 1))" "$body"`,
    '',
  ].join('\n');
}

/** Writes the app's build context (Dockerfile + handler) for one version into `dir`. */
export async function writeAppContext(dir: string, version: AppVersion): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'handler.sh'), handler(version), { mode: 0o755 });
  await writeFile(
    join(dir, 'Dockerfile'),
    [
      `FROM ${BUSYBOX_IMAGE}`,
      'COPY handler.sh /app/handler.sh',
      'RUN chmod 755 /app/handler.sh',
      `ENV APP_VERSION=${version}`,
      `LABEL ${DEMO_LABEL}=true`,
      'EXPOSE 8080',
      'HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1',
      // A shell that stops on TERM, as real apps do, so a switch or `docker stop` is quick.
      `CMD ["sh", "-c", "trap 'exit 0' TERM; nc -ll -p 8080 -e /app/handler.sh & wait"]`,
      '',
    ].join('\n'),
  );
}

/** The PostgreSQL image's build context: initdb at build time, local socket connections trusted inside the container only. */
export async function writePostgresContext(dir: string, debianImage: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'Dockerfile'),
    [
      `FROM ${debianImage}`,
      'RUN mkdir -p /var/lib/skiffdemo && chown postgres:postgres /var/lib/skiffdemo && ' +
        'su postgres -c "/usr/lib/postgresql/15/bin/initdb -D /var/lib/skiffdemo/data -U postgres --auth-local=trust --auth-host=reject --encoding=UTF8 --locale=C.UTF-8" >/dev/null',
      'ENV PGHOST=/tmp PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      `LABEL ${DEMO_LABEL}=true`,
      'USER postgres',
      'CMD ["postgres", "-D", "/var/lib/skiffdemo/data", "-c", "listen_addresses=", "-k", "/tmp", "-c", "fsync=off"]',
      '',
    ].join('\n'),
  );
}

/**
 * The repository's compose.yaml: the app (its image replaced by the deploy's `images` input) on a
 * loopback port of the VPS with a secret from the release's .env, and PostgreSQL with its data in
 * a named volume. The database image is built on the server in this sandbox, so Compose must not
 * try to pull it.
 */
export function composeFile(image: string, port: number): string {
  return [
    'services:',
    '  app:',
    `    image: ${image}`,
    '    ports:',
    `      - "127.0.0.1:${port}:8080"`,
    '    environment:',
    '      SHOP_SECRET_KEY: ${SHOP_SECRET_KEY}',
    '    depends_on: [db]',
    '    stop_grace_period: 2s',
    '  db:',
    `    image: ${POSTGRES_IMAGE}`,
    '    pull_policy: never',
    '    stop_grace_period: 5s',
    '    volumes:',
    '      - pgdata:/var/lib/skiffdemo',
    'volumes:',
    '  pgdata: {}',
    '',
  ].join('\n');
}
