import * as core from '@actions/core';
import { forEachHost, hostLabel, liveLog, type HostResult } from '@skiff/action-kit';
import type { Executor } from '@skiff/shell';
import { SshConnection, type SshConnectOptions } from '@skiff/ssh';
import type { RunContext } from './run-context';
import { audit, type Deployer } from './deploy';
import { docker, type DockerCli } from './compose-commands';
import { clearerDockerError, detectDockerCli } from './docker-cli';
import type { DeployInputs } from './deploy-inputs';
import { acquireLock, takeLockWhereDeployed, type HeldLock } from './deploy-lock';
import type { LockOwner } from './lock-commands';
import { readState, releasesDir } from './release-history';
import { hostStrategy, type HostStrategy, type StoryResult } from './strategies';
import { deployNewRelease, rollbackTo } from './story';
import type { HostReport, Outcome } from './host-outcome';
import { RefusedBeforeChange } from './refusal';
import { timedServer } from './timed-server';

export type { HostReport, HostStatus } from './host-outcome';

/** An open connection that holds its host's lock, kept until every host is done when all-or-nothing may still need it. */
interface Session {
  server: SshConnection;
  lock: HeldLock;
  d: Deployer;
  strategy: HostStrategy;
}

class HostFailed extends Error {
  constructor(readonly outcome: Outcome) {
    super(outcome.error ?? `status ${outcome.status}`);
  }
}

/** `{host}` in project-dir and project-name: the host's address (made a valid Compose name in project-name). */
export function forHost(inputs: DeployInputs, host: string): DeployInputs {
  const name = host.toLowerCase().replace(/[^a-z0-9_-]/g, '-');
  return {
    ...inputs,
    projectDir: inputs.projectDir.replaceAll('{host}', host),
    ...(inputs.backupBeforeDeploy
      ? { backupBeforeDeploy: { ...inputs.backupBeforeDeploy, path: inputs.backupBeforeDeploy.path.replaceAll('{host}', host) } }
      : {}),
    projectName: inputs.projectName.replaceAll('{host}', name),
    health: { ...inputs.health, urls: healthUrlsFor(inputs.health.urls, host) },
  };
}

/** `{host}` in a health-url is the host being deployed, so one input checks every server from the runner. */
export function healthUrlsFor(urls: readonly string[], host: string): string[] {
  const name = host.includes(':') ? `[${host}]` : host;
  return urls.map((url) => url.replaceAll('{host}', name));
}

async function openSession(target: SshConnectOptions, label: string, inputs: DeployInputs, ctx: RunContext, many: boolean): Promise<Session> {
  // Several hosts' steps interleave in the log: their live lines carry the host instead of a group.
  const server = await SshConnection.connect(many ? { ...target, liveOutput: liveLog(label) } : target);
  try {
    const strategy = strategyOf(inputs);
    const hostInputs = forHost(inputs, target.host);
    const owner = { token: ctx.token, actor: ctx.actor, runUrl: ctx.runUrl, release: inputs.rollback ?? ctx.sha, startedAt: new Date().toISOString() };
    const opened = strategy.usesDocker ? await probeBesideLock(server, hostInputs, owner, label) : { cli: { compose: 'v2' as const, sudo: inputs.sudo } };
    if (strategy.usesDocker) core.info(`${many ? `[${label}] ` : ''}Using ${describeCli(opened.cli)}`);
    const d: Deployer = {
      server: timedServer(server, many ? `[${label}] ` : ''),
      cli: opened.cli,
      inputs: hostInputs,
      ctx,
      ...(opened.early ? { releasesReadWithLock: opened.early.then } : {}),
    };
    const lock =
      opened.early?.lock ??
      (await acquireLock(server, hostInputs.projectDir, owner, {
        timeoutSeconds: inputs.lockTimeoutSeconds,
        ttlSeconds: inputs.lockTtlSeconds,
        host: label,
      }));
    return { server, lock, d, strategy };
  } catch (error) {
    await server.close();
    throw error;
  }
}

function describeCli(cli: DockerCli): string {
  if (cli.compose === 'v1') return `docker-compose (v1)${cli.sudo ? ' with sudo -n' : ''}`;
  if (cli.sudo) return 'docker compose (v2) with sudo -n';
  if (!cli.composePlugin) return 'docker compose (v2)';
  return `docker compose (v2), its plugin run directly: ${cli.composePlugin}${cli.kept ? " (still docker's choice, as at the last deploy; the engine is asked only if a step fails)" : ''}`;
}

/**
 * The Compose probe's program starts are the slowest part of opening a host. Where Skiff deployed
 * before, the lock is taken and the releases read beside it (the probe's errors still come
 * first, and a lock taken for a server that fails the probe is given back); a server with no
 * releases is not touched until the probe passed.
 */
export async function probeBesideLock(
  server: Executor,
  inputs: DeployInputs,
  owner: LockOwner,
  label: string,
): Promise<{ cli: DockerCli; early?: { lock: HeldLock; then: string } }> {
  const [probed, tried] = await Promise.allSettled([
    detectDockerCli(server, inputs.sudo, false, inputs.projectDir),
    takeLockWhereDeployed(
      server,
      inputs.projectDir,
      releasesDir(inputs.projectDir),
      owner,
      { commands: readState(inputs.projectDir), what: 'read releases' },
      { host: label },
    ),
  ]);
  const early = tried.status === 'fulfilled' ? tried.value : undefined;
  if (probed.status === 'rejected') {
    await early?.lock.release().catch((error: Error) => core.warning(`Could not release the deploy lock: ${error.message}`));
    throw probed.reason;
  }
  if (tried.status === 'rejected') throw tried.reason;
  return { cli: probed.value, ...(early ? { early } : {}) };
}

async function closeSession(session: Session): Promise<void> {
  // If this fails (connection lost), the lock stays in the step's state and the post step retries.
  await session.lock.release().catch((error: Error) => core.warning(`Could not release the deploy lock: ${error.message}`));
  await session.server.close();
}

/**
 * Deploys (or manually rolls back) every host: serially in order, stopping at the first failure,
 * or in parallel up to max-parallel. Each host has its own lock, releases and audit log. With
 * all-or-nothing, hosts that switched keep their connection and lock until the others are done,
 * and if any host failed they go back to their own previous release through the same health gate.
 */
export async function deployHosts(inputs: DeployInputs, ctx: RunContext): Promise<HostReport[]> {
  const many = inputs.targets.length > 1;
  const undoable = inputs.allOrNothing && many && inputs.rollback === undefined;
  const kept = new Map<number, Session>();
  try {
    const results = await forEachHost(
      inputs.targets,
      { ...inputs.mode, stopOnFailure: inputs.mode.parallel ? undoable : true },
      async (target, { index, label }) => {
        const started = performance.now();
        const session = await openSession(target, label, inputs, ctx, many);
        let keep = false;
        try {
          const { d, strategy } = session;
          const story = await (inputs.rollback === undefined ? deployNewRelease(d, strategy) : rollbackTo(d, strategy, inputs.rollback)).catch((error: Error) =>
            storyThatThrew(d, strategy, error),
          );
          const outcome: Outcome = {
            ...story,
            durationSeconds: (performance.now() - started) / 1000,
            mode: inputs.rollback === undefined ? 'deploy' : 'rollback',
          };
          if (outcome.error) throw new HostFailed(outcome);
          keep = undoable;
          if (keep) kept.set(index, session);
          return outcome;
        } finally {
          if (!keep) await closeSession(session);
        }
      },
    );
    const reports = results.map((result) => toReport(result, forHost(inputs, result.target.host).projectDir));
    const failedHosts = results.filter((result) => result.status === 'failed').map((result) => result.label);
    if (undoable && failedHosts.length > 0) {
      const order = [...kept.keys()].sort((a, b) => b - a); // the last switched goes back first
      const undoOne = async (index: number) => (reports[index]!.undo = await undoHost(kept.get(index)!, reports[index]!, failedHosts));
      if (inputs.mode.parallel) await Promise.all(order.map(undoOne));
      else for (const index of order) await undoOne(index);
    }
    return reports;
  } finally {
    await Promise.all([...kept.values()].map(closeSession));
  }
}

/**
 * A step the story did not expect to fail (a lost connection, a full disk, a refused rollback
 * target) still ends like every failure: an error naming it, what the server shows of the
 * project, an audit entry, and then outputs and the summary. Each extra is best effort: the
 * server may be what failed.
 */
async function storyThatThrew(d: Deployer, strategy: HostStrategy, thrown: Error): Promise<StoryResult> {
  // A refusal names what the user asked for; whatever docker's state, it stays the answer.
  if (thrown instanceof RefusedBeforeChange)
    return { releaseId: d.ctx.releaseId ?? '', status: 'failed', images: {}, gates: [], pruned: [], error: thrown.message };
  const error = strategy.usesDocker ? await clearerDockerError(d.server, d.cli, thrown) : thrown;
  const rollback = d.inputs.rollback;
  const what = rollback === undefined ? 'The deploy' : `The rollback to ${rollback}`;
  const message = `${what} stopped: ${error.message}`;
  let diagnostics: string | undefined;
  if (strategy.usesDocker) {
    const ps = await d.server
      .run([docker(d.cli, 'ps', '-a', '--filter', `label=com.docker.compose.project=${d.inputs.projectName}`)], {
        description: "list the project's containers",
        timeoutSeconds: 30,
      })
      .catch(() => undefined);
    if (ps) diagnostics = `docker ps -a (project ${d.inputs.projectName}):\n${ps.stdout.trim()}`;
  }
  await audit(d, {
    event: 'failure',
    status: 'failed',
    from: null,
    to: rollback ?? d.ctx.releaseId ?? d.ctx.sha,
    reason: error.message.split('\n')[0]!.slice(0, 300),
  }).catch(() => undefined);
  return { releaseId: d.ctx.releaseId ?? '', status: 'failed', images: {}, gates: [], pruned: [], error: message, ...(diagnostics ? { diagnostics } : {}) };
}

function toReport(result: HostResult<Outcome>, projectDir: string): HostReport {
  const durationSeconds = result.durationMs / 1000;
  if (result.status === 'skipped') return { label: result.label, projectDir, status: 'skipped', durationSeconds };
  if (result.status === 'ok') return { label: result.label, projectDir, status: result.value!.status, outcome: result.value!, durationSeconds };
  const outcome = result.error instanceof HostFailed ? result.error.outcome : undefined;
  return {
    label: result.label,
    projectDir,
    status: outcome?.status ?? 'failed',
    ...(outcome ? { outcome } : {}),
    error: result.error?.message ?? 'failed',
    durationSeconds,
  };
}

async function undoHost(session: Session, report: HostReport, failedHosts: readonly string[]): Promise<NonNullable<HostReport['undo']>> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const previous = report.outcome?.previousReleaseId;
  if (!previous) {
    const error = `all-or-nothing: ${failedHosts.join(', ')} failed, but ${report.label} had no previous release to return to; release ${report.outcome?.releaseId} keeps running there`;
    core.warning(error);
    return { to: '', ok: false, seconds: seconds(), error };
  }
  core.warning(`all-or-nothing: ${failedHosts.join(', ')} failed; rolling ${report.label} back to ${previous}`);
  try {
    const back = await rollbackTo(session.d, session.strategy, previous, `all-or-nothing: ${failedHosts.join(', ')} failed`);
    if (report.outcome) report.outcome.gates.push(...back.gates.map((gate) => ({ ...gate, label: `all-or-nothing rollback to ${previous}` })));
    report.status = back.error ? 'failed' : 'rolled-back';
    return { to: previous, ok: !back.error, seconds: seconds(), ...(back.error ? { error: back.error } : {}) };
  } catch (error) {
    report.status = 'failed';
    return { to: previous, ok: false, seconds: seconds(), error: (error as Error).message };
  }
}

function strategyOf(inputs: DeployInputs): HostStrategy {
  if (inputs.strategy.name === 'coolify') throw new Error('strategy: coolify deploys through the Coolify API, not per SSH host');
  return hostStrategy(inputs.strategy);
}

/** Labels of hosts, as the `hosts` output and the summary name them. */
export const labelOf = (target: SshConnectOptions): string => hostLabel(target);
