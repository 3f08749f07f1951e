import * as core from '@actions/core';
import { commandProbe, containerProbe, httpProbe, runGate, type ContainerState, type GateResult, type Probe, type Wake } from '@skiff/health';
import type { Command } from '@skiff/shell';
import { inspectSeenContainers } from './compose-commands';
import { containerEvents } from './container-events';
import type { Deployer } from './deploy';
import { touchLock } from './lock-commands';

export interface GateReport extends GateResult {
  /** The last `docker inspect` view of the project's containers, for diagnostics. */
  containers: readonly ContainerState[];
  failingServices: string[];
}

function defaultPort(url: URL): number {
  return Number(url.port || (url.protocol === 'https:' ? 443 : 80));
}

/** The app's own checks, shared by every strategy's gate: each health-url (through an SSH tunnel with health-from: host) and the health-command. */
export async function appProbes(d: Deployer): Promise<{ probes: Probe[]; close(): Promise<void> }> {
  const { server } = d;
  const { projectDir, health } = d.inputs;
  const probes: Probe[] = [];
  const tunnels: { close(): Promise<void> }[] = [];
  const close = async () => {
    await Promise.all(tunnels.map((tunnel) => tunnel.close().catch(() => undefined)));
  };
  try {
    // A dry run sends nothing anywhere: the gate's planned step names health-url instead.
    for (const url of d.planning ? [] : health.urls) {
      const parsed = new URL(url);
      let via: { host: string; port: number } | undefined;
      if (health.from === 'host') {
        if (!server.forwardLocalPort) throw new Error('health-from: host needs an SSH connection');
        const tunnel = await server.forwardLocalPort(parsed.hostname.replace(/^\[|\]$/g, ''), defaultPort(parsed));
        tunnels.push(tunnel);
        via = { host: '127.0.0.1', port: tunnel.port };
      }
      const timeoutMs = Math.max(1000, Math.min(10_000, health.intervalSeconds * 1000 * 2));
      probes.push(httpProbe({ url, status: health.status, ...(health.body === undefined ? {} : { body: health.body }), timeoutMs, ...(via ? { via } : {}) }));
    }
  } catch (error) {
    await close();
    throw error;
  }
  if (health.command !== undefined) {
    const command = health.command;
    probes.push(
      commandProbe('health-command', () =>
        server.run(
          [
            ['cd', projectDir],
            ['bash', '-c', command],
          ],
          { description: 'health-command', allowFailure: true, timeoutSeconds: Math.max(5, health.intervalSeconds * 5) },
        ),
      ),
    );
  }
  return { probes, close };
}

/**
 * Runs probes as the health-* inputs say, logging every round. A dry run records `planned` (what
 * the gate checks and what follows a failure) and one round of the probes' commands, and passes.
 */
export async function runHealthGate(
  d: Deployer,
  probes: readonly Probe[],
  planned: string,
  onStreak?: (allOk: boolean, previousAllOk: boolean) => void,
  wake?: Wake,
): Promise<GateResult> {
  const { health } = d.inputs;
  if (d.planning) {
    d.planning.steps.push({
      kind: 'run',
      description: planned,
      script: '# every health-interval until health-successes rounds in a row pass, or health-timeout; each round runs the steps that follow',
    });
    for (const probe of probes) await probe.check();
    return { ok: true, elapsedMs: 0, rounds: 0, probes: [], failing: [] };
  }
  let previousAllOk = false;
  const intervalMs = health.intervalSeconds * 1000;
  let logged: { line: string; at: number } | undefined;
  return runGate(probes, {
    intervalMs,
    waitingIntervalMs: WAITING_POLL_MS,
    timeoutMs: health.timeoutSeconds * 1000,
    successes: health.successes,
    ...(wake ? { wake } : {}),
    onRound: (round, reports) => {
      const line = reports.map((r) => `${r.name} ${r.state} (${r.detail})`).join('; ');
      const allOk = reports.every((r) => r.state === 'ok');
      // While something starts, rounds come every WAITING_POLL_MS: the log shows a change, or the same wait once per health-interval.
      const now = performance.now();
      if (allOk || reports.some((r) => r.state === 'failed') || line !== logged?.line || now - logged.at >= intervalMs) {
        core.info(`health round ${round}: ${line}`);
        logged = { line, at: now };
      }
      onStreak?.(allOk, previousAllOk);
      previousAllOk = allOk;
    },
  });
}

/**
 * How soon the gate looks again while a container is still starting or a URL not answering yet:
 * a release is seen healthy within this of becoming so, instead of up to health-interval later.
 * The rounds health-successes counts stay health-interval apart.
 */
const WAITING_POLL_MS = 500;

/**
 * The health gate: the project's containers (running, HEALTHCHECKs healthy, none exited or
 * restarting), each health-url, and the health-command, every interval until all pass
 * `successes` times in a row. With health-from: host, URLs are reached through SSH tunnels so
 * they mean what they mean on the server (e.g. its own 127.0.0.1).
 */
export function healthGate(d: Deployer, services: readonly string[], successes: number, firstInspection?: string): Promise<GateReport> {
  return containerGate(
    d,
    (seen) => inspectSeenContainers(d.cli, d.inputs.projectName, sawEveryService(seen, services) ? seen.filter((c) => !c.oneOff).map((c) => c.id) : []),
    services,
    'health gate (containers running and healthy, health-url, health-command); on failure: diagnostics and rollback to the previous release',
    { successes, watch: [`label=com.docker.compose.project=${d.inputs.projectName}`], ...(firstInspection === undefined ? {} : { firstInspection }) },
  );
}

/**
 * After `up`, nothing adds containers to the project but someone else's hand: once a look found
 * a container of every service, the next rounds inspect those (a restart keeps its id; one gone
 * makes the round list the project again). A service without one is looked for every round.
 */
function sawEveryService(seen: readonly ContainerState[], services: readonly string[]): boolean {
  return seen.length > 0 && seen.every((c) => c.id !== '') && services.every((service) => seen.some((c) => !c.oneOff && c.service === service));
}

/**
 * A gate over the containers `inspect` reports (given what the last round saw), plus the app's
 * checks. Every inspection also refreshes the deploy lock, so a long gate does not make the lock
 * look stale; what it last saw is kept for diagnostics.
 */
export async function containerGate(
  d: Deployer,
  inspect: readonly Command[] | ((seen: readonly ContainerState[]) => readonly Command[]),
  services: readonly string[],
  planned: string,
  options: {
    /** Instead of health-successes. */
    successes?: number;
    /** Services counted as failing until the first inspection says otherwise. */
    failingAtStart?: readonly string[];
    onStreak?: (allOk: boolean, previousAllOk: boolean) => void;
    /** `docker events` filters for the containers `inspect` reports: their health changes and exits end the gate's waits at once. */
    watch?: readonly string[];
    /** What `inspect` printed at the end of the round trip before the gate (that one refreshed the lock too): the first round's view of the containers. */
    firstInspection?: string;
  } = {},
): Promise<GateReport> {
  let containers: readonly ContainerState[] = [];
  let failingServices: string[] = [...(options.failingAtStart ?? [])];
  const keepAlive = touchLock(d.inputs.projectDir, d.ctx.token);
  let inspected = options.firstInspection;
  const containerCheck = containerProbe(
    async () => {
      const first = inspected;
      inspected = undefined;
      if (first !== undefined) return first;
      const commands = typeof inspect === 'function' ? inspect(containers) : inspect;
      return (await d.server.run([...keepAlive, ...commands], { description: 'inspect containers', timeoutSeconds: 60 })).stdout;
    },
    services,
    (seen, outcome) => {
      containers = seen;
      failingServices = outcome.failingServices;
    },
  );
  const app = await appProbes(d);
  const events = options.watch ? containerEvents(d.server, d.cli, options.watch, d.inputs.health.timeoutSeconds + 60) : undefined;
  try {
    const gated = options.successes === undefined ? d : { ...d, inputs: { ...d.inputs, health: { ...d.inputs.health, successes: options.successes } } };
    const result = await runHealthGate(gated, [containerCheck, ...app.probes], planned, options.onStreak, events);
    return { ...result, containers, failingServices };
  } finally {
    // Not awaited: the watch's channel closes while the deploy goes on.
    void events?.stop();
    await app.close();
  }
}
