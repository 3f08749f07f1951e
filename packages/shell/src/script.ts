import { render, type Command } from './command';

/** Every remote script starts with this: stop at the first failure, unset variables and failing pipe stages included. */
export const STRICT_MODE = 'set -euo pipefail';

/** Renders commands into one strict bash script, one command per line. */
export function script(commands: readonly Command[]): string {
  return [STRICT_MODE, ...commands.map(render)].join('\n');
}

export interface RemoteInvocation {
  /** Seconds after which the remote process group is terminated (then killed 5 s later). */
  timeoutSeconds?: number;
  /** When false the script reads /dev/null; when true the caller streams data to its stdin. */
  stdin?: boolean;
}

/** Seconds `timeout` waits after TERM before it sends KILL to the whole process group. */
export const KILL_GRACE_SECONDS = 5;

/**
 * The exact command line sent over SSH for a script: bash runs it in strict mode, with
 * stdin from /dev/null unless the caller streams data in. With a timeout, GNU `timeout`
 * makes its own process group and signals all of it, so nothing the script started
 * outlives the limit on the server even if the SSH connection is gone.
 */
export function remoteCommandLine(scriptText: string, invocation: RemoteInvocation = {}): string {
  const bash: Command = ['bash', '-c', scriptText];
  const timed: Command =
    invocation.timeoutSeconds === undefined
      ? bash
      : ['timeout', '-k', String(KILL_GRACE_SECONDS), String(Math.max(1, Math.ceil(invocation.timeoutSeconds))), ...bash];
  const line = render(timed);
  return invocation.stdin ? line : `${line} </dev/null`;
}

/** Exit status GNU `timeout` returns when it had to stop the command (124 after TERM, 137 after KILL). */
export function isTimeoutExit(code: number | null): boolean {
  return code === 124 || code === 137;
}
