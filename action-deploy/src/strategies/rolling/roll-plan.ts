import { parse as parseYaml } from 'yaml';
import type { ContainerRow } from '../../compose-commands';

/**
 * strategy: rolling, the pure part: which services can run twice side by side, and what a
 * deploy does with each, from `compose config`, `compose config --hash '*'` and `docker ps`.
 */

/** What decides whether two containers of a service can run at once. */
export interface ServiceShape {
  name: string;
  containerName?: string;
  /** Host ports it binds, as `[ip:]published:target`. */
  fixedPorts: string[];
  hostNetwork: boolean;
  /** Named volumes and host directories mounted read-write. */
  writableMounts: string[];
  /** deploy.replicas or scale; 1 when neither is set. */
  replicas: number;
  dependsOn: string[];
}

interface ConfigService {
  container_name?: string;
  network_mode?: string;
  scale?: number;
  deploy?: { replicas?: number } | null;
  ports?: ({ published?: string | number; target?: number; host_ip?: string } | string)[];
  volumes?: ({ type?: string; source?: string; read_only?: boolean } | string)[];
  depends_on?: Record<string, unknown> | string[];
}

/** The shapes of every service in the output of `compose config` (normalised YAML, the long syntax). */
export function serviceShapes(configYaml: string): ServiceShape[] {
  const config = (parseYaml(configYaml) ?? {}) as { services?: Record<string, ConfigService | null> };
  return Object.entries(config.services ?? {}).map(([name, raw]) => {
    const service = raw ?? {};
    const fixedPorts = (service.ports ?? []).flatMap((port) => {
      if (typeof port === 'string') return port.includes(':') ? [port] : [];
      if (port.published === undefined || port.published === '') return [];
      return [`${port.host_ip ? `${port.host_ip}:` : ''}${port.published}:${port.target ?? '?'}`];
    });
    const writableMounts = (service.volumes ?? []).flatMap((volume) => {
      if (typeof volume === 'string') return [];
      // An anonymous volume (no source) is created per container, so copies do not share it.
      if ((volume.type === 'volume' || volume.type === 'bind') && volume.source && !volume.read_only) return [volume.source];
      return [];
    });
    const replicas = service.deploy?.replicas ?? service.scale ?? 1;
    const dependsOn = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
    return {
      name,
      ...(service.container_name ? { containerName: service.container_name } : {}),
      fixedPorts,
      hostNetwork: service.network_mode === 'host',
      writableMounts,
      replicas,
      dependsOn,
    };
  });
}

/**
 * Why a service cannot be rolled, or undefined if it can. `named`: the user listed it in
 * rolling-services, which overrides the data-safety rule (read-write mounts) but not what
 * makes a second container impossible.
 */
export function whyNotRolled(shape: ServiceShape, named: boolean): string | undefined {
  if (shape.containerName) return `sets container_name ${shape.containerName}, and two containers cannot share a name`;
  if (shape.fixedPorts.length > 0)
    return `publishes fixed host port${shape.fixedPorts.length > 1 ? 's' : ''} ${shape.fixedPorts.join(', ')}, which a second container cannot bind`;
  if (shape.hostNetwork) return 'uses network_mode: host, so a second container would bind the same ports';
  if (!named && shape.writableMounts.length > 0) {
    return `mounts ${shape.writableMounts.join(', ')} read-write, and two copies writing at once could corrupt its data (name it in rolling-services to roll it anyway)`;
  }
  return undefined;
}

/** `compose config --hash '*'`: service → hash. */
export function parseConfigHashes(stdout: string): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const [service, hash] = line.trim().split(/\s+/);
    if (service && hash) hashes.set(service, hash);
  }
  return hashes;
}

export interface RollingService {
  service: string;
  /** Every container of the service before the deploy (one-offs aside): all go once the new ones pass. */
  old: string[];
  /** Containers the new release runs: the service's replicas. */
  replicas: number;
}

export interface RollPlan {
  /** Services that get new containers beside the old ones. */
  roll: RollingService[];
  /** Services with no container yet that a rolled service depends on: started (and waited for) before the roll. */
  startFirst: string[];
  /** Changed services that cannot roll: `compose up` recreates them after the roll. */
  recreate: { service: string; why: string }[];
  /** Services whose containers already run the release's configuration. */
  unchanged: string[];
  warnings: string[];
}

/**
 * What a rolling deploy does with each service of the new release. A service rolls when it can
 * (see whyNotRolled), is selected (rolling-services, or by default every service that can), has
 * containers, and at least one of them runs another configuration than the release's (by
 * Compose's own config hash, so it rolls exactly when `up` would recreate it).
 */
export function planRoll(
  shapes: readonly ServiceShape[],
  hashes: ReadonlyMap<string, string>,
  rows: readonly ContainerRow[],
  selected?: readonly string[],
): RollPlan {
  const plan: RollPlan = { roll: [], startFirst: [], recreate: [], unchanged: [], warnings: [] };
  const names = new Set(shapes.map((shape) => shape.name));
  const unknown = (selected ?? []).filter((service) => !names.has(service));
  if (unknown.length > 0) plan.warnings.push(`rolling-services names ${unknown.join(', ')}, which the release does not define`);
  const cannot: string[] = [];
  for (const shape of shapes) {
    const containers = rows.filter((row) => row.service === shape.name && !row.oneOff);
    const named = selected?.includes(shape.name) ?? false;
    const why = selected !== undefined && !named ? 'is not listed in rolling-services' : whyNotRolled(shape, named);
    if (named && why) cannot.push(`${shape.name} ${why}`);
    const hash = hashes.get(shape.name);
    const changed = containers.length === 0 || hash === undefined || containers.some((row) => row.hash !== hash);
    if (!changed) plan.unchanged.push(shape.name);
    else if (containers.length === 0 || shape.replicas === 0)
      continue; // `up` starts (or scales away) what has nothing to replace
    else if (why) plan.recreate.push({ service: shape.name, why });
    else plan.roll.push({ service: shape.name, old: containers.map((row) => row.id), replicas: shape.replicas });
  }
  if (cannot.length > 0) plan.warnings.push(`rolling-services names services that cannot roll: ${cannot.join('; ')}`);
  if (plan.recreate.length > 0) {
    plan.warnings.push(
      `Not rolled, so recreated by compose up (a short downtime for each): ${plan.recreate.map(({ service, why }) => `${service} ${why}`).join('; ')}`,
    );
  }
  plan.startFirst = missingDependencies(
    shapes,
    rows,
    plan.roll.map((entry) => entry.service),
  );
  return plan;
}

/**
 * What can be known to have changed before Compose's configuration hashes are in: a service whose
 * containers were created from another image than the one the release pins certainly changed
 * (the image is part of the hash), so it has no entry here and planRoll rolls it; any other
 * service is taken as running its containers' own configuration until the hashes say otherwise.
 * A plan from these is always a part of the plan from the real hashes (see withRolled).
 */
export function hashesIfOnlyImagesChanged(
  shapes: readonly ServiceShape[],
  rows: readonly ContainerRow[],
  images: Readonly<Record<string, string>>,
): Map<string, string> {
  const hashes = new Map<string, string>();
  for (const shape of shapes) {
    const containers = rows.filter((row) => row.service === shape.name && !row.oneOff);
    const image = images[shape.name];
    if (containers.length === 0 || (image !== undefined && containers.some((row) => row.image !== image))) continue;
    hashes.set(shape.name, containers[0]!.hash);
  }
  return hashes;
}

/**
 * The plan from the real hashes, with every service already rolling from the first guess kept
 * rolling: its new containers exist and run the release's configuration whatever the hashes say
 * (a container whose image tag was moved lists the image's id instead of its name, so a guess
 * can roll a service whose configuration text did not change; rolling it is harmless).
 */
export function withRolled(plan: RollPlan, rolling: readonly RollingService[]): RollPlan {
  const extra = rolling.filter((entry) => !plan.roll.some((rolled) => rolled.service === entry.service));
  if (extra.length === 0) return plan;
  const names = new Set(extra.map((entry) => entry.service));
  return { ...plan, roll: [...plan.roll, ...extra], unchanged: plan.unchanged.filter((service) => !names.has(service)) };
}

/** Services the rolled ones need (directly or not) that have no container yet, e.g. a cache the new release adds. */
function missingDependencies(shapes: readonly ServiceShape[], rows: readonly ContainerRow[], rolled: readonly string[]): string[] {
  const byName = new Map(shapes.map((shape) => [shape.name, shape]));
  const seen = new Set<string>();
  const queue = rolled.flatMap((service) => byName.get(service)?.dependsOn ?? []);
  while (queue.length > 0) {
    const service = queue.shift()!;
    if (seen.has(service) || rolled.includes(service)) continue;
    seen.add(service);
    queue.push(...(byName.get(service)?.dependsOn ?? []));
  }
  return [...seen].filter((service) => byName.has(service) && !rows.some((row) => row.service === service && !row.oneOff)).sort();
}

/**
 * What `compose up -d --remove-orphans` would still do after the roll, from the state read
 * before it; undefined when nothing: every changed service rolled (its old containers gone, its
 * `replicas` new ones through the gate), every other one already runs the release's
 * configuration with as many running containers as it asks for, and no container belongs to a
 * service the release no longer has. Anything else — a service to recreate or start, a stopped
 * or missing container, another replica count, an orphan — and `up` runs, as it always did.
 */
export function leftForUp(shapes: readonly ServiceShape[], rows: readonly ContainerRow[], plan: RollPlan): string | undefined {
  if (plan.recreate.length > 0) return `it recreates ${plan.recreate.map((entry) => entry.service).join(', ')}`;
  const names = new Set(shapes.map((shape) => shape.name));
  const orphans = [...new Set(rows.filter((row) => !row.oneOff && !names.has(row.service)).map((row) => row.service))];
  if (orphans.length > 0) return `it removes the containers of ${orphans.join(', ')}, which the release no longer defines`;
  const rolled = new Set(plan.roll.map((entry) => entry.service));
  for (const shape of shapes) {
    if (rolled.has(shape.name)) continue;
    const containers = rows.filter((row) => row.service === shape.name && !row.oneOff);
    if (!plan.unchanged.includes(shape.name)) return `it starts ${shape.name}`;
    const running = containers.filter((row) => row.state === 'running').length;
    if (running !== containers.length) return `${shape.name} has a container that is not running`;
    if (running !== shape.replicas) return `${shape.name} runs ${running} container(s) and the release asks for ${shape.replicas}`;
  }
  return undefined;
}

/** The --scale of each rolled service: its old containers plus the new release's replicas. */
export function scalesFor(roll: readonly RollingService[]): Record<string, number> {
  return Object.fromEntries(roll.map(({ service, old, replicas }) => [service, old.length + replicas]));
}

/** The containers the scale-up created: every container of a rolled service that was not there before. */
export function newContainers(roll: readonly RollingService[], rows: readonly ContainerRow[]): string[] {
  const old = new Set(roll.flatMap((entry) => entry.old));
  const services = new Set(roll.map((entry) => entry.service));
  return rows.filter((row) => services.has(row.service) && !row.oneOff && !old.has(row.id)).map((row) => row.id);
}

/** Seconds of the drain still to wait: it counts from the first round of the gate's final streak, when the new containers were healthy and every check answered. */
export function drainLeft(drainSeconds: number, healthySinceMs: number | undefined, nowMs: number): number {
  if (drainSeconds <= 0) return 0;
  if (healthySinceMs === undefined) return drainSeconds;
  return Math.max(0, drainSeconds - (nowMs - healthySinceMs) / 1000);
}
