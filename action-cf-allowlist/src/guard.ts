import {
  armGuard,
  cancelGuard,
  guardFired,
  guardPaths as sharedGuardPaths,
  guardRevertScript,
  prepareGuardDir,
  type Command,
  type GuardPaths,
} from '@skiff/shell';

export type { GuardPaths } from '@skiff/shell';

export const STATE_DIR = '/var/lib/skiff-cf';

/** The lockout guard's files of one table (see @skiff/shell's lockout guard). */
export function guardPaths(table: string, stateDir = STATE_DIR): GuardPaths {
  return sharedGuardPaths(`${stateDir}/${table}`);
}

export const prepareDirCommand = prepareGuardDir;

export function revertScript(paths: GuardPaths, restore: readonly Command[]): string {
  return guardRevertScript(
    paths,
    restore,
    'Armed by skiff action-cf-allowlist: restores the last good firewall unless the runner confirmed its new SSH login in time.',
  );
}

export function unitName(table: string): string {
  return `skiff-cf-revert-${table}`;
}

export function armCommands(table: string, paths: GuardPaths, seconds: number): Command[] {
  return armGuard(unitName(table), paths, seconds);
}

/** Confirms (cancels the revert). Fails when the revert already fired, so the step can say so. */
export function cancelCommands(table: string, paths: GuardPaths): Command[] {
  return cancelGuard(unitName(table), paths, 'the lockout guard already restored the previous rules');
}

export const firedCommand = guardFired;
