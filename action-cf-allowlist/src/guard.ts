import { quote, raw, type Command } from '@skiff/shell';

/**
 * The lockout guard's files on the host, in a root-only directory per table:
 * `armed` exists while a revert is pending. Whoever renames it first wins: the revert
 * (to `fired`, then restores) or the runner's confirmation (to `confirmed`). A rename is
 * atomic, so a late confirmation can never race a revert that already started.
 */
export interface GuardPaths {
  dir: string;
  armed: string;
  fired: string;
  confirmed: string;
  revertScript: string;
  sleeperPid: string;
}

export const STATE_DIR = '/var/lib/skiff-cf';

export function guardPaths(table: string, stateDir = STATE_DIR): GuardPaths {
  const dir = `${stateDir}/${table}`;
  return {
    dir,
    armed: `${dir}/armed`,
    fired: `${dir}/fired`,
    confirmed: `${dir}/confirmed`,
    revertScript: `${dir}/revert.sh`,
    sleeperPid: `${dir}/sleeper.pid`,
  };
}

export function prepareDirCommand(paths: GuardPaths): Command {
  return ['mkdir', '-p', '-m', '0700', paths.dir];
}

/** The script the timer runs: restore only if the runner has not confirmed in time. */
export function revertScript(paths: GuardPaths, restore: readonly Command[]): string {
  const lines = [
    '#!/bin/sh',
    '# Armed by skiff action-cf-allowlist: restores the last good firewall unless the runner confirmed its new SSH login in time.',
    `mv ${quote(paths.armed)} ${quote(paths.fired)} 2>/dev/null || exit 0`,
    ...restore.map((command) => command.map((token) => (typeof token === 'string' ? quote(token) : token.raw)).join(' ')),
    `date -u +%FT%TZ >> ${quote(paths.fired)}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function unitName(table: string): string {
  return `skiff-cf-revert-${table}`;
}

/**
 * Arms the revert: a transient systemd timer where systemd runs, otherwise a sleeper in its
 * own session (setsid) so neither the SSH channel closing nor `timeout` killing our process
 * group can take it down.
 */
export function armCommands(table: string, paths: GuardPaths, seconds: number): Command[] {
  const unit = unitName(table);
  return [
    ['rm', '-f', paths.fired, paths.confirmed],
    ['date', '-u', '+%FT%TZ', raw('>'), paths.armed],
    [
      raw('if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then'),
      ...['systemctl', 'stop', `${unit}.timer`, `${unit}.service`],
      raw('2>/dev/null || true;'),
      ...['systemd-run', '--quiet', '--collect', `--unit=${unit}`, `--on-active=${seconds}s`, '--timer-property=AccuracySec=1s', '/bin/sh', paths.revertScript],
      raw('; else'),
      ...['setsid', 'nohup', 'sh', '-c', `sleep ${seconds}; exec sh ${quote(paths.revertScript)}`],
      raw('</dev/null >/dev/null 2>&1 & echo $! >'),
      paths.sleeperPid,
      raw('; fi'),
    ],
  ];
}

/** Confirms (cancels the revert). Fails when the revert already fired, so the step can say so. */
export function cancelCommands(table: string, paths: GuardPaths): Command[] {
  const unit = unitName(table);
  return [
    [raw('if ! mv'), paths.armed, paths.confirmed, raw('2>/dev/null; then echo "the lockout guard already restored the previous rules" >&2; exit 3; fi')],
    [raw('if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then'), 'systemctl', 'stop', `${unit}.timer`, raw('2>/dev/null || true; fi')],
    [raw('if [ -s'), paths.sleeperPid, raw(']; then kill -- "-$(cat'), paths.sleeperPid, raw(')" 2>/dev/null || true; rm -f'), paths.sleeperPid, raw('; fi')],
  ];
}

export function firedCommand(paths: GuardPaths): Command {
  return ['test', '-e', paths.fired];
}
