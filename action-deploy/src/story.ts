import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';
import { audit, markCurrent, prune, pullImages, resolveDigests, runPreDeploy, serverState, switchTo, uploadRelease, type Deployer } from './deploy';
import { touchLock } from './lock';
import { healthGate } from './health-gate';
import { newReleaseId } from './releases';
import { collectDiagnostics, restore, rollbackTarget } from './rollback';
import type { Outcome } from './summary';

type StoryResult = Omit<Outcome, 'durationSeconds' | 'mode'>;

/**
 * upload → pull → resolve digests → pre-deploy → switch → health gate → mark current, audit,
 * prune. `current` moves only after the gate passes, so until then the previous release is
 * still what the server calls current, and the one a rollback returns to.
 */
export async function deployNewRelease(d: Deployer): Promise<StoryResult> {
  const state = await serverState(d);
  const previous = state.current !== undefined && state.deployed.has(state.current) ? state.current : undefined;
  const id = d.ctx.releaseId ?? newReleaseId(new Date(), d.ctx.sha, randomBytes(2).toString('hex'));
  core.info(`Release ${id}${previous ? ` (current: ${previous})` : ' (first release)'}`);
  const release = await uploadRelease(d, id);
  const base = { releaseId: id, ...(previous ? { previousReleaseId: previous } : {}), pruned: [] as string[], gates: [] as Outcome['gates'] };

  const beforeSwitch = async (what: string, step: () => Promise<void>): Promise<string | undefined> => {
    try {
      await step();
      return undefined;
    } catch (error) {
      const message = `${what} failed, so nothing was switched${previous ? ` and release ${previous} keeps running` : ''}: ${(error as Error).message}`;
      await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: `${what} failed` });
      return message;
    }
  };
  const early =
    (await beforeSwitch('Pulling images', () => pullImages(d, release))) ??
    (await beforeSwitch('Resolving image digests', () => resolveDigests(d, release))) ??
    (d.inputs.preDeploy === undefined ? undefined : await beforeSwitch('pre-deploy', () => runPreDeploy(d, release, d.inputs.preDeploy!)));
  if (early) return { ...base, status: 'failed', images: release.images, error: early };

  await switchTo(d, release);
  const gate = await healthGate(d.server, d.cli, d.inputs.projectName, d.inputs.projectDir, Object.keys(release.images), d.inputs.health, touchLock(d.inputs.projectDir, d.ctx.token));
  base.gates.push({ label: `release ${id}`, gate });
  if (gate.ok) {
    await markCurrent(d, release);
    await audit(d, { event: 'deploy', status: 'deployed', from: previous ?? null, to: id });
    const pruned = await prune(d, [id]);
    return { ...base, status: 'deployed', images: release.images, pruned };
  }

  const diagnostics = await collectDiagnostics(d, release, gate);
  const failedWhy = `Release ${id} failed the health gate: ${gate.reason}`;
  if (!previous || !d.inputs.rollbackOnFailure) {
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: gate.reason ?? 'unhealthy' });
    const left = previous ? 'rollback-on-failure is false, so its containers were left running for inspection' : 'there is no previous release to return to, so its containers were left for inspection';
    return { ...base, status: 'failed', images: release.images, diagnostics, error: `${failedWhy}. ${left}.` };
  }

  core.warning(`${failedWhy}. Rolling back to ${previous}.`);
  const back = await restore(d, previous);
  base.gates.push({ label: `rollback to ${previous}`, gate: back.gate });
  if (!back.gate.ok) {
    await audit(d, { event: 'failure', status: 'failed', from: id, to: previous, reason: `rollback unhealthy: ${back.gate.reason}` });
    return { ...base, status: 'failed', images: back.release.images, diagnostics, error: `${failedWhy}. The rollback to ${previous} did not pass the health gate either: ${back.gate.reason}` };
  }
  await markCurrent(d, back.release);
  await audit(d, { event: 'rollback', status: 'rolled-back', from: id, to: previous, reason: gate.reason ?? 'unhealthy' });
  return { ...base, status: 'rolled-back', images: back.release.images, diagnostics, error: `${failedWhy}. Rolled back to ${previous}, which passed the health gate.` };
}

/** `rollback: previous|<id>`: re-deploys a kept release through the same gate, with no build and no pull. */
export async function rollbackTo(d: Deployer, wanted: string, reason = 'manual rollback'): Promise<StoryResult> {
  const state = await serverState(d);
  const id = rollbackTarget(state, wanted);
  const previous = state.current;
  core.info(`Rolling back ${previous ?? '(none)'} → ${id}`);
  const { release, gate } = await restore(d, id);
  const base = { releaseId: id, ...(previous ? { previousReleaseId: previous } : {}), pruned: [], gates: [{ label: `release ${id}`, gate }] };
  if (!gate.ok) {
    const diagnostics = await collectDiagnostics(d, release, gate);
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: `${reason}, unhealthy: ${gate.reason}` });
    return { ...base, status: 'failed', images: release.images, diagnostics, error: `Rollback to ${id} failed the health gate: ${gate.reason}` };
  }
  await markCurrent(d, release);
  await audit(d, { event: 'rollback', status: 'deployed', from: previous ?? null, to: id, reason });
  return { ...base, status: 'deployed', images: release.images };
}
