import { Readable } from 'node:stream';

/**
 * A repository's artifacts through GitHub's REST API, across workflow runs: the runner's
 * artifact service (ACTIONS_RUNTIME_TOKEN) only sees the run it belongs to, so a backup made by
 * last night's run is listed, downloaded and pruned from here.
 *
 * Why not @actions/artifact's `findBy`: it lists and looks up artifacts of ONE given run id
 * (GET …/actions/runs/{run_id}/artifacts), and backups live in many runs whose ids nobody
 * knows; it would also bring the Azure SDK into the bundle. @actions/github's Octokit would
 * add ~540 KB (minified: endpoint tables, its HTTP client) for three requests. So: fetch, GitHub's documented headers.
 *
 *  GET    /repos/{owner}/{repo}/actions/artifacts?per_page=100&page=N   (newest first)
 *  GET    /repos/{owner}/{repo}/actions/artifacts/{id}/zip              → 302 to a signed blob URL
 *  DELETE /repos/{owner}/{repo}/actions/artifacts/{id}                  → 204 (needs actions: write)
 *
 * The token goes only to the API: the blob URL is fetched without it (it is signed already,
 * and on another host).
 */

export interface GitHubSettings {
  /** `github-token`: needs `actions: read` (list, restore, drill) and `actions: write` (prune). */
  token: string;
  /** owner/repo (GITHUB_REPOSITORY). */
  repository: string;
  /** GITHUB_API_URL: https://api.github.com, or https://HOST/api/v3 on GitHub Enterprise Server. */
  apiUrl: string;
}

export interface RepoArtifact {
  id: number;
  name: string;
  size: number;
  createdAt?: Date;
  /** GITHUB_RUN_ID of the run that made it. */
  runId?: number;
  digest?: string;
}

/** Pages of 100: enough for 10 000 artifacts, newest first; older ones are reported, not silently dropped. */
const PER_PAGE = 100;
const MAX_PAGES = 100;
const ATTEMPTS = 3;

export class GitHubApiError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'GitHubApiError';
  }
}

function hint(status: number, method: string): string {
  if (status === 401) return ' (github-token is not valid)';
  if (status === 403)
    return method === 'DELETE'
      ? ' (github-token needs `actions: write` to delete artifacts: add `permissions: actions: write` to the job)'
      : ' (github-token needs `actions: read`)';
  if (status === 404) return ' (not found: wrong repository, an artifact that expired or was deleted, or a token without access to the repository)';
  return '';
}

export class GitHubArtifactsApi {
  private readonly base: string;
  /** Set when a listing stopped at MAX_PAGES: older artifacts exist that were not looked at. */
  truncated = false;

  constructor(private readonly settings: GitHubSettings) {
    if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(settings.repository))
      throw new GitHubApiError(`GITHUB_REPOSITORY ${JSON.stringify(settings.repository)} is not owner/repo`);
    this.base = `${settings.apiUrl.replace(/\/+$/, '')}/repos/${settings.repository}/actions/artifacts`;
  }

  private headers(): Record<string, string> {
    return {
      accept: 'application/vnd.github+json',
      authorization: `Bearer ${this.settings.token}`,
      'x-github-api-version': '2022-11-28',
      'user-agent': 'skiff-action-backup',
    };
  }

  /** One API request with retries on throttling, server errors and network errors; never follows redirects. */
  private async request(method: 'GET' | 'DELETE', url: string): Promise<Response> {
    const path = new URL(url).pathname;
    let last = '';
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const response = await fetch(url, { method, headers: this.headers(), redirect: 'manual', signal: AbortSignal.timeout(60_000) }).catch(
        (error: Error) => error,
      );
      if (response instanceof Error) last = response.message;
      else {
        if (response.status < 400) return response;
        const text = await response.text().catch(() => '');
        let message = text.slice(0, 300);
        try {
          message = String((JSON.parse(text) as { message?: string }).message ?? message);
        } catch {
          // Not JSON: keep the text.
        }
        const retry = response.status === 429 || response.status >= 500 || (response.status === 403 && response.headers.get('x-ratelimit-remaining') === '0');
        if (!retry || attempt === ATTEMPTS)
          throw new GitHubApiError(`GitHub API ${method} ${path} answered ${response.status}: ${message}${hint(response.status, method)}`, response.status);
        last = `${response.status}: ${message}`;
      }
      if (attempt < ATTEMPTS) await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** attempt));
    }
    throw new GitHubApiError(`GitHub API ${method} ${path} failed: ${last}`);
  }

  /** Every unexpired artifact of the repository (all runs), newest first. */
  async list(): Promise<RepoArtifact[]> {
    const found: RepoArtifact[] = [];
    this.truncated = false;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const response = await this.request('GET', `${this.base}?per_page=${PER_PAGE}&page=${page}`);
      const body = (await response.json()) as { total_count?: number; artifacts?: Record<string, unknown>[] };
      const artifacts = body.artifacts ?? [];
      for (const a of artifacts) {
        if (a.expired === true) continue;
        const run = a.workflow_run as { id?: number } | null | undefined;
        found.push({
          id: Number(a.id),
          name: String(a.name),
          size: Number(a.size_in_bytes ?? 0),
          ...(typeof a.created_at === 'string' ? { createdAt: new Date(a.created_at) } : {}),
          ...(typeof run?.id === 'number' ? { runId: run.id } : {}),
          ...(typeof a.digest === 'string' ? { digest: a.digest } : {}),
        });
      }
      const more = /rel="next"/.test(response.headers.get('link') ?? '') || (artifacts.length === PER_PAGE && page * PER_PAGE < (body.total_count ?? 0));
      if (!more) return found;
    }
    this.truncated = true;
    return found;
  }

  /**
   * The artifact's bytes. The API answers with a redirect to a short-lived signed blob URL;
   * an artifact uploaded unzipped (as backups are) comes back as its one file.
   */
  async download(id: number): Promise<Readable> {
    const response = await this.request('GET', `${this.base}/${id}/zip`);
    const location = response.headers.get('location');
    await response.body?.cancel();
    if (response.status < 300 || response.status >= 400 || !location)
      throw new GitHubApiError(`GitHub API GET artifact ${id}/zip answered ${response.status} without a redirect to the download`);
    // No Authorization here: the URL carries its own signature, and the token stays with the API.
    // No overall timeout either: a large backup may take longer to download than any fixed limit.
    const blob = await fetch(location);
    if (!blob.ok || !blob.body)
      throw new GitHubApiError(`download of artifact ${id} failed: ${blob.status} ${(await blob.text().catch(() => '')).slice(0, 200)}`);
    if ((blob.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase() === 'application/zip') {
      await blob.body.cancel();
      throw new GitHubApiError(`artifact ${id} is a zip archive; backups are stored as single unzipped files, so this artifact was not made by action-backup`);
    }
    return Readable.fromWeb(blob.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }

  async delete(id: number): Promise<void> {
    await this.request('DELETE', `${this.base}/${id}`);
  }
}
