import type { Probe } from '@skiff/health';
import type { Deployer } from '../../deploy';
import { appProbes, runHealthGate, type GateReport } from '../../health-gate';
import { touchLock } from '../../lock-commands';
import { stackState } from './swarm-commands';
import { ROLLING_BACK, parseStackState, type ServiceState } from './stack-file';

export interface SwarmGateReport extends GateReport {
  /** Each service as last seen: its image (pinned by Swarm), state and whether Swarm rolled it back. */
  services: ServiceState[];
  rollingBack: Map<string, string>;
}

/**
 * The swarm health gate: Swarm's own view first — every service of the stack converged (its
 * update completed, as many tasks as it wants running the new image; a HEALTHCHECK counts,
 * because Swarm only calls a task running once it is healthy) — then health-url and
 * health-command as for every strategy, every interval until all pass `successes` times or
 * health-timeout. An update Swarm rolled back or paused ends the gate at once.
 */
export async function swarmGate(d: Deployer, sinceMs: number): Promise<SwarmGateReport> {
  const { projectName: stack, projectDir } = d.inputs;
  let services: ServiceState[] = [];
  /** Why Swarm said it rolled a service back (it says so only while rolling back; afterwards just "rollback completed"). */
  const rollingBack = new Map<string, string>();
  const stackProbe: Probe = {
    name: `swarm stack ${stack}`,
    async check() {
      // Refreshing the lock with every look keeps a long convergence from looking like a crashed run.
      const result = await d.server.run([...touchLock(projectDir, d.ctx.token), ...stackState(d.cli, stack)], {
        description: 'inspect containers',
        timeoutSeconds: 60,
      });
      services = parseStackState(result.stdout, stack, sinceMs);
      if (services.length === 0) return { state: 'waiting', detail: 'no services in the stack yet' };
      const detail = services.map((s) => `${s.service}: ${s.detail}`).join('; ');
      for (const s of services)
        if (s.moving && s.detail.startsWith(ROLLING_BACK)) rollingBack.set(s.service, s.detail.slice(ROLLING_BACK.length).replace(/^: /, ''));
      // A failure is final once Swarm has finished what it is doing: re-deploying during its own rollback would race it.
      if (services.some((s) => s.state === 'failed')) return { state: services.some((s) => s.moving) ? 'waiting' : 'failed', detail };
      return { state: services.every((s) => s.state === 'ok') ? 'ok' : 'waiting', detail };
    },
  };
  const app = await appProbes(d);
  try {
    const result = await runHealthGate(
      d,
      [stackProbe, ...app.probes],
      'health gate: every service converged (update completed, tasks running the new image) or rolled back by Swarm, health-url, health-command; on failure: diagnostics and re-deploy of the previous release',
    );
    return { ...result, containers: [], failingServices: services.filter((s) => s.state !== 'ok').map((s) => s.service), services, rollingBack };
  } finally {
    await app.close();
  }
}
