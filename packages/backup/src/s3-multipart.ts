import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from '@aws-sdk/client-s3';

/** S3's minimum part size (except the last); parts of this size keep memory flat. */
export const PART_SIZE = 5 * 1024 * 1024;

/**
 * A streaming multipart upload through two part buffers allocated once: one is filled while the
 * other is uploading. Each incoming chunk is copied in and dies young, so no multi-MiB buffer is
 * ever allocated per part.
 *
 * Why not @aws-sdk/lib-storage's Upload: it keeps every chunk of a part in a list until the part
 * is full and then concatenates them into a fresh 5 MiB buffer. Both the chunks (by then in V8's
 * old generation) and the part buffers become garbage that only a full GC frees; measured, that
 * garbage and the malloc fragmentation it left made the peak RSS grow with the dump's size
 * (146 MB for a 136 MiB dump, 165-168 MB for ~1 GB) past the action's 150 MB budget.
 */
export class StreamingUpload {
  private uploadId: string | undefined;
  private aborted = false;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly key: string,
    private readonly contentType = 'application/octet-stream',
  ) {}

  async done(body: Readable): Promise<void> {
    const buffers = [Buffer.allocUnsafeSlow(PART_SIZE), Buffer.allocUnsafeSlow(PART_SIZE)];
    let current = 0;
    let filled = 0;
    let inFlight: Promise<CompletedPart> | undefined;
    const parts: CompletedPart[] = [];
    const send = async (data: Buffer, partNumber: number): Promise<CompletedPart> => {
      if (this.uploadId === undefined) {
        const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, ContentType: this.contentType }));
        this.uploadId = created.UploadId;
      }
      if (this.aborted) {
        await this.abort();
        throw new Error('upload aborted');
      }
      const result = await this.client.send(
        new UploadPartCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, PartNumber: partNumber, Body: data, ContentLength: data.length }),
      );
      return { ETag: result.ETag, PartNumber: partNumber };
    };
    const flush = async () => {
      // The other buffer may be refilled only once its upload has finished.
      if (inFlight) parts.push(await inFlight);
      const partNumber = parts.length + 1;
      inFlight = send(buffers[current]!.subarray(0, filled), partNumber);
      inFlight.catch(() => undefined);
      current = 1 - current;
      filled = 0;
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        let offset = 0;
        while (offset < chunk.length) {
          const n = chunk.copy(buffers[current]!, filled, offset);
          filled += n;
          offset += n;
          if (filled === PART_SIZE) await flush();
        }
      }
      if (inFlight === undefined) {
        // Smaller than one part: one PUT, no multipart upload at all.
        await this.client.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: this.key,
            Body: buffers[current]!.subarray(0, filled),
            ContentLength: filled,
            ContentType: this.contentType,
          }),
        );
        return;
      }
      if (filled > 0) await flush();
      parts.push(await inFlight);
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: this.uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (error) {
      await inFlight?.catch(() => undefined);
      await this.abort();
      throw error;
    }
  }

  /** Removes the parts uploaded so far; a multipart upload never completed leaves no object. */
  async abort(): Promise<void> {
    this.aborted = true;
    const uploadId = this.uploadId;
    this.uploadId = undefined;
    if (uploadId) await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId: uploadId })).catch(() => undefined);
  }
}
