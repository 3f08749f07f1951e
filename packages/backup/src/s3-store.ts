import { tmpdir } from 'node:os';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Executor } from '@skiff/shell';
import { GLOBALS_FORMAT, storedExtension } from './formats';
import { StreamingUpload } from './s3-multipart';
import { parseManifest, serializeManifest, type Manifest } from './manifest';
import { fetchChecked, globalsVerification, runnerVerification, sizeProblems, streamDump } from './runner-stream';
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

  close(): void {
    this.client.destroy();
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
      const listing = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: this.key(sourceName, ''), ...(token ? { ContinuationToken: token } : {}) }),
      );
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

    // The globals first (small, and a missing privilege fails before the long dump); removed again if the dump fails.
    let globals: Manifest['globals'];
    if (request.globals) {
      const globalsFile = `${request.id}.${storedExtension(GLOBALS_FORMAT, source.compression, encrypted)}`;
      const globalsUpload = new StreamingUpload(this.client, this.settings.bucket, this.key(source.name, globalsFile));
      const part = await streamDump(
        executor,
        request,
        (body) => globalsUpload.done(body),
        () => globalsUpload.abort(),
        { dump: request.globals, format: GLOBALS_FORMAT, what: 'pg_dumpall --globals-only' },
      );
      globals = {
        file: globalsFile,
        size: part.stored.bytes,
        sha256: part.stored.digest(),
        rawSize: part.raw.bytes,
        rawSha256: part.raw.digest(),
        verification: globalsVerification(),
      };
    }
    try {
      const upload = new StreamingUpload(this.client, this.settings.bucket, key);
      const { raw, stored } = await streamDump(
        executor,
        request,
        (body) => upload.done(body),
        () => upload.abort(),
      );
      const size = stored.bytes;
      const problems = sizeProblems(request, size);
      if (problems.length > 0) {
        await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key }));
        throw new BackupFailed(`backup of ${source.name} rejected and deleted: ${problems.join('; ')}`);
      }
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
        sha256: stored.digest(),
        rawSize: raw.bytes,
        rawSha256: raw.digest(),
        compression: source.compression,
        encryption: encrypted ? { recipients: [...request.encryptRecipients] } : null,
        ...(globals ? { globals } : {}),
        verification: runnerVerification(request),
        tools: request.tools,
        durationMs: Date.now() - started,
      };
      await this.client.send(
        new PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.key(source.name, `${request.id}.manifest.json`),
          Body: serializeManifest(manifest),
          ContentType: 'application/json',
        }),
      );
      return manifest;
    } catch (error) {
      if (globals)
        await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.key(source.name, globals.file) })).catch(() => undefined);
      throw error;
    }
  }

  async remove(manifest: Manifest): Promise<void> {
    // Manifest first: an interruption leaves orphan objects, never a manifest without its data.
    for (const file of [`${manifest.id}.manifest.json`, manifest.file, ...(manifest.globals ? [manifest.globals.file] : []), `${manifest.id}.drill.json`]) {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.key(manifest.source, file) }));
    }
  }

  /**
   * Downloads to a runner temp file while hashing; a mismatch stops here, before the server is
   * touched. Decryption is tried (header) before returning, so a wrong identity fails early too.
   */
  async fetch(manifest: Manifest, identities: readonly string[]): Promise<RawData> {
    return fetchChecked(manifest, identities, tmpdir(), async (file) => {
      const key = this.key(manifest.source, file);
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: key }));
      return { body: object.Body as Readable, where: `s3://${this.settings.bucket}/${key}` };
    });
  }

  async writeReport(manifest: Manifest, name: string, content: string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({
        Bucket: this.settings.bucket,
        Key: this.key(manifest.source, `${manifest.id}.${name}.json`),
        Body: content,
        ContentType: 'application/json',
      }),
    );
  }
}
