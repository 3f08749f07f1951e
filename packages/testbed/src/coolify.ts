import { randomBytes } from 'node:crypto';
import { startRecordingServer, type RecordedRequest, type RecordedResponse, type RecordingServer } from './http-recorder';

/**
 * A stand-in for a Coolify instance's deploy API (coollabsio/coolify,
 * app/Http/Controllers/Api/DeployController.php and the ApplicationDeploymentQueue model), on
 * 127.0.0.1. It answers as Coolify does:
 *   GET|POST /api/v1/deploy?uuid=a,b|tag=x&force=…  (Bearer token; uuid and tag together → 400)
 *     by uuid: {"deployments":[{"message","resource_uuid","deployment_uuid"}]} (no deployment_uuid for a service)
 *     by tag:  {"message":["…"],"details":[{"resource_uuid","deployment_uuid"}]}
 *     nothing found: 404 {"message":"No resources found."}
 *   GET /api/v1/deployments/{deployment_uuid} → the queue row: status and `logs`, a JSON string of
 *     entries {command, output, type, timestamp, hidden, batch, order}
 *   GET /api/v1/applications/{uuid} → the application (build_pack, docker_registry_image_name/_tag, …);
 *     not an application → 404 {"message":"Application not found"}
 *   PATCH /api/v1/applications/{uuid} with a JSON body of allowed fields → {"uuid"}; an empty body
 *     → 400 {"message":"Invalid request."}; another field → 422 {"message":"Validation failed.","errors":{field:[…]}}
 *     (ApplicationsController::update_by_uuid)
 *   a wrong or missing token → 401 {"message":"Unauthenticated."}
 * A deployment moves one step along its resource's `statuses` each time it is asked about, and
 * stays at the last one; each step adds that step's log lines. An application with `run` is
 * really deployed instead, as Coolify deploys a Docker-image application: `run` gets the image
 * reference of the tag set at the time the deployment was queued; the deployment is in_progress
 * until it settles, then finished (resolved) or failed (rejected, its message in the log).
 */

export interface CoolifyResource {
  uuid: string;
  name: string;
  kind: 'application' | 'service';
  tags?: readonly string[];
  /** Statuses a deployment of it goes through, one per GET (default queued, in_progress, finished). */
  statuses?: readonly string[];
  /** Log lines added at each step (index = step); hidden lines are Coolify's internal commands. */
  logs?: readonly (readonly { output: string; type?: 'stdout' | 'stderr'; hidden?: boolean }[])[];
  /** A Docker-image application (build pack dockerimage): the image it runs; `tag` changes with PATCH. */
  image?: { name: string; tag: string };
  /** Deploys the image for real (pull and start it); see above. */
  run?: (image: string) => Promise<void>;
  /** Tags a PATCH may not set: answered 422 as Coolify's validation answers, the application unchanged. */
  refuseTags?: string[];
}

export interface CoolifyDeployment {
  deploymentUuid: string;
  resource: CoolifyResource;
  force: boolean;
  step: number;
  /** The image tag the deployment ran (Docker-image applications). */
  imageTag?: string;
  /** With `run`: where the real deployment is. */
  settled?: 'in_progress' | 'finished' | 'failed';
  runLog?: string[];
}

export interface CoolifyServer extends RecordingServer {
  token: string;
  deployments: CoolifyDeployment[];
}

/** A few of update_by_uuid's allowed fields: enough to tell an allowed field from another. */
const UPDATABLE = new Set([
  'name',
  'description',
  'docker_registry_image_name',
  'docker_registry_image_tag',
  'ports_exposes',
  'health_check_path',
  'instant_deploy',
]);

const cuid = () =>
  randomBytes(12)
    .toString('hex')
    .replace(/^[0-9]/, 'c')
    .slice(0, 24);

export async function startCoolify(
  resources: readonly CoolifyResource[],
  token = `${Math.floor(Math.random() * 90 + 10)}|${randomBytes(20).toString('base64url')}`,
): Promise<CoolifyServer> {
  const deployments: CoolifyDeployment[] = [];
  const json = (status: number, body: unknown): RecordedResponse => ({ status, body });

  const queue = (resource: CoolifyResource, force: boolean): { message: string; deploymentUuid?: string } => {
    if (resource.kind === 'service') return { message: `Service ${resource.name} started. It could take a while, be patient.` };
    const deployment: CoolifyDeployment = { deploymentUuid: cuid(), resource, force, step: -1, ...(resource.image ? { imageTag: resource.image.tag } : {}) };
    deployments.push(deployment);
    if (resource.run && resource.image) {
      const image = `${resource.image.name}:${resource.image.tag}`;
      deployment.settled = 'in_progress';
      deployment.runLog = [`Pulling image ${image}.`];
      resource.run(image).then(
        () => {
          deployment.runLog!.push('New container started.');
          deployment.settled = 'finished';
        },
        (error: Error) => {
          deployment.runLog!.push(error.message, 'Deployment failed. Removing the new version of your application.');
          deployment.settled = 'failed';
        },
      );
    }
    return { message: `Application ${resource.name} deployment queued.`, deploymentUuid: deployment.deploymentUuid };
  };

  const row = (deployment: CoolifyDeployment) => {
    const statuses = deployment.settled ? [deployment.settled] : (deployment.resource.statuses ?? ['queued', 'in_progress', 'finished']);
    deployment.step = Math.min(deployment.step + 1, statuses.length - 1);
    const lines = deployment.runLog
      ? deployment.runLog.map((output) => ({ output, type: 'stdout' as const, hidden: false }))
      : (deployment.resource.logs ?? []).slice(0, deployment.step + 1).flat();
    const entries = lines.map((line, index) => ({
      command: null,
      output: line.output,
      type: line.type ?? 'stdout',
      timestamp: new Date().toISOString(),
      hidden: line.hidden ?? false,
      batch: 1,
      order: index + 1,
    }));
    return {
      id: deployments.indexOf(deployment) + 1,
      application_id: String(deployment.resource.uuid),
      deployment_uuid: deployment.deploymentUuid,
      pull_request_id: 0,
      force_rebuild: deployment.force,
      commit: 'HEAD',
      status: statuses[deployment.step],
      is_webhook: false,
      is_api: true,
      logs: JSON.stringify(entries),
      current_process_id: null,
      restart_only: false,
      application_name: deployment.resource.name,
      server_name: 'localhost',
      deployment_url: `/project/p/environment/e/application/${deployment.resource.uuid}/deployment/${deployment.deploymentUuid}`,
      rollback: false,
      docker_registry_image_tag: deployment.imageTag ?? null,
      commit_message: null,
      created_at: new Date().toISOString(),
      updated_at: new Date().toISOString(),
    };
  };

  const respond = (request: RecordedRequest): RecordedResponse => {
    if (request.headers.authorization !== `Bearer ${token}`) return json(401, { message: 'Unauthenticated.' });
    const url = new URL(request.path, 'http://coolify.invalid');
    if (url.pathname === '/api/v1/deploy' && (request.method === 'GET' || request.method === 'POST')) {
      const uuids = url.searchParams.get('uuid');
      const tags = url.searchParams.get('tag');
      const force = url.searchParams.get('force') === 'true';
      if (uuids && tags) return json(400, { message: 'You can only use uuid or tag, not both.' });
      if (tags) {
        const messages: string[] = [];
        const details: { resource_uuid: string; deployment_uuid: string }[] = [];
        for (const tag of tags.split(',').filter(Boolean)) {
          const tagged = resources.filter((r) => r.tags?.includes(tag));
          if (tagged.length === 0) continue;
          for (const resource of tagged) {
            const queued = queue(resource, force);
            messages.push(queued.message);
            if (queued.deploymentUuid) details.push({ resource_uuid: resource.uuid, deployment_uuid: queued.deploymentUuid });
          }
        }
        if (messages.length === 0) return json(404, { message: 'No resources found with this tag.' });
        return json(200, { message: messages, ...(details.length > 0 ? { details } : {}) });
      }
      if (uuids) {
        const found = uuids
          .split(',')
          .filter(Boolean)
          .flatMap((uuid) => resources.filter((r) => r.uuid === uuid));
        if (found.length === 0) return json(404, { message: 'No resources found.' });
        return json(200, {
          deployments: found.map((resource) => {
            const queued = queue(resource, force);
            return { message: queued.message, resource_uuid: resource.uuid, ...(queued.deploymentUuid ? { deployment_uuid: queued.deploymentUuid } : {}) };
          }),
        });
      }
      return json(400, { message: 'You must provide uuid or tag.' });
    }
    const application = /^\/api\/v1\/applications\/([^/]+)$/.exec(url.pathname);
    if (application && (request.method === 'GET' || request.method === 'PATCH')) {
      const resource = resources.find((r) => r.uuid === decodeURIComponent(application[1]!) && r.kind === 'application');
      if (!resource) return json(404, { message: 'Application not found' });
      if (request.method === 'PATCH') {
        const body = (request.json ?? {}) as Record<string, unknown>;
        if (Object.keys(body).length === 0) return json(400, { message: 'Invalid request.' });
        const extra = Object.keys(body).filter((field) => !UPDATABLE.has(field));
        if (extra.length > 0)
          return json(422, { message: 'Validation failed.', errors: Object.fromEntries(extra.map((field) => [field, ['This field is not allowed.']])) });
        if (typeof body.docker_registry_image_tag === 'string' && resource.refuseTags?.includes(body.docker_registry_image_tag))
          return json(422, { message: 'Validation failed.', errors: { docker_registry_image_tag: ['The docker registry image tag format is invalid.'] } });
        if (typeof body.docker_registry_image_tag === 'string' && resource.image) resource.image.tag = body.docker_registry_image_tag;
        if (typeof body.docker_registry_image_name === 'string' && resource.image) resource.image.name = body.docker_registry_image_name;
        return json(200, { uuid: resource.uuid });
      }
      return json(200, {
        id: resources.indexOf(resource) + 1,
        uuid: resource.uuid,
        name: resource.name,
        build_pack: resource.image ? 'dockerimage' : 'dockerfile',
        docker_registry_image_name: resource.image?.name ?? null,
        docker_registry_image_tag: resource.image?.tag ?? null,
        fqdn: null,
        status: 'running:healthy',
        ports_exposes: '80',
      });
    }
    const match = /^\/api\/v1\/deployments\/([^/]+)$/.exec(url.pathname);
    if (match && request.method === 'GET') {
      const deployment = deployments.find((d) => d.deploymentUuid === decodeURIComponent(match[1]!));
      if (!deployment) return json(404, { message: 'Deployment not found.' });
      return json(200, row(deployment));
    }
    return json(404, { message: 'Not found.' });
  };

  const server = await startRecordingServer(respond);
  return Object.assign(server, { token, deployments });
}
