import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Stands in for GitHub's artifact service (unreachable from the test bed), speaking what
 * @actions/artifact v6 speaks: Twirp JSON at `<ACTIONS_RESULTS_URL>/twirp/github.actions.results.api.v1.ArtifactService/<Method>`
 * with the runtime token as a bearer, and Azure Blob Storage at the signed URLs it hands out
 * (block-blob PUT with comp=block / comp=blocklist, or a single PUT; GET to download).
 *
 * Several workflow runs share one repository's artifacts: `newRun()` gives another run its own
 * runtime token (Twirp only sees that run's artifacts), and the REST API at GITHUB_API_URL
 * sees all of them, as GitHub's does: GET /repos/{owner}/{repo}/actions/artifacts (name,
 * per_page, page; Link header), GET …/artifacts/{id}, GET …/artifacts/{id}/zip (302 to the
 * signed blob URL; unzipped artifacts come back as their one file), DELETE …/artifacts/{id}
 * (204), with the `github-token` as `Authorization: Bearer` (or `token`) and GitHub's JSON
 * error bodies. A blob request carrying an Authorization header is refused, as Azure refuses a
 * foreign credential next to a SAS signature: the GitHub token must never travel to the blob.
 */
export interface StoredArtifact {
  id: number;
  /** The run's backend id (a UUID, in the runtime token's scope). */
  runId: string;
  /** The run's numeric id (GITHUB_RUN_ID; `workflow_run.id` in the REST API). */
  workflowRunId: number;
  jobId: string;
  name: string;
  mimeType: string;
  data: Buffer;
  size: number;
  digest?: string;
  createdAt: Date;
  finalized: boolean;
}

export interface ArtifactRun {
  /** Backend run id (UUID) and job id in the runtime token. */
  runId: string;
  jobId: string;
  /** GITHUB_RUN_ID */
  workflowRunId: number;
  /** ACTIONS_RUNTIME_TOKEN: a JWT whose scp claim names this run and job, as the runner's does. */
  token: string;
  /** Runner env of a step in this run: ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN, GITHUB_API_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID. */
  env: Record<string, string>;
}

export interface ArtifactService extends ArtifactRun {
  /** ACTIONS_RESULTS_URL */
  url: string;
  /** GITHUB_API_URL (the REST API's base, like GHES's /api/v3). */
  apiUrl: string;
  /** GITHUB_REPOSITORY the REST API answers for. */
  repository: string;
  /** The `github-token` the REST API accepts (ghs_…). */
  githubToken: string;
  /** What the token may do: `write` can also delete artifacts. Default write. */
  githubTokenPermission: 'read' | 'write';
  /** Another workflow run of the same repository (the first run is this object itself). */
  newRun(): ArtifactRun;
  artifacts: StoredArtifact[];
  /** Every request: Twirp method names, `REST <METHOD> <path>` and blob operations, in order. */
  requests: string[];
  /** Authorization headers the REST API received (to show which token was used). */
  restAuthorizations: string[];
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

const REPOSITORY = 'Acme-Corp/Shop-App';
const REPOSITORY_ID = 1296269;

function githubError(response: ServerResponse, status: number, message: string, doc = 'https://docs.github.com/rest/actions/artifacts'): void {
  response
    .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-media-type': 'github.v3; format=json' })
    .end(JSON.stringify({ message, documentation_url: doc, status: String(status) }));
}

export async function startArtifactService(): Promise<ArtifactService> {
  const artifacts: StoredArtifact[] = [];
  const blocks = new Map<string, Map<string, Buffer>>();
  const requests: string[] = [];
  const restAuthorizations: string[] = [];
  const runs: ArtifactRun[] = [];
  const signature = randomBytes(16).toString('hex');
  const githubToken = `ghs_${randomBytes(18).toString('hex')}`;
  let nextId = 1000;
  let nextRun = 7_000_000_001;
  let baseUrl = '';

  const newRun = (): ArtifactRun => {
    const runId = randomUUID();
    const jobId = randomUUID();
    const token = [
      base64url('{"alg":"RS256","typ":"JWT"}'),
      base64url(JSON.stringify({ scp: `Actions.GenericRead:0 Actions.Results:${runId}:${jobId}`, exp: Math.floor(Date.now() / 1000) + 3600 })),
      base64url('not-checked'),
    ].join('.');
    const workflowRunId = nextRun++;
    const run: ArtifactRun = {
      runId,
      jobId,
      workflowRunId,
      token,
      // Filled in once the server listens (baseUrl).
      env: {},
    };
    runs.push(run);
    if (baseUrl) fillEnv(run);
    return run;
  };
  const fillEnv = (run: ArtifactRun) => {
    Object.assign(run.env, {
      ACTIONS_RESULTS_URL: `${baseUrl}/`,
      ACTIONS_RUNTIME_TOKEN: run.token,
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_API_URL: `${baseUrl}/api`,
      GITHUB_REPOSITORY: REPOSITORY,
      GITHUB_RUN_ID: String(run.workflowRunId),
    });
  };
  const first = newRun();

  const find = (run: string, name: string) => artifacts.find((a) => a.runId === run && a.name === name);

  const twirp = async (caller: ArtifactRun, method: string, input: Record<string, unknown>, response: ServerResponse) => {
    const send = (value: unknown) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    const run = String(input.workflow_run_backend_id ?? '');
    if (run !== caller.runId) return twirpError(response, 400, 'invalid_argument', 'workflow_run_backend_id does not match the token');
    switch (method) {
      case 'CreateArtifact': {
        const name = String(input.name ?? '');
        if (!name) return twirpError(response, 400, 'invalid_argument', 'name is required');
        if (find(run, name)?.finalized) return twirpError(response, 409, 'already_exists', `an artifact with this name already exists on the workflow run`);
        const existing = find(run, name);
        if (existing) artifacts.splice(artifacts.indexOf(existing), 1);
        const mimeType = typeof input.mime_type === 'string' ? input.mime_type : 'application/zip';
        artifacts.push({
          id: nextId++,
          runId: run,
          workflowRunId: caller.workflowRunId,
          jobId: String(input.workflow_job_run_backend_id),
          name,
          mimeType,
          data: Buffer.alloc(0),
          size: 0,
          createdAt: new Date(),
          finalized: false,
        });
        return send({ ok: true, signed_upload_url: `${baseUrl}/blob/${run}/${encodeURIComponent(name)}?sv=2023-11-03&sr=b&sp=cw&sig=${signature}` });
      }
      case 'FinalizeArtifact': {
        const artifact = find(run, String(input.name));
        if (!artifact || artifact.finalized) return twirpError(response, 404, 'not_found', 'artifact not found');
        if (String(input.size) !== String(artifact.data.length))
          return twirpError(response, 400, 'invalid_argument', `size ${input.size} does not match the uploaded ${artifact.data.length} bytes`);
        const hash = typeof input.hash === 'string' ? input.hash : undefined;
        const actual = `sha256:${createHash('sha256').update(artifact.data).digest('hex')}`;
        if (hash !== undefined && hash !== actual) return twirpError(response, 400, 'invalid_argument', `hash ${hash} does not match the uploaded ${actual}`);
        Object.assign(artifact, { finalized: true, size: artifact.data.length, digest: actual });
        return send({ ok: true, artifact_id: String(artifact.id) });
      }
      case 'ListArtifacts': {
        const nameFilter = typeof input.name_filter === 'string' ? input.name_filter : undefined;
        const idFilter = input.id_filter !== undefined ? Number(input.id_filter) : undefined;
        const listed = artifacts.filter(
          (a) => a.finalized && a.runId === run && (nameFilter === undefined || a.name === nameFilter) && (idFilter === undefined || a.id === idFilter),
        );
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

  const restArtifact = (a: StoredArtifact) => {
    const url = `${baseUrl}/api/repos/${REPOSITORY}/actions/artifacts/${a.id}`;
    return {
      id: a.id,
      node_id: Buffer.from(`08:Artifact${a.id}`).toString('base64'),
      name: a.name,
      size_in_bytes: a.size,
      url,
      archive_download_url: `${url}/zip`,
      expired: false,
      ...(a.digest ? { digest: a.digest } : {}),
      created_at: a.createdAt.toISOString(),
      updated_at: a.createdAt.toISOString(),
      expires_at: new Date(a.createdAt.getTime() + 90 * 86_400_000).toISOString(),
      workflow_run: {
        id: a.workflowRunId,
        repository_id: REPOSITORY_ID,
        head_repository_id: REPOSITORY_ID,
        head_branch: 'main',
        head_sha: createHash('sha1').update(String(a.workflowRunId)).digest('hex'),
      },
    };
  };

  /** GitHub's REST API for a repository's artifacts, under `${baseUrl}/api`. */
  const rest = (request: IncomingMessage, url: URL, response: ServerResponse) => {
    const path = url.pathname.slice('/api'.length);
    requests.push(`REST ${request.method} ${path}${url.search}`);
    const authorization = request.headers.authorization ?? '';
    restAuthorizations.push(authorization);
    if (authorization !== `Bearer ${githubToken}` && authorization !== `token ${githubToken}`)
      return githubError(response, 401, 'Bad credentials', 'https://docs.github.com/rest');
    const match = /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts(?:\/(\d+)(?:\/([^/]+))?)?$/.exec(path);
    if (!match || `${match[1]}/${match[2]}`.toLowerCase() !== REPOSITORY.toLowerCase()) return githubError(response, 404, 'Not Found');
    const json = (status: number, value: unknown, headers: Record<string, string> = {}) =>
      response
        .writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'x-github-media-type': 'github.v3; format=json', ...headers })
        .end(JSON.stringify(value));
    const visible = artifacts.filter((a) => a.finalized).sort((a, b) => b.id - a.id);
    const [, , , idText, format] = match;
    if (idText === undefined) {
      if (request.method !== 'GET') return githubError(response, 404, 'Not Found');
      const name = url.searchParams.get('name');
      const perPage = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page') ?? 30)));
      const page = Math.max(1, Number(url.searchParams.get('page') ?? 1));
      const matching = visible.filter((a) => name === null || a.name === name);
      const last = Math.max(1, Math.ceil(matching.length / perPage));
      const link = (p: number) => {
        const next = new URL(url);
        next.searchParams.set('page', String(p));
        return `<${baseUrl}${next.pathname}${next.search}>`;
      };
      const links = [
        ...(page < last ? [`${link(page + 1)}; rel="next"`, `${link(last)}; rel="last"`] : []),
        ...(page > 1 ? [`${link(1)}; rel="first"`, `${link(page - 1)}; rel="prev"`] : []),
      ];
      return json(
        200,
        { total_count: matching.length, artifacts: matching.slice((page - 1) * perPage, page * perPage).map(restArtifact) },
        links.length ? { link: links.join(', ') } : {},
      );
    }
    const artifact = visible.find((a) => a.id === Number(idText));
    if (!artifact) return githubError(response, 404, 'Not Found');
    if (format === undefined && request.method === 'GET') return json(200, restArtifact(artifact));
    if (format === undefined && request.method === 'DELETE') {
      if (service.githubTokenPermission !== 'write')
        return githubError(response, 403, 'Resource not accessible by integration', 'https://docs.github.com/rest/actions/artifacts#delete-an-artifact');
      artifacts.splice(artifacts.indexOf(artifact), 1);
      return response.writeHead(204).end();
    }
    if (format === 'zip' && request.method === 'GET') {
      return response
        .writeHead(302, {
          location: `${baseUrl}/download/${artifact.id}?sv=2023-11-03&sr=b&sp=r&se=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}&sig=${signature}`,
          'content-length': 0,
        })
        .end();
    }
    return githubError(response, 404, 'Not Found');
  };

  const blob = async (request: IncomingMessage, url: URL, response: ServerResponse) => {
    if (request.headers.authorization !== undefined) {
      return response
        .writeHead(400, { 'content-type': 'application/xml' })
        .end(
          '<?xml version="1.0" encoding="utf-8"?><Error><Code>InvalidAuthenticationInfo</Code><Message>Authentication information is not given in the correct format.</Message></Error>',
        );
    }
    if (url.searchParams.get('sig') !== signature) return response.writeHead(403).end('<Error><Code>AuthenticationFailed</Code></Error>');
    const headers = { 'x-ms-request-id': randomUUID(), 'x-ms-version': '2023-11-03', date: new Date().toUTCString() };
    if (request.method === 'GET' && url.pathname.startsWith('/download/')) {
      const artifact = artifacts.find((a) => a.finalized && a.id === Number(url.pathname.split('/')[2]));
      if (!artifact) return response.writeHead(404, headers).end();
      requests.push(`blob GET ${artifact.name}`);
      return response
        .writeHead(200, {
          ...headers,
          'content-type': artifact.mimeType,
          'content-length': artifact.data.length,
          'content-disposition': `attachment; filename="${artifact.name}"; filename*=UTF-8''${encodeURIComponent(artifact.name)}`,
        })
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
      return response
        .writeHead(201, { ...headers, etag, 'last-modified': new Date().toUTCString(), 'x-ms-request-server-encrypted': 'true', 'content-length': 0 })
        .end();
    }
    if (request.headers['x-ms-blob-type'] !== 'BlockBlob') return response.writeHead(400, headers).end('<Error><Code>MissingRequiredHeader</Code></Error>');
    requests.push(`blob PUT ${artifact.name}`);
    artifact.data = data;
    return response.writeHead(201, { ...headers, etag, 'last-modified': new Date().toUTCString(), 'content-length': 0 }).end();
  };

  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const handle = async () => {
      if (url.pathname.startsWith('/api/')) return rest(request, url, response);
      if (url.pathname.startsWith(SERVICE)) {
        if (request.method !== 'POST') return twirpError(response, 405, 'bad_route', 'POST only');
        const caller = runs.find((run) => request.headers.authorization === `Bearer ${run.token}`);
        if (!caller) return twirpError(response, 401, 'unauthenticated', 'bad token');
        const method = url.pathname.slice(SERVICE.length);
        requests.push(method);
        let input: Record<string, unknown>;
        try {
          input = JSON.parse((await body(request)).toString('utf8')) as Record<string, unknown>;
        } catch {
          return twirpError(response, 400, 'malformed', 'body is not JSON');
        }
        return twirp(caller, method, input, response);
      }
      return blob(request, url, response);
    };
    handle().catch((error: Error) => {
      if (!response.headersSent) response.writeHead(500).end(error.message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const run of runs) fillEnv(run);
  const service: ArtifactService = {
    ...first,
    url: `${baseUrl}/`,
    apiUrl: `${baseUrl}/api`,
    repository: REPOSITORY,
    githubToken,
    githubTokenPermission: 'write',
    newRun,
    artifacts,
    requests,
    restAuthorizations,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return service;
}
