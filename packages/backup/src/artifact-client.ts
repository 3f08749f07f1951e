import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/**
 * A streaming client for GitHub Actions' artifact service: the same wire protocol as
 * @actions/artifact v6 (Twirp JSON at ACTIONS_RESULTS_URL with ACTIONS_RUNTIME_TOKEN; Azure
 * block-blob PUTs at the signed URL it returns; artifact version 7, one unzipped file).
 *
 * Why not @actions/artifact itself: it uploads files, not streams, and bundling it (Azure SDK,
 * zip, protobuf runtime) doubled the action's bundle to 7.5 MB and added ~10 MB of resident
 * memory at start-up to every run, S3 and host included, against a 150 MB budget. The test bed
 * checks this client against the real @actions/artifact through the same stand-in service.
 */

const SERVICE = 'twirp/github.actions.results.api.v1.ArtifactService';
/** One block in flight: memory stays at a few MiB whatever the backup's size. */
const BLOCK_SIZE = 4 * 1024 * 1024;
const ATTEMPTS = 4;

export interface ArtifactInfo {
  id: number;
  name: string;
  size: number;
  createdAt?: Date;
  digest?: string;
}

export interface UploadedBlob {
  size: number;
  sha256: string;
  /** Makes the artifact visible (FinalizeArtifact); an artifact never finalized never appears. */
  finalize(): Promise<number>;
}

interface Ids {
  workflow_run_backend_id: string;
  workflow_job_run_backend_id: string;
}

function field<T>(value: Record<string, unknown>, snake: string): T | undefined {
  const camel = snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  return (value[snake] ?? value[camel]) as T | undefined;
}

export class ArtifactServiceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArtifactServiceError';
  }
}

export class ArtifactServiceClient {
  private readonly ids: Ids;
  private readonly baseUrl: string;

  constructor(
    private readonly token = process.env.ACTIONS_RUNTIME_TOKEN,
    resultsUrl = process.env.ACTIONS_RESULTS_URL,
  ) {
    if (!token || !resultsUrl) {
      throw new ArtifactServiceError(
        "destination artifact needs the runner's ACTIONS_RUNTIME_TOKEN and ACTIONS_RESULTS_URL (set for JavaScript actions on GitHub-hosted and self-hosted runners)",
      );
    }
    this.baseUrl = resultsUrl.endsWith('/') ? resultsUrl : `${resultsUrl}/`;
    this.ids = backendIds(token);
  }

  private async twirp(method: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const url = new URL(`${SERVICE}/${method}`, this.baseUrl);
    let last = '';
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...this.ids, ...body }),
      }).catch((error: Error) => error);
      if (response instanceof Error) last = response.message;
      else {
        const text = await response.text();
        if (response.ok) return JSON.parse(text) as Record<string, unknown>;
        last = `${response.status}: ${text.slice(0, 300)}`;
        // Only throttling and server errors are worth another try.
        if (response.status !== 429 && response.status < 500) break;
      }
      if (attempt < ATTEMPTS) await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
    throw new ArtifactServiceError(`artifact service ${method} failed: ${last}`);
  }

  /** Streams `body` into a new artifact `name` (block by block); finalize() publishes it. */
  async upload(name: string, body: Readable, contentType = 'application/octet-stream'): Promise<UploadedBlob> {
    const created = await this.twirp('CreateArtifact', { name, version: 7, mime_type: contentType });
    const signed = field<string>(created, 'signed_upload_url');
    if (!field<boolean>(created, 'ok') || !signed) throw new ArtifactServiceError(`artifact service CreateArtifact for ${name} returned no upload URL`);
    const hash = createHash('sha256');
    const blockIds: string[] = [];
    let size = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const putBlock = async (data: Buffer) => {
      // Block ids must all have the same length before base64.
      const id = Buffer.from(`skiff-${String(blockIds.length).padStart(8, '0')}`).toString('base64');
      await blobPut(signed, { comp: 'block', blockid: id }, data, {});
      blockIds.push(id);
    };
    for await (const chunk of body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      pending.push(chunk);
      pendingBytes += chunk.length;
      while (pendingBytes >= BLOCK_SIZE) {
        const joined = Buffer.concat(pending, pendingBytes);
        await putBlock(joined.subarray(0, BLOCK_SIZE));
        // A copy of the rest: a subarray would keep the whole joined block alive.
        pending = [Buffer.from(joined.subarray(BLOCK_SIZE))];
        pendingBytes = pending[0]!.length;
      }
    }
    if (pendingBytes > 0) await putBlock(Buffer.concat(pending, pendingBytes));
    const list = `<?xml version="1.0" encoding="utf-8"?><BlockList>${blockIds.map((id) => `<Latest>${id}</Latest>`).join('')}</BlockList>`;
    await blobPut(signed, { comp: 'blocklist' }, Buffer.from(list), { 'x-ms-blob-content-type': contentType, 'content-type': 'application/xml' });
    const sha256 = hash.digest('hex');
    return {
      size,
      sha256,
      finalize: async () => {
        const finalized = await this.twirp('FinalizeArtifact', { name, size: String(size), hash: `sha256:${sha256}` });
        if (!field<boolean>(finalized, 'ok')) throw new ArtifactServiceError(`artifact service did not finalize ${name}`);
        return Number(field<string>(finalized, 'artifact_id'));
      },
    };
  }

  async list(nameFilter?: string): Promise<ArtifactInfo[]> {
    const response = await this.twirp('ListArtifacts', nameFilter ? { name_filter: nameFilter } : {});
    const artifacts = (field<Record<string, unknown>[]>(response, 'artifacts') ?? []).map((a) => {
      const created = field<string>(a, 'created_at');
      const digest = field<string>(a, 'digest');
      return {
        id: Number(field<string>(a, 'database_id')),
        name: String(field<string>(a, 'name')),
        size: Number(field<string>(a, 'size') ?? 0),
        ...(created ? { createdAt: new Date(created) } : {}),
        ...(digest ? { digest } : {}),
      };
    });
    // A name can be re-used in a run after a deletion: the newest one counts.
    const newest = new Map<string, ArtifactInfo>();
    for (const artifact of artifacts) {
      const seen = newest.get(artifact.name);
      if (!seen || artifact.id > seen.id) newest.set(artifact.name, artifact);
    }
    return [...newest.values()];
  }

  /** The artifact's bytes as a stream (from the signed blob URL). */
  async download(name: string): Promise<Readable> {
    const response = await this.twirp('GetSignedArtifactURL', { name });
    const url = field<string>(response, 'signed_url');
    if (!url) throw new ArtifactServiceError(`artifact service returned no download URL for ${name}`);
    const blob = await fetch(url);
    if (!blob.ok || !blob.body) throw new ArtifactServiceError(`download of artifact ${name} failed: ${blob.status}`);
    return Readable.fromWeb(blob.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }

  async delete(name: string): Promise<void> {
    await this.twirp('DeleteArtifact', { name });
  }
}

async function blobPut(signedUrl: string, params: Record<string, string>, body: Buffer, headers: Record<string, string>): Promise<void> {
  const url = new URL(signedUrl);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  let last = '';
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const response = await fetch(url, {
      method: 'PUT',
      headers: { 'x-ms-version': '2023-11-03', 'content-length': String(body.length), ...headers },
      body: new Uint8Array(body.buffer, body.byteOffset, body.length),
    }).catch((error: Error) => error);
    if (!(response instanceof Error)) {
      const text = await response.text();
      if (response.status === 201) return;
      last = `${response.status}: ${text.slice(0, 300)}`;
      if (response.status !== 429 && response.status < 500) break;
    } else last = response.message;
    if (attempt < ATTEMPTS) await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
  }
  throw new ArtifactServiceError(`artifact blob upload (${params.comp}) failed: ${last}`);
}

/** The run and job ids the service wants, from the runtime token's `Actions.Results:<run>:<job>` scope. */
export function backendIds(token: string): Ids {
  let claims: { scp?: string };
  try {
    claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { scp?: string };
  } catch {
    throw new ArtifactServiceError('ACTIONS_RUNTIME_TOKEN is not a JWT');
  }
  for (const scope of (claims.scp ?? '').split(' ')) {
    const parts = scope.split(':');
    if (parts[0] === 'Actions.Results' && parts.length === 3) return { workflow_run_backend_id: parts[1]!, workflow_job_run_backend_id: parts[2]! };
  }
  throw new ArtifactServiceError('ACTIONS_RUNTIME_TOKEN has no Actions.Results scope (is this step running on a GitHub Actions runner?)');
}
