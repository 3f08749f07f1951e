import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { quote, render } from '@skiff/shell';
import {
  applyGlobalsCommand,
  backupId,
  SQLITE_LENGTH_CHECK,
  drillQueryCommand,
  dumpCommand,
  filesInPlace,
  REDIS_DRILL_SCRIPT,
  SQLITE_DRILL_SCRIPT,
  GLOBALS_FILTER_AWK,
  globalsCommand,
  hostBackupScript,
  parseExistingGlobals,
  parseSources,
  restoreCommand,
  secretFileContent,
  storedExtension,
  type Source,
} from '../src';

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

  it('redis streams an RDB with REDISCLI_AUTH read from a file; sqlite snapshots with VACUUM INTO; files tar host paths and volumes', () => {
    expect(render(dumpCommand(one('- type: redis\n  host: 127.0.0.1\n  port: 6379\n  password: pw\n'), '/tmp/r'))).toBe(
      `REDISCLI_AUTH="$(cat /tmp/r)" redis-cli -h 127.0.0.1 -p 6379 --no-auth-warning --rdb -`,
    );
    expect(render(dumpCommand(one('- type: sqlite\n  path: /srv/app/db.sqlite\n')))).toMatch(/^sh -c '.*VACUUM INTO .* \/srv\/app\/db\.sqlite$/s);
    expect(render(dumpCommand(one('- type: files\n  paths: [/srv/uploads]\n')))).toBe(`tar --create '--file=-' --numeric-owner '--directory=/' -- srv/uploads`);
    expect(render(dumpCommand(one('- type: files\n  paths: [/etc/app]\n  volumes: [shop_media]\n  helper-image: busybox:1\n')))).toBe(
      `docker run --rm '--network=none' '--user=0:0' --label 'skiff.backup=files' -v /etc/app:/backup/host/etc/app:ro -v shop_media:/backup/volumes/shop_media:ro --entrypoint tar busybox:1 --create '--file=-' --numeric-owner '--directory=/backup' -- host/etc/app volumes/shop_media`,
    );
  });

  it('restores in one transaction, and only cleans with force', () => {
    const src = one('- type: postgres\n  service: db\n  database: app\n');
    // Read to the end: pg_restore need not read the archive's last bytes, and the feed must not die of SIGPIPE.
    expect(render(restoreCommand(src, { database: 'app2', force: false }))).toBe(
      `{ { docker compose exec -T db pg_restore --no-password '--dbname=app2' --no-owner --exit-on-error --single-transaction ; } || exit $?; cat >/dev/null; }`,
    );
    expect(render(restoreCommand(src, { database: 'app', force: true }))).toMatch(/--clean --if-exists ; \} \|\| exit/);
  });
});

describe('globals: pg_dumpall --globals-only beside the dump', () => {
  it("runs where the dump runs, with the same credentials (PGPASSFILE on the host, the container's own variable inside)", () => {
    expect(render(globalsCommand(one('- type: postgres\n  service: db\n  project: shop\n  database: app\n  user: postgres\n  globals: true\n')))).toBe(
      'docker compose -p shop exec -T db pg_dumpall -U postgres --no-password --globals-only',
    );
    expect(
      render(
        globalsCommand(
          one('- type: postgres\n  container: shop-db-1\n  database: app\n  user: postgres\n  password-env: POSTGRES_PASSWORD\n  globals: true\n'),
        ),
      ),
    ).toBe(`docker exec shop-db-1 sh -c 'PGPASSWORD="$POSTGRES_PASSWORD" exec "$@"' sh pg_dumpall -U postgres --no-password --globals-only`);
    const host = one('- type: postgres\n  host: 127.0.0.1\n  port: 5432\n  user: postgres\n  database: app\n  password: hunter2\n  globals: true\n');
    expect(host.globals).toBe(true);
    expect(render(globalsCommand(host, '/tmp/skiff-backup-1.secret'))).toBe(
      'PGPASSFILE=/tmp/skiff-backup-1.secret pg_dumpall -h 127.0.0.1 -p 5432 -U postgres --no-password --globals-only',
    );
    expect(storedExtension({ extension: 'globals.sql', describe: '' }, 'gzip', true)).toBe('globals.sql.gz.age');
  });

  it('the host script dumps the globals first into their own partial, checks them, and renames them before the dump', () => {
    const src = one('- type: postgres\n  service: db\n  database: app\n  user: postgres\n  globals: true\n  compression: gzip\n');
    const { script, globalsChecks } = hostBackupScript(
      '/var/backups/skiff/postgres-app',
      {
        source: src,
        id: 'postgres-app-20260101T000000Z',
        time: new Date(0),
        dump: dumpCommand(src),
        globals: globalsCommand(src),
        minSize: 1024,
        maxShrinkPercent: 50,
        encryptRecipients: [],
        tools: {},
      },
      'postgres-app-20260101T000000Z.dump.gz',
      'postgres-app-20260101T000000Z.globals.sql.gz',
    );
    const lines = script.map((line) => render(line));
    expect(lines.slice(0, 10)).toEqual([
      'umask 077',
      'dir=/var/backups/skiff/postgres-app',
      'made=; d="$dir"; while [ ! -d "$d" ]; do made="$d"; d=$(dirname -- "$d"); done',
      'mkdir -p -- "$dir"',
      'final=/var/backups/skiff/postgres-app/postgres-app-20260101T000000Z.dump.gz',
      'partial="$final.partial"',
      'gfinal=/var/backups/skiff/postgres-app/postgres-app-20260101T000000Z.globals.sql.gz',
      'gpartial="$gfinal.partial"',
      'cleanup() { rm -f -- "$partial" "$gpartial"; if [ -n "$made" ]; then d="$dir"; while rmdir -- "$d" 2>/dev/null && [ "$d" != "$made" ]; do d=$(dirname -- "$d"); done; fi; }',
      'trap cleanup EXIT',
    ]);
    expect(lines[10]).toBe("trap 'exit 143' TERM INT HUP");
    // Written and hashed in one pass; the trailer check reads the whole file (no reader that stops early).
    expect(lines[11]).toBe(
      'gstored=$( docker compose exec -T db pg_dumpall -U postgres --no-password --globals-only | gzip -c | tee -- "$gpartial" | sha256sum)',
    );
    expect(lines).toContain(`t=$(gzip -dc -- "$gpartial" | tail -c 300 | tr -d '\\000')`);
    expect(lines).toContain(
      `case "$t" in *'-- PostgreSQL database cluster dump complete'*) ;; *) { echo 'the globals lack the pg_dumpall cluster dump header and "complete" trailer' >&2; exit 5; } ;; esac`,
    );
    // The dump is checked by pg_restore reading every block while it is written; the check drains what it does not read.
    expect(lines).toContain(
      `stored=$( { { { docker compose exec -T db pg_dump -U postgres --no-password '--format=custom' '--dbname=app' ; } | tee -- /dev/fd/3 >&4; } 3>&1 | ` +
        `{ { out=$( docker compose exec -T db pg_restore '--file=/dev/null' 2>&1 >/dev/null) || { printf '%s\\n' "$out" | tail -n 8 >&2; { echo 'pg_restore could not read the whole archive; not keeping it' >&2; exit 5; } ; } ; } || exit $?; cat >/dev/null; } >/dev/null; } 4>&1 | gzip -c | tee -- "$partial" | sha256sum)`,
    );
    const dumpAt = lines.findIndex((line) => line.includes('pg_dump -U'));
    expect(dumpAt).toBeGreaterThan(11);
    expect(lines.slice(-4)).toEqual([
      'mv -f -- "$gpartial" "$gfinal"',
      'mv -f -- "$partial" "$final"',
      'printf "size=%s\\nsha256=%s\\n" "$size" "$sha"',
      'printf "globals-size=%s\\nglobals-sha256=%s\\n" "$gsize" "$gsha"',
    ]);
    expect(globalsChecks).toEqual(['exit status 0 (pipefail)', 'not empty', 'gzip -dc', 'pg_dumpall cluster dump header and "complete" trailer', 'sha256']);
  });

  it('restore applies them through a filter that leaves out the roles and tablespaces the target already has, with every other statement required to succeed', () => {
    const src = one('- type: postgres\n  service: db\n  database: app\n  user: postgres\n  globals: true\n');
    const existing = parseExistingGlobals('rpostgres\nr"Weird ""One"\ntpg_default\ntpg_global\n');
    expect(existing).toEqual({ roles: ['postgres', '"Weird ""One"'], tablespaces: ['pg_default', 'pg_global'] });
    expect(render(applyGlobalsCommand(src, existing, undefined, ['cat', '--', '/b/g.sql']))).toBe(
      `cat -- /b/g.sql | SKIFF_ROLES='postgres\n"Weird ""One"' SKIFF_TABLESPACES='pg_default\npg_global' awk ${render([GLOBALS_FILTER_AWK])} | docker compose exec -T db psql -U postgres --no-password -X -q -v 'ON_ERROR_STOP=1' '--dbname=postgres' >/dev/null`,
    );
  });

  it('the filter (run by awk) on what pg_dumpall writes: existing roles untouched, missing ones created with their attributes, memberships kept', () => {
    const dump = [
      '--',
      '-- PostgreSQL database cluster dump',
      '--',
      '',
      '\\restrict abc',
      '',
      'SET default_transaction_read_only = off;',
      '',
      'CREATE ROLE "Weird ""One";',
      'ALTER ROLE "Weird ""One" WITH NOSUPERUSER INHERIT NOLOGIN;',
      'CREATE ROLE "Weird ""One"" Two";',
      'ALTER ROLE "Weird ""One"" Two" WITH NOSUPERUSER INHERIT NOLOGIN;',
      'CREATE ROLE postgres;',
      "ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:old';",
      'CREATE ROLE postgres_reader;',
      "ALTER ROLE postgres_reader WITH LOGIN CONNECTION LIMIT 7 PASSWORD 'SCRAM-SHA-256$4096:x';",
      "ALTER ROLE postgres SET search_path TO 'a';",
      "ALTER ROLE postgres_reader SET search_path TO 'b';",
      "CREATE TABLESPACE fast OWNER postgres LOCATION '/ssd';",
      "CREATE TABLESPACE pg_defaultish OWNER postgres LOCATION '/x';",
      'GRANT pg_read_all_data TO postgres_reader GRANTED BY postgres;',
      '\\unrestrict abc',
      '',
      '--',
      '-- PostgreSQL database cluster dump complete',
      '--',
      '',
    ].join('\n');
    const filtered = execFileSync('awk', [GLOBALS_FILTER_AWK], {
      input: dump,
      env: { PATH: process.env.PATH, SKIFF_ROLES: 'postgres\n"Weird ""One"', SKIFF_TABLESPACES: 'pg_default\nfast' },
    }).toString();
    const removed = dump.split('\n').filter((line) => !filtered.split('\n').includes(line));
    expect(removed).toEqual([
      'CREATE ROLE "Weird ""One";',
      'ALTER ROLE "Weird ""One" WITH NOSUPERUSER INHERIT NOLOGIN;',
      'CREATE ROLE postgres;',
      "ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS PASSWORD 'SCRAM-SHA-256$4096:old';",
      "ALTER ROLE postgres SET search_path TO 'a';",
      "CREATE TABLESPACE fast OWNER postgres LOCATION '/ssd';",
    ]);
  });

  it('is only for postgres', () => {
    expect(parseSources('- type: mysql\n  database: shop\n  globals: true\n').problems).toEqual(['entry 1: "globals" is only for postgres']);
    expect(parseSources('- type: postgres\n  database: shop\n  globals: yes please\n').problems).toEqual(['entry 1: "globals" must be true or false']);
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

describe('drill queries run where the tools of the source are', () => {
  const target = (path: string) => ({ path, force: false });
  const runScript = (script: string, args: string[], path: string, input?: Buffer) =>
    spawnSync('sh', ['-c', script, 'sh', ...args], { env: { PATH: path }, input, encoding: 'utf8' });

  it('Redis and SQLite in a Compose service: the restored file is fed into the service, not read by host tools', () => {
    const redis = one('- type: redis\n  service: cache\n  project: shop\n');
    const sqlite = one('- type: sqlite\n  service: app\n  project: shop\n  path: /data/app.db\n');
    expect(render(drillQueryCommand(redis, target('/tmp/skiff_drill_x/'), undefined))).toBe(
      `cat -- /tmp/skiff_drill_x/dump.rdb | docker compose -p shop exec -T cache sh -c ${quote(REDIS_DRILL_SCRIPT)} sh -`,
    );
    expect(render(drillQueryCommand(sqlite, target('/tmp/skiff_drill_x.sqlite'), 'select count(*) from notes'))).toBe(
      `cat -- /tmp/skiff_drill_x.sqlite | docker compose -p shop exec -T app sh -c ${quote(SQLITE_DRILL_SCRIPT)} sh - 'select count(*) from notes'`,
    );
    expect(render(drillQueryCommand(one('- type: sqlite\n  path: /srv/app.db\n'), target('/tmp/d.sqlite'), undefined))).toBe(
      `sh -c ${quote(SQLITE_DRILL_SCRIPT)} sh /tmp/d.sqlite`,
    );
  });

  it('a server without redis-check-rdb or sqlite3 fails the drill instead of passing it with no report', () => {
    // A PATH with the shell's basics and none of the database tools, like a Docker-only server.
    const bin = mkdtempSync(join(tmpdir(), 'skiff-notools-'));
    try {
      for (const tool of ['sh', 'cat', 'sed', 'tail', 'mktemp', 'rm']) symlinkSync(whereIs(tool), join(bin, tool));
      const redis = runScript(REDIS_DRILL_SCRIPT, ['/dev/null'], bin);
      expect(redis.status).not.toBe(0);
      expect(redis.stderr).toMatch(/redis-check-rdb failed on the restored RDB/);
      const sqlite = runScript(SQLITE_DRILL_SCRIPT, ['-'], bin, Buffer.from('SQLite format 3\0'));
      expect(sqlite.status).not.toBe(0);
      expect(sqlite.stdout).toBe('');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('counts what the tools report, from a file or from stdin', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-drill-'));
    try {
      const db = join(dir, 'app.db');
      execFileSync('sqlite3', [
        db,
        "create table notes (id integer primary key, t text); insert into notes (t) values ('a'), ('b'); create table tags (id integer)",
      ]);
      const fromPath = runScript(SQLITE_DRILL_SCRIPT, [db], process.env.PATH!);
      expect([fromPath.status, fromPath.stdout]).toEqual([0, 'notes|2\ntags|0\n']);
      const fromStdin = runScript(SQLITE_DRILL_SCRIPT, ['-', 'select max(id) from notes'], process.env.PATH!, readFileSync(db));
      expect([fromStdin.status, fromStdin.stdout]).toEqual([0, '2\n']);
      const notRdb = runScript(REDIS_DRILL_SCRIPT, ['-'], process.env.PATH!, Buffer.from('not an rdb'));
      expect(notRdb.status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

function whereIs(command: string): string {
  return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim();
}

describe('the files helper container', () => {
  it('restores as root whatever USER the helper image sets (a postgres image runs as postgres)', () => {
    const source = one('- type: files\n  volumes: [shop_media]\n  helper-image: postgres:16\n');
    expect(render(filesInPlace(source, true))).toMatch(
      /^docker run --rm -i '--network=none' '--user=0:0' --label 'skiff\.restore=files' -v shop_media:\/backup\/volumes\/shop_media --entrypoint sh postgres:16 -c /,
    );
    expect(render(filesInPlace(source, true, 'finish'))).toMatch(/^docker run --rm '--network=none' '--user=0:0' /);
  });
});

describe('the SQLite stream check', () => {
  const check = (input: Buffer) => spawnSync('sh', ['-c', SQLITE_LENGTH_CHECK], { input, encoding: 'utf8' });

  it('passes a whole .backup snapshot and refuses one cut short, an empty one and another format', () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-sqlite-'));
    try {
      const db = join(dir, 'app.db');
      execFileSync('sqlite3', [
        db,
        'create table notes (id integer primary key, body blob); insert into notes (body) select randomblob(900) from generate_series(1, 3000)',
      ]);
      const whole = readFileSync(db);
      expect(whole.length).toBeGreaterThan(2_000_000);
      expect(check(whole).status).toBe(0);
      const cut = check(whole.subarray(0, whole.length - 4096));
      expect(cut.status).toBe(5);
      expect(cut.stderr).toMatch(/the SQLite backup is \d+ bytes, but its header says \d+ pages of 4096 bytes; not keeping it/);
      expect(check(whole.subarray(0, 1_000_000)).status).toBe(5);
      expect(check(Buffer.alloc(0)).stderr).toMatch(/shorter than its 100-byte header/);
      expect(check(Buffer.concat([whole, Buffer.from('trailing')])).status).toBe(5);
      expect(check(Buffer.from('CREATE TABLE notes (id integer);\n'.repeat(1000))).status).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
