import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough, Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type { Command, Executor } from '@skiff/shell';
import { bufferReclaimer, reclaimNow } from '@skiff/ssh';
import { FORMATS, GLOBALS_FORMAT, type Format } from './formats';
import type { Manifest } from './manifest';
import type { SourceType } from './sources';
import { BackupFailed, type BackupRequest, type RawData } from './store';
import { TarWalker } from './tar-walker';
import { checkedWhileStreaming, serverCheckOfStream } from './verify';

/**
 * The part of a backup that passes through the runner (S3 and artifact destinations): remote
 * stdout → sha256 + format check of the raw dump → gzip → age → sha256 of the stored bytes →
 * the destination's sink. age and the S3 SDK are loaded only when a backup really takes this path.
 */

/**
 * A streaming backup allocates fast and keeps little: V8 grows its young generation and keeps it
 * committed, and buffers that waited in a queue reach the old generation, which external memory
 * alone never collects. A memory-reducing GC before the dump and every 32 MiB of output returns
 * both (see @skiff/ssh's reclaimer; on a ~1 GB database with age to S3: 155-159 → 131-138 MB).
 */
const REDUCE_MEMORY_EVERY_BYTES = 32 * 1024 * 1024;

/**
 * Readable.toWeb's default strategy counts chunks up to the stream's highWaterMark (16384 for
 * byte streams): it would pull thousands of chunks ahead of a slower encrypter. A queue of a few
 * chunks keeps backpressure reaching all the way back to the SSH channel.
 */
export function toWebBounded(stream: Readable): ReadableStream<Uint8Array> {
  return Readable.toWeb(stream, { strategy: new CountQueuingStrategy({ highWaterMark: 4 }) });
}

/**
 * Counts and hashes bytes as they pass; optionally checks the format's magic bytes and trailer,
 * and for tar (files) walks every header: the runner's `tar --list`.
 */
export class Inspector extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);
  private readonly format: Format | undefined;
  private readonly tar: TarWalker | undefined;
  /** Members walked, once a tar stream has ended well. */
  tarEntries: number | undefined;

  private readonly reclaim: (bytes: number) => void;

  constructor(type?: SourceType | Format, reclaim = false) {
    super();
    this.format = typeof type === 'string' ? FORMATS[type] : type;
    this.tar = type === 'files' ? new TarWalker() : undefined;
    this.reclaim = reclaim ? bufferReclaimer(REDUCE_MEMORY_EVERY_BYTES, 'shrink') : () => undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.reclaim(chunk.length);
    const format = this.format;
    if (format?.magic && this.head.length < format.magic.offset + format.magic.bytes.length) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, format.magic.offset + format.magic.bytes.length)]);
      const { offset, bytes } = format.magic;
      if (this.head.length >= offset + bytes.length && !this.head.subarray(offset, offset + bytes.length).equals(bytes)) {
        return callback(new BackupFailed(`the dump does not start with the ${format.describe}; not storing it`));
      }
    }
    // A copy of the last bytes only: keeping a subarray would pin the whole chunk it came from.
    if (format?.trailer) this.tail = Buffer.from(Buffer.concat([this.tail, chunk.subarray(-300)]).subarray(-300));
    if (this.tar) {
      try {
        this.tar.push(chunk);
      } catch (error) {
        return callback(new BackupFailed(`${(error as Error).message}; not storing it`));
      }
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const format = this.format;
    if (format?.magic && this.head.length < format.magic.offset + format.magic.bytes.length) {
      return callback(new BackupFailed(`the dump is too short to hold the ${format.describe}`));
    }
    if (format?.trailer && !this.tail.includes(format.trailer)) return callback(new BackupFailed(`the dump lacks the ${format.describe}`));
    if (this.tar) {
      try {
        this.tarEntries = this.tar.end().entries;
      } catch (error) {
        return callback(new BackupFailed(`${(error as Error).message}; not storing it`));
      }
    }
    callback();
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

export interface Streamed {
  raw: Inspector;
  stored: Inspector;
}

/**
 * Runs the dump and feeds `consume` the stored bytes. The end of the stream is held back until
 * the remote exit status is known: a dump that failed midway errors the stream instead (and
 * `abort` runs), so no truncated object is ever completed.
 */
export async function streamDump(
  executor: Executor,
  request: BackupRequest,
  consume: (body: Readable) => Promise<unknown>,
  abort: () => Promise<unknown>,
  /** What the dump writes when it is not the source's own format (the globals of a postgres source). */
  part?: { dump: Command; format: Format; what: string },
): Promise<Streamed> {
  const { source } = request;
  // The tool-level check runs on the server beside the dump; the runner checks format and hashes.
  const dump = part?.dump ?? checkedWhileStreaming(request.dump, serverCheckOfStream(source));
  const what = part ? `${part.what} of ${source.name}` : `dump of ${source.name}`;
  const head = new PassThrough({ highWaterMark: 256 * 1024 });
  let discard = false;
  const gate = new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      // After a failure downstream the dump's output is drained and dropped, so the remote command can finish.
      if (discard || head.destroyed) return callback();
      if (head.write(chunk)) return callback();
      // A destroyed head never drains: its close releases the write too.
      const go = () => {
        head.off('drain', go);
        head.off('close', go);
        callback();
      };
      head.on('drain', go);
      head.on('close', go);
    },
    final(callback) {
      callback();
    },
  });
  const raw = new Inspector(part?.format ?? source.type);
  const stored = new Inspector(undefined, true);
  let chain: Readable = head.pipe(raw);
  raw.on('error', (error) => stored.destroy(error));
  head.on('error', (error) => raw.destroy(error));
  if (source.compression === 'gzip') {
    const gzip = createGzip({ level: 6 });
    raw.on('error', (error) => gzip.destroy(error));
    chain = chain.pipe(gzip);
  }
  if (request.encryptRecipients.length > 0) {
    const { Encrypter } = await import('age-encryption');
    const encrypter = new Encrypter();
    for (const recipient of request.encryptRecipients) encrypter.addRecipient(recipient);
    const web = await encrypter.encrypt(toWebBounded(chain));
    chain = Readable.fromWeb(web as import('node:stream/web').ReadableStream<Uint8Array>);
  }
  chain.on('error', (error) => stored.destroy(error));
  chain.pipe(stored);

  const consumed = consume(stored);
  // A destination that gives up (upload refused, disk full) stops reading: drop the rest of the
  // dump so the remote command can finish instead of waiting on a stalled channel.
  consumed.catch(() => {
    discard = true;
    head.destroy();
  });

  // Start the stream from a trimmed heap: listing, loading the SDK and age left garbage behind.
  reclaimNow('shrink');
  let remoteError: Error | undefined;
  try {
    const result = await executor.run([dump], { description: what, stdout: gate, allowFailure: true, live: 'stderr' });
    if (result.code !== 0)
      remoteError = new BackupFailed(`${what} failed with exit code ${result.code}: ${result.stderr.trim().split('\n').slice(-10).join('\n')}`);
  } catch (error) {
    remoteError = error as Error;
  }
  if (remoteError) {
    discard = true;
    head.destroy(remoteError);
    await abort().catch(() => undefined);
    await consumed.catch(() => undefined);
    throw remoteError instanceof BackupFailed ? remoteError : new BackupFailed(`${what} failed: ${remoteError.message}`);
  }
  head.end();
  try {
    await consumed;
  } catch (error) {
    throw new BackupFailed(`${part ? `${what}: ` : ''}backup of ${source.name} was not stored (no manifest): ${(error as Error).message}`);
  }
  return { raw, stored };
}

/** The size floor and the shrink guard over the stored size; empty when the backup may be kept. */
export function sizeProblems(request: BackupRequest, size: number): string[] {
  const problems: string[] = [];
  if (size < request.minSize) problems.push(`it is smaller than min-size (${size} < ${request.minSize} bytes)`);
  if (
    request.previousSize !== undefined &&
    request.maxShrinkPercent < 100 &&
    size < Math.floor((request.previousSize * (100 - request.maxShrinkPercent)) / 100)
  ) {
    problems.push(`it shrank more than max-shrink-percent (${request.maxShrinkPercent}%) against the previous one (${request.previousSize} bytes)`);
  }
  return problems;
}

export function runnerVerification(request: BackupRequest): string[] {
  const { source } = request;
  return [
    'exit status 0 (pipefail)',
    `size >= ${request.minSize} bytes`,
    ...(request.previousSize !== undefined && request.maxShrinkPercent < 100
      ? [`shrink <= ${request.maxShrinkPercent}% of ${request.previousSize} bytes`]
      : []),
    FORMATS[source.type].describe,
    ...(source.type === 'files' ? ['tar headers walked (checksums, sizes, end-of-archive)'] : []),
    ...(serverCheckOfStream(source) ? [`${serverCheckOfStream(source)!.describe} (on the server, while streaming)`] : []),
    'sha256 (raw and stored)',
    ...(source.type === 'sqlite' ? ['PRAGMA integrity_check on the snapshot (VACUUM INTO)'] : []),
  ];
}

/**
 * A stored backup already downloaded (and its sha256 checked) to a runner file: how to read the
 * raw dump (and its globals) back. Decryption is tried once before returning, so a wrong
 * identity fails before the restore target is prepared.
 */
async function localRawData(
  path: string,
  manifest: Manifest,
  identities: readonly string[],
  cleanup: () => Promise<void>,
  globalsPath?: string,
): Promise<RawData> {
  const opener = (file: string) => async (): Promise<Readable> => {
    let stream: Readable = createReadStream(file);
    if (manifest.encryption) {
      const { Decrypter } = await import('age-encryption');
      const decrypter = new Decrypter();
      for (const identity of identities) decrypter.addIdentity(identity);
      try {
        const web = await decrypter.decrypt(toWebBounded(stream));
        stream = Readable.fromWeb(web as import('node:stream/web').ReadableStream<Uint8Array>);
      } catch (error) {
        throw new Error(`${manifest.id} could not be decrypted with the given decrypt-identity: ${(error as Error).message}`);
      }
    }
    if (manifest.compression === 'gzip') {
      const gunzip = createGunzip();
      stream.on('error', (error) => gunzip.destroy(error));
      stream = stream.pipe(gunzip);
    }
    return stream;
  };
  const open = opener(path);
  (await open()).destroy();
  return { kind: 'stream', open, cleanup, ...(globalsPath ? { globals: opener(globalsPath) } : {}) };
}

/** Downloads one stored object to `path` while hashing it; a mismatch throws before anything is restored. */
async function downloadChecked(body: Readable, path: string, expected: string, where: string): Promise<void> {
  const hash = new Inspector();
  await pipeline(body, hash, createWriteStream(path, { mode: 0o600 }));
  const actual = hash.digest();
  if (actual !== expected) throw new Error(`sha256 of ${where} is ${actual}, but its manifest says ${expected}; refusing to restore it`);
}

/** What the runner checked on the globals object, for its manifest entry. */
export function globalsVerification(): string[] {
  return ['exit status 0', GLOBALS_FORMAT.describe, 'sha256 (raw and stored)'];
}

/**
 * A runner-side store's fetch: the object (and its globals) downloaded into a private temp dir
 * while hashing — a mismatch stops here, before the server is touched — then read back through
 * decryption and decompression. The dir goes with `cleanup`, or at once when anything fails.
 */
export async function fetchChecked(
  manifest: Manifest,
  identities: readonly string[],
  tempRoot: string,
  open: (file: string) => Promise<{ body: Readable; where: string }>,
): Promise<RawData> {
  encryptedNeedsIdentity(manifest, identities);
  const dir = await mkdtemp(join(tempRoot, 'skiff-restore-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const download = async (file: string, sha256: string): Promise<string> => {
      const path = join(dir, file);
      const { body, where } = await open(file);
      await downloadChecked(body, path, sha256, where);
      return path;
    };
    const path = await download(manifest.file, manifest.sha256);
    const globalsPath = manifest.globals ? await download(manifest.globals.file, manifest.globals.sha256) : undefined;
    return await localRawData(path, manifest, identities, cleanup, globalsPath);
  } catch (error) {
    await cleanup();
    throw error;
  }
}

function encryptedNeedsIdentity(manifest: Manifest, identities: readonly string[]): void {
  if (manifest.encryption && identities.length === 0)
    throw new Error(`${manifest.id} is encrypted (age); set decrypt-identity to the matching AGE-SECRET-KEY-1…`);
}
