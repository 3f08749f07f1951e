import { quote, raw, render, RemoteCommandError, type Command, type Executor } from '@skiff/shell';
import { FORMATS, GLOBALS_FORMAT, storedExtension, type Format } from './formats';
import { parseManifest, serializeManifest, type Manifest } from './manifest';
import type { Source } from './sources';
import { BackupFailed, newestFirst, type BackupRequest, type RawData, type Store } from './store';
import { checkedWhileStreaming, failWith, structureCheck, trailerCheck, type StreamCheck } from './verify';

const TOO_SMALL_EXIT = 3;
const SHRUNK_EXIT = 4;

function assign(variable: string, value: string): Command {
  return [raw(`${variable}=${quote(value)}`)];
}

/** `cat` or `gzip -dc` of a stored file, as the start of a pipeline. */
function readRaw(compression: Source['compression'], variable: string): Command {
  return compression === 'gzip' ? [raw(`gzip -dc -- "$${variable}"`)] : [raw(`cat -- "$${variable}"`)];
}

/**
 * The magic bytes of a stored file (`$<variable>`): only its first bytes are read. A plain file is
 * read by head itself; gzip -dc is allowed to die of SIGPIPE once head has enough, since the whole
 * file was already read and checked while it was written.
 */
function magicLines(format: Format, compression: Source['compression'], variable: string): Command[] {
  if (!format.magic) return [];
  const { offset, bytes } = format.magic;
  const length = offset + bytes.length;
  const head = compression === 'gzip' ? `{ gzip -dc -- "$${variable}" 2>/dev/null || true; } | head -c ${length}` : `head -c ${length} -- "$${variable}"`;
  return [
    [raw(`header=$(${head} | tail -c ${bytes.length} | od -An -tx1 | tr -d ' \\n')`)],
    [raw(`[ "$header" = ${quote(bytes.toString('hex'))} ] ||`), ...failWith(`the backup does not start with the ${format.describe}`)],
  ];
}

/** The checks one dump's bytes pass while they are written (stream) and after (on the stored file). */
export function verification(source: Source): { stream?: StreamCheck; lines: Command[]; checks: string[] } {
  const format = FORMATS[source.type];
  // One reader for the stream: the tool-level check where a type has one, else the trailer (mysqldump's).
  const stream = structureCheck(source) ?? trailerCheck(format);
  const checks = ['exit status 0 (pipefail)'];
  if (source.compression === 'gzip') checks.push('gzip -t');
  if (format.magic) checks.push(format.describe);
  if (stream && stream.describe !== format.describe) checks.push(stream.describe);
  else if (format.trailer) checks.push(format.describe);
  if (source.type === 'sqlite') checks.push('PRAGMA integrity_check on the snapshot (VACUUM INTO)');
  return { ...(stream ? { stream } : {}), lines: magicLines(format, source.compression, 'partial'), checks };
}

/**
 * The dump as one pipeline that reads it once: the raw bytes go through the stream check while
 * they are compressed, written to the partial file and hashed; `$stored` gets sha256sum's line.
 */
function dumpLine(request: BackupRequest, stream: StreamCheck | undefined): Command[] {
  return [
    [
      raw('stored=$('),
      ...checkedWhileStreaming(request.dump, stream),
      ...(request.source.compression === 'gzip' ? [raw('| gzip -c')] : []),
      raw('| tee -- "$partial" | sha256sum)'),
    ],
    [raw('sha=${stored%% *}')],
  ];
}

/**
 * The globals (`pg_dumpall --globals-only`) go first, into `$gpartial`: small and quick, and a
 * missing privilege (pg_authid needs a superuser) fails before the long dump starts.
 */
export function globalsLines(request: BackupRequest): { lines: Command[]; checks: string[] } {
  const compression = request.source.compression;
  const trailer = GLOBALS_FORMAT.trailer!;
  return {
    lines: [
      [raw('gstored=$('), ...request.globals!, ...(compression === 'gzip' ? [raw('| gzip -c')] : []), raw('| tee -- "$gpartial" | sha256sum)')],
      [raw('gsha=${gstored%% *}')],
      [raw('gsize=$(stat -c %s -- "$gpartial")')],
      [raw('[ "$gsize" -gt 0 ] ||'), ...failWith('pg_dumpall --globals-only wrote nothing; not keeping the backup')],
      ...magicLines(GLOBALS_FORMAT, compression, 'gpartial'),
      // Decompresses the whole file (a corrupt gzip fails here) and reads it to the end.
      [raw(`t=$(${render(readRaw(compression, 'gpartial'))} | tail -c 300 | tr -d '\\000')`)],
      [raw(`case "$t" in *${quote(trailer)}*) ;; *)`), ...failWith(`the globals lack the ${GLOBALS_FORMAT.describe}`), raw(';; esac')],
    ],
    checks: ['exit status 0 (pipefail)', 'not empty', ...(compression === 'gzip' ? ['gzip -dc'] : []), GLOBALS_FORMAT.describe, 'sha256'],
  };
}

/**
 * The whole host-destination backup as one strict script: dump into `<final>.partial` (umask 077),
 * check size and format there, hash, rename into place. The trap removes the partial (and any
 * secret file) on every exit that did not reach the rename, so a full disk or a killed dump
 * leaves nothing that could pass for a backup, and the directories the run created are removed
 * again while empty.
 */
export function hostBackupScript(
  directory: string,
  request: BackupRequest,
  file: string,
  globalsFile?: string,
): { script: Command[]; checks: string[]; globalsChecks?: string[] } {
  const { source } = request;
  const { stream, lines, checks } = verification(source);
  const globals = request.globals && globalsFile ? globalsLines(request) : undefined;
  const sizeChecks = [`size >= ${request.minSize} bytes`];
  const removed = ['"$partial"', ...(globals ? ['"$gpartial"'] : []), ...(request.secretFile ? [quote(request.secretFile)] : [])].join(' ');
  const script: Command[] = [
    [raw('umask 077')],
    assign('dir', directory),
    // The topmost directory this run creates: a failed backup removes what it made, so the server is left as it was.
    [raw('made=; d="$dir"; while [ ! -d "$d" ]; do made="$d"; d=$(dirname -- "$d"); done')],
    [raw('mkdir -p -- "$dir"')],
    assign('final', `${directory}/${file}`),
    [raw('partial="$final.partial"')],
    ...(globals ? [assign('gfinal', `${directory}/${globalsFile!}`), [raw('gpartial="$gfinal.partial"')]] : []),
    // After the rename the directory holds the backup, so rmdir stops at once.
    [
      raw(
        `cleanup() { rm -f -- ${removed}; if [ -n "$made" ]; then d="$dir"; while rmdir -- "$d" 2>/dev/null && [ "$d" != "$made" ]; do d=$(dirname -- "$d"); done; fi; }`,
      ),
    ],
    [raw('trap cleanup EXIT')],
    // Without this a TERM (timeout) would kill bash before the EXIT trap could clean up.
    [raw("trap 'exit 143' TERM INT HUP")],
    ...(globals?.lines ?? []),
    ...dumpLine(request, stream),
    [raw('size=$(stat -c %s -- "$partial")')],
    [
      raw(`[ "$size" -ge ${request.minSize} ] ||`),
      ...failWith(`the backup is smaller than min-size (${request.minSize} bytes); not keeping it`, TOO_SMALL_EXIT),
    ],
  ];
  if (request.previousSize !== undefined && request.maxShrinkPercent < 100) {
    const floor = Math.floor((request.previousSize * (100 - request.maxShrinkPercent)) / 100);
    script.push([
      raw(`[ "$size" -ge ${floor} ] ||`),
      ...failWith(
        `the backup shrank more than max-shrink-percent (${request.maxShrinkPercent}%) against the previous one (${request.previousSize} bytes); not keeping it`,
        SHRUNK_EXIT,
      ),
    ]);
    sizeChecks.push(`shrink <= ${request.maxShrinkPercent}% of ${request.previousSize} bytes`);
  }
  // The one read of the stored file: it must decompress to its end as stored.
  if (source.compression === 'gzip') script.push([raw('gzip -t -- "$partial" ||'), ...failWith('gzip integrity check failed')]);
  script.push(...lines);
  // Globals first: a manifest-less data file may be left by an interruption, never a dump without its globals.
  if (globals) script.push([raw('mv -f -- "$gpartial" "$gfinal"')]);
  script.push([raw('mv -f -- "$partial" "$final"')]);
  script.push([raw('printf "size=%s\\nsha256=%s\\n" "$size" "$sha"')]);
  if (globals) script.push([raw('printf "globals-size=%s\\nglobals-sha256=%s\\n" "$gsize" "$gsha"')]);
  return { script, checks: [...checks.slice(0, 1), ...sizeChecks, ...checks.slice(1), 'sha256'], ...(globals ? { globalsChecks: globals.checks } : {}) };
}

/** Backups stay on the server, in `<path>/<source>/`. */
export class HostStore implements Store {
  readonly kind = 'host' as const;

  constructor(
    private readonly executor: Executor,
    readonly path: string,
  ) {}

  describe(): string {
    return `host:${this.path}`;
  }

  private dir(sourceName: string): string {
    return `${this.path.replace(/\/+$/, '')}/${sourceName}`;
  }

  async list(sourceName: string): Promise<Manifest[]> {
    const dir = this.dir(sourceName);
    const result = await this.executor.run(
      [[raw(`if [ -d ${quote(dir)} ]; then find ${quote(dir)} -maxdepth 1 -type f -name '*.manifest.json' -exec cat -- {} +; fi`)]],
      { description: `list backups of ${sourceName}` },
    );
    const manifests = result.stdout
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map((line) => parseManifest(line, `in ${dir}`))
      .filter((manifest) => manifest.source === sourceName);
    return newestFirst(manifests);
  }

  async backup(executor: Executor, request: BackupRequest): Promise<Manifest> {
    if (request.encryptRecipients.length > 0) {
      throw new BackupFailed('encrypt-recipients needs a runner destination (s3): encryption happens on the runner, and a host backup never leaves the server');
    }
    const started = Date.now();
    const file = `${request.id}.${storedExtension(request.source.type, request.source.compression, false)}`;
    const globalsFile = request.globals ? `${request.id}.${storedExtension(GLOBALS_FORMAT, request.source.compression, false)}` : undefined;
    const dir = this.dir(request.source.name);
    const { script, checks, globalsChecks } = hostBackupScript(dir, request, file, globalsFile);
    let result;
    try {
      result = await executor.run(script, { description: `back up ${request.source.name} to ${dir}`, live: 'stderr' });
    } catch (error) {
      if (error instanceof RemoteCommandError)
        throw new BackupFailed(`backup of ${request.source.name} failed; no manifest written and nothing pruned: ${error.message}`);
      throw error;
    }
    const size = Number(/^size=(\d+)$/m.exec(result.stdout)?.[1]);
    const sha256 = /^sha256=([0-9a-f]{64})$/m.exec(result.stdout)?.[1];
    if (!Number.isFinite(size) || !sha256)
      throw new BackupFailed(
        `backup of ${request.source.name}: the server did not report size and sha256 (got ${JSON.stringify(result.stdout.slice(0, 200))})`,
      );
    let globals: Manifest['globals'];
    if (globalsFile) {
      const globalsSize = Number(/^globals-size=(\d+)$/m.exec(result.stdout)?.[1]);
      const globalsSha256 = /^globals-sha256=([0-9a-f]{64})$/m.exec(result.stdout)?.[1];
      if (!Number.isFinite(globalsSize) || !globalsSha256)
        throw new BackupFailed(`backup of ${request.source.name}: the server did not report the globals' size and sha256`);
      globals = { file: globalsFile, size: globalsSize, sha256: globalsSha256, verification: globalsChecks ?? [] };
    }
    const manifest: Manifest = {
      format: 'skiff-backup/1',
      id: request.id,
      source: request.source.name,
      type: request.source.type,
      time: request.time.toISOString(),
      destination: 'host',
      location: `${dir}/${file}`,
      file,
      size,
      sha256,
      compression: request.source.compression,
      encryption: null,
      ...(globals ? { globals } : {}),
      verification: checks,
      tools: request.tools,
      durationMs: Date.now() - started,
    };
    await this.executor.upload(`${dir}/${request.id}.manifest.json`, serializeManifest(manifest), { mode: 0o600, description: `manifest of ${request.id}` });
    return manifest;
  }

  async remove(manifest: Manifest): Promise<void> {
    const dir = this.dir(manifest.source);
    // Manifest first: an interruption leaves an orphan file, never a manifest without its data.
    await this.executor.run(
      [
        ['rm', '-f', '--', `${dir}/${manifest.id}.manifest.json`],
        ['rm', '-f', '--', `${dir}/${manifest.file}`, ...(manifest.globals ? [`${dir}/${manifest.globals.file}`] : []), `${dir}/${manifest.id}.drill.json`],
      ],
      { description: `prune ${manifest.id}` },
    );
  }

  async fetch(manifest: Manifest): Promise<RawData> {
    if (manifest.encryption) throw new Error(`${manifest.id} is encrypted; host backups are never encrypted, so this manifest is not from this store`);
    const dir = this.dir(manifest.source);
    const file = `${dir}/${manifest.file}`;
    const shaCheck = (path: string, sha256: string): Command => [
      raw(`echo ${quote(`${sha256}  ${path}`)} | sha256sum --check --status ||`),
      ...failWith(`sha256 of ${path} does not match its manifest (${sha256}); refusing to restore it`, 21),
    ];
    const globals = manifest.globals ? `${dir}/${manifest.globals.file}` : undefined;
    return {
      kind: 'server',
      check: [
        assign('stored', file),
        shaCheck(file, manifest.sha256),
        ...(globals ? [assign('gstored', globals), shaCheck(globals, manifest.globals!.sha256)] : []),
      ],
      feed: readRaw(manifest.compression, 'stored'),
      ...(globals ? { globals: readRaw(manifest.compression, 'gstored') } : {}),
    };
  }

  async writeReport(manifest: Manifest, name: string, content: string): Promise<void> {
    await this.executor.upload(`${this.dir(manifest.source)}/${manifest.id}.${name}.json`, content, {
      mode: 0o600,
      description: `${name} report of ${manifest.id}`,
    });
  }
}
