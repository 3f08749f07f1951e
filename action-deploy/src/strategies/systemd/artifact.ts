import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { Compression } from './systemd-commands';

/** Names that say "unpack me"; anything else (a binary, a .jar, a .zip) is copied in as it is. */
const ARCHIVE_NAME = /\.(tar|tgz|tar\.gz|txz|tar\.xz|tzst|tar\.zst|tbz2?|tar\.bz2)$/i;

/** The compression of an archive from its first bytes, so a misnamed .tgz still unpacks. */
export function compressionOf(head: Buffer): Compression {
  const starts = (...bytes: number[]) => bytes.every((byte, index) => head[index] === byte);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  return 'none';
}

export function isArchiveName(path: string): boolean {
  return ARCHIVE_NAME.test(path);
}

export interface ArtifactStream {
  stream: Readable;
  compression: Compression;
  /** What the server receives, for the log. */
  description: string;
  /** Resolves when the runner side is done; rejects if `tar` on the runner failed (a cut-short archive must not become a release). */
  finished: Promise<void>;
  /** Stops the runner side if the server stopped reading (e.g. its tar failed). */
  stop(): void;
}

/** `tar` on the runner writing to a pipe: streamed with backpressure, so a big tree never sits in memory. */
function tarFrom(cwd: string, entry: string): ArtifactStream {
  const child: ChildProcess = spawn('tar', ['-C', cwd, '-czf', '-', entry], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < 4000) stderr += chunk.toString();
  });
  const finished = new Promise<void>((resolve, reject) => {
    child.on('error', (error) => reject(new Error(`cannot run tar on the runner: ${error.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`tar on the runner failed (${signal ?? `exit ${code}`}): ${stderr.trim().split('\n').slice(-5).join('\n')}`));
    });
  });
  // Observed by the caller after the upload; this keeps an early failure from being "unhandled" meanwhile.
  finished.catch(() => undefined);
  // Node discards a child's unread stdout when it exits (so the child can be reaped): a small
  // tree is packed before the SSH channel opens, so the output is taken at once, with backpressure.
  const stream = child.stdout!.pipe(new PassThrough());
  return {
    stream,
    compression: 'gzip',
    description: 'tar.gz stream',
    finished,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

async function head(absolute: string): Promise<Buffer> {
  const handle = await open(absolute, 'r');
  try {
    const bytes = Buffer.alloc(8);
    await handle.read(bytes, 0, bytes.length, 0);
    return bytes;
  } finally {
    await handle.close();
  }
}

/** How the stream for artifact-path is compressed: tar on the runner gzips; an archive is sent as it is. */
export async function artifactCompression(absolute: string, isDirectory: boolean): Promise<Compression> {
  return isDirectory || !isArchiveName(absolute) ? 'gzip' : compressionOf(await head(absolute));
}

/** What artifact-path is sent as, for the step's name (the same in a dry run's plan). */
export async function artifactDescription(absolute: string, isDirectory: boolean): Promise<string> {
  if (isDirectory) return 'tar.gz stream of the directory';
  if (!isArchiveName(absolute)) return `the file ${basename(absolute)}`;
  const compression = await artifactCompression(absolute, false);
  return `the archive ${basename(absolute)}${compression === 'none' ? '' : ` (${compression})`}`;
}

/**
 * The release's files as one tar stream: a directory's contents, an archive's own bytes, or a
 * single file wrapped in a tar (so the server always runs the same `tar -x`).
 */
export async function artifactStream(absolute: string, isDirectory: boolean): Promise<ArtifactStream> {
  const description = await artifactDescription(absolute, isDirectory);
  if (isDirectory) return { ...tarFrom(absolute, '.'), description };
  if (!isArchiveName(absolute)) return { ...tarFrom(dirname(absolute), basename(absolute)), description };
  const compression = await artifactCompression(absolute, false);
  const stream = createReadStream(absolute);
  const finished = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  finished.catch(() => undefined);
  return {
    stream,
    compression,
    description,
    finished,
    stop: () => stream.destroy(),
  };
}
