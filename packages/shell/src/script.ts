import { raw, render, type Command } from './command';

/** Every remote script starts with this: stop at the first failure, unset variables and failing pipe stages included. */
export const STRICT_MODE = 'set -euo pipefail';

/** Renders commands into one strict bash script, one command per line. */
export function script(commands: readonly Command[]): string {
  return [STRICT_MODE, ...commands.map(render)].join('\n');
}

export interface RemoteInvocation {
  /** Seconds after which the remote process group is terminated (then killed 5 s later). */
  timeoutSeconds?: number;
  /**
   * When true the caller streams data to the script's stdin. When false the script reads
   * /dev/null and the caller must keep the channel's stdin open until the command ends: its EOF
   * means the connection is gone (see SUPERVISOR).
   */
  stdin?: boolean;
}

/** Seconds between TERM and KILL, both for timeouts and for a lost connection. */
export const KILL_GRACE_SECONDS = 5;

/**
 * Runs the command given as its arguments in a session of its own, and ends that whole session
 * when its own stdin reaches EOF. Skiff keeps that stdin open for as long as the SSH channel
 * lives, so when the runner dies or the job is cancelled (the connection drops, sshd closes
 * the channel) nothing the command started goes on running on the server. Without a pty sshd
 * sends no SIGHUP, so this has to be done by hand. The command itself reads /dev/null.
 */
const SUPERVISOR = [
  // A background job's stdin is /dev/null in a non-interactive shell, so the watcher reads the
  // channel through fd 3.
  'exec 3<&0',
  'setsid "$@" </dev/null 3<&- &',
  'child=$!',
  // The watcher must not hold stdout/stderr, or the channel could not close when the command ends.
  `{ cat <&3; kill -TERM -- "-$child"; sleep ${KILL_GRACE_SECONDS}; kill -KILL -- "-$child"; } >/dev/null 2>&1 &`,
  'watcher=$!',
  'wait "$child"',
  'status=$?',
  'kill "$watcher" 2>/dev/null',
  'exit "$status"',
].join('\n');

/**
 * The exact command line sent over SSH for a script: bash runs it in strict mode. With a
 * timeout, GNU `timeout` signals the script's whole process group, so nothing outlives the
 * limit even if the connection is gone. Without streamed input the script reads /dev/null and
 * runs under the supervisor above, which ends it when the connection goes; with streamed input
 * the data's EOF is the script's own business.
 */
export function remoteCommandLine(scriptText: string, invocation: RemoteInvocation = {}): string {
  const bash: Command = ['bash', '-c', scriptText];
  const timed: Command =
    invocation.timeoutSeconds === undefined
      ? bash
      : ['timeout', '-k', String(KILL_GRACE_SECONDS), String(Math.max(1, Math.ceil(invocation.timeoutSeconds))), ...bash];
  if (invocation.stdin) return render(timed);
  return render(['bash', '-c', SUPERVISOR, 'skiff-supervisor', ...timed]);
}

/** Exit status GNU `timeout` returns when it had to stop the command (124 after TERM, 137 after KILL). */
export function isTimeoutExit(code: number | null): boolean {
  return code === 124 || code === 137;
}

/**
 * Commands whose failure is reported, not fatal (a prune after a good deploy): they run in
 * strict mode in a subshell of their own and stop at their first failure; then `marker` is
 * printed on stdout and the script goes on. bash ignores errexit inside anything that is part of
 * `||` or an `if` condition, so the subshell runs as a plain command with errexit lifted around
 * it, never as `( … ) || …`.
 */
export function tolerate(commands: readonly Command[], marker: string): Command[] {
  return [
    [raw('set +e')],
    [raw('(')],
    [raw(STRICT_MODE)],
    ...commands,
    [raw(')')],
    [raw('skiff_tolerated_status=$?')],
    [raw('set -e')],
    [raw('if [ "$skiff_tolerated_status" -ne 0 ]; then'), 'echo', marker, raw('; fi')],
  ];
}
