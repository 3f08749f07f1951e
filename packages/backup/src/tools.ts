import { quote, raw, type Command } from '@skiff/shell';
import { envFromFile, inPlace, withContainerSecret } from './place';
import type { Source } from './sources';

/**
 * Pure builders of the commands that read and write each kind of source. Every dump writes the
 * raw backup to stdout and nothing else; its exit status is the truth about whether it worked.
 */

/** A host-level tool's secret file: what goes in it, uploaded 0600 and removed by the script's trap. */
export function secretFileContent(source: Source): string | undefined {
  if (source.password === undefined || source.place.kind !== 'host') return undefined;
  if (source.type === 'postgres') return `*:*:*:*:${source.password.replace(/\\/g, '\\\\').replace(/:/g, '\\:')}\n`;
  if (source.type === 'mysql') return `[client]\npassword="${source.password.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"\n`;
  if (source.type === 'redis') return source.password;
  return undefined;
}

function pgConnection(source: Source): string[] {
  return [
    ...(source.place.kind === 'host' && source.hostname ? ['-h', source.hostname] : []),
    ...(source.place.kind === 'host' && source.port ? ['-p', String(source.port)] : []),
    ...(source.user ? ['-U', source.user] : []),
  ];
}

/** libpq's settings for a host-level tool: file paths and modes only, never a secret itself. */
function pgEnvironment(source: Source, secretFile: string | undefined): Record<string, string> {
  return {
    ...(source.password !== undefined && secretFile ? { PGPASSFILE: secretFile } : {}),
    ...(source.sslMode ? { PGSSLMODE: source.sslMode } : {}),
    ...(source.runner?.caFile ? { PGSSLROOTCERT: source.runner.caFile } : {}),
  };
}

/**
 * A host-level tool with its environment. Reached from the runner with a version-matched client
 * image, the tool runs in a throwaway container of that image on the host network, which sees
 * the source's private directory (credentials, CA) read-only at the same path.
 */
export function hostTool(source: Source, argv: readonly string[], environment: Record<string, string> = {}): Command {
  const image = source.runner?.clientImage;
  if (image === undefined) return [...Object.entries(environment).map(([name, value]) => raw(`${name}=${quote(value)}`)), ...argv];
  return [
    'docker',
    'run',
    '--rm',
    '-i',
    '--network=host',
    '--label',
    `skiff.backup=${source.name}`,
    '-v',
    `${source.runner!.directory}:${source.runner!.directory}:ro`,
    ...Object.entries(environment).flatMap(([name, value]) => ['-e', `${name}=${value}`]),
    // The official images' entrypoints only step in for their server; any other command runs as is.
    image,
    ...argv,
  ];
}

/** Any PostgreSQL client tool, with the source's connection and credentials. */
export function pgTool(source: Source, argv: readonly string[], secretFile: string | undefined, options: { stdin?: boolean } = {}): Command {
  const args = [argv[0]!, ...pgConnection(source), '--no-password', ...argv.slice(1)];
  if (source.place.kind === 'host') return hostTool(source, args, pgEnvironment(source, secretFile));
  return inPlace(source.place, withContainerSecret('PGPASSWORD', source.passwordEnv, args), options);
}

/** MariaDB's and MySQL's clients name their TLS options differently; the mode names are libpq's for both. */
function mysqlTlsOptions(source: Source): string[] {
  const mode = source.sslMode;
  const ca = source.runner?.caFile;
  if (source.runner?.mysqlClient === 'mysql') {
    const names = {
      disable: 'DISABLED',
      allow: 'PREFERRED',
      prefer: 'PREFERRED',
      require: 'REQUIRED',
      'verify-ca': 'VERIFY_CA',
      'verify-full': 'VERIFY_IDENTITY',
    };
    return [...(mode ? [`--ssl-mode=${names[mode]}`] : []), ...(ca ? [`--ssl-ca=${ca}`] : [])];
  }
  // MariaDB's client checks the certificate only together with the host name: verify-ca means verify-full there.
  switch (mode) {
    case undefined:
    case 'allow':
    case 'prefer':
      return ca ? [`--ssl-ca=${ca}`] : [];
    case 'disable':
      return ['--skip-ssl'];
    case 'require':
      // Encryption without checking whom: MariaDB 11.4's client would otherwise check the certificate by default.
      return ['--ssl', '--skip-ssl-verify-server-cert', ...(ca ? [`--ssl-ca=${ca}`] : [])];
    case 'verify-ca':
    case 'verify-full':
      return ['--ssl', '--ssl-verify-server-cert', ...(ca ? [`--ssl-ca=${ca}`] : [])];
  }
}

export function mysqlTool(
  source: Source,
  tool: 'mysqldump' | 'mysql',
  args: readonly string[],
  secretFile: string | undefined,
  options: { stdin?: boolean } = {},
): Command {
  if (source.place.kind === 'host') {
    // MariaDB 11's images and packages have only the mariadb-* names.
    const name = source.runner?.mysqlClient === 'mariadb' ? (tool === 'mysqldump' ? 'mariadb-dump' : 'mariadb') : tool;
    return hostTool(source, [
      name,
      // --defaults-extra-file must come first; it names a 0600 file, never the password itself.
      ...(source.password !== undefined && secretFile ? [`--defaults-extra-file=${secretFile}`] : []),
      ...(source.runner ? mysqlTlsOptions(source) : []),
      ...(source.hostname ? ['-h', source.hostname] : []),
      ...(source.port ? ['-P', String(source.port)] : []),
      ...(source.user ? ['-u', source.user] : []),
      ...args,
    ]);
  }
  return inPlace(source.place, withContainerSecret('MYSQL_PWD', source.passwordEnv, [tool, ...(source.user ? ['-u', source.user] : []), ...args]), options);
}

function redisCli(source: Source, args: readonly string[], secretFile: string | undefined): Command {
  const cli = [
    'redis-cli',
    ...(source.place.kind === 'host' && source.hostname ? ['-h', source.hostname] : []),
    ...(source.place.kind === 'host' && source.port ? ['-p', String(source.port)] : []),
    '--no-auth-warning',
    ...args,
  ];
  if (source.place.kind === 'host') {
    return source.password !== undefined && secretFile ? [...envFromFile('REDISCLI_AUTH', secretFile), ...cli] : cli;
  }
  return inPlace(source.place, withContainerSecret('REDISCLI_AUTH', source.passwordEnv, cli));
}

/**
 * A consistent SQLite snapshot (a raw copy of a live file can be torn): `VACUUM INTO` copies the
 * database as of one read transaction, so an app writing all along (WAL) neither waits nor makes
 * it start over — SQLite's online backup API, `.backup`, starts over after every commit of another
 * process and never ends while an app keeps writing; it is used only by a sqlite3 older than 3.27,
 * which has no VACUUM INTO. The snapshot must pass `PRAGMA integrity_check`, then it is streamed out.
 */
export const SQLITE_SNAPSHOT_SCRIPT = [
  'set -eu',
  'snap=$(mktemp)',
  'err=$(mktemp)',
  'trap \'rm -f "$snap" "$err"\' EXIT',
  'if ! sqlite3 "$1" "VACUUM INTO \'$snap\'" 2>"$err"; then',
  '  if grep -q "syntax error" "$err"; then sqlite3 "$1" ".backup \'$snap\'"; else cat "$err" >&2; exit 1; fi',
  'fi',
  'check=$(sqlite3 "$snap" "PRAGMA integrity_check")',
  'if [ "$check" != ok ]; then echo "sqlite integrity_check of the snapshot failed: $check" >&2; exit 1; fi',
  'cat "$snap"',
].join('\n');

/** The dump: raw backup data on stdout. */
export function dumpCommand(source: Source, secretFile?: string): Command {
  switch (source.type) {
    case 'postgres':
      return pgTool(source, ['pg_dump', '--format=custom', `--dbname=${source.database!}`], secretFile);
    case 'mysql':
      // No --databases: the dump then carries no CREATE DATABASE / USE, so it restores into any
      // target (a copy, a drill's scratch database) instead of always over the original.
      return mysqlTool(source, 'mysqldump', ['--single-transaction', '--routines', '--events', '--triggers', '--hex-blob', source.database!], secretFile);
    case 'redis':
      return redisCli(source, ['--rdb', '-'], secretFile);
    case 'sqlite':
      return inPlace(source.place, ['sh', '-c', SQLITE_SNAPSHOT_SCRIPT, 'sh', source.path!]);
    case 'files':
      return filesDump(source);
  }
}

/**
 * `pg_dumpall --globals-only`: the roles (with their password hashes) and tablespaces a database
 * dump refers to but does not contain. Same place and credentials as the dump; reading
 * pg_authid needs a superuser.
 */
export function globalsCommand(source: Source, secretFile?: string): Command {
  return pgTool(source, ['pg_dumpall', '--globals-only'], secretFile);
}

function filesDump(source: Source): Command {
  const relative = (source.paths ?? []).map((path) => path.replace(/^\/+/, '') || '.');
  if (!source.volumes?.length) return ['tar', '--create', '--file=-', '--numeric-owner', '--directory=/', '--', ...relative];
  // Named volumes live in Docker's storage: mount them (and the host paths) read-only into a helper.
  const mounts = [
    ...(source.paths ?? []).flatMap((path) => ['-v', `${path}:/backup/host/${path.replace(/^\/+/, '')}:ro`]),
    ...source.volumes.flatMap((volume) => ['-v', `${volume}:/backup/volumes/${volume}:ro`]),
  ];
  const members = [...relative.map((path) => `host/${path}`), ...source.volumes.map((volume) => `volumes/${volume}`)];
  // As root whatever the image's USER: tar must read every owner's files and keep their owners.
  return [
    'docker',
    'run',
    '--rm',
    '--network=none',
    '--user=0:0',
    '--label',
    `skiff.backup=${source.name}`,
    ...mounts,
    '--entrypoint',
    'tar',
    source.helperImage!,
    '--create',
    '--file=-',
    '--numeric-owner',
    '--directory=/backup',
    '--',
    ...members,
  ];
}

/** Versions of the dump tools, recorded in the manifest (best effort: never fails a backup). */
export function toolVersionCommand(source: Source): Command | undefined {
  switch (source.type) {
    case 'postgres':
      return source.place.kind === 'host' ? hostTool(source, ['pg_dump', '--version']) : inPlace(source.place, ['pg_dump', '--version']);
    case 'mysql':
      return source.place.kind === 'host'
        ? hostTool(source, [source.runner?.mysqlClient === 'mariadb' ? 'mariadb-dump' : 'mysqldump', '--version'])
        : inPlace(source.place, ['mysqldump', '--version']);
    case 'redis':
      return inPlace(source.place, ['redis-cli', '--version']);
    case 'sqlite':
      return inPlace(source.place, ['sqlite3', '--version']);
    case 'files':
      return source.volumes?.length ? undefined : ['tar', '--version'];
  }
}
