import { and, or, raw, redirectTo, type Command } from '@skiff/shell';

/** Who holds the lock; written inside the lock directory so a waiting deploy can say who it waits for. */
export interface LockOwner {
  /** Random per run: only the holder with this token may release the lock. */
  token: string;
  actor: string;
  runUrl: string;
  release: string;
  startedAt: string;
}

export const lockDir = (projectDir: string): string => `${projectDir}/.skiff-lock`;

/**
 * One attempt to take the lock. `mkdir` is atomic, so of two deploys racing here exactly one
 * creates the directory. Prints `acquired`, or `held <age-seconds>` followed by the owner file.
 * A lock older than `ttlSeconds` is moved aside with `mv` (also atomic: of two deploys taking
 * over the same stale lock, only one rename succeeds) and the attempt is repeated once;
 * `took-over` then tells the caller to warn. Ages use the server's clock on both ends.
 */
/**
 * Creates project-dir, or says how to: a deploy user cannot create /opt/<repo> itself, and a raw
 * `mkdir: Permission denied` does not tell a newcomer the one command that fixes it for good.
 */
export function ensureProjectDir(projectDir: string): Command {
  return [
    raw('if ! mkdir -p --'),
    projectDir,
    raw('2>/dev/null || [ ! -w'),
    projectDir,
    raw(
      `]; then printf 'project-dir %s cannot be created or written by %s. Create it once, as root or with sudo, owned by that user:\\n  sudo install -d -o %s -g %s %s\\n'`,
    ),
    projectDir,
    raw('"$(id -un)" "$(id -un)" "$(id -gn)" "$(printf %q'),
    projectDir,
    raw(')" >&2; exit 1; fi'),
  ];
}

/** `mkdir` is atomic: of two deploys racing here exactly one creates the directory, and writes who it is. */
const makeLockDir = (dir: string, owner: LockOwner): Command =>
  and(['mkdir', dir, raw('2>/dev/null')], redirectTo(['printf', '%s\\n', JSON.stringify(owner)], `${dir}/owner.json`));

export function tryLock(projectDir: string, owner: LockOwner, ttlSeconds: number): Command[] {
  const dir = lockDir(projectDir);
  const take = (word: string): Command => and(makeLockDir(dir, owner), ['echo', word]);
  const quiet = (command: Command): Command => [...command, raw('2>/dev/null')];
  const stale = `${dir}.stale-${owner.token}`;
  return [
    ensureProjectDir(projectDir),
    [raw('if'), ...take('acquired'), raw('; then exit 0; fi')],
    // The lock vanished between mkdir and stat: report it as held with age 0 and let the caller retry.
    [raw('age=$(( $(date +%s) - $(stat -c %Y'), dir, raw('2>/dev/null || date +%s) ))')],
    [
      raw('if [ "$age" -gt'),
      String(ttlSeconds),
      raw('] &&'),
      ...quiet(['mv', '-T', dir, stale]),
      raw(';then'),
      'rm',
      '-rf',
      stale,
      raw(';'),
      ...or(take('took-over'), ['echo', 'held', '0']),
      raw('; exit 0; fi'),
    ],
    ['echo', 'held', raw('"$age"')],
    or(quiet(['cat', `${dir}/owner.json`]), ['true']),
  ];
}

/**
 * The lock taken while the server is still being probed, where that cannot touch a server Skiff
 * has never deployed to: only in a project-dir that already holds releases. Prints
 * `not-deployed`, `busy` (held, or anything but a clean mkdir: the full attempt follows the probe)
 * or `acquired` followed by what `then` prints, run in a subshell so its own `exit` ends only it.
 */
export function tryLockWhereDeployed(projectDir: string, releases: string, owner: LockOwner, then: readonly Command[]): Command[] {
  const dir = lockDir(projectDir);
  return [
    [raw('[ -d'), releases, raw('] || { echo not-deployed; exit 0; }')],
    [raw('if ! {'), ...makeLockDir(dir, owner), raw('; }; then echo busy; exit 0; fi')],
    ['echo', 'acquired'],
    [raw('(')],
    ...then,
    [raw(')')],
  ];
}

export type EarlyLockAttempt = { kind: 'not-deployed' } | { kind: 'busy' } | { kind: 'acquired'; after: string };

export function parseEarlyLockAttempt(stdout: string): EarlyLockAttempt {
  const newline = stdout.indexOf('\n');
  const first = (newline < 0 ? stdout : stdout.slice(0, newline)).trim();
  if (first === 'not-deployed' || first === 'busy') return { kind: first };
  if (first === 'acquired') return { kind: 'acquired', after: newline < 0 ? '' : stdout.slice(newline + 1) };
  throw new Error(`Unexpected answer from the lock command: ${JSON.stringify(stdout.slice(0, 200))}`);
}

/** Removes the lock only if this run still owns it, so a late post step never frees someone else's lock. */
export function releaseLock(projectDir: string, token: string): Command[] {
  const dir = lockDir(projectDir);
  return [
    [
      raw('if'),
      'grep',
      '-qF',
      `"token":"${token}"`,
      `${dir}/owner.json`,
      raw('2>/dev/null; then'),
      'rm',
      '-rf',
      dir,
      raw('; echo released; else echo not-held; fi'),
    ],
  ];
}

/** Keeps a long deploy's lock fresh, so it is not mistaken for a crashed one's after lock-ttl. */
export function touchLock(projectDir: string, token: string): Command[] {
  const dir = lockDir(projectDir);
  return [[raw('if'), 'grep', '-qF', `"token":"${token}"`, `${dir}/owner.json`, raw('2>/dev/null; then'), 'touch', dir, raw('; fi')]];
}

export type LockAttempt = { kind: 'acquired' } | { kind: 'took-over' } | { kind: 'held'; ageSeconds: number; owner?: Partial<LockOwner> };

export function parseLockAttempt(stdout: string): LockAttempt {
  const lines = stdout
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const first = lines[0] ?? '';
  if (first === 'acquired' || first === 'took-over') return { kind: first };
  const held = /^held (\d+)$/.exec(first);
  if (!held) throw new Error(`Unexpected answer from the lock command: ${JSON.stringify(stdout.slice(0, 200))}`);
  let owner: Partial<LockOwner> | undefined;
  try {
    owner = lines[1] ? (JSON.parse(lines[1]) as Partial<LockOwner>) : undefined;
  } catch {
    owner = undefined;
  }
  return { kind: 'held', ageSeconds: Number(held[1]), ...(owner ? { owner } : {}) };
}
