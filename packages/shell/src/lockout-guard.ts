import { raw, type Command } from './command';
import { quote } from './quote';

/**
 * A lockout guard for a change that could cut the runner off its server (a firewall, sshd's
 * configuration): before the change, a revert is armed on the server itself; the runner confirms
 * only after a new SSH login succeeded. Its files live in a root-only directory: `armed` exists
 * while a revert is pending. Whoever renames it first wins: the revert (to `fired`, then
 * restores) or the runner's confirmation (to `confirmed`). A rename is atomic, so a late
 * confirmation can never race a revert that already started.
 */
export interface GuardPaths {
  dir: string;
  armed: string;
  fired: string;
  confirmed: string;
  revertScript: string;
  sleeperPid: string;
}

export function guardPaths(dir: string): GuardPaths {
  return {
    dir,
    armed: `${dir}/armed`,
    fired: `${dir}/fired`,
    confirmed: `${dir}/confirmed`,
    revertScript: `${dir}/revert.sh`,
    sleeperPid: `${dir}/sleeper.pid`,
  };
}

export function prepareGuardDir(paths: GuardPaths): Command {
  return ['mkdir', '-p', '-m', '0700', paths.dir];
}

/** The script the timer runs: restore only if the runner has not confirmed in time. `what` says in it who armed it and why. */
export function guardRevertScript(paths: GuardPaths, restore: readonly Command[], what: string): string {
  const lines = [
    '#!/bin/sh',
    `# ${what.replace(/\n/g, ' ')}`,
    `mv ${quote(paths.armed)} ${quote(paths.fired)} 2>/dev/null || exit 0`,
    ...restore.map((command) => command.map((token) => (typeof token === 'string' ? quote(token) : token.raw)).join(' ')),
    `date -u +%FT%TZ >> ${quote(paths.fired)}`,
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * Arms the revert: a transient systemd timer (`unit`) where systemd runs, otherwise a sleeper in
 * its own session (setsid) so neither the SSH channel closing nor `timeout` killing our process
 * group can take it down.
 */
export function armGuard(unit: string, paths: GuardPaths, seconds: number): Command[] {
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

/** Confirms (cancels the revert). Exits 3 when the revert already fired, saying `firedMessage`, so the step can say so. */
export function cancelGuard(unit: string, paths: GuardPaths, firedMessage: string): Command[] {
  return [[raw('if ! mv'), paths.armed, paths.confirmed, raw('2>/dev/null; then echo'), firedMessage, raw('>&2; exit 3; fi')], ...disarmGuard(unit, paths)];
}

/** Stops the timer (or the sleeper), e.g. after the runner ran the revert itself. */
export function disarmGuard(unit: string, paths: GuardPaths): Command[] {
  return [
    [raw('if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then'), 'systemctl', 'stop', `${unit}.timer`, raw('2>/dev/null || true; fi')],
    [raw('if [ -s'), paths.sleeperPid, raw(']; then kill -- "-$(cat'), paths.sleeperPid, raw(')" 2>/dev/null || true; rm -f'), paths.sleeperPid, raw('; fi')],
  ];
}

export function guardFired(paths: GuardPaths): Command {
  return ['test', '-e', paths.fired];
}
