import type { Probe, ProbeOutcome } from './gate';

/** What the gate needs from `docker inspect` of one container. */
export interface ContainerState {
  /** The engine's id ('' if the output had none). */
  id: string;
  name: string;
  service: string;
  status: string;
  exitCode: number;
  restartCount: number;
  /** undefined when the image has no HEALTHCHECK. */
  health?: string;
  /** Last HEALTHCHECK outputs, newest last, for diagnostics. */
  healthLog: string[];
  oneOff: boolean;
}

interface InspectEntry {
  Id?: string;
  Name?: string;
  RestartCount?: number;
  State?: { Status?: string; ExitCode?: number; Health?: { Status?: string; Log?: { Output?: string; ExitCode?: number }[] } };
  Config?: { Labels?: Record<string, string> | null };
}

/** Parses `docker inspect` output (a JSON array, or several when xargs split the list; empty when none). */
export function parseInspect(stdout: string): ContainerState[] {
  const text = stdout.trim();
  if (text === '') return [];
  const arrays = text.replace(/\]\s*\[/g, '],[');
  const entries = (JSON.parse(`[${arrays}]`) as InspectEntry[][]).flat();
  return entries.map((entry) => {
    const labels = entry.Config?.Labels ?? {};
    const health = entry.State?.Health;
    return {
      id: entry.Id ?? '',
      name: (entry.Name ?? '').replace(/^\//, ''),
      service: labels['com.docker.compose.service'] ?? '',
      status: entry.State?.Status ?? 'unknown',
      exitCode: entry.State?.ExitCode ?? 0,
      restartCount: entry.RestartCount ?? 0,
      ...(health?.Status ? { health: health.Status } : {}),
      healthLog: (health?.Log ?? []).map((item) => `exit ${item.ExitCode ?? '?'}: ${(item.Output ?? '').trim()}`),
      oneOff: (labels['com.docker.compose.oneoff'] ?? '').toLowerCase() === 'true',
    };
  });
}

export interface ContainerExpectations {
  /** Every one of these services needs a running container. */
  services: readonly string[];
  /** Restart counts seen when the gate started (by container name): any increase is a crash. */
  baselineRestarts?: ReadonlyMap<string, number>;
}

/**
 * All service containers running, every HEALTHCHECK healthy. A container that exited, is
 * restarting, restarted since the gate began, or was judged unhealthy fails at once: waiting
 * out the timeout would only delay the rollback.
 */
export function evaluateContainers(containers: readonly ContainerState[], expected: ContainerExpectations): ProbeOutcome & { failingServices: string[] } {
  const relevant = containers.filter((container) => !container.oneOff);
  const failed: string[] = [];
  const failingServices = new Set<string>();
  const waiting: string[] = [];
  for (const container of relevant) {
    const baseline = expected.baselineRestarts?.get(container.name) ?? 0;
    let problem: string | undefined;
    if (container.status === 'exited' || container.status === 'dead') problem = `${container.name} exited with code ${container.exitCode}`;
    else if (container.status === 'restarting') problem = `${container.name} is restarting (exit code ${container.exitCode})`;
    else if (container.restartCount > baseline) problem = `${container.name} restarted ${container.restartCount - baseline} time(s)`;
    else if (container.health === 'unhealthy') problem = `${container.name} is unhealthy`;
    if (problem) {
      failed.push(problem);
      failingServices.add(container.service);
    } else if (container.status !== 'running') {
      waiting.push(`${container.name} is ${container.status}`);
      failingServices.add(container.service);
    } else if (container.health !== undefined && container.health !== 'healthy') {
      waiting.push(`${container.name} is ${container.health}`);
      failingServices.add(container.service);
    }
  }
  for (const service of expected.services) {
    if (!relevant.some((container) => container.service === service)) {
      waiting.push(`service ${service} has no container`);
      failingServices.add(service);
    }
  }
  const services = [...failingServices].sort();
  if (failed.length > 0) return { state: 'failed', detail: failed.join('; '), failingServices: services };
  if (waiting.length > 0) return { state: 'waiting', detail: waiting.join('; '), failingServices: services };
  const healthy = relevant.filter((container) => container.health === 'healthy').length;
  return {
    state: 'ok',
    detail: `${relevant.length} container(s) running${healthy > 0 ? `, ${healthy} healthy by HEALTHCHECK` : ''}`,
    failingServices: services,
  };
}

/**
 * A probe over a function that returns `docker inspect` output. The first round's restart counts
 * become the baseline, so containers left untouched by `up` (with old restarts) are judged fairly.
 */
export function containerProbe(
  inspect: () => Promise<string>,
  services: readonly string[],
  onContainers?: (containers: readonly ContainerState[], outcome: ReturnType<typeof evaluateContainers>) => void,
): Probe {
  let baseline: Map<string, number> | undefined;
  return {
    name: 'containers',
    async check() {
      const containers = parseInspect(await inspect());
      baseline ??= new Map(containers.filter((c) => c.status === 'running').map((c) => [c.name, c.restartCount]));
      const outcome = evaluateContainers(containers, { services, baselineRestarts: baseline });
      onContainers?.(containers, outcome);
      return { state: outcome.state, detail: outcome.detail };
    },
  };
}
