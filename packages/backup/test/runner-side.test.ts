import { describe, expect, it } from 'vitest';
import { render } from '@skiff/shell';
import {
  clientImageFor,
  dumpCommand,
  majorFromVersionNum,
  mysqlServer,
  mysqlToolVersion,
  parseSources,
  pgMajor,
  restoreCommand,
  runnerOnlyFields,
  toolVersion,
  toolVersionCommand,
  type Source,
} from '../src';
import { oneSource } from './fixtures';

const one = oneSource;
function problemsOf(yaml: string): string {
  return parseSources(yaml).problems.join('\n');
}

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('a database reached over the network: url, sslmode, ca-certificate, client-image', () => {
  it('a managed database URL sets host, port, user, password (decoded), database and sslmode; the type follows from the scheme', () => {
    const source = one('- url: "postgresql://app_owner:p%40ss%3Aw0rd@db.example.com:6543/shop?sslmode=require"\n');
    expect(source).toMatchObject({
      name: 'postgres-shop',
      type: 'postgres',
      place: { kind: 'host' },
      hostname: 'db.example.com',
      port: 6543,
      user: 'app_owner',
      password: 'p@ss:w0rd',
      database: 'shop',
      sslMode: 'require',
    });
    expect(one('- url: postgres://u@[::1]/db\n')).toMatchObject({ hostname: '::1', user: 'u', database: 'db' });
  });

  it('refuses what it cannot pass on, naming the field, and never repeats the URL (it holds the password)', () => {
    const secret = 'hunter2-secret';
    const cases: [string, RegExp][] = [
      [`- url: "redis://u:${secret}@h/db"\n`, /"url" must start with postgresql:\/\/, postgres:\/\/, mysql:\/\/ or mariadb:\/\//],
      [`- url: "postgresql://u:${secret}@h/db?connect_timeout=5"\n`, /"url" has parameter "connect_timeout" that Skiff does not pass on/],
      [`- url: "postgresql://u:${secret}@h/db"\n  host: other\n`, /set "url" or "host", not both/],
      [`- url: "not a url ${secret}"\n`, /"url" must be a URL like postgresql:\/\/.*not shown/],
      [`- url: "postgresql://u:${secret}@h/db?sslmode=require"\n  sslmode: disable\n`, /set "sslmode" in the url or as a field, not both/],
      [`- url: "postgresql://u:${secret}@h/db"\n  sslmode: strict\n`, /"sslmode" must be one of disable, allow, prefer, require, verify-ca, verify-full/],
      [
        `- url: "postgresql://u:${secret}@h/db"\n  sslmode: require\n  ca-certificate: "${CA.replaceAll('\n', '\\n')}"\n`,
        /"ca-certificate" is only checked with sslmode verify-ca or verify-full/,
      ],
      [`- url: "postgresql://u:${secret}@h/db"\n  ca-certificate: not a pem\n`, /"ca-certificate" must be the PEM text/],
      ['- type: redis\n  host: h\n  sslmode: require\n', /"sslmode" is only for postgres and mysql/],
      ['- type: postgres\n  service: db\n  database: d\n  client-image: postgres:{major}\n', /"client-image" is for a server reached over the network/],
    ];
    for (const [yaml, expected] of cases) {
      const text = problemsOf(yaml);
      expect(text, yaml).toMatch(expected);
      expect(text).not.toContain(secret);
    }
  });

  it("url-env reads the URL from a variable the step sets from a secret (a reusable workflow's with: cannot read secrets)", () => {
    const { sources, problems } = parseSources('- name: shop\n  url-env: DATABASE_URL\n', {
      env: { DATABASE_URL: 'postgresql://app:s3cret@db.example.com/shop' },
    });
    expect(problems).toEqual([]);
    expect(sources[0]).toMatchObject({ name: 'shop', type: 'postgres', hostname: 'db.example.com', password: 's3cret', database: 'shop' });
    expect(parseSources('- url-env: DATABASE_URL\n', { env: {} }).problems.join()).toMatch(
      /"url-env" names DATABASE_URL, which is not set or empty: set it from a secret \(env: DATABASE_URL: \$\{\{ secrets.DATABASE_URL \}\}\)/,
    );
    expect(parseSources('- url-env: DATABASE_URL\n  url: postgresql://h/db\n', { env: { DATABASE_URL: 'x' } }).problems.join()).toMatch(
      /set "url" or "url-env", not both/,
    );
  });

  it('a CA given without sslmode means verify-full', () => {
    expect(one(`- url: postgresql://u@h/db\n  ca-certificate: "${CA.replaceAll('\n', '\\n')}"\n`).sslMode).toBe('verify-full');
  });

  it('libpq reads the password file, sslmode and CA from the environment: paths and modes only on the command line', () => {
    const source: Source = {
      ...one('- url: "postgresql://app:s3cret@db.example.com/shop?sslmode=verify-full"\n'),
      runner: { directory: '/run/tmp/skiff-db-1', caFile: '/run/tmp/skiff-db-1/ca.pem' },
    };
    const local = render(dumpCommand(source, '/run/tmp/skiff-db-1/skiff-backup-1.secret'));
    expect(local).toBe(
      "PGPASSFILE=/run/tmp/skiff-db-1/skiff-backup-1.secret PGSSLMODE=verify-full PGSSLROOTCERT=/run/tmp/skiff-db-1/ca.pem pg_dump -h db.example.com -U app --no-password '--format=custom' '--dbname=shop'",
    );
    expect(local).not.toContain('s3cret');
  });

  it("with a client image the tool runs in a throwaway container on the host network, seeing only the source's private directory, read-only", () => {
    const source: Source = {
      ...one('- url: "postgresql://app:s3cret@db.example.com/shop"\n'),
      runner: { directory: '/run/tmp/skiff-db-1', clientImage: 'postgres:17' },
    };
    expect(render(dumpCommand(source, '/run/tmp/skiff-db-1/x.secret'))).toBe(
      "docker run --rm -i '--network=host' --label 'skiff.backup=postgres-shop' -v /run/tmp/skiff-db-1:/run/tmp/skiff-db-1:ro -e 'PGPASSFILE=/run/tmp/skiff-db-1/x.secret' postgres:17 pg_dump -h db.example.com -U app --no-password '--format=custom' '--dbname=shop'",
    );
    expect(render(restoreCommand(source, { database: 'copy', force: false, withoutPrivileges: true }, '/run/tmp/skiff-db-1/x.secret'))).toContain(
      "postgres:17 pg_restore -h db.example.com -U app --no-password '--dbname=copy' --no-owner --no-privileges --exit-on-error --single-transaction",
    );
    expect(render(toolVersionCommand(source)!)).toMatch(/postgres:17 pg_dump --version$/);
  });
});

describe('version matching', () => {
  it("reads majors as PostgreSQL names them (two parts before 10) from server_version_num and the tools' --version", () => {
    expect(majorFromVersionNum('170006\n')).toBe('17');
    expect(majorFromVersionNum('150018')).toBe('15');
    expect(majorFromVersionNum('90624')).toBe('9.6');
    expect(majorFromVersionNum('hello')).toBeUndefined();
    expect(toolVersion('pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n')).toBe('15.18');
    expect(toolVersion('pg_dump (PostgreSQL) 17.6\n')).toBe('17.6');
    expect(pgMajor('15.18')).toBe('15');
    expect(pgMajor('9.6.24')).toBe('9.6');
  });

  it("the client image is the official one tagged with the major version, or the source's own template", () => {
    const source = one('- url: postgresql://u@h/db\n');
    expect(clientImageFor(source, 'postgres', '17')).toBe('postgres:17');
    expect(clientImageFor(source, 'mariadb', '10.11')).toBe('mariadb:10.11');
    expect(clientImageFor({ ...source, clientImage: 'ghcr.io/acme/pg-client:{major}-alpine' }, 'postgres', '16')).toBe('ghcr.io/acme/pg-client:16-alpine');
  });
});

describe('MySQL and MariaDB reached from the runner', () => {
  it('mysql:// and mariadb:// URLs are mysql sources', () => {
    expect(one('- url: "mariadb://shop:pw@db.example.com:3307/shop?sslmode=verify-full"\n')).toMatchObject({
      type: 'mysql',
      hostname: 'db.example.com',
      port: 3307,
      user: 'shop',
      password: 'pw',
      database: 'shop',
      sslMode: 'verify-full',
    });
    expect(one('- url: mysql://u@h/db\n').type).toBe('mysql');
  });

  it('reads the server and the tools as each flavor prints them', () => {
    expect(mysqlServer('10.11.6-MariaDB-0+deb12u1\n')).toEqual({ flavor: 'mariadb', major: '10.11' });
    expect(mysqlServer('11.8.3-MariaDB-0+deb13u1 from Debian')).toEqual({ flavor: 'mariadb', major: '11.8' });
    expect(mysqlServer('8.0.36')).toEqual({ flavor: 'mysql', major: '8.0' });
    expect(mysqlToolVersion('mariadb-dump  Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)')).toEqual({
      flavor: 'mariadb',
      version: '10.11.6',
    });
    expect(mysqlToolVersion('mariadb-dump from 11.8.3-MariaDB, client 10.19 for debian-linux-gnu (x86_64)')).toEqual({ flavor: 'mariadb', version: '11.8.3' });
    expect(mysqlToolVersion('mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)')).toEqual({ flavor: 'mysql', version: '8.0.36' });
  });

  it("the client's own tool names and TLS options, the password in a defaults file only", () => {
    const base = one('- url: "mariadb://shop:s3cret@db.example.com/shop?sslmode=verify-full"\n');
    const runner = { directory: '/t/d', caFile: '/t/d/ca.pem' };
    const mariadb = render(dumpCommand({ ...base, runner: { ...runner, mysqlClient: 'mariadb' } }, '/t/d/x.secret'));
    expect(mariadb).toBe(
      "mariadb-dump '--defaults-extra-file=/t/d/x.secret' --ssl --ssl-verify-server-cert '--ssl-ca=/t/d/ca.pem' -h db.example.com -u shop --single-transaction --routines --events --triggers --hex-blob shop",
    );
    const mysql = render(dumpCommand({ ...base, runner: { ...runner, mysqlClient: 'mysql', clientImage: 'mysql:8.0' } }, '/t/d/x.secret'));
    expect(mysql).toBe(
      "docker run --rm -i '--network=host' --label 'skiff.backup=mysql-shop' -v /t/d:/t/d:ro mysql:8.0 mysqldump '--defaults-extra-file=/t/d/x.secret' '--ssl-mode=VERIFY_IDENTITY' '--ssl-ca=/t/d/ca.pem' -h db.example.com -u shop --single-transaction --routines --events --triggers --hex-blob shop",
    );
    expect(render(dumpCommand({ ...base, sslMode: 'disable', runner: { directory: '/t/d', mysqlClient: 'mariadb' } }))).toContain('mariadb-dump --skip-ssl');
    expect(render(dumpCommand({ ...base, sslMode: 'require', runner: { directory: '/t/d', mysqlClient: 'mariadb' } }))).toContain(
      'mariadb-dump --ssl --skip-ssl-verify-server-cert -h',
    );
    expect(mariadb + mysql).not.toContain('s3cret');
  });

  it('sslmode of a mysql source is for the runner only (the flags depend on the client it picks)', () => {
    expect(runnerOnlyFields([one('- url: "mysql://u@h/db?sslmode=require"\n')])).toEqual([`mysql-db's "sslmode"`]);
    expect(runnerOnlyFields([one('- url: "postgresql://u@h/db?sslmode=require"\n')])).toEqual([]);
  });
});
