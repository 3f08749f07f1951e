import { parse as parseYaml, stringify } from 'yaml';

/** The file Skiff adds to each swarm release, merged last by `docker stack deploy -c … -c skiff-stack.yml`. */
export const STACK_FILE = 'skiff-stack.yml';

type Mapping = Record<string, unknown>;
const isMapping = (value: unknown): value is Mapping => typeof value === 'object' && value !== null && !Array.isArray(value);

interface ServiceView {
  /** Keys of deploy.update_config / deploy.rollback_config set in any of the files. */
  update: Set<string>;
  rollback: Set<string>;
  /** Publishes a port in `mode: host`: two tasks cannot share it on one node. */
  hostPort: boolean;
}

function hostModePorts(ports: unknown): boolean {
  return Array.isArray(ports) && ports.some((port) => isMapping(port) && port.mode === 'host');
}

/** What the user's files say about each service, merged in order (a key set in any file counts as set). */
function serviceViews(files: readonly { name: string; content: string }[]): { services: Map<string, ServiceView>; version?: string } {
  const services = new Map<string, ServiceView>();
  let version: string | undefined;
  for (const file of files) {
    let doc: unknown;
    try {
      doc = parseYaml(file.content);
    } catch (error) {
      throw new Error(`compose file ${file.name} is not valid YAML: ${(error as Error).message}`);
    }
    if (doc === null || doc === undefined) continue;
    if (!isMapping(doc)) throw new Error(`compose file ${file.name} is not a mapping of top-level keys (services: …)`);
    if (version === undefined && doc.version !== undefined) version = typeof doc.version === 'string' ? doc.version : JSON.stringify(doc.version);
    if (doc.services === undefined || doc.services === null) continue;
    if (!isMapping(doc.services)) throw new Error(`compose file ${file.name}: services must be a mapping of service names`);
    for (const [name, service] of Object.entries(doc.services)) {
      const view = services.get(name) ?? { update: new Set<string>(), rollback: new Set<string>(), hostPort: false };
      services.set(name, view);
      if (!isMapping(service)) continue;
      if (hostModePorts(service.ports)) view.hostPort = true;
      const deploy = isMapping(service.deploy) ? service.deploy : {};
      if (isMapping(deploy.update_config)) for (const key of Object.keys(deploy.update_config)) view.update.add(key);
      if (isMapping(deploy.rollback_config)) for (const key of Object.keys(deploy.rollback_config)) view.rollback.add(key);
    }
  }
  return { services, ...(version === undefined ? {} : { version }) };
}

export interface StackOverride {
  /** The YAML of skiff-stack.yml. */
  content: string;
  /** Services that publish a host-mode port and so update stop-first (with the reason, for a warning). */
  stopFirst: string[];
}

/**
 * skiff-stack.yml: for every service, what the user did not set of
 *   deploy.update_config:   order: start-first (a new task is healthy before the old one stops),
 *                           failure_action: rollback (Swarm undoes a failing update itself)
 *   deploy.rollback_config: order: start-first
 * and the pinned image where one is given. A service publishing a port in host mode cannot run
 * the new task beside the old one on the same node, so it gets stop-first instead. Keys the user
 * set are left out, so the user's value wins the merge.
 */
export function stackOverride(files: readonly { name: string; content: string }[], images: Readonly<Record<string, string>> = {}): StackOverride {
  const { services, version } = serviceViews(files);
  const out: Mapping = {};
  const stopFirst: string[] = [];
  for (const [name, view] of services) {
    const order = view.hostPort ? 'stop-first' : 'start-first';
    if (view.hostPort && !view.update.has('order')) stopFirst.push(name);
    const update: Mapping = {};
    if (!view.update.has('order')) update.order = order;
    if (!view.update.has('failure_action')) update.failure_action = 'rollback';
    const rollback: Mapping = {};
    if (!view.rollback.has('order')) rollback.order = order;
    const service: Mapping = {};
    if (images[name] !== undefined) service.image = images[name];
    const deploy: Mapping = {};
    if (Object.keys(update).length > 0) deploy.update_config = update;
    if (Object.keys(rollback).length > 0) deploy.rollback_config = rollback;
    if (Object.keys(deploy).length > 0) service.deploy = deploy;
    out[name] = service;
  }
  const doc: Mapping = { ...(version === undefined ? {} : { version }), services: out };
  const header = '# Written by Skiff (strategy: swarm): update and rollback settings the compose files leave unset, and the pinned images.\n';
  return { content: `${header}${stringify(doc, { lineWidth: 0 })}`, stopFirst };
}

/** Swarm's own view of one service of the stack (from `docker service inspect`). */
interface InspectedService {
  Spec?: {
    Name?: string;
    Mode?: { Replicated?: { Replicas?: number }; Global?: unknown };
    TaskTemplate?: { ContainerSpec?: { Image?: string } };
  };
  UpdateStatus?: { State?: string; StartedAt?: string; CompletedAt?: string; Message?: string };
}

/** One task line of `docker stack ps --no-trunc --format '{{json .}}'`. */
interface TaskLine {
  Name?: string;
  Image?: string;
  DesiredState?: string;
  CurrentState?: string;
  Error?: string;
}

export interface ServiceState {
  service: string;
  /** The image the service's spec runs (image@sha256:… once Swarm resolved it). */
  image: string;
  state: 'ok' | 'waiting' | 'failed';
  detail: string;
  /** Swarm rolled this service's update back on its own (failure_action: rollback). */
  rolledBack: boolean;
  /** Swarm is updating it or rolling it back right now. */
  moving: boolean;
}

export const STATE_SEPARATOR = '--- skiff tasks ---';
export const ROLLING_BACK = 'Swarm is rolling the update back';

/**
 * Reads `docker service inspect` (a JSON array) and the tasks after STATE_SEPARATOR. A service is
 * converged when its update (started at or after `sinceMs`, so an old status does not count) is
 * completed — or it had none — and as many tasks as it wants run the spec's image. A rollback
 * Swarm finished or an update it paused cannot get better by waiting: `failed`.
 */
export function parseStackState(stdout: string, stack: string, sinceMs: number): ServiceState[] {
  const [inspectText = '', tasksText = ''] = stdout.split(STATE_SEPARATOR);
  const trimmed = inspectText.trim();
  const inspected = (trimmed === '' ? [] : JSON.parse(trimmed)) as InspectedService[];
  const tasks = tasksText
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as TaskLine);
  const states: ServiceState[] = [];
  for (const service of inspected) {
    const fullName = service.Spec?.Name ?? '';
    const name = fullName.startsWith(`${stack}_`) ? fullName.slice(stack.length + 1) : fullName;
    const image = service.Spec?.TaskTemplate?.ContainerSpec?.Image ?? '';
    const update = service.UpdateStatus;
    const fresh = update?.StartedAt !== undefined && Date.parse(update.StartedAt) >= sinceMs - 1000;
    const said = update?.Message ? `: ${update.Message}` : '';
    const base = { service: name, image };
    if (fresh && update?.State === 'rollback_completed') {
      states.push({ ...base, state: 'failed', detail: `Swarm rolled the update back${said}`, rolledBack: true, moving: false });
      continue;
    }
    if (fresh && (update?.State === 'paused' || update?.State === 'rollback_paused')) {
      states.push({
        ...base,
        state: 'failed',
        detail: `Swarm paused the ${update.State === 'paused' ? 'update' : 'rollback'}${said}`,
        rolledBack: false,
        moving: false,
      });
      continue;
    }
    if (fresh && (update?.State === 'updating' || update?.State === 'rollback_started')) {
      states.push({ ...base, state: 'waiting', detail: update.State === 'updating' ? 'updating' : `${ROLLING_BACK}${said}`, rolledBack: false, moving: true });
      continue;
    }
    const own = tasks.filter((task) => task.Name?.startsWith(`${fullName}.`) || task.Name === fullName);
    const running = own.filter((task) => task.DesiredState === 'Running' && task.CurrentState?.startsWith('Running') && task.Image === image).length;
    const wanted = service.Spec?.Mode?.Replicated?.Replicas ?? 1;
    const lastError = own.find((task) => task.Error)?.Error;
    if (running >= wanted) states.push({ ...base, state: 'ok', detail: `${running}/${wanted} running`, rolledBack: false, moving: false });
    else
      states.push({
        ...base,
        state: 'waiting',
        detail: `${running}/${wanted} running${lastError ? ` (last error: ${lastError})` : ''}`,
        rolledBack: false,
        moving: false,
      });
  }
  return states.sort((a, b) => a.service.localeCompare(b.service));
}
