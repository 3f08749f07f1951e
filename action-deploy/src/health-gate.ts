import * as core from '@actions/core';
import { commandProbe, containerProbe, httpProbe, runGate, type ContainerState, type GateResult, type Probe } from '@skiff/health';
import type { Command, Executor } from '@skiff/shell';
import type { SshConnection } from '@skiff/ssh';
import { inspectProjectContainers, type DockerCli } from './compose';
import type { HealthInputs } from './inputs';

export interface GateReport extends GateResult {
  /** The last `docker inspect` view of the project's containers, for diagnostics. */
  containers: readonly ContainerState[];
  failingServices: string[];
}

function defaultPort(url: URL): number {
  return Number(url.port || (url.protocol === 'https:' ? 443 : 80));
}

/** The app's own checks, shared by every strategy's gate: each health-url (through an SSH tunnel with health-from: host) and the health-command. */
export async function appProbes(
  server: Executor & Partial<Pick<SshConnection, 'forwardLocalPort'>>,
  projectDir: string,
  health: HealthInputs,
): Promise<{ probes: Probe[]; close(): Promise<void> }> {
  const probes: Probe[] = [];
  const tunnels: { close(): Promise<void> }[] = [];
  const close = async () => {
    await Promise.all(tunnels.map((tunnel) => tunnel.close().catch(() => undefined)));
  };
  try {
    for (const url of health.urls) {
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

/** Runs probes as the health-* inputs say, logging every round. */
export function runHealthGate(
  probes: readonly Probe[],
  health: HealthInputs,
  onStreak?: (allOk: boolean, previousAllOk: boolean) => void,
): Promise<GateResult> {
  let previousAllOk = false;
  return runGate(probes, {
    intervalMs: health.intervalSeconds * 1000,
    timeoutMs: health.timeoutSeconds * 1000,
    successes: health.successes,
    onRound: (round, reports) => {
      core.info(`health round ${round}: ${reports.map((r) => `${r.name} ${r.state} (${r.detail})`).join('; ')}`);
      const allOk = reports.every((r) => r.state === 'ok');
      onStreak?.(allOk, previousAllOk);
      previousAllOk = allOk;
    },
  });
}

/**
 * The health gate: the project's containers (running, HEALTHCHECKs healthy, none exited or
 * restarting), each health-url, and the health-command, every interval until all pass
 * `successes` times in a row. With health-from: host, URLs are reached through SSH tunnels so
 * they mean what they mean on the server (e.g. its own 127.0.0.1).
 */
export async function healthGate(
  server: Executor & Partial<Pick<SshConnection, 'forwardLocalPort'>>,
  cli: DockerCli,
  projectName: string,
  projectDir: string,
  services: readonly string[],
  health: HealthInputs,
  /** Run with every container check, e.g. to keep the deploy lock fresh during a long gate. */
  keepAlive: readonly Command[] = [],
): Promise<GateReport> {
  let containers: readonly ContainerState[] = [];
  let failingServices: string[] = [];
  const containerCheck = containerProbe(
    async () =>
      (await server.run([...keepAlive, ...inspectProjectContainers(cli, projectName)], { description: 'inspect containers', timeoutSeconds: 60 })).stdout,
    services,
    (seen, outcome) => {
      containers = seen;
      failingServices = outcome.failingServices;
    },
  );
  const app = await appProbes(server, projectDir, health);
  try {
    const result = await runHealthGate([containerCheck, ...app.probes], health);
    return { ...result, containers, failingServices };
  } finally {
    await app.close();
  }
}
