import type { ProbeOutcome } from '@skiff/health';
import { raw, type Command } from '@skiff/shell';
import { createRelease, releaseDir } from '../../release-history';

/**
 * Pure command builders of strategy: systemd. A release directory is a standalone copy of the
 * app (files from artifact-path or `git archive` of the commit, plus whatever install-command
 * made in it), so pointing `current` back at an older one restores it exactly.
 */

/** The bare git repository the server fetches into; releases are exported from it, never checked out in it. */
export const gitCache = (projectDir: string): string => `${projectDir}/repo`;

/** Properties read before anything changes: does the unit exist, and does it run from `current`? */
const UNIT_CONFIG = ['LoadState', 'FragmentPath', 'WorkingDirectory', 'ExecStart'] as const;
/** Properties the gate reads every round. */
const UNIT_STATE = ['ActiveState', 'SubState', 'Result', 'NRestarts', 'MainPID', 'ExecMainStatus'] as const;

const sudoPrefix = (sudo: boolean): string[] => (sudo ? ['sudo', '-n'] : []);

/** Who the SSH user is (root needs no sudo) and how the unit is configured. */
export function inspectHost(unit: string): Command[] {
  return [
    ['id', '-u'],
    ['systemctl', 'show', unit, `--property=${UNIT_CONFIG.join(',')}`],
  ];
}

export function unitState(unit: string): Command[] {
  return [['systemctl', 'show', unit, `--property=${UNIT_STATE.join(',')}`]];
}

/** `Key=value` lines of `systemctl show`, plus the `id -u` line of inspectHost as `uid`. */
export function parseShow(stdout: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) values[line.slice(0, equals)] = line.slice(equals + 1).trim();
    else if (/^\d+$/.test(line.trim())) values.uid = line.trim();
  }
  return values;
}

/**
 * A new, empty release directory. The compose strategies keep it 0700 because of the env file;
 * here a unit with its own User= must be able to read the code, and the env file is 0600 by itself.
 */
export function createSystemdRelease(projectDir: string, id: string): Command[] {
  return [...createRelease(projectDir, id), ['chmod', '755', releaseDir(projectDir, id)]];
}

export type Compression = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'none';

const COMPRESSION_FLAG: Record<Compression, string[]> = { gzip: ['-z'], xz: ['-J'], zstd: ['--zstd'], bzip2: ['-j'], none: [] };

/** Unpacks the tar stream on stdin into the release. Files belong to the SSH user, whatever uid the runner packed them with. */
export function extractArchive(dir: string, compression: Compression): Command[] {
  return [['tar', '-x', ...COMPRESSION_FLAG[compression], '--no-same-owner', '-f', '-', '-C', dir]];
}

/**
 * Fetches the commit into the server's bare cache (only if it is not there yet, so re-deploys
 * and repeated hosts are cheap) and exports it into the release: a plain copy with no .git, so
 * the release does not depend on the cache. Fetching by SHA works on GitHub, GitLab and any git
 * ≥ 2.x served over protocol v2; for servers that refuse it, every branch and tag is fetched.
 */
export function gitExport(projectDir: string, repository: string, sha: string, dir: string): Command[] {
  const repo = gitCache(projectDir);
  const git = ['env', 'GIT_TERMINAL_PROMPT=0', 'git', '-C', repo];
  const has: Command = [...git, 'cat-file', '-e', `${sha}^{commit}`, raw('2>/dev/null')];
  return [
    [raw('[ -d'), repo, raw('] ||'), 'git', 'init', '--quiet', '--bare', repo],
    [
      raw('if !'),
      ...has,
      raw('; then'),
      ...git,
      'fetch',
      '--quiet',
      '--no-tags',
      repository,
      sha,
      raw('||'),
      ...git,
      'fetch',
      '--quiet',
      '--no-tags',
      '--force',
      repository,
      '+refs/heads/*:refs/skiff/heads/*',
      '+refs/tags/*:refs/skiff/tags/*',
      raw('; fi'),
    ],
    [raw('if !'), ...has, raw('; then'), 'echo', `commit ${sha} is not in ${repository}`, raw('>&2; exit 1; fi')],
    [...git, 'archive', '--format=tar', sha, raw('|'), 'tar', '-x', '--no-same-owner', '-f', '-', '-C', dir],
  ];
}

/** install-command (or pre-deploy) in the new release directory, told where it is. */
export function inReleaseDir(projectDir: string, id: string, command: string): Command[] {
  const dir = releaseDir(projectDir, id);
  return [
    ['cd', dir],
    ['env', `SKIFF_RELEASE_DIR=${dir}`, `SKIFF_RELEASE_ID=${id}`, `SKIFF_PROJECT_DIR=${projectDir}`, 'bash', '-c', command],
  ];
}

/**
 * After a crash loop systemd refuses every start of the unit (start-limit-hit: by default five
 * starts in 10 s, which a service that dies at once with the default RestartSec=100ms reaches in
 * a second) until its failed state is reset; a rollback's restart would be refused exactly when
 * it is needed. Resetting a unit that has not failed changes nothing.
 */
export function resetFailedUnit(unit: string, sudo: boolean): Command[] {
  return [[...sudoPrefix(sudo), 'systemctl', 'reset-failed', unit]];
}

/** `systemctl restart` waits until the unit has started (or, for Type=notify, reported ready). */
export function restartUnit(unit: string, sudo: boolean): Command[] {
  return [[...sudoPrefix(sudo), 'systemctl', 'restart', unit]];
}

export function unitStatus(unit: string, sudo: boolean): Command[] {
  return [[...sudoPrefix(sudo), 'systemctl', 'status', unit, '--no-pager', '--full', '--lines=0']];
}

export function unitJournal(unit: string, sudo: boolean): Command[] {
  return [[...sudoPrefix(sudo), 'journalctl', '--unit', unit, '--lines=100', '--no-pager']];
}

/**
 * The unit's part of the health gate. `active` is healthy only while systemd has not restarted
 * it since our own restart: a crash loop (Restart=always) looks `active` most of the time.
 * `failed`, a stop, or any automatic restart cannot get better by waiting, so the gate fails at
 * once instead of at health-timeout.
 */
export function evaluateUnit(state: Readonly<Record<string, string>>, restartsAtStart: number): ProbeOutcome {
  const active = state.ActiveState ?? 'unknown';
  const sub = state.SubState ?? 'unknown';
  const restarts = Number(state.NRestarts ?? '0') - restartsAtStart;
  const where = `${active} (${sub})${state.MainPID && state.MainPID !== '0' ? `, pid ${state.MainPID}` : ''}`;
  if (restarts > 0)
    return {
      state: 'failed',
      detail: `crashed: systemd restarted it ${restarts} time(s) since the deploy; now ${where}, last exit status ${state.ExecMainStatus ?? '?'}`,
    };
  if (active === 'active') return { state: 'ok', detail: where };
  if (active === 'activating' || active === 'reloading') {
    return sub === 'auto-restart'
      ? { state: 'failed', detail: `crashed (exit status ${state.ExecMainStatus ?? '?'}); systemd is about to restart it` }
      : { state: 'waiting', detail: where };
  }
  return { state: 'failed', detail: `${where}, result ${state.Result ?? '?'}, last exit status ${state.ExecMainStatus ?? '?'}` };
}

/** Does the unit run from `<project-dir>/current`? If not, switching releases would change nothing it runs. */
export function runsFromCurrent(config: Readonly<Record<string, string>>, projectDir: string): boolean {
  const current = `${projectDir}/current`;
  return [config.WorkingDirectory, config.ExecStart].some((value) => value?.includes(current));
}
