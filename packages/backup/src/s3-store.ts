import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Decrypter, Encrypter } from 'age-encryption';
import type { Executor } from '@skiff/shell';
import { bufferReclaimer } from '@skiff/ssh';
import { FORMATS, storedExtension } from './formats';
import { parseManifest, serializeManifest, type Manifest } from './manifest';
import type { SourceType } from './sources';
import { BackupFailed, newestFirst, type BackupRequest, type RawData, type Store } from './store';

export interface S3Settings {
  endpoint?: string;
  region: string;
  bucket: string;
  prefix: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style URLs (MinIO, s3rver); virtual-hosted style otherwise. */
  forcePathStyle?: boolean;
}

/** Multipart parts in flight bound the memory a backup needs: partSize × queueSize. */
// 5 MiB is S3's minimum part size; one part in flight keeps the action well under its 150 MB budget.
const PART_SIZE = 5 * 1024 * 1024;
const QUEUE_SIZE = 1;

/**
 * Multipart parts live for seconds, so their buffers (and the encryption's per-chunk ones) reach
 * V8's old generation, which collects only when the JS heap grows, not when external memory does:
 * measured, a 350 MB stream then climbs to ~170 MB RSS. A full GC every 32 MiB of output (a few
 * ms each on this small heap) holds it near the start-up footprint plus one part in flight.
 */
const FULL_GC_EVERY_BYTES = 32 * 1024 * 1024;

/**
 * Readable.toWeb's default strategy counts chunks up to the stream's highWaterMark (16384 for
 * byte streams): it would pull thousands of chunks ahead of a slower encrypter. A queue of a few
 * chunks keeps backpressure reaching all the way back to the SSH channel.
 */
function toWebBounded(stream: Readable): ReadableStream<Uint8Array> {
  return Readable.toWeb(stream, { strategy: new CountQueuingStrategy({ highWaterMark: 4 }) }) as unknown as ReadableStream<Uint8Array>;
}

/** Counts and hashes bytes as they pass; optionally checks the format's magic bytes and trailer. */
export class Inspector extends Transform {
  readonly hash = createHash('sha256');
  bytes = 0;
  private head = Buffer.alloc(0);
  private tail = Buffer.alloc(0);

  private readonly reclaim: (bytes: number) => void;

  constructor(
    private readonly type?: SourceType,
    reclaim = false,
  ) {
    super();
    this.reclaim = reclaim ? bufferReclaimer(FULL_GC_EVERY_BYTES, 'full') : () => undefined;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.reclaim(chunk.length);
    const format = this.type ? FORMATS[this.type] : undefined;
    if (format?.magic && this.head.length < format.magic.offset + format.magic.bytes.length) {
      this.head = Buffer.concat([this.head, chunk.subarray(0, format.magic.offset + format.magic.bytes.length)]);
      const { offset, bytes } = format.magic;
      if (this.head.length >= offset + bytes.length && !this.head.subarray(offset, offset + bytes.length).equals(bytes)) {
        return callback(new BackupFailed(`the dump does not start with the ${format.describe}; not storing it`));
      }
    }
    if (format?.trailer) this.tail = Buffer.concat([this.tail, chunk]).subarray(-300);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    const format = this.type ? FORMATS[this.type] : undefined;
    if (format?.magic && this.head.length < format.magic.offset + format.magic.bytes.length) {
      return callback(new BackupFailed(`the dump is too short to hold the ${format.describe}`));
    }
    if (format?.trailer && !this.tail.includes(format.trailer)) return callback(new BackupFailed(`the dump lacks the ${format.describe}`));
    callback();
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** Any S3-compatible store; objects under `<prefix>/<source>/`. Data passes through the runner, never whole in memory. */
export class S3Store implements Store {
  readonly kind = 's3' as const;
  readonly client: S3Client;

  constructor(private readonly settings: S3Settings) {
    this.client = new S3Client({
      region: settings.region,
      ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
      forcePathStyle: settings.forcePathStyle ?? Boolean(settings.endpoint),
      credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    });
  }

  describe(): string {
    return `s3://${this.settings.bucket}/${this.settings.prefix}`;
  }

  private key(sourceName: string, file: string): string {
    const prefix = this.settings.prefix.replace(/^\/+|\/+$/g, '');
    return `${prefix ? `${prefix}/` : ''}${sourceName}/${file}`;
  }

  async list(sourceName: string): Promise<Manifest[]> {
    const manifests: Manifest[] = [];
    let token: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const listing = await this.client.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: this.key(sourceName, ''), ...(token ? { ContinuationToken: token } : {}) }));
      for (const object of listing.Contents ?? []) {
        if (!object.Key?.endsWith('.manifest.json')) continue;
        const body = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: object.Key }));
        manifests.push(parseManifest(await body.Body!.transformToString(), object.Key));
      }
      if (!listing.IsTruncated) break;
      token = listing.NextContinuationToken;
    }
    return newestFirst(manifests.filter((manifest) => manifest.source === sourceName));
  }

  /**
   * remote stdout → sha256 + format check of the raw dump → gzip → age → sha256 of the stored
   * bytes → multipart upload. The end of the stream is held back until the remote exit status is
   * known: a dump that failed midway errors the stream instead, so the upload is aborted and no
   * truncated object is ever completed.
   */
  async backup(executor: Executor, request: BackupRequest): Promise<Manifest> {
    const started = Date.now();
    const { source } = request;
    const encrypted = request.encryptRecipients.length > 0;
    const file = `${request.id}.${storedExtension(source.type, source.compression, encrypted)}`;
    const key = this.key(source.name, file);

    const head = new PassThrough({ highWaterMark: 256 * 1024 });
    let discard = false;
    const gate = new Writable({
      highWaterMark: 256 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        // After a failure downstream the dump's output is drained and dropped, so the remote command can finish.
        if (discard || head.destroyed) return callback();
        if (head.write(chunk)) callback();
        else head.once('drain', () => callback());
      },
      final(callback) {
        callback();
      },
    });
    const rawInspector = new Inspector(source.type);
    const storedInspector = new Inspector(undefined, true);
    let chain: Readable = head.pipe(rawInspector);
    rawInspector.on('error', (error) => storedInspector.destroy(error));
    head.on('error', (error) => rawInspector.destroy(error));
    if (source.compression === 'gzip') {
      const gzip = createGzip({ level: 6 });
      rawInspector.on('error', (error) => gzip.destroy(error));
      chain = chain.pipe(gzip);
    }
    if (encrypted) {
      const encrypter = new Encrypter();
      for (const recipient of request.encryptRecipients) encrypter.addRecipient(recipient);
      const web = await encrypter.encrypt(toWebBounded(chain));
      chain = Readable.fromWeb(web as import('node:stream/web').ReadableStream<Uint8Array>);
    }
    chain.on('error', (error) => storedInspector.destroy(error));
    chain.pipe(storedInspector);

    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.settings.bucket, Key: key, Body: storedInspector, ContentType: 'application/octet-stream' },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
      leavePartsOnError: false,
    });
    const uploaded = upload.done();
    uploaded.catch(() => undefined);

    let remoteError: Error | undefined;
    try {
      const result = await executor.run([request.dump], { description: `dump ${source.name}`, stdout: gate, allowFailure: true });
      if (result.code !== 0) remoteError = new BackupFailed(`dump of ${source.name} failed with exit code ${result.code}: ${result.stderr.trim().split('\n').slice(-10).join('\n')}`);
    } catch (error) {
      remoteError = error as Error;
    }
    if (remoteError) {
      discard = true;
      head.destroy(remoteError);
      await upload.abort().catch(() => undefined);
      await uploaded.catch(() => undefined);
      throw remoteError instanceof BackupFailed ? remoteError : new BackupFailed(`dump of ${source.name} failed: ${remoteError.message}`);
    }
    head.end();
    try {
      await uploaded;
    } catch (error) {
      throw new BackupFailed(`backup of ${source.name} was not stored (upload aborted, no manifest): ${(error as Error).message}`);
    }
    const size = storedInspector.bytes;
    const problems: string[] = [];
    if (size < request.minSize) problems.push(`it is smaller than min-size (${size} < ${request.minSize} bytes)`);
    if (request.previousSize !== undefined && request.maxShrinkPercent < 100 && size < Math.floor((request.previousSize * (100 - request.maxShrinkPercent)) / 100)) {
      problems.push(`it shrank more than max-shrink-percent (${request.maxShrinkPercent}%) against the previous one (${request.previousSize} bytes)`);
    }
    if (problems.length > 0) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key }));
      throw new BackupFailed(`backup of ${source.name} rejected and deleted: ${problems.join('; ')}`);
    }
    const format = FORMATS[source.type];
    const manifest: Manifest = {
      format: 'skiff-backup/1',
      id: request.id,
      source: source.name,
      type: source.type,
      time: request.time.toISOString(),
      destination: 's3',
      location: `s3://${this.settings.bucket}/${key}`,
      file,
      size,
      sha256: storedInspector.digest(),
      rawSize: rawInspector.bytes,
      rawSha256: rawInspector.digest(),
      compression: source.compression,
      encryption: encrypted ? { recipients: [...request.encryptRecipients] } : null,
      verification: ['exit status 0 (pipefail)', `size >= ${request.minSize} bytes`, format.describe, 'sha256 (raw and stored)', ...(source.type === 'sqlite' ? ['PRAGMA integrity_check on the .backup snapshot'] : [])],
      tools: request.tools,
      durationMs: Date.now() - started,
    };
    await this.client.send(
      new PutObjectCommand({ Bucket: this.settings.bucket, Key: this.key(source.name, `${request.id}.manifest.json`), Body: serializeManifest(manifest), ContentType: 'application/json' }),
    );
    return manifest;
  }

  async remove(manifest: Manifest): Promise<void> {
    for (const file of [`${manifest.id}.manifest.json`, manifest.file, `${manifest.id}.drill.json`]) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.key(manifest.source, file) }));
    }
  }

  /**
   * Downloads to a runner temp file while hashing; a mismatch stops here, before the server is
   * touched. Decryption is tried (header) before returning, so a wrong identity fails early too.
   */
  async fetch(manifest: Manifest, identities: readonly string[]): Promise<RawData> {
    if (manifest.encryption && identities.length === 0) throw new Error(`${manifest.id} is encrypted (age); set decrypt-identity to the matching AGE-SECRET-KEY-1…`);
    const dir = await mkdtemp(join(tmpdir(), 'skiff-restore-'));
    const cleanup = () => rm(dir, { recursive: true, force: true });
    try {
      const path = join(dir, manifest.file);
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.key(manifest.source, manifest.file) }));
      const hash = new Inspector();
      await pipeline(object.Body as Readable, hash, createWriteStream(path, { mode: 0o600 }));
      const actual = hash.digest();
      if (actual !== manifest.sha256) {
        throw new Error(`sha256 of ${manifest.location} is ${actual}, but its manifest says ${manifest.sha256}; refusing to restore it`);
      }
      const open = async (): Promise<Readable> => {
        let stream: Readable = createReadStream(path);
        if (manifest.encryption) {
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
      // Prove the identity matches now, before the restore target is prepared.
      (await open()).destroy();
      return { kind: 'stream', open, cleanup };
    } catch (error) {
      await cleanup();
      throw error;
    }
  }

  async writeReport(manifest: Manifest, name: string, content: string): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.settings.bucket, Key: this.key(manifest.source, `${manifest.id}.${name}.json`), Body: content, ContentType: 'application/json' }));
  }
}
