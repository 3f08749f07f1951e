import * as core from '@actions/core';
import type { Executor } from '@skiff/shell';
import { parseLockAttempt, releaseLock, tryLock, type LockOwner } from './lock';

/** The post step finds this in the step's state when main ended without releasing the lock. */
export const LOCK_STATE = 'deploy-lock';
const POLL_MS = 2000;

export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Takes the project's deploy lock, waiting up to `timeoutSeconds` for another deploy. Saves the
 * lock in the step's state first, so the post step can free it if this job is cancelled halfway.
 */
export async function acquireLock(
  executor: Executor,
  projectDir: string,
  owner: LockOwner,
  options: { timeoutSeconds: number; ttlSeconds: number; dryRun?: boolean },
): Promise<HeldLock> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  core.saveState(LOCK_STATE, JSON.stringify({ projectDir, token: owner.token }));
  let waitingSaid = false;
  for (;;) {
    const result = await executor.run(tryLock(projectDir, owner, options.ttlSeconds), { description: 'take the deploy lock', timeoutSeconds: 60 });
    if (options.dryRun) break;
    const attempt = parseLockAttempt(result.stdout);
    if (attempt.kind === 'took-over') {
      core.warning(`Took over a stale deploy lock in ${projectDir} (older than lock-ttl, ${options.ttlSeconds}s): the deploy that held it probably crashed or lost its connection.`);
      break;
    }
    if (attempt.kind === 'acquired') break;
    const who = attempt.owner ? `${attempt.owner.actor ?? 'unknown'} (release ${attempt.owner.release ?? '?'}${attempt.owner.runUrl ? `, ${attempt.owner.runUrl}` : ''})` : 'another deploy';
    if (Date.now() + POLL_MS > deadline) {
      core.saveState(LOCK_STATE, '');
      throw new Error(
        `Another deploy of ${projectDir} holds the lock: ${who}, taken ${attempt.ageSeconds}s ago. Gave up after lock-timeout (${options.timeoutSeconds}s). ` +
          `If no deploy is running, the lock is taken over automatically once it is older than lock-ttl (${options.ttlSeconds}s).`,
      );
    }
    if (!waitingSaid) core.info(`Waiting for the deploy lock in ${projectDir}, held by ${who} for ${attempt.ageSeconds}s (lock-timeout ${options.timeoutSeconds}s)`);
    waitingSaid = true;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return {
    async release() {
      await executor.run(releaseLock(projectDir, owner.token), { description: 'release the deploy lock', timeoutSeconds: 60 });
      core.saveState(LOCK_STATE, '');
    },
  };
}

export function savedLock(): { projectDir: string; token: string } | undefined {
  const text = core.getState(LOCK_STATE);
  if (!text) return undefined;
  try {
    return JSON.parse(text) as { projectDir: string; token: string };
  } catch {
    return undefined;
  }
}
