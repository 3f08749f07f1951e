import { quote, raw, readToEnd, type Command } from '@skiff/shell';
import type { Format } from './formats';
import { inPlace } from './place';
import type { Source } from './sources';
import { hostTool } from './tools';

/** Exit status of a remote script whose backup failed a check of its content. */
export const VERIFY_EXIT = 5;

/** `{ echo MESSAGE >&2; exit CODE; }`, as script syntax. */
export function failWith(message: string, code = VERIFY_EXIT): Command {
  return [raw(`{ echo ${quote(message)} >&2; exit ${code}; }`)];
}

/** A pipeline stage that reads a raw dump on stdin to its very end and exits VERIFY_EXIT when it is broken. */
export interface StreamCheck {
  command: Command;
  /** For the manifest's list of checks. */
  describe: string;
}

/**
 * Runs `tool` on stdin; on failure its last output lines and `message` go to stderr. The tool may
 * stop reading early (it has seen all it checks): the rest is drained, so its writer never dies of
 * SIGPIPE on a good dump.
 */
function toolCheck(tool: Command, output: 'stderr' | 'both', message: string, describe: string): StreamCheck {
  return {
    command: readToEnd([
      raw('out=$('),
      ...tool,
      raw(output === 'both' ? '2>&1) ||' : '2>&1 >/dev/null) ||'),
      raw('{ printf \'%s\\n\' "$out" | tail -n 8 >&2;'),
      ...failWith(message),
      raw('; }'),
    ]),
    describe,
  };
}

/**
 * The tool-level check of a source's raw dump: each reads every byte, so a dump cut off or
 * corrupted in the middle fails here even when the tool that wrote it exited 0. It runs where the
 * dump ran (a container has the matching tools). Types without one rely on their format check
 * (and SQLite on PRAGMA integrity_check of the snapshot).
 */
export function structureCheck(source: Source): StreamCheck | undefined {
  switch (source.type) {
    case 'postgres':
      // --list would read the table of contents only: a dump cut off in its data passes it.
      return toolCheck(
        source.place.kind === 'host'
          ? hostTool(source, ['pg_restore', '--file=/dev/null'])
          : inPlace(source.place, ['pg_restore', '--file=/dev/null'], { stdin: true }),
        'stderr',
        'pg_restore could not read the whole archive; not keeping it',
        'pg_restore read every data block',
      );
    case 'redis':
      return toolCheck(
        inPlace(source.place, ['redis-check-rdb', '/dev/stdin'], { stdin: true }),
        'both',
        'redis-check-rdb found the RDB dump broken; not keeping it',
        'redis-check-rdb (every key, CRC64)',
      );
    case 'files':
      return toolCheck(['tar', '--list', '--file=-'], 'stderr', 'tar could not read the whole archive; not keeping it', 'tar --list');
    case 'sqlite':
      return { command: [raw(`sh -c ${quote(SQLITE_LENGTH_CHECK)}`)], describe: 'SQLite length = page size × page count of its header' };
    default:
      return undefined;
  }
}

/**
 * A SQLite database's header says how long the file is: page size (bytes 16–17, big-endian; 1
 * means 65536) × page count (bytes 28–31), valid after `VACUUM INTO` (and `.backup`). The stream must be exactly that
 * long, so a snapshot cut off anywhere is refused (the format has no trailer to look for). dd
 * reads the 100 header bytes one at a time, so wc counts exactly the rest.
 */
export const SQLITE_LENGTH_CHECK = [
  'h=$(dd bs=1 count=100 2>/dev/null | od -An -tu1 -v)',
  'rest=$(wc -c)',
  'set -- $h',
  `if [ $# -ne 100 ]; then echo 'the SQLite backup is shorter than its 100-byte header; not keeping it' >&2; exit ${VERIFY_EXIT}; fi`,
  'size=$(( ${17} * 256 + ${18} )); if [ "$size" -eq 1 ]; then size=65536; fi',
  'pages=$(( (${29} << 24) + (${30} << 16) + (${31} << 8) + ${32} ))',
  'length=$(( 100 + rest ))',
  `if [ "$length" -ne $(( size * pages )) ]; then echo "the SQLite backup is $length bytes, but its header says $pages pages of $size bytes; not keeping it" >&2; exit ${VERIFY_EXIT}; fi`,
].join('\n');

/** The format's trailer in the last 300 bytes of the stream, read to its end (no reader that stops early). */
export function trailerCheck(format: Format): StreamCheck | undefined {
  if (!format.trailer) return undefined;
  return {
    command: [
      raw(`{ t=$(tail -c 300 | tr -d '\\000'); case "$t" in *${quote(format.trailer)}*) ;; *)`),
      ...failWith(`the backup lacks the ${format.describe}`),
      raw(';; esac; }'),
    ],
    describe: format.describe,
  };
}

/**
 * `dump` with its stdout unchanged, and the same bytes through `check` on the way: one read of
 * the data, the check running beside whatever consumes the stream. The check is the inner
 * pipeline's last stage, so its failure is the status.
 */
export function checkedWhileStreaming(dump: Command, check: StreamCheck | undefined): Command {
  if (!check) return dump;
  return [raw('{ { {'), ...dump, raw('; } | tee -- /dev/fd/3 >&4; } 3>&1 |'), ...check.command, raw('>/dev/null; } 4>&1')];
}

/** The server-side check of a dump streamed to the runner: tar is walked on the runner itself (TarWalker). */
export function serverCheckOfStream(source: Source): StreamCheck | undefined {
  return source.type === 'files' ? undefined : structureCheck(source);
}
