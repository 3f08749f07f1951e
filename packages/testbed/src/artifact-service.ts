import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Stands in for GitHub's artifact service (unreachable from the test bed), speaking what
 * @actions/artifact v6 speaks: Twirp JSON at `<ACTIONS_RESULTS_URL>/twirp/github.actions.results.api.v1.ArtifactService/<Method>`
 * with the runtime token as a bearer, and Azure Blob Storage at the signed URLs it hands out
 * (block-blob PUT with comp=block / comp=blocklist, or a single PUT; GET to download).
 */
export interface StoredArtifact {
  id: number;
  runId: string;
  jobId: string;
  name: string;
  mimeType: string;
  data: Buffer;
  size: number;
  digest?: string;
  createdAt: Date;
  finalized: boolean;
}

export interface ArtifactService {
  /** ACTIONS_RESULTS_URL */
  url: string;
  /** ACTIONS_RUNTIME_TOKEN: a JWT whose scp claim names this run and job, as the runner's does. */
  token: string;
  runId: string;
  jobId: string;
  /** Runner env for a JS action that uses @actions/artifact. */
  env: Record<string, string>;
  artifacts: StoredArtifact[];
  /** Every request: Twirp method names and blob operations, in order. */
  requests: string[];
  stop(): Promise<void>;
}

const SERVICE = '/twirp/github.actions.results.api.v1.ArtifactService/';

function base64url(value: string): string {
  return Buffer.from(value).toString('base64url');
}

async function body(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function twirpError(response: ServerResponse, status: number, code: string, msg: string): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ code, msg }));
}

export async function startArtifactService(): Promise<ArtifactService> {
  const runId = randomUUID();
  const jobId = randomUUID();
  const token = [base64url('{"alg":"RS256","typ":"JWT"}'), base64url(JSON.stringify({ scp: `Actions.GenericRead:0 Actions.Results:${runId}:${jobId}`, exp: Math.floor(Date.now() / 1000) + 3600 })), base64url('not-checked')].join('.');
  const signature = randomBytes(16).toString('hex');
  const artifacts: StoredArtifact[] = [];
  const blocks = new Map<string, Map<string, Buffer>>();
  const requests: string[] = [];
  let nextId = 1000;
  let baseUrl = '';

  const find = (run: string, name: string) => artifacts.find((a) => a.runId === run && a.name === name);

  const twirp = async (method: string, input: Record<string, unknown>, response: ServerResponse) => {
    const send = (value: unknown) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    const run = String(input.workflow_run_backend_id ?? '');
    if (run !== runId) return twirpError(response, 400, 'invalid_argument', 'workflow_run_backend_id does not match the token');
    switch (method) {
      case 'CreateArtifact': {
        const name = String(input.name ?? '');
        if (!name) return twirpError(response, 400, 'invalid_argument', 'name is required');
        if (find(run, name)?.finalized) return twirpError(response, 409, 'already_exists', `an artifact with this name already exists on the workflow run`);
        const existing = find(run, name);
        if (existing) artifacts.splice(artifacts.indexOf(existing), 1);
        const mimeType = typeof input.mime_type === 'string' ? input.mime_type : 'application/zip';
        artifacts.push({ id: nextId++, runId: run, jobId: String(input.workflow_job_run_backend_id), name, mimeType, data: Buffer.alloc(0), size: 0, createdAt: new Date(), finalized: false });
        return send({ ok: true, signed_upload_url: `${baseUrl}/blob/${run}/${encodeURIComponent(name)}?sv=2023-11-03&sr=b&sp=cw&sig=${signature}` });
      }
      case 'FinalizeArtifact': {
        const artifact = find(run, String(input.name));
        if (!artifact || artifact.finalized) return twirpError(response, 404, 'not_found', 'artifact not found');
        if (String(input.size) !== String(artifact.data.length)) return twirpError(response, 400, 'invalid_argument', `size ${input.size} does not match the uploaded ${artifact.data.length} bytes`);
        const hash = typeof input.hash === 'string' ? input.hash : undefined;
        const actual = `sha256:${createHash('sha256').update(artifact.data).digest('hex')}`;
        if (hash !== undefined && hash !== actual) return twirpError(response, 400, 'invalid_argument', `hash ${hash} does not match the uploaded ${actual}`);
        Object.assign(artifact, { finalized: true, size: artifact.data.length, digest: actual });
        return send({ ok: true, artifact_id: String(artifact.id) });
      }
      case 'ListArtifacts': {
        const nameFilter = typeof input.name_filter === 'string' ? input.name_filter : undefined;
        const idFilter = input.id_filter !== undefined ? Number(input.id_filter) : undefined;
        const listed = artifacts.filter((a) => a.finalized && a.runId === run && (nameFilter === undefined || a.name === nameFilter) && (idFilter === undefined || a.id === idFilter));
        return send({
          artifacts: listed.map((a) => ({
            workflow_run_backend_id: a.runId,
            workflow_job_run_backend_id: a.jobId,
            database_id: String(a.id),
            name: a.name,
            size: String(a.size),
            created_at: a.createdAt.toISOString(),
            ...(a.digest ? { digest: a.digest } : {}),
          })),
        });
      }
      case 'GetSignedArtifactURL': {
        const artifact = find(run, String(input.name));
        if (!artifact?.finalized) return twirpError(response, 404, 'not_found', 'artifact not found');
        return send({ signed_url: `${baseUrl}/download/${artifact.id}?sv=2023-11-03&sr=b&sp=r&sig=${signature}` });
      }
      case 'DeleteArtifact': {
        const artifact = find(run, String(input.name));
        if (!artifact?.finalized) return twirpError(response, 404, 'not_found', 'artifact not found');
        artifacts.splice(artifacts.indexOf(artifact), 1);
        return send({ ok: true, artifact_id: String(artifact.id) });
      }
      default:
        return twirpError(response, 404, 'bad_route', `no handler for ${method}`);
    }
  };

  const blob = async (request: IncomingMessage, url: URL, response: ServerResponse) => {
    if (url.searchParams.get('sig') !== signature) return response.writeHead(403).end('<Error><Code>AuthenticationFailed</Code></Error>');
    const headers = { 'x-ms-request-id': randomUUID(), 'x-ms-version': '2023-11-03', date: new Date().toUTCString() };
    if (request.method === 'GET' && url.pathname.startsWith('/download/')) {
      const artifact = artifacts.find((a) => a.finalized && a.id === Number(url.pathname.split('/')[2]));
      if (!artifact) return response.writeHead(404, headers).end();
      requests.push(`blob GET ${artifact.name}`);
      return response
        .writeHead(200, { ...headers, 'content-type': artifact.mimeType, 'content-length': artifact.data.length, 'content-disposition': `attachment; filename="${artifact.name}"; filename*=UTF-8''${encodeURIComponent(artifact.name)}` })
        .end(artifact.data);
    }
    const [, , run, encoded] = url.pathname.split('/');
    const artifact = find(run!, decodeURIComponent(encoded ?? ''));
    if (request.method !== 'PUT' || !artifact || artifact.finalized) return response.writeHead(404, headers).end();
    const data = await body(request);
    const comp = url.searchParams.get('comp');
    const key = `${run}/${artifact.name}`;
    const etag = `"0x${randomBytes(8).toString('hex').toUpperCase()}"`;
    if (comp === 'block') {
      const id = url.searchParams.get('blockid') ?? '';
      requests.push(`blob PUT block ${artifact.name}`);
      if (!blocks.has(key)) blocks.set(key, new Map());
      blocks.get(key)!.set(id, data);
      return response.writeHead(201, { ...headers, 'x-ms-request-server-encrypted': 'true', 'content-length': 0 }).end();
    }
    if (comp === 'blocklist') {
      requests.push(`blob PUT blocklist ${artifact.name}`);
      const ids = [...data.toString('utf8').matchAll(/<(?:Latest|Uncommitted|Committed)>([^<]*)<\//g)].map((m) => m[1]!);
      const staged = blocks.get(key) ?? new Map<string, Buffer>();
      const missing = ids.filter((id) => !staged.has(id));
      if (missing.length > 0) return response.writeHead(400, headers).end('<Error><Code>InvalidBlockList</Code></Error>');
      artifact.data = Buffer.concat(ids.map((id) => staged.get(id)!));
      const type = request.headers['x-ms-blob-content-type'];
      if (typeof type === 'string') artifact.mimeType = type;
      blocks.delete(key);
      return response.writeHead(201, { ...headers, etag, 'last-modified': new Date().toUTCString(), 'x-ms-request-server-encrypted': 'true', 'content-length': 0 }).end();
    }
    if (request.headers['x-ms-blob-type'] !== 'BlockBlob') return response.writeHead(400, headers).end('<Error><Code>MissingRequiredHeader</Code></Error>');
    requests.push(`blob PUT ${artifact.name}`);
    artifact.data = data;
    return response.writeHead(201, { ...headers, etag, 'last-modified': new Date().toUTCString(), 'content-length': 0 }).end();
  };

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const handle = async () => {
      if (url.pathname.startsWith(SERVICE)) {
        if (request.method !== 'POST') return twirpError(response, 405, 'bad_route', 'POST only');
        if (request.headers.authorization !== `Bearer ${token}`) return twirpError(response, 401, 'unauthenticated', 'bad token');
        const method = url.pathname.slice(SERVICE.length);
        requests.push(method);
        let input: Record<string, unknown>;
        try {
          input = JSON.parse((await body(request)).toString('utf8')) as Record<string, unknown>;
        } catch {
          return twirpError(response, 400, 'malformed', 'body is not JSON');
        }
        return twirp(method, input, response);
      }
      return blob(request, url, response);
    };
    handle().catch((error: Error) => {
      if (!response.headersSent) response.writeHead(500).end(error.message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${baseUrl}/`,
    token,
    runId,
    jobId,
    env: { ACTIONS_RESULTS_URL: `${baseUrl}/`, ACTIONS_RUNTIME_TOKEN: token, GITHUB_SERVER_URL: 'https://github.com' },
    artifacts,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
