import { describe, expect, it } from 'vitest';
import { render } from '@skiff/shell';
import { backupId, dumpCommand, parseSources, restoreCommand, secretFileContent, storedExtension, type Source } from '../src/index';

function one(yaml: string): Source {
  const { sources, problems } = parseSources(yaml);
  expect(problems).toEqual([]);
  return sources[0]!;
}

describe('dump command builders', () => {
  it('postgres in a Compose service, a container and on the host (password via PGPASSFILE only)', () => {
    expect(render(dumpCommand(one('- type: postgres\n  service: db\n  project: shop\n  database: app\n  user: postgres\n')))).toBe(
      `docker compose -p shop exec -T db pg_dump -U postgres --no-password '--format=custom' '--dbname=app'`,
    );
    expect(render(dumpCommand(one('- type: postgres\n  container: shop-db-1\n  database: app\n  user: app\n  password-env: POSTGRES_PASSWORD\n')))).toBe(
      `docker exec shop-db-1 sh -c 'PGPASSWORD="$POSTGRES_PASSWORD" exec "$@"' sh pg_dump -U app --no-password '--format=custom' '--dbname=app'`,
    );
    const host = one('- type: postgres\n  host: 127.0.0.1\n  port: 5432\n  user: app\n  database: app\n  password: "s3:cr\\\\et"\n');
    const line = render(dumpCommand(host, '/tmp/skiff-backup-1.secret'));
    expect(line).toBe(`PGPASSFILE=/tmp/skiff-backup-1.secret pg_dump -h 127.0.0.1 -p 5432 -U app --no-password '--format=custom' '--dbname=app'`);
    expect(line).not.toContain('s3:cr');
    expect(secretFileContent(host)).toBe('*:*:*:*:s3\\:cr\\\\et\n');
  });

  it('mysql keeps the password in the container env or a defaults file', () => {
    expect(render(dumpCommand(one('- type: mysql\n  service: db\n  database: shop\n  user: root\n  password-env: MARIADB_ROOT_PASSWORD\n')))).toBe(
      `docker compose exec -T db sh -c 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec "$@"' sh mysqldump -u root --single-transaction --routines --events --triggers --hex-blob shop`,
    );
    expect(render(dumpCommand(one('- type: mysql\n  database: shop\n  user: root\n  password: pw"x\n'), '/tmp/s'))).toBe(
      `mysqldump '--defaults-extra-file=/tmp/s' -u root --single-transaction --routines --events --triggers --hex-blob shop`,
    );
  });

  it('redis streams an RDB with REDISCLI_AUTH read from a file; sqlite snapshots with .backup; files tar host paths and volumes', () => {
    expect(render(dumpCommand(one('- type: redis\n  host: 127.0.0.1\n  port: 6379\n  password: pw\n'), '/tmp/r'))).toBe(
      `REDISCLI_AUTH="$(cat /tmp/r)" redis-cli -h 127.0.0.1 -p 6379 --no-auth-warning --rdb -`,
    );
    expect(render(dumpCommand(one('- type: sqlite\n  path: /srv/app/db.sqlite\n')))).toMatch(/^sh -c '.*\.backup .* \/srv\/app\/db\.sqlite$/s);
    expect(render(dumpCommand(one('- type: files\n  paths: [/srv/uploads]\n')))).toBe(`tar --create '--file=-' --numeric-owner '--directory=/' -- srv/uploads`);
    expect(render(dumpCommand(one('- type: files\n  paths: [/etc/app]\n  volumes: [shop_media]\n  helper-image: busybox:1\n')))).toBe(
      `docker run --rm '--network=none' --label 'skiff.backup=files' -v /etc/app:/backup/host/etc/app:ro -v shop_media:/backup/volumes/shop_media:ro --entrypoint tar busybox:1 --create '--file=-' --numeric-owner '--directory=/backup' -- host/etc/app volumes/shop_media`,
    );
  });

  it('restores in one transaction, and only cleans with force', () => {
    const src = one('- type: postgres\n  service: db\n  database: app\n');
    expect(render(restoreCommand(src, { database: 'app2', force: false }))).toBe(`docker compose exec -T db pg_restore --no-password '--dbname=app2' --no-owner --exit-on-error --single-transaction`);
    expect(render(restoreCommand(src, { database: 'app', force: true }))).toMatch(/--clean --if-exists$/);
  });
});

describe('sources input', () => {
  it('reports every problem of every entry', () => {
    const { problems } = parseSources('- type: postgres\n  service: db\n  password: x\n- type: nosql\n- type: files\n  paths: [relative]\n');
    expect(problems).toEqual([
      'entry 1: "password" is only for tools on the host; in a container use "password-env" (the container\'s own variable)',
      'entry 1: "database" is required for postgres',
      'entry 2: "type" must be one of postgres, mysql, redis, sqlite, files; got "nosql"',
      'entry 3: "paths" must be absolute; got "relative"',
    ]);
    expect(parseSources('not: a list').problems[0]).toMatch(/must be a YAML list/);
  });

  it('names backups <name>-<UTC time> with per-type extensions', () => {
    expect(backupId('postgres-app', new Date('2026-03-04T05:06:07.890Z'))).toBe('postgres-app-20260304T050607Z');
    expect(storedExtension('postgres', 'none', true)).toBe('dump.age');
    expect(storedExtension('redis', 'gzip', false)).toBe('rdb.gz');
    expect(one('- type: postgres\n  service: db\n  database: app\n').name).toBe('postgres-app');
  });
});
