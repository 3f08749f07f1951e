import * as core from '@actions/core';
import type { SshConnectOptions } from '@skiff/ssh';
import {
  DRY_RUN_INPUT,
  InputCollector,
  InputError,
  SSH_INPUTS,
  getBoolean,
  getEnum,
  getInteger,
  getList,
  getString,
  invalidInput,
  maskSecret,
  readDryRun,
  readSshInputs,
  type InputDefinition,
} from '@skiff/action-kit';
import { parseSources, reachableFromRunner, runnerOnlyFields, type RetentionPolicy, type S3Settings, type Source } from '@skiff/backup';

const BACKUP_INPUTS = [
  {
    name: 'sources',
    description:
      'What to back up: a YAML list, one entry per backup, each with `type` (postgres, mysql, redis, sqlite, files), where it runs (`service` of a Compose project, `container`, or neither for the host) and its fields (`database`, `user`, `globals`, `path`, `paths`, `volumes`, `name`, `compression`, …); a database reached over the network takes `url` (postgresql://, mysql:// or mariadb://…, from a secret) or `url-env` (the variable holding it), `sslmode`, `ca-certificate` and `client-image`. See the README.',
    required: true,
  },
  {
    name: 'destination',
    description:
      'Where backups go: `host` (a directory on the server, destination-path), `s3` (any S3-compatible store) or `artifact` (GitHub artifacts of the workflow run, found again by later runs through github-token; readable by anyone who can read the repository unless encrypted).',
    required: false,
    default: 'host',
  },
  {
    name: 'destination-path',
    description: 'With destination host: the directory on the server that holds `<source>/<id>.*` and manifests.',
    required: false,
    default: '/var/backups/skiff',
  },
  {
    name: 'artifact-name',
    description: "With destination artifact: prefix of the artifacts' names, `<artifact-name>.<backup file>`.",
    required: false,
    default: 'skiff-backup',
  },
  {
    name: 'github-token',
    description:
      "With destination artifact: token for GitHub's REST API, so list, restore, drill and prune see the backups of earlier workflow runs (needs `actions: read`; prune needs `actions: write`). Empty: only this run's artifacts.",
    required: false,
    default: '${{ github.token }}',
    secret: true,
  },
  { name: 's3-endpoint', description: 'S3 endpoint URL for non-AWS stores (Backblaze B2, Cloudflare R2, MinIO); empty for AWS.', required: false },
  { name: 's3-region', description: 'S3 region (`auto` for R2).', required: false, default: 'us-east-1' },
  { name: 's3-bucket', description: 'S3 bucket.', required: false },
  { name: 's3-prefix', description: 'Key prefix inside the bucket; backups go to `<prefix>/<source>/<id>.*`.', required: false, default: 'skiff-backups' },
  { name: 's3-access-key-id', description: 'S3 access key id.', required: false, secret: true },
  { name: 's3-secret-access-key', description: 'S3 secret access key.', required: false, secret: true },
  {
    name: 'encrypt-recipients',
    description:
      'age public keys (age1…), one per line: backups are encrypted on the runner before upload (s3 and artifact); the decryption key never needs to be in CI.',
    required: false,
  },
  {
    name: 'decrypt-identity',
    description: 'age identity (AGE-SECRET-KEY-1…) for restore and drill of encrypted backups. Secret.',
    required: false,
    secret: true,
  },
  { name: 'mode', description: '`backup`, `list`, `restore`, `drill` or `prune`.', required: false, default: 'backup' },
  { name: 'min-size', description: 'A backup smaller than this many bytes fails.', required: false, default: '1024' },
  {
    name: 'max-shrink-percent',
    description: 'A backup more than this percent smaller than the previous one fails (100 turns the guard off).',
    required: false,
    default: '50',
  },
  { name: 'keep-daily', description: 'Retention: keep the newest backup of each of this many days.', required: false, default: '0' },
  { name: 'keep-weekly', description: 'Retention: keep the newest backup of each of this many ISO weeks.', required: false, default: '0' },
  { name: 'keep-monthly', description: 'Retention: keep the newest backup of each of this many months.', required: false, default: '0' },
  { name: 'keep-yearly', description: 'Retention: keep the newest backup of each of this many years.', required: false, default: '0' },
  {
    name: 'keep-days',
    description: 'Retention: keep every backup newer than this many days. With no keep-* input set, nothing is pruned.',
    required: false,
    default: '0',
  },
  { name: 'min-keep', description: 'Never keep fewer than this many newest backups per source.', required: false, default: '3' },
  {
    name: 'backup-id',
    description: "For restore (and drill): the backup id to restore, or `latest`. A drill of several sources takes each one's latest.",
    required: false,
    default: 'latest',
  },
  {
    name: 'restore-target',
    description:
      "For restore: the database (postgres, mysql) or path on the server (redis, sqlite, files). Default: the source database; for files, back into the source's own paths and volumes (their current contents kept aside until the restore has finished, so a failed one puts them back; force: true needed when they are not empty); required for redis and sqlite. For redis give Redis's data directory (stopped Redis, path ending in /): with appendonly yes its append-only file is what Redis loads, and it is replaced too.",
    required: false,
  },
  { name: 'force', description: 'For restore: overwrite a non-empty target (true or false).', required: false, default: 'false' },
  {
    name: 'drill-target',
    description:
      'For drill of databases reached from the runner (no host): `runner` restores into a throwaway server of the same release (PostgreSQL, MariaDB, MySQL) in Docker on the runner (nothing is written to the server), `server` into a scratch database on the same server (needs CREATEDB there). Empty: runner.',
    required: false,
  },
  {
    name: 'drill-query',
    description: 'For drill: SQL to run on the restored scratch copy of each source. Default: row counts of every table.',
    required: false,
  },
  { name: 'healthcheck-url', description: 'healthchecks.io-style ping URL: `/start` before, the URL on success, `/fail` on failure.', required: false },
] as const satisfies readonly InputDefinition[];

/** What action.yml declares; a unit test keeps action.yml and the README in step with these. */
/** With no host, every source is a database the runner reaches itself: the SSH inputs are then not needed. */
const BACKUP_SSH_INPUTS: readonly InputDefinition[] = SSH_INPUTS.map((input) =>
  input.name === 'host'
    ? {
        ...input,
        required: false,
        description: `${input.description} Leave empty when every source is a database the runner reaches itself (\`url\`, e.g. a managed PostgreSQL or MariaDB/MySQL): the dump then runs on the runner.`,
      }
    : input.name === 'username'
      ? { ...input, required: false, description: `${input.description} Required with host.` }
      : input,
);

export const ACTION_INPUTS: readonly InputDefinition[] = [...BACKUP_SSH_INPUTS, ...BACKUP_INPUTS, DRY_RUN_INPUT];
export const ACTION_OUTPUTS = {
  'backup-id': 'Backup id(s) made or restored, comma-separated.',
  location: 'Where the backup(s) are stored (path on the server or s3:// URL), comma-separated.',
  size: 'Stored size in bytes (of the first source).',
  sha256: 'sha256 of the stored bytes (of the first source).',
  verified: '`true` when every backup passed its checks (and for drills, the drill passed).',
  pruned: 'JSON object: source name → ids pruned (or, with dry-run or mode prune dry-run, that would be).',
  plan: 'With dry-run: the plan of what would run on the server, as Markdown.',
} as const;

export const MODES = ['backup', 'list', 'restore', 'drill', 'prune'] as const;
export type Mode = (typeof MODES)[number];

export type Destination =
  | { kind: 'host'; path: string }
  | { kind: 's3'; settings: S3Settings }
  /** `github`: the REST API for earlier runs' artifacts (absent without a token or outside a runner). */
  | { kind: 'artifact'; name: string; github?: { token: string; repository: string; apiUrl: string } };

export const DRILL_TARGETS = ['runner', 'server'] as const;
export type DrillTarget = (typeof DRILL_TARGETS)[number];

export interface BackupInputs {
  /** Absent: every source is reached from the runner (no host given). */
  ssh?: SshConnectOptions;
  sources: Source[];
  destination: Destination;
  encryptRecipients: string[];
  decryptIdentities: string[];
  mode: Mode;
  minSize: number;
  maxShrinkPercent: number;
  retention: RetentionPolicy;
  backupId: string;
  restoreTarget?: string;
  force: boolean;
  drillQuery?: string;
  /** Drills of runner-side sources: a throwaway server on the runner, or a scratch database on the same server. */
  drillTarget: DrillTarget;
  healthcheckUrl?: string;
  dryRun: boolean;
}

/**
 * Without a host the SSH inputs mean nothing: each one set (to other than its default) is refused by
 * name rather than ignored.
 */
function refuseSshInputs(): undefined {
  const definitions: readonly InputDefinition[] = SSH_INPUTS;
  const problems = definitions
    .filter((input) => input.name !== 'host')
    .map((input) => ({ name: input.name, value: core.getInput(input.name) }))
    .filter(({ name, value }) => value !== '' && value !== (definitions.find((input) => input.name === name)?.default ?? ''));
  if (problems.length > 0) {
    const names = problems.map(({ name }) => name);
    throw new InputError(
      names,
      `Input${names.length > 1 ? 's' : ''} ${names.map((name) => `"${name}"`).join(', ')} ${names.length > 1 ? 'are' : 'is'} for the SSH connection, and "host" is empty (every source is then reached from the runner); set "host", or remove ${names.length > 1 ? 'them' : 'it'}`,
    );
  }
  return undefined;
}

function readSources(): Source[] {
  const text = getString('sources', { required: true });
  const { sources, problems } = parseSources(text, { env: process.env });
  if (problems.length > 0)
    throw new InputError('sources', `Input "sources" ${problems.length === 1 ? 'has a problem' : 'has problems'}:\n- ${problems.join('\n- ')}`);
  for (const source of sources) maskSecret(source.password);
  return sources;
}

function readRecipients(): string[] {
  const list = getList('encrypt-recipients', { split: 'any' }) ?? [];
  for (const recipient of list) {
    if (!/^age1[02-9ac-hj-np-z]{58}$/.test(recipient))
      throw invalidInput('encrypt-recipients', 'age public keys (age1 followed by 58 bech32 characters), one per line', recipient);
  }
  return [...list];
}

function readIdentities(): string[] {
  const list = getList('decrypt-identity', { split: 'any', secret: true }) ?? [];
  for (const identity of list) {
    if (!/^AGE-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/.test(identity)) throw invalidInput('decrypt-identity', 'an age identity (AGE-SECRET-KEY-1…)', identity, true);
  }
  return [...list];
}

function readHealthcheckUrl(): string | undefined {
  const value = getString('healthcheck-url');
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalidInput('healthcheck-url', 'an http(s) URL like https://hc-ping.com/<uuid>', value);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalidInput('healthcheck-url', 'an http(s) URL like https://hc-ping.com/<uuid>', value);
  return value.replace(/\/+$/, '');
}

export function readBackupInputs(): BackupInputs {
  const c = new InputCollector();
  const fromRunner = core.getInput('host').trim() === '';
  const ssh = fromRunner ? c.read(refuseSshInputs) : c.read(() => readSshInputs());
  const sources = c.read(readSources);
  const kind = c.read(() => getEnum('destination', ['host', 's3', 'artifact'] as const, { default: 'host' }));
  const artifactName = c.read(() => {
    const value = getString('artifact-name', { default: 'skiff-backup' });
    // The artifact service refuses these characters in names.
    if (!/^[^"':<>|*?\\/\r\n]{1,100}$/.test(value)) throw invalidInput('artifact-name', 'a name without " \' : < > | * ? \\ / or line breaks', value);
    return value;
  });
  const githubToken = c.read(() => getString('github-token', { secret: true }));
  const path = c.read(() => {
    const value = getString('destination-path', { default: '/var/backups/skiff' });
    if (!value.startsWith('/') || value.includes('\0')) throw invalidInput('destination-path', 'an absolute path on the server', value);
    return value;
  });
  const endpoint = c.read(() => {
    const value = getString('s3-endpoint');
    if (value !== undefined && !/^https?:\/\/[^\s]+$/.test(value))
      throw invalidInput('s3-endpoint', 'an http(s) URL like https://<account>.r2.cloudflarestorage.com', value);
    return value;
  });
  const region = c.read(() => getString('s3-region', { default: 'us-east-1' }));
  const bucket = c.read(() => getString('s3-bucket'));
  const prefix = c.read(() => getString('s3-prefix', { default: 'skiff-backups' }));
  const accessKeyId = c.read(() => getString('s3-access-key-id', { secret: true }));
  const secretAccessKey = c.read(() => getString('s3-secret-access-key', { secret: true }));
  const encryptRecipients = c.read(readRecipients);
  const decryptIdentities = c.read(readIdentities);
  const mode = c.read(() => getEnum('mode', MODES, { default: 'backup' }));
  const minSize = c.read(() => getInteger('min-size', { default: 1024, min: 0 }));
  const maxShrinkPercent = c.read(() => getInteger('max-shrink-percent', { default: 50, min: 0, max: 100 }));
  const keep = (name: string) => c.read(() => getInteger(name, { default: 0, min: 0, max: 10_000 }));
  const keepDaily = keep('keep-daily');
  const keepWeekly = keep('keep-weekly');
  const keepMonthly = keep('keep-monthly');
  const keepYearly = keep('keep-yearly');
  const keepDays = keep('keep-days');
  const minKeep = c.read(() => getInteger('min-keep', { default: 3, min: 1, max: 10_000 }));
  const backupId = c.read(() => {
    const value = getString('backup-id', { default: 'latest' });
    if (value !== 'latest' && !/^[A-Za-z0-9._-]+-\d{8}T\d{6}Z$/.test(value))
      throw invalidInput('backup-id', '"latest" or an id like postgres-app-20260101T030000Z (see mode: list)', value);
    return value;
  });
  const restoreTarget = c.read(() => getString('restore-target'));
  const force = c.read(() => getBoolean('force', { default: false }));
  const drillQuery = c.read(() => getString('drill-query'));
  const drillTargetGiven = c.read(() => (getString('drill-target') === undefined ? undefined : getEnum('drill-target', DRILL_TARGETS)));
  const healthcheckUrl = c.read(readHealthcheckUrl);
  const dryRun = c.read(readDryRun);

  // An input that only another mode reads is a mistake worth stopping for (a restore-target given to a
  // drill would otherwise be ignored silently). Each counts as set when it differs from its default.
  const MODE_INPUTS: { name: string; modes: readonly Mode[]; isSet: () => boolean }[] = [
    { name: 'restore-target', modes: ['restore'], isSet: () => restoreTarget !== undefined },
    { name: 'force', modes: ['restore'], isSet: () => force === true },
    { name: 'drill-query', modes: ['drill'], isSet: () => drillQuery !== undefined },
    { name: 'drill-target', modes: ['drill'], isSet: () => drillTargetGiven !== undefined },
    { name: 'backup-id', modes: ['restore', 'drill'], isSet: () => backupId !== undefined && backupId !== 'latest' },
    { name: 'encrypt-recipients', modes: ['backup'], isSet: () => (encryptRecipients?.length ?? 0) > 0 },
    { name: 'min-size', modes: ['backup'], isSet: () => minSize !== undefined && minSize !== 1024 },
    { name: 'max-shrink-percent', modes: ['backup'], isSet: () => maxShrinkPercent !== undefined && maxShrinkPercent !== 50 },
    ...(['keep-daily', 'keep-weekly', 'keep-monthly', 'keep-yearly', 'keep-days'] as const).map((name, index) => ({
      name,
      modes: ['backup', 'prune'] as const,
      isSet: () => ([keepDaily, keepWeekly, keepMonthly, keepYearly, keepDays][index] ?? 0) > 0,
    })),
  ];
  if (kind === 's3') {
    for (const [name, value] of [
      ['s3-bucket', bucket],
      ['s3-access-key-id', accessKeyId],
      ['s3-secret-access-key', secretAccessKey],
    ] as const) {
      if (value === undefined) c.add(new InputError(name, `Input "${name}" is required with destination: s3`));
    }
  }
  if (fromRunner) {
    const needServer = sources?.filter((source) => !reachableFromRunner(source)) ?? [];
    if (needServer.length > 0)
      c.add(
        new InputError(
          ['host', 'sources'],
          `Input "host" is empty, so every source must be a PostgreSQL, MySQL or MariaDB database the runner reaches itself ("url", or "host" in the entry); ${needServer
            .map((source) => `${source.name} (${source.type}${source.place.kind === 'host' ? '' : ` in ${source.place.kind}`}) needs a server`)
            .join(', ')}: set "host" to that server`,
        ),
      );
    if (kind === 'host')
      c.add(new InputError('destination', 'Input "destination" is host (a directory on the server), but "host" is empty; use destination s3 or artifact'));
  } else {
    const runnerOnly = runnerOnlyFields(sources ?? []);
    if (runnerOnly.length > 0)
      c.add(
        new InputError(
          'sources',
          `Input "sources": ${runnerOnly.join(', ')} ${runnerOnly.length > 1 ? 'are' : 'is'} only for databases reached from the runner; with "host" set the tools run on that server (leave "host" empty to dump from the runner)`,
        ),
      );
    if (drillTargetGiven !== undefined)
      c.add(
        new InputError(
          'drill-target',
          'Input "drill-target" chooses where a database reached from the runner is drilled; with "host" set, drills restore into a scratch copy on that server',
        ),
      );
  }
  if (kind === 'host' && encryptRecipients !== undefined && encryptRecipients.length > 0) {
    c.add(
      new InputError(
        'encrypt-recipients',
        'Input "encrypt-recipients" needs destination s3 or artifact: encryption runs on the runner, and host backups never leave the server',
      ),
    );
  }
  if (mode !== undefined) {
    for (const { name, modes } of MODE_INPUTS.filter((input) => !input.modes.includes(mode) && input.isSet())) {
      c.add(new InputError(name, `Input "${name}" is only used by mode ${modes.join(' and ')}, and mode is ${mode}; remove it or set the mode that uses it`));
    }
  }
  const noQuery = mode === 'drill' && drillQuery !== undefined ? sources?.filter((source) => source.type === 'redis' || source.type === 'files') : undefined;
  if (noQuery?.length) {
    c.add(
      new InputError(
        'drill-query',
        `Input "drill-query" is SQL for postgres, mysql and sqlite sources; ${noQuery.map((source) => `${source.name} is ${source.type}`).join(', ')} (its drill reports what it restored without a query)`,
      ),
    );
  }
  if (mode === 'restore' && sources !== undefined && sources.length !== 1) {
    c.add(new InputError('sources', `mode restore works on one source at a time (restore-target names one place); "sources" has ${sources.length}`));
  }
  // An id names one source's backup: with several sources a drill takes each one's latest.
  if (mode === 'drill' && sources !== undefined && sources.length > 1 && backupId !== undefined && backupId !== 'latest') {
    c.add(
      new InputError(
        'backup-id',
        `Input "backup-id" names one backup (${backupId}), but mode drill has ${sources.length} sources; leave it at latest, or list only that backup's source`,
      ),
    );
  }
  if (mode === 'restore' && sources?.length === 1 && (sources[0]!.type === 'redis' || sources[0]!.type === 'sqlite') && restoreTarget === undefined) {
    c.add(new InputError('restore-target', `Input "restore-target" (a path on the server) is required to restore a ${sources[0]!.type} backup`));
  }
  // The target database name ends up inside SQL on the server: the same strict form as a source's database.
  if (
    restoreTarget !== undefined &&
    sources?.length === 1 &&
    (sources[0]!.type === 'postgres' || sources[0]!.type === 'mysql') &&
    !/^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,62}$/.test(restoreTarget)
  ) {
    c.add(invalidInput('restore-target', 'a database name (letters, digits, _ . @ -)', restoreTarget));
  }
  if (
    mode === 'restore' &&
    restoreTarget !== undefined &&
    sources?.length === 1 &&
    ['redis', 'sqlite', 'files'].includes(sources[0]!.type) &&
    !restoreTarget.startsWith('/')
  ) {
    c.add(invalidInput('restore-target', 'an absolute path on the server', restoreTarget));
  }
  c.finish();

  const destination: Destination =
    kind === 's3'
      ? {
          kind: 's3',
          settings: {
            ...(endpoint ? { endpoint } : {}),
            region: region!,
            bucket: bucket!,
            prefix: prefix!,
            accessKeyId: accessKeyId!,
            secretAccessKey: secretAccessKey!,
          },
        }
      : kind === 'artifact'
        ? { kind: 'artifact', name: artifactName!, ...artifactApi(githubToken) }
        : { kind: 'host', path: path! };
  const retention: RetentionPolicy = {
    keepDaily: keepDaily!,
    keepWeekly: keepWeekly!,
    keepMonthly: keepMonthly!,
    keepYearly: keepYearly!,
    keepDays: keepDays!,
    minKeep: minKeep!,
  };
  return {
    ...(ssh ? { ssh } : {}),
    sources: sources!,
    destination,
    encryptRecipients: encryptRecipients!,
    decryptIdentities: decryptIdentities!,
    mode: mode!,
    minSize: minSize!,
    maxShrinkPercent: maxShrinkPercent!,
    retention,
    backupId: backupId!,
    ...(restoreTarget !== undefined ? { restoreTarget } : {}),
    force: force!,
    ...(drillQuery !== undefined ? { drillQuery } : {}),
    drillTarget: drillTargetGiven ?? 'runner',
    ...(healthcheckUrl !== undefined ? { healthcheckUrl } : {}),
    dryRun: dryRun!,
  };
}

/** The REST API of the repository this run belongs to; GitHub Enterprise Server sets its own GITHUB_API_URL. */
function artifactApi(token: string | undefined): { github?: { token: string; repository: string; apiUrl: string } } {
  const repository = process.env.GITHUB_REPOSITORY;
  if (!token || !repository) return {};
  return { github: { token, repository, apiUrl: process.env.GITHUB_API_URL || 'https://api.github.com' } };
}

/** With no keep-* rule at all, retention is off: keeping everything is the safe reading of silence. */
export function retentionConfigured(policy: RetentionPolicy): boolean {
  return [policy.keepDaily, policy.keepWeekly, policy.keepMonthly, policy.keepYearly, policy.keepDays].some((n) => (n ?? 0) > 0);
}
