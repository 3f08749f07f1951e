/**
 * Tags, version and OCI labels computed from the workflow event, following docker/metadata-action's
 * defaults so that moving from that action to this one keeps the same tags in the registry.
 */

/** The fields of a webhook payload this file reads (all optional: each event carries some). */
export interface EventPayload {
  repository?: {
    default_branch?: string;
    full_name?: string;
    html_url?: string;
    name?: string;
    description?: string | null;
    license?: { spdx_id?: string } | null;
  };
  pull_request?: { number?: number; head?: { sha?: string; repo?: { full_name?: string } | null }; base?: { repo?: { full_name?: string } | null } };
  number?: number;
  head_commit?: { timestamp?: string };
}

/** The parts of @actions/github's `context` this file reads; tests pass webhook payload fixtures. */
export interface EventInfo {
  eventName: string;
  /** GITHUB_REF, e.g. refs/heads/main, refs/tags/v1.2.3, refs/pull/7/merge. */
  ref: string;
  /** GITHUB_SHA: for pull_request events this is the merge commit, not the PR head. */
  sha: string;
  payload: EventPayload;
  /** GITHUB_REPOSITORY (owner/name), used when the payload carries no repository. */
  repository?: string;
  serverUrl?: string;
}

export interface ImageMetadata {
  /** Tag names only (no image name), deduplicated, in a stable order. */
  tags: string[];
  version: string;
  /** The commit the image is built from: the PR head for pull requests. */
  revision: string;
  labels: Record<string, string>;
  /** True for a pull_request whose head lives in another repository: its token cannot push. */
  fromFork: boolean;
}

// Docker's tag grammar: a word character, then up to 127 word characters, dots or dashes.
export const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?$/;
const PULL_REQUEST_EVENTS = new Set(['pull_request', 'pull_request_target']);

/** Replaces what a tag may not contain, like metadata-action does (`feature/x` → `feature-x`); '' if nothing usable is left. */
export function sanitizeTag(text: string): string {
  return text
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[.-]+/, '')
    .slice(0, 128);
}

function branchOf(ref: string): string | undefined {
  return ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : undefined;
}

function gitTagOf(ref: string): string | undefined {
  return ref.startsWith('refs/tags/') ? ref.slice('refs/tags/'.length) : undefined;
}

/**
 * The default branch comes from the payload's repository. A schedule event carries no repository,
 * but GitHub runs scheduled workflows on the default branch only, so its ref is that branch.
 */
function defaultBranchOf(event: EventInfo): string | undefined {
  const fromPayload = event.payload.repository?.default_branch;
  if (typeof fromPayload === 'string' && fromPayload !== '') return fromPayload;
  return event.eventName === 'schedule' ? branchOf(event.ref) : undefined;
}

export function isForkPullRequest(event: EventInfo): boolean {
  if (!PULL_REQUEST_EVENTS.has(event.eventName)) return false;
  const pr = event.payload.pull_request;
  const head = pr?.head?.repo?.full_name;
  const base = pr?.base?.repo?.full_name;
  // A deleted fork has head.repo null: still not this repository.
  return pr !== undefined && (head === undefined || head === null || head !== base);
}

function revisionOf(event: EventInfo): string {
  if (PULL_REQUEST_EVENTS.has(event.eventName)) {
    const head = event.payload.pull_request?.head?.sha;
    if (typeof head === 'string' && head !== '') return head;
  }
  return event.sha;
}

function pullRequestNumber(event: EventInfo): number | undefined {
  if (!PULL_REQUEST_EVENTS.has(event.eventName)) return undefined;
  const number = event.payload.pull_request?.number ?? event.payload.number;
  return typeof number === 'number' ? number : undefined;
}

/** The tags for a git tag push: semver gets 1.2.3, 1.2, 1 and latest, a pre-release only itself. */
function gitTagTags(name: string): { tags: string[]; version: string } {
  const semver = SEMVER.exec(name);
  if (!semver) {
    const tag = sanitizeTag(name);
    return { tags: tag ? [tag] : [], version: tag };
  }
  const [, major, minor, patch, prerelease] = semver;
  const version = sanitizeTag(`${major}.${minor}.${patch}${prerelease ? `-${prerelease}` : ''}`);
  if (prerelease) return { tags: [version], version };
  // metadata-action leaves out the bare major for 0.x: `0` would float across breaking releases.
  const tags = [version, `${major}.${minor}`, ...(major === '0' ? [] : [major!]), 'latest'];
  return { tags, version };
}

export interface MetadataOptions {
  /** Extra tag names from the `tags` input, already validated. */
  extraTags?: readonly string[];
  /** ISO timestamp for org.opencontainers.image.created when the event has no commit time. */
  now?: string;
  extraLabels?: Readonly<Record<string, string>>;
}

export function computeMetadata(event: EventInfo, options: MetadataOptions = {}): ImageMetadata {
  const revision = revisionOf(event);
  const shaTag = `sha-${revision.slice(0, 7)}`;
  const tags: string[] = [];
  let version = shaTag;

  const branch = branchOf(event.ref);
  const gitTag = gitTagOf(event.ref);
  const pr = pullRequestNumber(event);
  if (pr !== undefined) {
    tags.push(`pr-${pr}`);
    version = `pr-${pr}`;
  } else if (gitTag !== undefined) {
    const fromTag = gitTagTags(gitTag);
    tags.push(...fromTag.tags);
    if (fromTag.version) version = fromTag.version;
  } else if (branch !== undefined) {
    const tag = sanitizeTag(branch);
    if (tag) {
      tags.push(tag);
      version = tag;
    }
    if (branch === defaultBranchOf(event)) tags.push('latest');
  }
  tags.push(shaTag, ...(options.extraTags ?? []));

  return {
    tags: [...new Set(tags)],
    version,
    revision,
    labels: { ...ociLabels(event, revision, version, options.now), ...options.extraLabels },
    fromFork: isForkPullRequest(event),
  };
}

/**
 * The OCI annotations GHCR reads; `source` is what links the package to the repository.
 * `created` is the commit's time when the event says it, so rebuilding one commit gives one digest.
 */
function ociLabels(event: EventInfo, revision: string, version: string, now?: string): Record<string, string> {
  const repository = event.payload.repository;
  const fullName: string | undefined = repository?.full_name ?? event.repository;
  const serverUrl = (event.serverUrl ?? 'https://github.com').replace(/\/+$/, '');
  const commitTime: unknown = event.payload.head_commit?.timestamp;
  const created = typeof commitTime === 'string' && commitTime !== '' ? new Date(commitTime).toISOString() : now;
  const labels: Record<string, string | undefined> = {
    'org.opencontainers.image.source': repository?.html_url ?? (fullName ? `${serverUrl}/${fullName}` : undefined),
    'org.opencontainers.image.revision': revision,
    'org.opencontainers.image.created': created,
    'org.opencontainers.image.title': repository?.name ?? fullName?.split('/')[1],
    'org.opencontainers.image.description': repository?.description ?? undefined,
    'org.opencontainers.image.version': version,
    'org.opencontainers.image.licenses': repository?.license?.spdx_id && repository.license.spdx_id !== 'NOASSERTION' ? repository.license.spdx_id : undefined,
  };
  return Object.fromEntries(Object.entries(labels).filter((entry): entry is [string, string] => typeof entry[1] === 'string' && entry[1] !== ''));
}
