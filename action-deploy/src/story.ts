import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';
import type { TakenBackup } from './backup-before-deploy-inputs';
import { audit, markAndAudit, serverState, type Deployer } from './deploy';
import type { GateReport } from './health-gate';
import { afterPassed, newReleaseId, planPrune, type ServerState } from './release-history';
import { rollbackTarget } from './rollback';
import type { HostStrategy, StoryRelease, StoryResult, Switched } from './strategies/strategy';
import type { Outcome } from './host-outcome';
import { clearerDockerError } from './docker-cli';

/**
 * The deploy story, the same for every strategy (each supplies only its steps):
 * check → read releases → upload → prepare steps (pull, build, digests, backup, pre-deploy…) →
 * switch and health gate → record; mark current, audit and prune in one round trip. `current`
 * (or systemd's deployed mark) moves only after the gate passes, so until then the previous
 * release is the one a rollback returns to, through the same switch and gate. Every status,
 * audit entry and message is decided here, once. A dry run is this same story against a
 * PlanRecorder.
 */
export async function deployNewRelease<R extends StoryRelease>(d: Deployer, how: HostStrategy<R>): Promise<StoryResult> {
  await how.check(d);
  const state = await serverState(d);
  const previous = (how.previousOf ?? currentIfPassed)(state);
  const id = d.ctx.releaseId ?? newReleaseId(new Date(), d.ctx.sha, randomBytes(2).toString('hex'));
  core.info(`Release ${id}${how.subject?.(d) ?? ''}${previous ? ` (current: ${previous})` : ' (first release)'}`);
  const backups: TakenBackup[] = [];
  const base = {
    releaseId: id,
    ...(previous ? { previousReleaseId: previous } : {}),
    pruned: [] as string[],
    gates: [] as Outcome['gates'],
    backups,
  };
  const failedEarly = async (what: string, failure: unknown, images: Record<string, string>): Promise<StoryResult> => {
    const error = how.usesDocker ? await clearerDockerError(d.server, d.cli, failure as Error) : failure;
    await how.afterEarlyFailure?.(d, previous);
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: `${what} failed` });
    const message = `${what} failed, so nothing was switched${previous ? ` and release ${previous} keeps running` : ''}: ${(error as Error).message}`;
    return { ...base, status: 'failed', images, error: message };
  };

  let release: R;
  try {
    release = await how.upload(d, id);
  } catch (error) {
    return failedEarly('Uploading the release', error, {});
  }
  for (const step of how.prepare(d, release, previous, backups)) {
    try {
      await step.run();
    } catch (error) {
      return failedEarly(step.what, error, release.images);
    }
  }

  const switched = await switchOrFail(how, d, release, previous);
  base.gates.push(...switched.gates);
  const gate = switched.gate;
  if (gate.ok) {
    await how.recordPassed?.(d, release, switched);
    const images = switched.images ?? release.images;
    const plan = planPrune(afterPassed(state, id, images), d.inputs.keepReleases, [id]);
    const pruned = await markAndAudit(
      d,
      id,
      how.markCurrent(d, release),
      { event: 'deploy', status: 'deployed', from: previous ?? null, to: id },
      { plan, commands: plan.remove.length > 0 ? how.removeCommands(d, plan) : [] },
    );
    return { ...base, status: 'deployed', images, pruned };
  }

  const failedWhy = switched.undone ? `Release ${id} failed: ${switched.undone.why}` : `Release ${id} failed the health gate: ${gate.reason}`;
  if (switched.kept) {
    // Nothing of the running release was stopped, so there is nothing to restore: it is what serves.
    const { diagnostics } = switched.kept;
    const removed = 'Its new containers were removed';
    if (previous) {
      await audit(d, {
        event: 'rollback',
        status: 'rolled-back',
        from: id,
        to: previous,
        reason: `${gate.reason ?? 'unhealthy'}; new containers removed, ${previous} kept serving`,
      });
      return {
        ...base,
        status: 'rolled-back',
        images: state.locks.get(previous) ?? {},
        diagnostics,
        error: `${failedWhy}. ${removed}; release ${previous} kept serving throughout (it was never stopped).`,
      };
    }
    await audit(d, { event: 'failure', status: 'failed', from: null, to: id, reason: `${gate.reason ?? 'unhealthy'}; new containers removed` });
    return {
      ...base,
      status: 'failed',
      images: {},
      diagnostics,
      error: `${failedWhy}. ${removed}; the containers that ran before (not a Skiff release) kept serving.`,
    };
  }

  const diagnostics = await how.diagnose(d, release, switched);
  if (!previous || !d.inputs.rollbackOnFailure) {
    const images = switched.images ?? release.images;
    if (switched.undone) {
      // The platform's own rollback already restored what ran before, for the services it rolled back.
      await audit(d, { event: 'rollback', status: 'rolled-back', from: id, to: previous ?? switched.undone.to, reason: gate.reason ?? 'update failed' });
      const rest = previous
        ? 'rollback-on-failure is false, so the other services were not returned to the previous release'
        : 'there is no earlier Skiff release, so services Swarm did not roll back keep the new spec';
      return { ...base, status: 'rolled-back', images, diagnostics, error: `${failedWhy}. Swarm's rollback restored their previous spec; ${rest}.` };
    }
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: gate.reason ?? 'unhealthy' });
    const left = previous ? `rollback-on-failure is false, so ${how.left.noRollback}` : `there is no previous release to return to, so ${how.left.noPrevious}`;
    return { ...base, status: 'failed', images, diagnostics, error: `${failedWhy}. ${left}.` };
  }

  core.warning(`${failedWhy}. Rolling back to ${previous}.`);
  const back = await switchBack(d, how, previous, id);
  base.gates.push(
    ...back.switched.gates.map(({ label, gate }) => ({ label: `rollback to ${previous}${label === `release ${previous}` ? '' : `: ${label}`}`, gate })),
  );
  if (!back.switched.gate.ok) {
    await audit(d, { event: 'failure', status: 'failed', from: id, to: previous, reason: `rollback unhealthy: ${back.switched.gate.reason}` });
    return {
      ...base,
      status: 'failed',
      images: back.switched.kept ? release.images : back.release.images,
      diagnostics,
      error: `${failedWhy}. The rollback to ${previous} did not pass the health gate either: ${back.switched.gate.reason}`,
    };
  }
  await markAndAudit(d, previous, how.markCurrent(d, back.release), {
    event: 'rollback',
    status: 'rolled-back',
    from: id,
    to: previous,
    reason: gate.reason ?? 'unhealthy',
  });
  return {
    ...base,
    status: 'rolled-back',
    images: back.switched.images ?? back.release.images,
    diagnostics,
    error: `${failedWhy}. Rolled back to ${previous}, which passed the health gate.`,
  };
}

/** `rollback: previous|<id>` (and all-or-nothing's undo): switches a kept release on again, with no build and no pull, through the same gate. */
export async function rollbackTo<R extends StoryRelease>(d: Deployer, how: HostStrategy<R>, wanted: string, reason = 'manual rollback'): Promise<StoryResult> {
  await how.check(d);
  const state = await serverState(d);
  if (d.planning) {
    // Which release `wanted` names depends on what the server keeps; the plan says what happens to it.
    d.planning.steps.push({ kind: 'run', description: how.plannedRollback(d, wanted), script: '# depends on the releases kept on the server' });
    return { releaseId: wanted, status: 'deployed', images: {}, gates: [], pruned: [] };
  }
  const id = rollbackTarget(state, wanted);
  const previous = state.current;
  core.info(`Rolling back${how.subject?.(d) ?? ''} ${previous ?? '(none)'} → ${id}`);
  const { release, switched } = await switchBack(d, how, id, previous);
  const gate = switched.gate;
  const base = { releaseId: id, ...(previous ? { previousReleaseId: previous } : {}), pruned: [], gates: switched.gates };
  if (!gate.ok) {
    const diagnostics = switched.kept?.diagnostics ?? (await how.diagnose(d, release, switched));
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: `${reason}, unhealthy: ${gate.reason}` });
    const kept = switched.kept && previous ? ` Its new containers were removed; release ${previous} kept serving.` : '';
    return {
      ...base,
      status: 'failed',
      images: switched.kept ? (previous ? (state.locks.get(previous) ?? {}) : {}) : release.images,
      diagnostics,
      error: `Rollback to ${id} failed the health gate: ${gate.reason}${kept}`,
    };
  }
  await markAndAudit(d, id, how.markCurrent(d, release), { event: 'rollback', status: 'deployed', from: previous ?? null, to: id, reason });
  return { ...base, status: 'deployed', images: switched.images ?? release.images };
}

function currentIfPassed(state: ServerState): string | undefined {
  return state.current !== undefined && state.deployed.has(state.current) ? state.current : undefined;
}

/**
 * A switch that threw (Compose's `up -d` exiting non-zero, e.g. a `depends_on` dependency that
 * stayed unhealthy; `docker stack deploy` refused) is a release that failed its gate like any
 * other: it gets diagnostics, the rollback through the gate, outputs, summary and audit,
 * instead of escaping the story.
 */
async function switchOrFail<R extends StoryRelease>(how: HostStrategy<R>, d: Deployer, release: R, running: string | undefined): Promise<Switched> {
  try {
    return await how.switchOn(d, release, running);
  } catch (error) {
    const reason = `starting it failed: ${(error as Error).message}`;
    core.error(`Release ${release.id}: ${reason}`);
    const gate: GateReport = { ok: false, elapsedMs: 0, rounds: 0, probes: [], failing: [], reason, containers: [], failingServices: [] };
    return { gates: [{ label: `release ${release.id}`, gate }], gate };
  }
}

/** A kept release switched on again the same way (no build, no pull): its own files, env and pins. */
async function switchBack<R extends StoryRelease>(
  d: Deployer,
  how: HostStrategy<R>,
  id: string,
  running: string | undefined,
): Promise<{ release: R; switched: Switched }> {
  const release = await how.load(d, id);
  return { release, switched: await switchOrFail(how, d, release, running) };
}
