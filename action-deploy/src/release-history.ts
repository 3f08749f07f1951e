import { or, raw, redirectTo, type Command } from '@skiff/shell';

/**
 * The layout on the server:
 *   <project-dir>/releases/<id>/   compose files, .env (0600), images.lock.json, meta.json, and
 *                                  `deployed` once the release has passed the health gate
 *   <project-dir>/current          symlink to releases/<id>
 *   <project-dir>/audit.log        JSON lines, append-only
 * Release ids sort by time, so "previous" is simply the newest deployed id older than current.
 */
export const RELEASES = 'releases';
export const IMAGE_LOCK = 'images.lock.json';
export const META = 'meta.json';
export const DEPLOYED_MARK = 'deployed';
export const ENV_FILE = '.env';

export const releasesDir = (projectDir: string): string => `${projectDir}/${RELEASES}`;
export const releaseDir = (projectDir: string, id: string): string => `${releasesDir(projectDir)}/${id}`;
export const auditLog = (projectDir: string): string => `${projectDir}/audit.log`;

const RELEASE_ID = /^\d{8}T\d{6}Z-[0-9a-z]{1,12}(-[0-9a-z]{4})?$/;

/** A git SHA or its prefix (7 to 40 hex digits), as `rollback:` may name a release by its commit. */
export const GIT_SHA = /^[0-9a-f]{7,40}$/i;

export function isReleaseId(text: string): boolean {
  return RELEASE_ID.test(text);
}

/** `20261121T222430Z-1a2b3c4` plus a random suffix so two runs in the same second never collide. */
export function newReleaseId(now: Date, sha: string, random: string): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  const short = (sha.toLowerCase().match(/[0-9a-z]/g) ?? []).join('').slice(0, 7) || 'manual';
  return `${stamp}-${short}-${random
    .toLowerCase()
    .replace(/[^0-9a-z]/g, '')
    .padEnd(4, '0')
    .slice(0, 4)}`;
}

export interface ReleaseMeta {
  id: string;
  sha: string;
  ref: string;
  actor: string;
  runUrl: string;
  createdAt: string;
  services: Record<string, string>;
}

/** Prepares an empty release directory; 0700 because it will hold the env file. */
export function createRelease(projectDir: string, id: string): Command[] {
  return [
    ['mkdir', '-p', releasesDir(projectDir)],
    ['mkdir', '-m', '700', releaseDir(projectDir, id)],
  ];
}

/**
 * What the server holds, in one round trip: the current release, every release directory,
 * which of them passed the gate, and each one's image lock (for pruning images) and git SHA
 * (for `rollback: <sha>`). One awk reads every lock and every meta.json (a program per release
 * made this the slowest read of a deploy), and names each release by its id, never its path:
 * a project directory may hold spaces.
 */
export function readState(projectDir: string): Command[] {
  const releases = releasesDir(projectDir);
  const releaseOf = 'n = split(FILENAME, part, "/"); id = part[n - 1]';
  const eachFile = (name: string, program: string): Command => [
    'find',
    releases,
    '-mindepth',
    '2',
    '-maxdepth',
    '2',
    '-name',
    name,
    '-exec',
    'awk',
    program,
    '{}',
    '+',
  ];
  return [
    or(['find', projectDir, '-maxdepth', '1', '-name', 'current', '-type', 'l', '-printf', 'current %l\\n', raw('2>/dev/null')], ['true']),
    [raw('[ -d'), releases, raw('] || exit 0')],
    ['find', releases, '-mindepth', '1', '-maxdepth', '1', '-type', 'd', '-printf', 'release %f\\n'],
    ['find', releases, '-mindepth', '2', '-maxdepth', '2', '-name', DEPLOYED_MARK, '-printf', 'deployed %h\\n'],
    // A lock is one line of JSON; one cut short by a crash has none, and pins nothing.
    eachFile(IMAGE_LOCK, `FNR == 1 { ${releaseOf}; print "lock " id " " $0 }`),
    // The first "sha" line of each meta.json; a release without one prints nothing.
    eachFile(
      META,
      `FNR == 1 { found = 0 } !found && match($0, /^ *"sha": *"[0-9A-Za-z]*"/) { sha = substr($0, RSTART, RLENGTH); sub(/^ *"sha": *"/, "", sha); sub(/"$/, "", sha); ${releaseOf}; print "sha " id " " sha; found = 1 }`,
    ),
  ];
}

export interface ServerState {
  current?: string;
  releases: string[];
  deployed: Set<string>;
  /** Release id → service → pinned image reference. */
  locks: Map<string, Record<string, string>>;
  /** Release id → the git SHA it was deployed from (meta.json). */
  shas?: Map<string, string>;
}

export function parseState(stdout: string): ServerState {
  const state: ServerState = { releases: [], deployed: new Set(), locks: new Map() };
  const base = (path: string) => path.slice(path.lastIndexOf('/') + 1);
  for (const line of stdout.split('\n')) {
    const space = line.indexOf(' ');
    if (space < 0) continue;
    const kind = line.slice(0, space);
    const rest = line.slice(space + 1);
    if (kind === 'current') state.current = base(rest.replace(/\/+$/, ''));
    else if (kind === 'release' && isReleaseId(rest)) state.releases.push(rest);
    else if (kind === 'deployed') state.deployed.add(base(rest));
    else if (kind === 'sha') {
      const [dir, sha] = rest.split(' ');
      if (dir && sha) (state.shas ??= new Map()).set(base(dir), sha.toLowerCase());
    } else if (kind === 'lock') {
      const split = rest.indexOf(' ');
      try {
        const parsed = JSON.parse(rest.slice(split + 1)) as { services?: Record<string, { image?: string }> };
        const images: Record<string, string> = {};
        for (const [service, value] of Object.entries(parsed.services ?? {})) if (value.image) images[service] = value.image;
        state.locks.set(base(rest.slice(0, split)), images);
      } catch {
        // A lock file cut short by a crash pins nothing; treating it as empty keeps pruning safe.
      }
    }
  }
  state.releases.sort();
  return state;
}

/** The newest release that passed the gate and is older than `current` ("previous" for a rollback). */
export function previousRelease(state: ServerState, current = state.current): string | undefined {
  return [...state.deployed]
    .filter((id) => state.releases.includes(id) && (current === undefined || id < current))
    .sort()
    .at(-1);
}

/** Compose override pinning each service's image; JSON, which Compose reads as YAML. */
export function imageLockFile(images: Readonly<Record<string, string>>): string {
  const services = Object.fromEntries(Object.entries(images).map(([service, image]) => [service, { image }]));
  return `${JSON.stringify({ services })}\n`;
}

/**
 * Points `current` at the release atomically: a new symlink is renamed over the old one, so a
 * reader never finds it missing.
 */
export function switchCurrent(projectDir: string, id: string): Command[] {
  return [...pointCurrent(projectDir, id), ...markDeployed(projectDir, id)];
}

/** Only the atomic link switch, for strategies whose service runs from `current` and so must switch before the gate. */
export function pointCurrent(projectDir: string, id: string): Command[] {
  const temporary = `${projectDir}/.current.tmp`;
  return [
    ['ln', '-sfn', `${RELEASES}/${id}`, temporary],
    ['mv', '-T', temporary, `${projectDir}/current`],
  ];
}

/** The release passed the health gate: a candidate for `rollback: previous` and kept by keep-releases. */
export function markDeployed(projectDir: string, id: string): Command[] {
  return [['touch', `${releaseDir(projectDir, id)}/${DEPLOYED_MARK}`]];
}

export interface AuditEntry {
  event: 'deploy' | 'rollback' | 'failure';
  status: 'deployed' | 'rolled-back' | 'failed';
  from: string | null;
  to: string;
  actor: string;
  runUrl: string;
  at: string;
  reason?: string;
}

/** One JSON line appended with `>>`: appends of one short write are atomic, so concurrent writers cannot interleave. */
export function appendAudit(projectDir: string, entry: AuditEntry): Command[] {
  return [redirectTo(['printf', '%s\\n', JSON.stringify(entry)], auditLog(projectDir), { append: true })];
}

export interface PrunePlan {
  remove: string[];
  /** Image references only removed releases used. */
  images: string[];
}

/**
 * Keeps the newest `keep` releases that passed the gate, plus whatever is current and `protect`
 * (the release being deployed). Releases that failed go once a newer release is current: they
 * are kept until then for inspection.
 */
export function planPrune(state: ServerState, keep: number, protect: readonly string[]): PrunePlan {
  const keepSet = new Set<string>(protect);
  if (state.current) keepSet.add(state.current);
  for (const id of [...state.deployed]
    .filter((d) => state.releases.includes(d))
    .sort()
    .slice(-keep))
    keepSet.add(id);
  const current = state.current ?? '';
  const remove = state.releases.filter((id) => !keepSet.has(id) && (state.deployed.has(id) || id < current));
  const used = new Set<string>();
  for (const [id, images] of state.locks) if (!remove.includes(id)) for (const image of Object.values(images)) used.add(image);
  const images = new Set<string>();
  // Only digest-pinned references and images built for that very release (tagged with its id): any
  // other tag (what a release that failed before pinning asked for) can name the very image a kept
  // release runs by digest, and `docker image rm <tag>` would delete it.
  for (const id of remove) {
    for (const image of Object.values(state.locks.get(id) ?? {}))
      if ((image.includes('@sha256:') || image.endsWith(`:${id}`)) && !used.has(image)) images.add(image);
  }
  return { remove, images: [...images].sort() };
}

/**
 * What the server holds once release `id` passed its gate and was marked current, from what it
 * held before: the deploy lock kept anyone else from changing the releases in between, so the
 * prune can be planned without reading them again.
 */
export function afterPassed(state: ServerState, id: string, images: Readonly<Record<string, string>>): ServerState {
  return {
    ...state,
    current: id,
    releases: [...new Set([...state.releases, id])].sort(),
    deployed: new Set([...state.deployed, id]),
    locks: new Map([...state.locks, [id, { ...images }]]),
  };
}

export function removeReleases(projectDir: string, ids: readonly string[]): Command[] {
  return ids.length === 0 ? [] : [['rm', '-rf', ...ids.map((id) => releaseDir(projectDir, id))]];
}

/**
 * Points `<project-dir>/.env` at the release's env file (or removes a link left by an earlier
 * release that had one), so services using `env_file: .env` get the release's values. A real
 * file there was written by hand before Skiff: it is kept aside as `.env.before-skiff`, not lost.
 */
export function linkEnv(projectDir: string, id: string, hasEnv: boolean): Command[] {
  const link = `${projectDir}/${ENV_FILE}`;
  const keepHandWritten: Command = [raw('if [ -f'), link, raw('] && [ ! -L'), link, raw(']; then'), 'mv', link, `${link}.before-skiff`, raw('; fi')];
  if (!hasEnv) return [keepHandWritten, [raw('if [ -L'), link, raw(']; then'), 'rm', '-f', link, raw('; fi')]];
  const temporary = `${projectDir}/.env.tmp-link`;
  return [keepHandWritten, ['ln', '-sfn', `${RELEASES}/${id}/${ENV_FILE}`, temporary], ['mv', '-T', temporary, link]];
}

/** The release's metadata and, for a rollback, which of its files make up the project. */
export function readMeta(projectDir: string, id: string): Command[] {
  return [['cat', `${releaseDir(projectDir, id)}/${META}`]];
}
