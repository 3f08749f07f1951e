import { mkdir, rmdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBaseImages, ensureMariadb11BaseImage, ensureMariadbImage, ensurePostgres17BaseImage } from './images';
import { sh, tempDir } from './proc';
import { requirePart } from './parts';
import { startRegistry, type Registry } from './registry';

/**
 * Docker Hub, as far as the examples need it: the official images users name in their compose
 * files (`postgres`, `redis`, `nginx`), served by a registry mirror on loopback, because tests send
 * nothing to the internet. Each stand-in is built FROM the test bed's Debian image and keeps the
 * official image's interface that compose files rely on — the same tag's major version as Debian
 * bookworm ships, the same data paths, users, environment variables, entrypoint behaviour and
 * stop signal — so a compose file written for the real image runs unchanged.
 */
export const HUB_IMAGES = {
  // bookworm: PostgreSQL 15, Redis 7.0, nginx 1.22.
  postgres: 'postgres:15',
  redis: 'redis:7.0',
  nginx: 'nginx:1.22',
  // The test bed's own busybox (Debian's static 1.35), for apps built FROM busybox.
  busybox: 'busybox:1.35',
} as const;

const POSTGRES_ENTRYPOINT = `#!/bin/sh
# The official image's first start: POSTGRES_PASSWORD required, POSTGRES_USER/POSTGRES_DB made,
# local socket trusted, every other connection by password; then postgres as the postgres user.
set -eu
if [ "\${1#-}" != "$1" ]; then set -- postgres "$@"; fi
if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ "$1" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "\${POSTGRES_PASSWORD:?is required (as by the official image)}"
  user=\${POSTGRES_USER:-postgres}
  db=\${POSTGRES_DB:-$user}
  pwfile=$(mktemp)
  printf '%s\\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.auto.conf"
  if [ "$db" != postgres ]; then echo "CREATE DATABASE \\"$db\\" OWNER \\"$user\\"" | postgres --single -D "$PGDATA" postgres >/dev/null; fi
fi
exec "$@"
`;

const REDIS_ENTRYPOINT = `#!/bin/sh
# The official image: options alone run redis-server, which runs as redis in /data, protected
# mode off unless a config file is given.
set -eu
if [ "\${1#-}" != "$1" ] || [ "\${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  case "\${2:-}" in *.conf) ;; *) set -- "$@" --protected-mode no ;; esac
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
`;

const NGINX_DEFAULT = `server {
    listen 80;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html;
    }
}
`;

/** The official postgres image's interface over a Debian base that has that major version's server and client. */
function postgresDockerfile(base: string, major: string): string[] {
  return [
    `FROM ${base}`,
    `ENV PGDATA=/var/lib/postgresql/data PATH=/usr/lib/postgresql/${major}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    'COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh',
    'RUN mkdir -p /var/lib/postgresql/data /var/run/postgresql && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql',
    'VOLUME /var/lib/postgresql/data',
    'ENTRYPOINT ["docker-entrypoint.sh"]',
    'STOPSIGNAL SIGINT',
    'EXPOSE 5432',
    'CMD ["postgres"]',
  ];
}

const DOCKERFILES: Record<keyof typeof HUB_IMAGES, (debian: string, busybox: string) => string[]> = {
  busybox: (_debian, busybox) => [`FROM ${busybox}`, 'CMD ["sh"]'],
  postgres: (debian) => postgresDockerfile(debian, '15'),
  redis: (debian) => [
    `FROM ${debian}`,
    'COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh',
    'RUN mkdir -p /data && chown redis:redis /data',
    'VOLUME /data',
    'WORKDIR /data',
    'ENTRYPOINT ["docker-entrypoint.sh"]',
    'EXPOSE 6379',
    'CMD ["redis-server"]',
  ],
  nginx: (debian) => [
    `FROM ${debian}`,
    'COPY default.conf /etc/nginx/conf.d/default.conf',
    'RUN rm -f /etc/nginx/sites-enabled/default && mkdir -p /usr/share/nginx/html && echo "Welcome to nginx!" > /usr/share/nginx/html/index.html && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log',
    'EXPOSE 80',
    'STOPSIGNAL SIGQUIT',
    'CMD ["nginx", "-g", "daemon off;"]',
  ],
};

const BUILD_LOCK = '/tmp/skiff-hub-images.lock';

/**
 * One builder at a time across test files that run side by side (the examples): mkdir is atomic.
 * A lock older than 10 minutes is a crashed run's and is taken over.
 */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      await mkdir(BUILD_LOCK);
      break;
    } catch {
      const age =
        Date.now() -
        (await stat(BUILD_LOCK).then(
          (s) => s.mtimeMs,
          () => Date.now(),
        ));
      if (age > 600_000) await rmdir(BUILD_LOCK).catch(() => undefined);
      else if (tries >= 600) throw new Error(`test bed: ${BUILD_LOCK} held for 10 minutes`);
      else await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }
  try {
    return await fn();
  } finally {
    await rmdir(BUILD_LOCK).catch(() => undefined);
  }
}

/** Builds (from cache when unchanged) the official-image stand-ins into the machine's engine under their Hub names. */
export async function ensureHubImages(): Promise<void> {
  return withBuildLock(buildHubImages);
}

async function buildHubImages(): Promise<void> {
  const { debian, busybox } = await ensureBaseImages();
  for (const [name, tag] of Object.entries(HUB_IMAGES) as [keyof typeof HUB_IMAGES, string][]) {
    const dir = await tempDir(`skiff-hub-${name}`);
    try {
      await writeFile(join(dir.path, 'Dockerfile'), `${DOCKERFILES[name](debian, busybox).join('\n')}\n`);
      if (name === 'postgres') await writeFile(join(dir.path, 'entrypoint.sh'), POSTGRES_ENTRYPOINT, { mode: 0o755 });
      if (name === 'redis') await writeFile(join(dir.path, 'entrypoint.sh'), REDIS_ENTRYPOINT, { mode: 0o755 });
      if (name === 'nginx') await writeFile(join(dir.path, 'default.conf'), NGINX_DEFAULT);
      await sh('docker', ['build', '-q', '-t', tag, dir.path], { timeoutMs: 300_000 });
    } finally {
      await dir.remove();
    }
  }
}

/**
 * `postgres:17` as on Docker Hub (from Debian trixie's PostgreSQL 17): a server whose major version
 * differs from the machine's tools (15), and the client image a runner-side backup picks for it.
 * Not in the mirror: only the machine's own engine (the runner's Docker) needs it.
 */
export const HUB_POSTGRES_17 = 'postgres:17';

export async function ensureHubPostgres17(): Promise<string> {
  const base = await ensurePostgres17BaseImage();
  return withBuildLock(async () => {
    const dir = await tempDir('skiff-hub-postgres17');
    try {
      await writeFile(join(dir.path, 'Dockerfile'), `${postgresDockerfile(base, '17').join('\n')}\n`);
      await writeFile(join(dir.path, 'entrypoint.sh'), POSTGRES_ENTRYPOINT, { mode: 0o755 });
      await sh('docker', ['build', '-q', '-t', HUB_POSTGRES_17, dir.path], { timeoutMs: 300_000 });
    } finally {
      await dir.remove();
    }
    return HUB_POSTGRES_17;
  });
}

const MARIADB_ENTRYPOINT = `#!/bin/sh
# The official image's first start: a root password required (MARIADB_ or MYSQL_ROOT_PASSWORD),
# root reachable over TCP with it (inside, root keeps its socket login), MARIADB_DATABASE / MARIADB_USER / MARIADB_PASSWORD made; then
# mariadbd on every address, as the mysql user.
set -eu
if [ "\${1#-}" != "$1" ]; then set -- mariadbd "$@"; fi
if [ "$1" = mariadbd ]; then
  mkdir -p /run/mysqld /var/lib/mysql
  chown mysql:mysql /run/mysqld /var/lib/mysql
  if [ ! -d /var/lib/mysql/mysql ]; then
    root_password=\${MARIADB_ROOT_PASSWORD:-\${MYSQL_ROOT_PASSWORD:?is required (as by the official image)}}
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
    init=/run/mysqld/skiff-init.sql
    # An init file takes one statement per line.
    {
      echo "CREATE USER 'root'@'%' IDENTIFIED BY '$root_password';"
      echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
      if [ -n "\${MARIADB_DATABASE:-}" ]; then echo "CREATE DATABASE \\\`$MARIADB_DATABASE\\\`;"; fi
      if [ -n "\${MARIADB_USER:-}" ]; then
        echo "CREATE USER '$MARIADB_USER'@'%' IDENTIFIED BY '$MARIADB_PASSWORD';"
        echo "GRANT ALL ON \\\`$MARIADB_DATABASE\\\`.* TO '$MARIADB_USER'@'%';"
      fi
    } >"$init"
    chown mysql "$init"
    set -- "$@" --init-file="$init"
  fi
  exec "$@" --user=mysql --bind-address=0.0.0.0 --skip-name-resolve --innodb-buffer-pool-size=64M --skip-log-bin
fi
exec "$@"
`;

/** The official mariadb image's interface over a Debian base with that release's server and client. */
async function buildMariadbStandIn(base: string, tag: string): Promise<string> {
  return withBuildLock(async () => {
    const dir = await tempDir('skiff-hub-mariadb');
    try {
      await writeFile(
        join(dir.path, 'Dockerfile'),
        [
          `FROM ${base}`,
          'COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh',
          'VOLUME /var/lib/mysql',
          'ENTRYPOINT ["docker-entrypoint.sh"]',
          'EXPOSE 3306',
          'CMD ["mariadbd"]',
          '',
        ].join('\n'),
      );
      await writeFile(join(dir.path, 'entrypoint.sh'), MARIADB_ENTRYPOINT, { mode: 0o755 });
      await sh('docker', ['build', '-q', '-t', tag, dir.path], { timeoutMs: 300_000 });
    } finally {
      await dir.remove();
    }
    return tag;
  });
}

/** `mariadb:10.11` (bookworm's, the runner's client's release) and `mariadb:11.8` (trixie's, another one), on the machine's engine. */
export const HUB_MARIADB = { '10.11': 'mariadb:10.11', '11.8': 'mariadb:11.8' } as const;

export async function ensureHubMariadb(release: keyof typeof HUB_MARIADB): Promise<string> {
  const base = release === '10.11' ? await ensureMariadbImage() : await ensureMariadb11BaseImage();
  return buildMariadbStandIn(base, HUB_MARIADB[release]);
}

/**
 * `python:3.11-slim` for linux/amd64 and linux/arm64 (scripts/setup-testbed.sh makes both from
 * Debian's .debs): in the mirror, one index over the two, as Docker Hub serves it.
 */
export const HUB_PYTHON = 'python:3.11-slim';
const PYTHON_PLATFORMS = { amd64: 'skiff-testbed/python:3.11-amd64', arm64: 'skiff-testbed/python:3.11-arm64' } as const;
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_INDEX = 'application/vnd.docker.distribution.manifest.list.v2+json';

async function pushPythonIndex(mirror: Registry): Promise<void> {
  const manifests: { mediaType: string; digest: string; size: number; platform: { architecture: string; os: string } }[] = [];
  for (const [architecture, image] of Object.entries(PYTHON_PLATFORMS)) {
    await requirePart(`${image} (scripts/setup-testbed.sh)`, ['docker', 'image', 'inspect', image]);
    const tag = `3.11-slim-${architecture}`;
    const target = `${mirror.address}/library/python:${tag}`;
    await sh('docker', ['tag', image, target]);
    await sh('docker', ['push', '-q', target], { timeoutMs: 180_000 });
    await sh('docker', ['image', 'rm', target]);
    const response = await fetch(`http://${mirror.address}/v2/library/python/manifests/${tag}`, { headers: { accept: DOCKER_MANIFEST } });
    const body = Buffer.from(await response.arrayBuffer());
    const digest = response.headers.get('docker-content-digest');
    if (!response.ok || !digest) throw new Error(`test bed: the mirror has no manifest for library/python:${tag} (${response.status})`);
    manifests.push({ mediaType: DOCKER_MANIFEST, digest, size: body.length, platform: { architecture, os: 'linux' } });
  }
  const put = await fetch(`http://${mirror.address}/v2/library/python/manifests/${HUB_PYTHON.split(':')[1]!}`, {
    method: 'PUT',
    headers: { 'content-type': DOCKER_INDEX },
    body: JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_INDEX, manifests }),
  });
  if (!put.ok) throw new Error(`test bed: the mirror refused the python index (${put.status}: ${await put.text()})`);
}

/**
 * An anonymous registry holding the stand-ins as `library/<name>:<tag>`, for a server's
 * `hubMirror`; with `python`, also the two-platform `python:3.11-slim`.
 */
export async function startHubMirror(options: { python?: boolean } = {}): Promise<Registry> {
  await ensureHubImages();
  const mirror = await startRegistry({ anonymous: true });
  try {
    for (const tag of Object.values(HUB_IMAGES)) {
      const target = `${mirror.address}/library/${tag}`;
      await sh('docker', ['tag', tag, target]);
      await sh('docker', ['push', '-q', target], { timeoutMs: 180_000 });
      await sh('docker', ['image', 'rm', target]);
    }
    if (options.python) await pushPythonIndex(mirror);
  } catch (error) {
    await mirror.stop();
    throw error;
  }
  return mirror;
}
