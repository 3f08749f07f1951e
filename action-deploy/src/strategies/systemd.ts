import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';
import type { PlanRecorder, PlanStep } from '@skiff/shell';
import type { RunContext } from '../context';
import { audit, serverState, type Deployer } from '../deploy';
import type { GateReport } from '../health-gate';
import type { DeployInputs } from '../inputs';
import { tryLock } from '../lock';
import { ENV_FILE, META, markDeployed, newReleaseId, planPrune, pointCurrent, readState, releaseDir, removeReleases, type ServerState } from '../releases';
import { rollbackTarget } from '../rollback';
import type { Outcome } from '../summary';
import { artifactCompression, artifactStream } from './systemd-artifact';
import {
  createSystemdRelease,
  extractArchive,
  gitExport,
  inReleaseDir,
  inspectHost,
  parseShow,
  resetFailedUnit,
  restartUnit,
  runsFromCurrent,
} from './systemd-commands';
import { restartAndGate, unitDiagnostics } from './systemd-health';
import type { ReleaseSource, SystemdInputs } from './systemd-inputs';
import type { HostStrategy, StoryResult } from './strategy';
import { RefusedBeforeChange } from '../refusal';

/**
 * strategy: systemd — the app is run by a systemd unit from <project-dir>/current, no Docker:
 * upload → install-command → pre-deploy → point `current` → restart → health gate → mark
 * deployed, audit, prune; on failure `current` goes back to the previous release, which is
 * restarted and gated again. Unlike the compose strategies `current` must move before the gate
 * (the unit runs whatever it points at), so "passed the gate" is the `deployed` mark alone.
 */

function settings(d: Deployer): SystemdInputs {
  if (!d.inputs.systemd) throw new Error('strategy: systemd without its inputs');
  return d.inputs.systemd;
}

/**
 * Checks the unit exists before anything changes and decides on sudo: a user other than root
 * cannot restart a system unit without it (over SSH there is no polkit agent to ask).
 */
async function inspectUnit(d: Deployer, unit: string): Promise<{ sudo: boolean }> {
  const inspected = await d.server.run(inspectHost(unit), { description: `inspect ${unit}`, allowFailure: true, timeoutSeconds: 60 });
  const config = parseShow(inspected.stdout);
  if (inspected.code !== 0 || config.LoadState === undefined) {
    const said = `${inspected.stderr}`.trim().split('\n').slice(-2).join(' ') || `exit ${inspected.code}`;
    throw new RefusedBeforeChange(
      `systemd-unit: cannot ask systemd about ${unit} on the server (systemctl said: ${said}). strategy: systemd needs a server whose init is systemd.`,
    );
  }
  const dir = d.inputs.projectDir;
  if (config.LoadState !== 'loaded') {
    const what = config.LoadState === 'not-found' ? 'is not installed' : `cannot be loaded (LoadState=${config.LoadState ?? 'unknown'})`;
    throw new RefusedBeforeChange(
      `systemd-unit: ${unit} ${what} on the server. Install its unit file first (e.g. /etc/systemd/system/${unit} with WorkingDirectory=${dir}/current), then run \`systemctl daemon-reload\` and \`systemctl enable ${unit}\`; see "strategy: systemd" in the README.`,
    );
  }
  if (!runsFromCurrent(config, dir)) {
    core.warning(
      `${unit} (${config.FragmentPath || 'unit file unknown'}) mentions ${dir}/current in neither WorkingDirectory nor ExecStart, so switching releases may not change what it runs.`,
    );
  }
  return { sudo: d.inputs.sudo || config.uid !== '0' };
}

/** The release a failed deploy returns to: current if it passed the gate, else the newest that did (a run may have died between switch and gate). */
function previousOf(state: ServerState): string | undefined {
  if (state.current !== undefined && state.deployed.has(state.current)) return state.current;
  return [...state.deployed]
    .filter((id) => state.releases.includes(id))
    .sort()
    .at(-1);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function uploadArtifact(d: Deployer, source: Extract<ReleaseSource, { kind: 'artifact' }>, dir: string): Promise<void> {
  const artifact = await artifactStream(source.absolute, source.isDirectory);
  try {
    await d.server.run(extractArchive(dir, artifact.compression), {
      stdin: artifact.stream,
      description: `upload ${source.path} (${artifact.description})`,
      timeoutSeconds: 3600,
      live: 'stderr',
    });
  } catch (error) {
    // If tar on the runner failed, the server only saw a cut-short archive: the runner's reason is the useful one.
    const local = await Promise.race([
      artifact.finished.then(
        () => undefined,
        (reason: Error) => reason,
      ),
      sleep(2000).then(() => undefined),
    ]);
    artifact.stop();
    throw local ?? error;
  }
  // The server has the whole stream; tar on the runner may still be exiting, and its status counts too.
  await artifact.finished;
}

/** Fills the new release directory: the app's files, the env file (0600) and meta.json. */
async function uploadRelease(d: Deployer, id: string, unit: string, source: ReleaseSource): Promise<void> {
  const dir = releaseDir(d.inputs.projectDir, id);
  await d.server.run(createSystemdRelease(d.inputs.projectDir, id), { description: `create release ${id}`, timeoutSeconds: 60 });
  if (source.kind === 'artifact') await uploadArtifact(d, source, dir);
  else
    await d.server.run(gitExport(d.inputs.projectDir, source.repository, source.sha, dir), {
      description: `fetch ${source.sha.slice(0, 12)} from ${source.repository} into the release`,
      timeoutSeconds: 3600,
      live: 'all',
    });
  if (d.inputs.envFile !== undefined)
    await d.server.upload(`${dir}/${ENV_FILE}`, d.inputs.envFile, { mode: 0o600, secret: true, description: 'upload the env file' });
  const meta = {
    id,
    sha: d.ctx.sha,
    ref: d.ctx.ref,
    actor: d.ctx.actor,
    runUrl: d.ctx.runUrl,
    createdAt: new Date().toISOString(),
    services: {},
    strategy: 'systemd',
    unit,
    source: source.kind === 'artifact' ? { artifactPath: source.path } : { gitRepository: source.repository, sha: source.sha },
  };
  await d.server.upload(`${dir}/${META}`, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o644, description: 'upload meta.json' });
}

async function point(d: Deployer, id: string): Promise<void> {
  await d.server.run(pointCurrent(d.inputs.projectDir, id), { description: `point current at ${id}`, timeoutSeconds: 60 });
}

async function markPassed(d: Deployer, id: string): Promise<void> {
  await d.server.run(markDeployed(d.inputs.projectDir, id), { description: `mark ${id} deployed`, timeoutSeconds: 60 });
}

/** Old releases beyond keep-releases. A failure here (files the app wrote as another user) does not undo a good deploy. */
async function prune(d: Deployer, protect: readonly string[]): Promise<string[]> {
  const plan = planPrune(await serverState(d), d.inputs.keepReleases, protect);
  if (plan.remove.length === 0) return [];
  const result = await d.server.run(removeReleases(d.inputs.projectDir, plan.remove), {
    description: `delete ${plan.remove.length} old release(s)`,
    allowFailure: true,
    timeoutSeconds: 600,
  });
  if (result.code !== 0) {
    core.warning(`Could not delete every old release (${plan.remove.join(', ')}): ${result.stderr.trim().split('\n').slice(-3).join(' ')}`);
    return [];
  }
  return plan.remove;
}

async function deploy(d: Deployer): Promise<StoryResult> {
  const { unit, source, installCommand } = settings(d);
  if (!source) throw new Error('strategy: systemd needs artifact-path or git-repository');
  const { sudo } = await inspectUnit(d, unit);
  const state = await serverState(d);
  const previous = previousOf(state);
  const id = d.ctx.releaseId ?? newReleaseId(new Date(), d.ctx.sha, randomBytes(2).toString('hex'));
  core.info(`Release ${id} of ${unit}${previous ? ` (current: ${previous})` : ' (first release)'}`);
  const base = { releaseId: id, ...(previous ? { previousReleaseId: previous } : {}), pruned: [] as string[], gates: [] as Outcome['gates'], images: {} };

  const beforeSwitch = async (what: string, step: () => Promise<unknown>): Promise<string | undefined> => {
    try {
      await step();
      return undefined;
    } catch (error) {
      await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: `${what} failed` });
      return `${what} failed, so nothing was switched${previous ? ` and release ${previous} keeps running` : ''}: ${(error as Error).message}`;
    }
  };
  const run = (what: string, command: string) => () =>
    d.server.run(inReleaseDir(d.inputs.projectDir, id, command), { description: what, timeoutSeconds: d.inputs.preDeployTimeoutSeconds, live: 'all' });
  const early =
    (await beforeSwitch('Uploading the release', () => uploadRelease(d, id, unit, source))) ??
    (installCommand === undefined ? undefined : await beforeSwitch('install-command', run('install-command', installCommand))) ??
    (d.inputs.preDeploy === undefined ? undefined : await beforeSwitch('pre-deploy', run('pre-deploy', d.inputs.preDeploy)));
  if (early) return { ...base, status: 'failed', error: early };

  await point(d, id);
  const gate = await restartAndGate(d, unit, sudo);
  base.gates.push({ label: `release ${id}`, gate });
  if (gate.ok) {
    await markPassed(d, id);
    await audit(d, { event: 'deploy', status: 'deployed', from: previous ?? null, to: id });
    return { ...base, status: 'deployed', pruned: await prune(d, [id]) };
  }

  const diagnostics = await unitDiagnostics(d, unit, sudo, id);
  const failedWhy = `Release ${id} failed the health gate: ${gate.reason}`;
  if (!previous || !d.inputs.rollbackOnFailure) {
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: gate.reason ?? 'unhealthy' });
    const left = previous
      ? 'rollback-on-failure is false, so it was left current for inspection'
      : 'there is no previous release to return to, so it was left current for inspection';
    return { ...base, status: 'failed', diagnostics, error: `${failedWhy}. ${left}.` };
  }

  core.warning(`${failedWhy}. Rolling back to ${previous}.`);
  await point(d, previous);
  const back = await restartAndGate(d, unit, sudo);
  base.gates.push({ label: `rollback to ${previous}`, gate: back });
  if (!back.ok) {
    await audit(d, { event: 'failure', status: 'failed', from: id, to: previous, reason: `rollback unhealthy: ${back.reason}` });
    return { ...base, status: 'failed', diagnostics, error: `${failedWhy}. The rollback to ${previous} did not pass the health gate either: ${back.reason}` };
  }
  await markPassed(d, previous);
  await audit(d, { event: 'rollback', status: 'rolled-back', from: id, to: previous, reason: gate.reason ?? 'unhealthy' });
  return { ...base, status: 'rolled-back', diagnostics, error: `${failedWhy}. Rolled back to ${previous}, which passed the health gate.` };
}

/** `rollback: previous|<id>` (and all-or-nothing): `current` back to a kept release, restart, the same gate. */
async function rollback(d: Deployer, wanted: string, reason = 'manual rollback'): Promise<StoryResult> {
  const { unit } = settings(d);
  const { sudo } = await inspectUnit(d, unit);
  const state = await serverState(d);
  const id = rollbackTarget(state, wanted);
  const previous = state.current;
  core.info(`Rolling ${unit} back ${previous ?? '(none)'} → ${id}`);
  await point(d, id);
  const gate: GateReport = await restartAndGate(d, unit, sudo);
  const base = { releaseId: id, ...(previous ? { previousReleaseId: previous } : {}), pruned: [], gates: [{ label: `release ${id}`, gate }], images: {} };
  if (!gate.ok) {
    const diagnostics = await unitDiagnostics(d, unit, sudo, id);
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: `${reason}, unhealthy: ${gate.reason}` });
    return { ...base, status: 'failed', diagnostics, error: `Rollback to ${id} failed the health gate: ${gate.reason}` };
  }
  await markPassed(d, id);
  await audit(d, { event: 'rollback', status: 'deployed', from: previous ?? null, to: id, reason });
  return { ...base, status: 'deployed' };
}

export const systemdStrategy: HostStrategy = { usesDocker: false, deploy, rollback };

/** The dry-run plan of strategy: systemd, from the same builders; the upload's stream, the gate and a rollback depend on the run. */
export async function planSystemd(recorder: PlanRecorder, inputs: DeployInputs, ctx: RunContext): Promise<PlanStep[]> {
  const { unit, source, installCommand } = inputs.systemd!;
  const sudo = inputs.sudo;
  const dir = inputs.projectDir;
  await recorder.run(tryLock(dir, { token: 'TOKEN', actor: ctx.actor, runUrl: ctx.runUrl, release: 'RELEASE', startedAt: 'NOW' }, inputs.lockTtlSeconds), {
    description: 'take the deploy lock',
  });
  await recorder.run(inspectHost(unit), { description: `inspect ${unit} (must be installed; sudo -n for systemctl unless the user is root)` });
  await recorder.run(readState(dir), { description: 'read releases' });
  const d: Deployer = { server: recorder, cli: { compose: 'v2', sudo }, inputs, ctx };
  if (inputs.rollback !== undefined) {
    recorder.steps.push({
      kind: 'run',
      description: `point current at release ${inputs.rollback}, restart ${unit}, then the health gate`,
      script: '# depends on the releases kept on the server',
    });
    return recorder.steps;
  }
  const id = newReleaseId(new Date(), ctx.sha, '0000');
  const release = releaseDir(dir, id);
  await recorder.run(createSystemdRelease(dir, id), { description: `create release ${id}` });
  if (source?.kind === 'git')
    await recorder.run(gitExport(dir, source.repository, source.sha, release), {
      description: `fetch ${source.sha.slice(0, 12)} from ${source.repository} into the release`,
    });
  else if (source) {
    const compression = await artifactCompression(source.absolute, source.isDirectory);
    await recorder.run(extractArchive(release, compression), { description: `upload ${source.path} (streamed from the runner to stdin)` });
  }
  if (inputs.envFile !== undefined)
    await recorder.upload(`${release}/${ENV_FILE}`, inputs.envFile, { mode: 0o600, secret: true, description: 'upload the env file' });
  if (installCommand !== undefined) await recorder.run(inReleaseDir(dir, id, installCommand), { description: 'install-command' });
  if (inputs.preDeploy !== undefined) await recorder.run(inReleaseDir(dir, id, inputs.preDeploy), { description: 'pre-deploy' });
  await point(d, id);
  await recorder.run(resetFailedUnit(unit, sudo), { description: `reset-failed ${unit}` });
  await recorder.run(restartUnit(unit, sudo), { description: `restart ${unit}` });
  recorder.steps.push({
    kind: 'run',
    description: `the health gate (unit active and not restarted by systemd, health-url, health-command); on failure: systemctl status, journalctl, and current back to the previous release`,
    script: '# runs every health-interval until health-successes or health-timeout',
  });
  await markPassed(d, id);
  return recorder.steps;
}
