import type { CoolifyInputs } from './inputs';

/**
 * Coolify's deploy API as its controllers speak it (app/Http/Controllers/Api/DeployController.php):
 *   GET /api/v1/deploy?uuid=a,b&force=false  → {"deployments":[{"message","resource_uuid","deployment_uuid"?}]}
 *   GET /api/v1/deploy?tag=x,y&force=false   → {"message":["…"],"details":[{"resource_uuid","deployment_uuid"}]}
 *   GET /api/v1/deployments/{deployment_uuid} → the ApplicationDeploymentQueue row: status
 *       (queued, in_progress, finished, failed, cancelled-by-user) and `logs`, a JSON string of
 *       entries {output, type, hidden, …} (left out unless the token may read sensitive data).
 * and its applications API (app/Http/Controllers/Api/ApplicationsController.php):
 *   GET /api/v1/applications/{uuid}   → the application: build_pack, docker_registry_image_name, docker_registry_image_tag, …
 *   PATCH /api/v1/applications/{uuid} → {"uuid"}; body {"docker_registry_image_tag": "…"} (422 names a field it refuses)
 * Errors are {"message": "…"} with 400, 401, 404, 422 or 429 (deployment queue full).
 */

export interface ApiRequest {
  method: 'GET' | 'PATCH';
  url: string;
  /** The token is here and nowhere else: never in the URL, never in a log line. */
  headers: Record<string, string>;
  /** JSON, for PATCH. */
  body?: string;
}

const headers = (token: string) => ({ authorization: `Bearer ${token}`, accept: 'application/json' });

/** The one request that starts the deployments: by uuid or by tag, whichever the inputs name. */
export function deployRequest(inputs: Pick<CoolifyInputs, 'apiUrl' | 'token' | 'uuids' | 'tags' | 'force'>): ApiRequest {
  const [key, values] = inputs.uuids.length > 0 ? ['uuid', inputs.uuids] : ['tag', inputs.tags];
  const query = `${key}=${values.map(encodeURIComponent).join(',')}&force=${inputs.force}`;
  return { method: 'GET', url: `${inputs.apiUrl}/deploy?${query}`, headers: headers(inputs.token) };
}

export function deploymentRequest(inputs: Pick<CoolifyInputs, 'apiUrl' | 'token'>, deploymentUuid: string): ApiRequest {
  return { method: 'GET', url: `${inputs.apiUrl}/deployments/${encodeURIComponent(deploymentUuid)}`, headers: headers(inputs.token) };
}

export function applicationRequest(inputs: Pick<CoolifyInputs, 'apiUrl' | 'token'>, uuid: string): ApiRequest {
  return { method: 'GET', url: `${inputs.apiUrl}/applications/${encodeURIComponent(uuid)}`, headers: headers(inputs.token) };
}

export function setImageTagRequest(inputs: Pick<CoolifyInputs, 'apiUrl' | 'token'>, uuid: string, tag: string): ApiRequest {
  return {
    method: 'PATCH',
    url: `${inputs.apiUrl}/applications/${encodeURIComponent(uuid)}`,
    headers: { ...headers(inputs.token), 'content-type': 'application/json' },
    body: JSON.stringify({ docker_registry_image_tag: tag }),
  };
}

/** A request as the log and the dry-run plan may show it. */
export function describeRequest(request: ApiRequest): string {
  return `${request.method} ${request.url}\nAuthorization: Bearer ***${request.body ? `\n${request.body}` : ''}`;
}

export interface DockerImageApplication {
  uuid: string;
  name: string;
  /** docker_registry_image_name, e.g. ghcr.io/acme/api */
  image: string;
  tag: string;
}

/** An application that runs a registry image (build pack dockerimage), or why it cannot be given a tag. */
export function parseApplication(uuid: string, body: unknown): DockerImageApplication {
  const object = (body ?? {}) as Record<string, unknown>;
  const name = typeof object.name === 'string' ? object.name : uuid;
  if (object.build_pack !== 'dockerimage' || typeof object.docker_registry_image_name !== 'string' || object.docker_registry_image_name === '')
    throw new Error(
      `Coolify application ${name} (${uuid}) is built with the ${typeof object.build_pack === 'string' ? object.build_pack : 'unknown'} build pack, not from a registry image ("Docker Image"), so coolify-image-tag cannot choose what it runs; leave coolify-image-tag empty for it`,
    );
  const tag = typeof object.docker_registry_image_tag === 'string' && object.docker_registry_image_tag !== '' ? object.docker_registry_image_tag : 'latest';
  return { uuid, name, image: object.docker_registry_image_name, tag };
}

export interface Triggered {
  resourceUuid: string;
  /** Absent for services and databases (Coolify starts them, with no deployment to follow) and for refusals. */
  deploymentUuid?: string;
  message?: string;
}

/** What the deploy endpoint answered: one entry per resource it acted on, and its messages. */
export function parseTriggered(body: unknown): { deployments: Triggered[]; messages: string[] } {
  const object = (body ?? {}) as { deployments?: unknown; details?: unknown; message?: unknown };
  const list = Array.isArray(object.deployments) ? object.deployments : Array.isArray(object.details) ? object.details : [];
  const deployments: Triggered[] = [];
  for (const item of list as Record<string, unknown>[]) {
    if (typeof item?.resource_uuid !== 'string') continue;
    deployments.push({
      resourceUuid: item.resource_uuid,
      ...(typeof item.deployment_uuid === 'string' && item.deployment_uuid !== '' ? { deploymentUuid: item.deployment_uuid } : {}),
      ...(typeof item.message === 'string' ? { message: item.message } : {}),
    });
  }
  const messages = (Array.isArray(object.message) ? object.message : typeof object.message === 'string' ? [object.message] : []).filter(
    (m): m is string => typeof m === 'string',
  );
  return { deployments, messages };
}

export type DeploymentStatus = 'queued' | 'in_progress' | 'finished' | 'failed' | 'cancelled-by-user' | (string & {});

export interface DeploymentState {
  status: DeploymentStatus;
  /** The visible log lines; undefined when Coolify left the logs out (the token lacks read:sensitive). */
  logs?: string[];
}

/** Still running in Coolify's eyes; anything else is an end state. */
export const isRunning = (status: DeploymentStatus): boolean => status === 'queued' || status === 'in_progress';

export function parseDeployment(body: unknown): DeploymentState {
  const object = (body ?? {}) as { status?: unknown; logs?: unknown };
  if (typeof object.status !== 'string') throw new Error(`Coolify's answer about the deployment has no status: ${JSON.stringify(body).slice(0, 200)}`);
  let entries: unknown = object.logs;
  if (typeof entries === 'string') {
    try {
      entries = entries === '' ? [] : JSON.parse(entries);
    } catch {
      entries = [{ output: entries }];
    }
  }
  if (entries === undefined || entries === null) return { status: object.status };
  const logs = (Array.isArray(entries) ? entries : [])
    .filter((entry: { hidden?: unknown }) => entry?.hidden !== true)
    .map((entry: { output?: unknown }) => (typeof entry?.output === 'string' ? entry.output : ''))
    .filter((line) => line !== '');
  return { status: object.status, logs };
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** One request, answered or not within timeoutMs; throws on network errors only (a 4xx or 5xx is an answer). */
export async function send(request: ApiRequest, timeoutMs = 30_000): Promise<ApiAnswer> {
  const response = await fetch(request.url, {
    method: request.method,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body }),
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: response.status, body };
}

/** An error answer in words, with a hint for the statuses a workflow can fix. */
export function answerError(what: string, request: ApiRequest, answer: ApiAnswer): string {
  const errors =
    typeof answer.body === 'object' && answer.body !== null && 'errors' in answer.body && typeof answer.body.errors === 'object' && answer.body.errors !== null
      ? ` (${Object.entries(answer.body.errors as Record<string, unknown>)
          .map(([field, why]) => `${field}: ${Array.isArray(why) ? why.join(' ') : String(why)}`)
          .join('; ')})`
      : '';
  const said =
    typeof answer.body === 'object' && answer.body !== null && 'message' in answer.body
      ? String(answer.body.message) + errors
      : (typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body ?? '')).slice(0, 300);
  const hint =
    answer.status === 401
      ? ' Check coolify-token: Coolify does not accept it.'
      : answer.status === 403
        ? ` The token lacks a permission: it needs \`deploy\` and \`read\`${request.method === 'PATCH' ? ', and `write` to set coolify-image-tag' : ''}.`
        : answer.status === 404
          ? " Check coolify-uuid / coolify-tag: the token's team has no such resource."
          : answer.status === 429
            ? " Coolify's deployment queue is full; try again later."
            : '';
  return `${what}: Coolify answered HTTP ${answer.status} to ${request.method} ${request.url}${said ? `: ${said.replace(/\.+$/, '')}` : ''}.${hint}`;
}
