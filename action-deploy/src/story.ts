import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';
import {
  audit,
  buildOnServer,
  linkReleaseEnv,
  loadRelease,
  markCurrent,
  prune,
  pullImages,
  resolveDigests,
  runPreDeploy,
  serverState,
  switchTo,
  uploadRelease,
  type Deployer,
  type Release,
} from './deploy';
import { backupBeforeDeploy, type TakenBackup } from './backup-before-deploy';
import type { GateReport } from './health-gate';
import { newReleaseId } from './releases';
import { upAndCheck } from './release-check';
import { collectDiagnostics, rollbackTarget } from './rollback';
import type { Outcome } from './summary';

type StoryResult = Omit<Outcome, 'durationSeconds' | 'mode'>;

/** What switching a release on ended with. */
export interface Switched {
  /** Every gate run, in order; the last one decides. */
  gates: { label: string; gate: GateReport }[];
  gate: GateReport;
  /**
   * Set when the release failed before anything of the running one was stopped (a rolling
   * deploy's new containers failed their gate and were removed): the running release kept
   * serving, so there is nothing to restore. The diagnostics were gathered before the removal.
   */
  kept?: { diagnostics: string };
}

/** The step a strategy owns: switch a release on and run the health gate (the rest of the story is shared). */
export interface Switcher {
  switchOn(d: Deployer, release: Release, running: string | undefined): Promise<Switched>;
}

/**
 * A switch that threw (Compose's `up -d` exiting non-zero, e.g. a `depends_on` dependency that
 * stayed unhealthy) is a release that failed its gate like any other: it gets diagnostics, the
 * rollback through the gate, outputs, summary and audit, instead of escaping the story.
 */
async function switchOrFail(how: Switcher, d: Deployer, release: Release, running: string | undefined): Promise<Switched> {
  try {
    return await how.switchOn(d, release, running);
  } catch (error) {
    const reason = `starting it failed: ${(error as Error).message}`;
    core.error(`Release ${release.id}: ${reason}`);
    const gate: GateReport = { ok: false, elapsedMs: 0, rounds: 0, probes: [], failing: [], reason, containers: [], failingServices: [] };
    return { gates: [{ label: `release ${release.id}`, gate }], gate };
  }
}

/** strategy: recreate — `compose up` replaces what changed, then the gate. */
export const recreateSwitch: Switcher = {
  async switchOn(d, release) {
    const gate = await upAndCheck(d, release, () => switchTo(d, release));
    return { gates: [{ label: `release ${release.id}`, gate }], gate };
  },
};

/**
 * upload → pull → resolve digests → pre-deploy → switch → health gate → mark current, audit,
 * prune. `current` moves only after the gate passes, so until then the previous release is
 * still what the server calls current, and the one a rollback returns to.
 */
export async function deployNewRelease(d: Deployer, how: Switcher = recreateSwitch): Promise<StoryResult> {
  const state = await serverState(d);
  const previous = state.current !== undefined && state.deployed.has(state.current) ? state.current : undefined;
  const id = d.ctx.releaseId ?? newReleaseId(new Date(), d.ctx.sha, randomBytes(2).toString('hex'));
  core.info(`Release ${id}${previous ? ` (current: ${previous})` : ' (first release)'}`);
  const release = await uploadRelease(d, id);
  // From here on every compose command, Skiff's and pre-deploy's, sees this release's .env
  // (services with `env_file: .env` need it from the first pull); an early failure links it back.
  await linkReleaseEnv(d, release);
  const base = {
    releaseId: id,
    ...(previous ? { previousReleaseId: previous } : {}),
    pruned: [] as string[],
    gates: [] as Outcome['gates'],
    backups: [] as TakenBackup[],
  };

  const beforeSwitch = async (what: string, step: () => Promise<void>): Promise<string | undefined> => {
    try {
      await step();
      return undefined;
    } catch (error) {
      const message = `${what} failed, so nothing was switched${previous ? ` and release ${previous} keeps running` : ''}: ${(error as Error).message}`;
      await linkReleaseEnv(d, previous ? await loadRelease(d, previous) : undefined);
      await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: `${what} failed` });
      return message;
    }
  };
  const early =
    (await beforeSwitch('Pulling images', () => pullImages(d, release))) ??
    (await beforeSwitch('Building images on the server', () => buildOnServer(d, release))) ??
    (await beforeSwitch('Resolving image digests', () => resolveDigests(d, release))) ??
    (d.inputs.backupBeforeDeploy === undefined
      ? undefined
      : await beforeSwitch('backup-before-deploy', async () => void base.backups.push(...(await backupBeforeDeploy(d, release, previous))))) ??
    (d.inputs.preDeploy === undefined ? undefined : await beforeSwitch('pre-deploy', () => runPreDeploy(d, release, d.inputs.preDeploy!)));
  if (early) return { ...base, status: 'failed', images: release.images, error: early };

  const switched = await switchOrFail(how, d, release, previous);
  base.gates.push(...switched.gates);
  const gate = switched.gate;
  if (gate.ok) {
    await markCurrent(d, release);
    await audit(d, { event: 'deploy', status: 'deployed', from: previous ?? null, to: id });
    const pruned = await prune(d, [id]);
    return { ...base, status: 'deployed', images: release.images, pruned };
  }

  const failedWhy = `Release ${id} failed the health gate: ${gate.reason}`;
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

  const diagnostics = await collectDiagnostics(d, release, gate);
  if (!previous || !d.inputs.rollbackOnFailure) {
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: gate.reason ?? 'unhealthy' });
    const left = previous
      ? 'rollback-on-failure is false, so its containers were left running for inspection'
      : 'there is no previous release to return to, so its containers were left for inspection';
    return { ...base, status: 'failed', images: release.images, diagnostics, error: `${failedWhy}. ${left}.` };
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
  await markCurrent(d, back.release);
  await audit(d, { event: 'rollback', status: 'rolled-back', from: id, to: previous, reason: gate.reason ?? 'unhealthy' });
  return {
    ...base,
    status: 'rolled-back',
    images: back.release.images,
    diagnostics,
    error: `${failedWhy}. Rolled back to ${previous}, which passed the health gate.`,
  };
}

/** A kept release switched on again the same way (no build, no pull): its own compose files, env and digests. */
async function switchBack(d: Deployer, how: Switcher, id: string, running: string | undefined): Promise<{ release: Release; switched: Switched }> {
  const release = await loadRelease(d, id);
  return { release, switched: await switchOrFail(how, d, release, running) };
}

/** `rollback: previous|<id>`: re-deploys a kept release through the same gate, with no build and no pull. */
export async function rollbackTo(d: Deployer, wanted: string, reason = 'manual rollback', how: Switcher = recreateSwitch): Promise<StoryResult> {
  const state = await serverState(d);
  const id = rollbackTarget(state, wanted);
  const previous = state.current;
  core.info(`Rolling back ${previous ?? '(none)'} → ${id}`);
  const { release, switched } = await switchBack(d, how, id, previous);
  const gate = switched.gate;
  const base = { releaseId: id, ...(previous ? { previousReleaseId: previous } : {}), pruned: [], gates: switched.gates };
  if (!gate.ok) {
    const diagnostics = switched.kept?.diagnostics ?? (await collectDiagnostics(d, release, gate));
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
  await markCurrent(d, release);
  await audit(d, { event: 'rollback', status: 'deployed', from: previous ?? null, to: id, reason });
  return { ...base, status: 'deployed', images: release.images };
}
