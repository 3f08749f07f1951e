import { quote, raw, readToEnd, type Command } from '@skiff/shell';
import type { Source } from './sources';
import { inPlace } from './place';
import { mysqlTool, pgTool } from './tools';

/**
 * Where a restore writes: a database (postgres, mysql), a path on the server (redis, sqlite,
 * files), or — files only — `inPlace`: back into the source's own paths and named volumes.
 */
export interface RestoreTarget {
  database?: string;
  path?: string;
  inPlace?: boolean;
  force: boolean;
  /** postgres: leave out GRANTs (a throwaway server lacks the production roles they name). */
  withoutPrivileges?: boolean;
}

/** How a target reads in logs and summaries. */
export function describeTarget(source: Source, target: RestoreTarget): string {
  if (target.inPlace) return [...(source.paths ?? []), ...(source.volumes ?? []).map((volume) => `volume ${volume}`)].join(', ');
  return target.database ?? target.path!;
}

/** Beside each restored root while the archive is extracted; removed once tar has finished well. */
export const PREVIOUS_DIR = '.skiff-restore-previous';

/**
 * Restores a files backup into the places it came from, in three steps the runner decides
 * between. `extract` (reading the tar on stdin): each root (a host path or a volume's mount) must
 * be empty unless forced; its entries move into `<root>/.skiff-restore-previous`, then the archive
 * is extracted — if tar fails, what it wrote is removed and the previous entries move back.
 * `finish` removes the previous entries, and is run only once the runner knows the whole restore
 * succeeded: tar exits 0 on a stream that stops exactly between two members, so only the feed's
 * own end (a verified file read to its end, a stream the runner sent whole) proves the archive
 * was all there. `undo` puts the previous entries back after a feed that failed. Args: the step,
 * the base directory of the archive's members, force (true/false), then the roots.
 */
export const FILES_IN_PLACE_SCRIPT = [
  'set -eu',
  'step=$1; base=$2; force=$3; shift 3',
  `aside=${PREVIOUS_DIR}`,
  'entries() { for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do if [ -e "$e" ] || [ -L "$e" ]; then [ "$e" = "$1/$aside" ] || printf "%s\\n" "$e"; fi; done; }',
  'put_back() { for root do if [ -d "$root/$aside" ]; then entries "$root" | while IFS= read -r e; do rm -rf -- "$e"; done; for e in "$root/$aside"/* "$root/$aside"/.[!.]* "$root/$aside"/..?*; do if [ -e "$e" ] || [ -L "$e" ]; then mv -- "$e" "$root/"; fi; done; rmdir -- "$root/$aside"; fi; done; }',
  'case "$step" in',
  '  finish) for root do rm -rf -- "${root:?}/$aside"; done; exit 0 ;;',
  '  undo) put_back "$@"; echo "the restore did not complete: the previous contents were put back" >&2; exit 0 ;;',
  'esac',
  'for root do',
  '  if [ -e "$root/$aside" ]; then echo "$root/$aside exists: an earlier restore was interrupted; its previous contents are there. Move them back or remove them, then restore again" >&2; exit 20; fi',
  '  if [ "$force" != true ] && [ -n "$(entries "$root" 2>/dev/null)" ]; then echo "refusing to restore: $root is not empty; set force: true to replace its contents" >&2; exit 20; fi',
  'done',
  'for root do mkdir -p -- "$root/$aside"; entries "$root" | while IFS= read -r e; do mv -- "$e" "$root/$aside/"; done; done',
  'if tar --extract --file=- --numeric-owner --directory="$base"; then cat >/dev/null; exit 0; fi',
  'status=$?',
  'put_back "$@"',
  'echo "tar failed (exit $status): the previous contents were put back" >&2',
  'exit "$status"',
].join('\n');

/**
 * A Redis restore, reading the RDB on stdin. The target is the RDB file, or Redis's data
 * directory (an existing directory, or a path ending in /): there the restore writes what Redis
 * loads at its next start — with `appendonly yes` that is the append-only file, not dump.rdb, so
 * the AOF directory of Redis 7 (its manifest names the prefix) is replaced by one whose base is
 * this RDB, and a Redis 6 appendonly.aof by the RDB itself (an RDB-preamble AOF); dump.rdb is
 * written too. New files get the directory's owner, so a Redis running as its own user can write
 * there again. A file target beside an append-only file is refused: Redis would ignore it.
 * Args: target, force (true/false).
 */
export const REDIS_RESTORE_SCRIPT = [
  'set -eu',
  'target=$1; force=$2',
  'case "$target" in */) dir=${target%/} ;; *) if [ -d "$target" ]; then dir=$target; else dir=; fi ;; esac',
  'aof=; prefix=; single=',
  'if [ -n "$dir" ]; then',
  '  mkdir -p -- "$dir"; rdb="$dir/dump.rdb"',
  '  for m in "$dir"/*/*.manifest; do if [ -f "$m" ]; then aof=${m%/*}; prefix=${m##*/}; prefix=${prefix%.manifest}; fi; done',
  '  if [ -z "$aof" ]; then for f in "$dir"/*.aof; do if [ -f "$f" ]; then single=$f; fi; done; fi',
  'else',
  '  rdb=$target; dir=$(dirname -- "$rdb"); mkdir -p -- "$dir"',
  '  for m in "$dir"/*/*.manifest "$dir"/*.aof; do if [ -f "$m" ]; then echo "$dir holds an append-only file ($m), which Redis loads at start instead of $rdb: give the data directory $dir/ as restore-target" >&2; exit 22; fi; done',
  'fi',
  'if [ "$force" != true ]; then',
  '  for f in "$rdb" ${aof:+"$aof"} ${single:+"$single"}; do',
  '    if [ -s "$f" ] || { [ -d "$f" ] && [ -n "$(ls -A -- "$f")" ]; }; then echo "refusing to restore: $f is not empty; set force: true to overwrite it (stop Redis first: it writes these files when it shuts down)" >&2; exit 20; fi',
  '  done',
  'fi',
  'owner=$(stat -c %u:%g -- "$dir")',
  'cat > "$rdb.skiff-restore"',
  // redis-cli --rdb writing to stdout cannot truncate away the 40-hex-digit end mark of a diskless
  // transfer, so the stream may end with it. Loading dump.rdb stops at the RDB's own end, but an
  // AOF base is read on as commands and the mark fails it. A real RDB ends in 0xFF and an 8-byte
  // checksum, so last 40 bytes that are all hex digits can only be that mark.
  't=$(tail -c 40 -- "$rdb.skiff-restore")',
  'case "$t" in *[!0-9a-f]*) ;; *) if [ ${#t} -eq 40 ]; then truncate -s -40 -- "$rdb.skiff-restore"; fi ;; esac',
  'if [ -n "$aof" ]; then',
  '  rm -rf -- "$aof.skiff-restore" "$aof.skiff-previous"; mkdir -- "$aof.skiff-restore"',
  '  cp -- "$rdb.skiff-restore" "$aof.skiff-restore/$prefix.1.base.rdb"',
  '  printf "file %s seq 1 type b\\n" "$prefix.1.base.rdb" > "$aof.skiff-restore/$prefix.manifest"',
  '  chown -R "$owner" -- "$aof.skiff-restore" 2>/dev/null || true',
  '  mv -- "$aof" "$aof.skiff-previous"; mv -- "$aof.skiff-restore" "$aof"; rm -rf -- "$aof.skiff-previous"',
  'fi',
  'if [ -n "$single" ]; then cp -- "$rdb.skiff-restore" "$single.skiff-restore"; chown "$owner" -- "$single.skiff-restore" 2>/dev/null || true; mv -f -- "$single.skiff-restore" "$single"; fi',
  'chown "$owner" -- "$rdb.skiff-restore" 2>/dev/null || true',
  'mv -f -- "$rdb.skiff-restore" "$rdb"',
].join('\n');

/** The RDB file a Redis restore target ends up in. */
export function redisRdbPath(path: string): string {
  return path.endsWith('/') ? `${path}dump.rdb` : path;
}

export type InPlaceStep = 'extract' | 'finish' | 'undo';

/** A step of the in-place restore of a files source: on the host, or in the helper with every volume and path mounted read-write. */
export function filesInPlace(source: Source, force: boolean, step: InPlaceStep = 'extract'): Command {
  const paths = source.paths ?? [];
  if (!source.volumes?.length) return ['sh', '-c', FILES_IN_PLACE_SCRIPT, 'sh', step, '/', String(force), ...paths];
  const mounts = [
    ...paths.flatMap((path) => ['-v', `${path}:/backup/host/${path.replace(/^\/+/, '')}`]),
    ...source.volumes.flatMap((volume) => ['-v', `${volume}:/backup/volumes/${volume}`]),
  ];
  const roots = [...paths.map((path) => `/backup/host/${path.replace(/^\/+/, '')}`), ...source.volumes.map((volume) => `/backup/volumes/${volume}`)];
  return [
    'docker',
    'run',
    '--rm',
    ...(step === 'extract' ? ['-i'] : []),
    '--network=none',
    '--user=0:0',
    '--label',
    `skiff.restore=${source.name}`,
    ...mounts,
    '--entrypoint',
    'sh',
    source.helperImage!,
    '-c',
    FILES_IN_PLACE_SCRIPT,
    'sh',
    step,
    '/backup',
    String(force),
    ...roots,
  ];
}

export const DRILL_PREFIX = 'skiff_drill_';

/** Row counts of every table: the default drill query. */
export const PG_ROW_COUNTS =
  "select table_schema || '.' || table_name, (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I', table_schema, table_name), false, true, '')))[1]::text " +
  "from information_schema.tables where table_schema not in ('pg_catalog', 'information_schema') and table_type = 'BASE TABLE' order by 1";

const PG_USER_RELATIONS =
  "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')";

function fail(message: string, code: number): Command {
  return [raw('{'), 'echo', message, raw('>&2;'), 'exit', String(code), raw('; }')];
}

function psql(source: Source, database: string, sql: string, secretFile?: string): Command {
  return pgTool(source, ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-t', '-A', `--dbname=${database}`, '-c', sql], secretFile);
}

/**
 * Exact row counts of every table (information_schema.table_rows is only an InnoDB estimate):
 * one UNION ALL of count(*) per table, built and run as a prepared statement.
 */
export const MYSQL_ROW_COUNTS =
  'set session group_concat_max_len = 4194304; ' +
  "set @q = (select group_concat(concat('select concat(''', replace(table_name, '''', ''''''), '|'', count(*)) from `', replace(table_name, '`', '``'), '`') order by table_name separator ' union all ') " +
  "from information_schema.tables where table_schema = database() and table_type = 'BASE TABLE'); " +
  "set @q = coalesce(@q, 'select ''(no tables)|0'''); prepare counts from @q; execute counts; deallocate prepare counts";

function mysql(source: Source, database: string | undefined, sql: string, secretFile?: string): Command {
  return mysqlTool(source, 'mysql', ['-N', '-B', ...(database ? [database] : []), '-e', sql], secretFile);
}

export const REFUSED_EXIT = 20;

/**
 * Runs before anything is written: refuses a non-empty target unless forced, creates a missing
 * database. Each line is one strict-mode script line.
 */
export function prepareTargetScript(source: Source, target: RestoreTarget, secretFile?: string): Command[] {
  const refuse = (what: string) => fail(`refusing to restore: ${what} is not empty; set force: true to overwrite it`, REFUSED_EXIT);
  switch (source.type) {
    case 'postgres': {
      const db = target.database!;
      return [
        [raw('exists=$('), ...psql(source, 'postgres', `select count(*) from pg_database where datname = '${db}'`, secretFile), raw(')')],
        [raw('if [ "$exists" = 0 ]; then'), ...pgTool(source, ['createdb', db], secretFile), raw('; fi')],
        [raw('relations=$('), ...psql(source, db, PG_USER_RELATIONS, secretFile), raw(')')],
        ...(target.force ? [] : [[raw('if [ "$relations" != 0 ]; then'), ...refuse(`database ${db}`), raw('; fi')]]),
      ];
    }
    case 'mysql': {
      const db = target.database!;
      return [
        [raw('tables=$('), ...mysql(source, undefined, `select count(*) from information_schema.tables where table_schema = '${db}'`, secretFile), raw(')')],
        ...(target.force ? [] : [[raw('if [ "$tables" != 0 ]; then'), ...refuse(`database ${db}`), raw('; fi')]]),
        mysql(source, undefined, `create database if not exists \`${db}\``, secretFile),
      ];
    }
    case 'redis':
      // The restore script checks the file, or the data directory and its append-only file.
      return [];
    case 'sqlite':
      return [
        ['mkdir', '-p', '--', dirname(target.path!)],
        ...(target.force ? [] : [[raw('if [ -s'), target.path!, raw(']; then'), ...refuse(`file ${target.path!}`), raw('; fi')]]),
      ];
    case 'files':
      // In place, the restore script itself checks every root before it moves anything.
      if (target.inPlace) return [];
      return [
        ['mkdir', '-p', '--', target.path!],
        ...(target.force ? [] : [[raw('if [ -n "$(ls -A --'), target.path!, raw(')" ]; then'), ...refuse(`directory ${target.path!}`), raw('; fi')]]),
      ];
  }
}

function dirname(path: string): string {
  return path.replace(/\/[^/]*$/, '') || '/';
}

/** Consumes the raw dump on stdin and writes it into the target. */
export function restoreCommand(source: Source, target: RestoreTarget, secretFile?: string): Command {
  switch (source.type) {
    case 'postgres':
      // One transaction: a restore that fails halfway leaves the target as it was. pg_restore
      // need not read the archive's last bytes, and its writer must not die of SIGPIPE for that.
      return readToEnd(
        pgTool(
          source,
          [
            'pg_restore',
            `--dbname=${target.database!}`,
            '--no-owner',
            ...(target.withoutPrivileges ? ['--no-privileges'] : []),
            '--exit-on-error',
            '--single-transaction',
            ...(target.force ? ['--clean', '--if-exists'] : []),
          ],
          secretFile,
          { stdin: true },
        ),
      );
    case 'mysql':
      // The dump's own DROP TABLE IF EXISTS lines make a forced restore replace the tables.
      return mysqlTool(source, 'mysql', [target.database!], secretFile, { stdin: true });
    case 'redis':
      return ['sh', '-c', REDIS_RESTORE_SCRIPT, 'sh', target.path!, String(target.force)];
    case 'sqlite':
      // Written beside the target and renamed: a reader never sees half a file.
      return [raw(`cat > ${quote(`${target.path!}.skiff-restore`)} && mv -f --`), `${target.path!}.skiff-restore`, target.path!];
    case 'files':
      if (target.inPlace) return filesInPlace(source, target.force);
      // tar stops at the end-of-archive blocks; padding after them is drained.
      return readToEnd(['tar', '--extract', '--file=-', '--numeric-owner', `--directory=${target.path!}`]);
  }
}

/** `$1` is the file to read, or `-` for stdin, copied to a temporary file first (the tools need a path). */
const FILE_ARGUMENT = ['set -eu', 'file=$1; shift', 'if [ "$file" = - ]; then file=$(mktemp); trap \'rm -f "$file"\' EXIT; cat > "$file"; fi'];

/** Row counts per table, or the drill query ($2) when one is given. Each count is its own assignment, so a failing sqlite3 fails the drill. */
export const SQLITE_DRILL_SCRIPT = [
  ...FILE_ARGUMENT,
  'if [ $# -gt 0 ]; then exec sqlite3 "$file" "$1"; fi',
  'tables=$(sqlite3 "$file" "select name from sqlite_master where type = \'table\' order by 1")',
  'for t in $tables; do n=$(sqlite3 "$file" "select count(*) from \\"$t\\""); echo "$t|$n"; done',
].join('\n');

/** redis-check-rdb reads every key and the CRC; a missing tool or a report without a key count fails the drill. */
export const REDIS_DRILL_SCRIPT = [
  ...FILE_ARGUMENT,
  'out=$(redis-check-rdb "$file" 2>&1) || { printf \'%s\\n\' "$out" | tail -n 8 >&2; echo "redis-check-rdb failed on the restored RDB" >&2; exit 1; }',
  "keys=$(printf '%s\\n' \"$out\" | sed -n 's/.*\\[info\\] \\([0-9]*\\) keys read.*/\\1/p')",
  'if [ -z "$keys" ]; then printf \'%s\\n\' "$out" | tail -n 8 >&2; echo "redis-check-rdb reported no key count" >&2; exit 1; fi',
  'echo "keys|$keys"',
].join('\n');

/**
 * A drill script over a restored file, run where the source's own tools are: on the host it reads
 * the file; for a source in a container (a server with Docker only has no redis-check-rdb or
 * sqlite3) the file is fed into that container on stdin.
 */
function wherever(source: Source, file: string, script: string, args: readonly string[]): Command {
  if (source.place.kind === 'host') return ['sh', '-c', script, 'sh', file, ...args];
  return [raw('cat --'), file, raw('|'), ...inPlace(source.place, ['sh', '-c', script, 'sh', '-', ...args], { stdin: true })];
}

/** After the restore: what the drill reports (one line per table / fact). */
export function drillQueryCommand(source: Source, target: RestoreTarget, query: string | undefined, secretFile?: string): Command {
  switch (source.type) {
    case 'postgres':
      return psql(source, target.database!, query ?? PG_ROW_COUNTS, secretFile);
    case 'mysql':
      return mysql(source, target.database, query ?? MYSQL_ROW_COUNTS, secretFile);
    case 'sqlite':
      return wherever(source, target.path!, SQLITE_DRILL_SCRIPT, query === undefined ? [] : [query]);
    case 'redis':
      return wherever(source, redisRdbPath(target.path!), REDIS_DRILL_SCRIPT, []);
    case 'files':
      return ['sh', '-c', 'echo "files|$(find "$1" -type f | wc -l)"; echo "bytes|$(du -sb "$1" | cut -f1)"', 'sh', target.path!];
  }
}

/** Drops the drill's scratch copy (in the script's EXIT trap, so it goes even when the drill fails). */
export function dropScratchCommand(source: Source, target: RestoreTarget, secretFile?: string): Command {
  switch (source.type) {
    case 'postgres':
      return pgTool(source, ['dropdb', '--if-exists', target.database!], secretFile);
    case 'mysql':
      return mysql(source, undefined, `drop database if exists \`${target.database!}\``, secretFile);
    default:
      return ['rm', '-rf', '--', target.path!];
  }
}

export function scratchTarget(source: Source, suffix: string): RestoreTarget {
  if (source.type === 'postgres' || source.type === 'mysql') return { database: `${DRILL_PREFIX}${suffix}`, force: false };
  // Redis gets a data directory of its own, so nothing else in /tmp is taken for its append-only file.
  if (source.type === 'redis') return { path: `/tmp/${DRILL_PREFIX}${suffix}/`, force: false };
  return { path: `/tmp/${DRILL_PREFIX}${suffix}${source.type === 'files' ? '' : `.${source.type}`}`, force: false };
}

/** Roles and tablespaces already in the target cluster, one per line: `r<name>` / `t<name>`, quoted as pg_dumpall quotes them. */
export function existingGlobalsQuery(source: Source, secretFile?: string): Command {
  return psql(
    source,
    'postgres',
    "select 'r' || quote_ident(rolname) from pg_roles union all select 't' || quote_ident(spcname) from pg_tablespace order by 1",
    secretFile,
  );
}

export function parseExistingGlobals(output: string): { roles: string[]; tablespaces: string[] } {
  const lines = output.split('\n').filter((line) => line !== '');
  return { roles: lines.filter((l) => l.startsWith('r')).map((l) => l.slice(1)), tablespaces: lines.filter((l) => l.startsWith('t')).map((l) => l.slice(1)) };
}

/**
 * Drops from pg_dumpall's globals the statements about roles and tablespaces the target already
 * has: `CREATE ROLE x;` (it would fail) and every `ALTER ROLE x …` (it would reset attributes and
 * the password of a role in use, the restoring user's own included), and `CREATE TABLESPACE x …`.
 * pg_dumpall writes one statement per line and names as quote_ident does, so a line prefix match
 * on `<name> ` or `<name>;` is exact. Missing roles are created with their attributes and
 * password hashes; memberships (GRANT … TO …) are applied for all.
 */
export const GLOBALS_FILTER_AWK = [
  'function load(text, into,   n, i, parts) { n = split(text, parts, "\\n"); for (i = 1; i <= n; i++) if (parts[i] != "") into[parts[i]] = 1 }',
  'function known(rest, names,   name) { for (name in names) if (index(rest, name " ") == 1 || index(rest, name ";") == 1) return 1; return 0 }',
  'BEGIN { load(ENVIRON["SKIFF_ROLES"], roles); load(ENVIRON["SKIFF_TABLESPACES"], spaces) }',
  '/^CREATE ROLE / { if (known(substr($0, 13), roles)) next }',
  '/^ALTER ROLE / { if (known(substr($0, 12), roles)) next }',
  '/^CREATE TABLESPACE / { if (known(substr($0, 19), spaces)) next }',
  '{ print }',
].join('\n');

/**
 * Applies a backup's globals (raw SQL on stdin, or from `feed`) to the target cluster before the
 * database restore, so the owners and grantees the dump names exist. Every remaining statement
 * must succeed (ON_ERROR_STOP): a role that cannot be created fails the restore.
 */
export function applyGlobalsCommand(
  source: Source,
  existing: { roles: readonly string[]; tablespaces: readonly string[] },
  secretFile?: string,
  feed?: Command,
): Command {
  return [
    ...(feed ? [...feed, raw('|')] : []),
    raw(`SKIFF_ROLES=${quote(existing.roles.join('\n'))} SKIFF_TABLESPACES=${quote(existing.tablespaces.join('\n'))}`),
    'awk',
    GLOBALS_FILTER_AWK,
    raw('|'),
    ...pgTool(source, ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--dbname=postgres'], secretFile, { stdin: true }),
    raw('>/dev/null'),
  ];
}
