import * as core from '@actions/core';
import type { Command, Executor } from '@skiff/shell';
import { parseEarlyLockAttempt, parseLockAttempt, releaseLock, tryLock, tryLockWhereDeployed, type LockOwner } from './lock-commands';

/** The post step finds this in the step's state when main ended without releasing the locks. */
export const LOCK_STATE = 'deploy-lock';

export interface SavedLock {
  /** hostLabel of the server (user@host:port); absent in states saved by 0.2. */
  host?: string;
  projectDir: string;
  token: string;
}

// Every lock this run holds, by host: hosts deployed in parallel each add and remove theirs, and
// the step's state always holds the whole set.
const held = new Map<string, SavedLock>();

function saveHeld(): void {
  core.saveState(LOCK_STATE, held.size === 0 ? '' : JSON.stringify([...held.values()]));
}
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
  options: { timeoutSeconds: number; ttlSeconds: number; dryRun?: boolean; host?: string },
): Promise<HeldLock> {
  const deadline = Date.now() + options.timeoutSeconds * 1000;
  const key = options.host ?? '';
  held.set(key, { ...(options.host ? { host: options.host } : {}), projectDir, token: owner.token });
  saveHeld();
  let waitingSaid = false;
  for (;;) {
    const result = await executor.run(tryLock(projectDir, owner, options.ttlSeconds), { description: 'take the deploy lock', timeoutSeconds: 60 });
    if (options.dryRun) break;
    const attempt = parseLockAttempt(result.stdout);
    if (attempt.kind === 'took-over') {
      core.warning(
        `Took over a stale deploy lock in ${projectDir} (older than lock-ttl, ${options.ttlSeconds}s): the deploy that held it probably crashed or lost its connection.`,
      );
      break;
    }
    if (attempt.kind === 'acquired') break;
    const who = attempt.owner
      ? `${attempt.owner.actor ?? 'unknown'} (release ${attempt.owner.release ?? '?'}${attempt.owner.runUrl ? `, ${attempt.owner.runUrl}` : ''})`
      : 'another deploy';
    if (Date.now() + POLL_MS > deadline) {
      held.delete(key);
      saveHeld();
      throw new Error(
        `Another deploy of ${projectDir} holds the lock: ${who}, taken ${attempt.ageSeconds}s ago. Gave up after lock-timeout (${options.timeoutSeconds}s). ` +
          `If no deploy is running, the lock is taken over automatically once it is older than lock-ttl (${options.ttlSeconds}s).`,
      );
    }
    if (!waitingSaid)
      core.info(`Waiting for the deploy lock in ${projectDir}, held by ${who} for ${attempt.ageSeconds}s (lock-timeout ${options.timeoutSeconds}s)`);
    waitingSaid = true;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return heldLock(executor, projectDir, owner.token, key);
}

/**
 * One attempt at the lock that may run while the server is still being probed: it takes the lock
 * only in a project-dir that already holds `releases` (so a server Skiff never deployed to is not
 * touched before the probe passed), and runs `then` in the same round trip once it holds it.
 * Undefined when not taken; the caller then takes it with acquireLock (which waits, or takes
 * over a stale lock). Saved in the step's state first, as acquireLock does.
 */
export async function takeLockWhereDeployed(
  executor: Executor,
  projectDir: string,
  releases: string,
  owner: LockOwner,
  then: { commands: readonly Command[]; what: string },
  options: { host?: string },
): Promise<{ lock: HeldLock; then: string } | undefined> {
  const key = options.host ?? '';
  held.set(key, { ...(options.host ? { host: options.host } : {}), projectDir, token: owner.token });
  saveHeld();
  let answer;
  try {
    answer = await executor.run(tryLockWhereDeployed(projectDir, releases, owner, then.commands), {
      description: `take the deploy lock, ${then.what}`,
      timeoutSeconds: 60,
    });
  } catch (error) {
    // The lock may be held (`then` failed after it was taken): give it back now, by token, so it
    // does not wait for the post step; if even that fails, the state keeps it for the post step.
    await heldLock(executor, projectDir, owner.token, key)
      .release()
      .catch(() => undefined);
    throw error;
  }
  const attempt = parseEarlyLockAttempt(answer.stdout);
  if (attempt.kind !== 'acquired') {
    held.delete(key);
    saveHeld();
    return undefined;
  }
  return { lock: heldLock(executor, projectDir, owner.token, key), then: attempt.after };
}

function heldLock(executor: Executor, projectDir: string, token: string, key: string): HeldLock {
  return {
    async release() {
      await executor.run(releaseLock(projectDir, token), { description: 'release the deploy lock', timeoutSeconds: 60 });
      held.delete(key);
      saveHeld();
    },
  };
}

/** The locks main left behind (one per host); a 0.2 state holds one object without a host. */
export function savedLocks(): SavedLock[] {
  const text = core.getState(LOCK_STATE);
  if (!text) return [];
  try {
    const parsed = JSON.parse(text) as SavedLock | SavedLock[];
    return Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
}
