import { readFileSync, existsSync } from 'node:fs';
import { basename, posix, resolve, sep } from 'node:path';
import {
  DRY_RUN_INPUT,
  InputCollector,
  InputError,
  MULTI_HOST_INPUTS,
  NOT_READ,
  getBoolean,
  getDuration,
  getEnum,
  getInteger,
  getList,
  getString,
  invalidInput,
  maskSecret,
  rawInput,
  parseDuration,
  readDryRun,
  readRunMode,
  readSshTargets,
  type InputDefinition,
  type Taken,
} from '@skiff/action-kit';
import { parseStatusRange, type StatusRange } from '@skiff/health';
import { BACKUP_BEFORE_DEPLOY_INPUTS, readBackupBeforeDeployInputs } from './backup-before-deploy-inputs';
import type { ComposeFileInput, DeployInputs, GithubDeploymentInputs, RegistryLogin, StrategyName } from './deploy-inputs';
import { GIT_SHA, isReleaseId } from './release-history';
import { findServerBuilds, type ServerBuild } from './server-build';
import { expandShippedFiles, type ShippedFile } from './shipped-files';
import { PREPARE_INPUTS, PREPARE_ONLY_INPUTS } from './prepare/prepare-input-definitions';
import type { SharedInputGroup } from './strategies/strategy';
import { STRATEGIES, STRATEGY_REGISTRY, readChosenStrategy, strategyInputs } from './strategies';

export type { ComposeFileInput, DeployInputs, GithubDeploymentInputs, HealthInputs, RegistryLogin } from './deploy-inputs';

const DEPLOY_INPUTS = [
  {
    name: 'strategy',
    description:
      'How a release is switched on: `recreate` (compose up, the default), `rolling` (zero downtime behind a reverse proxy), `swarm` (docker stack deploy), `systemd` (a release directory run by a systemd unit, no Docker) or `coolify` (trigger and wait for a Coolify deployment).',
    required: false,
    default: 'recreate',
  },
  {
    name: 'project-dir',
    description:
      'Directory on the server that holds the releases, the `current` link and the audit log. Default: /opt/<repository name>. `{host}` is replaced by the host being deployed (for several hosts sharing one filesystem).',
    required: false,
  },
  {
    name: 'project-name',
    description:
      'Compose project name. Default: the last part of project-dir. `{host}` is replaced by the host, lowercased, with other characters than a-z, 0-9, _ and - as - (for several hosts sharing one Docker engine).',
    required: false,
  },
  {
    name: 'compose-file',
    description:
      'Compose file(s) in the repository, one per line, merged in order and uploaded with every release. Default: compose.yaml, or docker-compose.yml, whichever exists.',
    required: false,
  },
  {
    name: 'env-file',
    description:
      'Contents of the `.env` file for the release, e.g. from a secret. Written with mode 0600; never logged: each line is masked, and so is each value whose variable names a credential (PASSWORD, SECRET, TOKEN, KEY, AUTH, DSN, …) or that is a URL with a password (the password on its own too), and every other value of 8 characters or more. Shorter plain values such as POSTGRES_DB=shop stay readable, or every path and image name containing them would show as ***.',
    required: false,
    secret: true,
  },
  {
    name: 'build-on-server',
    description:
      'What to do with a service that has `build:` and no `images:` line: `true` builds it on the server from its context, shipped from the repository with the release, tagged `<project>-<service>:<release-id>` (a rollback starts exactly that image; it is deleted with its release); `false` refuses the deploy before anything changes (build and push it with action-build-push and pass `images:` instead). Strategies recreate and rolling.',
    required: false,
    default: 'true',
  },
  {
    name: 'files',
    description:
      "Configuration files the compose file bind-mounts or names under `configs:`/`secrets:` (a `./Caddyfile`, `nginx.conf`, `prometheus.yml`), one path, folder or glob (`*`, `**`, `?`) per line, relative to the repository. Each is placed where Compose resolves it from the first compose file's folder, kept with its release (a rollback brings its files back), and a service is recreated when a file it mounts changes. A shipped file that no mount, config or secret reads is an error. Strategies recreate and rolling.",
    required: false,
  },
  {
    name: 'images',
    description:
      'Images to pin, one `service=image-ref` per line, e.g. the image-ref output of skiff build-push. Every service is pinned to its digest after pull either way.',
    required: false,
  },
  {
    name: 'registry',
    description: 'Registry to log in to for the pull, with registry-username and registry-password (e.g. ghcr.io for private GHCR packages).',
    required: false,
    default: 'ghcr.io',
  },
  {
    name: 'registry-username',
    description:
      "User for registry, e.g. the workflow's github.actor. With it, the pull logs in with a throwaway Docker config removed right after: no credential stays on the server. With strategy swarm, `docker stack deploy --with-registry-auth` hands the login to Swarm, which keeps it with the services so its nodes can pull (use a short-lived token such as github.token).",
    required: false,
  },
  {
    name: 'registry-password',
    description:
      "Password or token for registry, e.g. the workflow's github.token (the job needs `packages: read` for GHCR). Sent on stdin, masked, never on a command line.",
    required: false,
    secret: true,
  },
  {
    name: 'pre-deploy',
    description:
      'Commands run on the server after pull and before the switch, in the project directory (project-dir), with COMPOSE_PROJECT_NAME, COMPOSE_FILE and COMPOSE_ENV_FILES set to the new release, so `docker compose run --rm app migrate` uses its images and env and resolves `./data` or `env_file: .env` exactly where the deploy does. Failure stops the deploy with nothing switched.',
    required: false,
  },
  {
    name: 'pull-timeout',
    description:
      'How long the image pull, and each upload of a build context and the build on the server (build-on-server), may take before the deploy fails (nothing switched), e.g. 30m.',
    required: false,
    default: '30m',
  },
  {
    name: 'pre-deploy-timeout',
    description: "How long pre-deploy (and systemd's install-command) may run before the deploy fails (nothing switched), e.g. 1h for a long migration.",
    required: false,
    default: '1h',
  },
  {
    name: 'keep-releases',
    description: 'How many successfully deployed releases to keep (older ones are deleted with images no kept release uses).',
    required: false,
    default: '5',
  },
  { name: 'lock-timeout', description: 'How long to wait for another deploy of the same project to finish, e.g. 10m.', required: false, default: '10m' },
  {
    name: 'lock-ttl',
    description: 'A deploy lock older than this is considered left by a crashed run and taken over with a warning.',
    required: false,
    default: '30m',
  },
  {
    name: 'health-url',
    description:
      'URL(s) that must answer during the health gate, one per line. `{host}` is replaced by the address of the host being deployed (for several hosts checked from the runner).',
    required: false,
  },
  {
    name: 'health-from',
    description:
      'Where health-url is checked from: `runner`, or `host` (through an SSH tunnel, so the URL is as seen from the server, e.g. http://127.0.0.1:8080/health).',
    required: false,
    default: 'runner',
  },
  {
    name: 'health-status',
    description: 'HTTP status(es) that count as healthy: a code, a range like 200-399, or a class like 2xx.',
    required: false,
    default: '200-399',
  },
  { name: 'health-body', description: 'Text the health-url response body must contain.', required: false },
  {
    name: 'health-successes',
    description:
      'Consecutive successful rounds of checks needed to pass the gate when the deploy started containers (compose up created or replaced any, or a roll started new ones); when it started none, one round checks what changed.',
    required: false,
    default: '2',
  },
  {
    name: 'health-interval',
    description:
      'Pause between the rounds of health checks that health-successes counts. While a container is still starting or a URL not answering yet, the gate looks again every 0.5 s, and at once when the engine reports that a container turned healthy or unhealthy or exited (docker events).',
    required: false,
    default: '2s',
  },
  { name: 'health-timeout', description: 'How long the release has to become healthy.', required: false, default: '120s' },
  { name: 'health-command', description: 'Command run on the server each round; exit 0 counts as healthy.', required: false },
  {
    name: 'rollback-on-failure',
    description: 'When the new release fails the health gate, switch back to the previous release (true or false).',
    required: false,
    default: 'true',
  },
  {
    name: 'rollback',
    description:
      'Instead of deploying, re-deploy a kept release: `previous`, or a release id (see the audit log or the release-id output). For workflow_dispatch.',
    required: false,
  },
  {
    name: 'sudo',
    description:
      'Run docker with `sudo -n` (for a user not in the docker group; needs passwordless sudo for docker). With strategy: systemd, systemctl and journalctl run with `sudo -n` (always when the user is not root).',
    required: false,
    default: 'false',
  },
  {
    name: 'all-or-nothing',
    description:
      'With several hosts: when one fails, roll the hosts already switched back to their own previous release (through the same health gate), so no host is left on the new release.',
    required: false,
    default: 'false',
  },
  {
    name: 'environment',
    description:
      'Record the deploy as a GitHub Deployment to this environment (e.g. production): created for the commit, then in_progress, success or failure.',
    required: false,
  },
  { name: 'environment-url', description: 'URL of the deployed app, shown on the GitHub Deployment (with environment).', required: false },
  {
    name: 'github-token',
    description: 'Token for the GitHub Deployments API (needs `deployments: write`).',
    required: false,
    default: '${{ github.token }}',
    secret: true,
  },
  {
    name: 'notify-webhook',
    description:
      'Incoming-webhook URL(s), one per line (e.g. a Discord and a Slack channel), each getting one message per deploy (result, version, hosts, duration, rollback, run link), e.g. from a secret. Discord format for discord.com/api/webhooks URLs, Slack format for every other URL.',
    required: false,
    secret: true,
  },
] as const satisfies readonly InputDefinition[];

/** What action.yml declares; a unit test keeps action.yml and the README in step with these. */
export const ACTION_INPUTS: readonly InputDefinition[] = [
  // With strategy: coolify there is no SSH host, so host and username are not always required.
  ...MULTI_HOST_INPUTS.map((input) =>
    input.name === 'host' || input.name === 'username'
      ? { ...input, required: false, description: `${input.description} Not used with strategy: coolify.` }
      : input,
  ),
  ...DEPLOY_INPUTS,
  ...BACKUP_BEFORE_DEPLOY_INPUTS,
  ...strategyInputs(),
  ...PREPARE_INPUTS,
  DRY_RUN_INPUT,
];
export const ACTION_OUTPUTS = {
  'release-id': 'Id of the release deployed (or re-deployed by a rollback), e.g. 20261121T222430Z-1a2b3c4-9f0e.',
  'previous-release-id': 'Id of the release that was current before this run, if any.',
  status: '`deployed`, `rolled-back` (the new release failed and the previous one runs again) or `failed`; with prepare, `prepared` or `failed`.',
  'rolled-back': '`true` when the new release failed and the previous one was restored.',
  images:
    'JSON object of service → pinned image reference (image@sha256:…) of the running release; with strategy coolify and coolify-image-tag, application name → image:tag Coolify was told to run (Coolify reports no digest).',
  'duration-seconds': 'How long the deploy (and any rollback) took, in seconds.',
  hosts:
    'JSON object keyed by host (user@host:port): status (deployed, rolled-back, failed, skipped), release, previous-release, rolled-back, duration-seconds, rollback-seconds, backups (ids taken by backup-before-deploy), error.',
  'deployment-id': 'Id of the GitHub Deployment created (with environment).',
  plan: 'With dry-run: the plan of what would run on the server, as Markdown.',
  'known-hosts': "With prepare: each prepared server's host keys as known_hosts lines, for the deploys' `known-hosts` input.",
} as const;

function definitionDefault(name: (typeof DEPLOY_INPUTS)[number]['name']): string {
  const definition: InputDefinition | undefined = DEPLOY_INPUTS.find((input) => input.name === name);
  if (definition?.default === undefined) throw new Error(`input ${name} has no default`);
  return definition.default;
}

const durationDefault = (name: (typeof DEPLOY_INPUTS)[number]['name']) => parseDuration(definitionDefault(name))!;

function workspace(): string {
  return process.env.GITHUB_WORKSPACE || process.cwd();
}

export function readProjectDir(): string {
  const given = getString('project-dir');
  const repository = (process.env.GITHUB_REPOSITORY ?? '').split('/')[1];
  const value = given ?? (repository ? `/opt/${repository}` : undefined);
  if (value === undefined)
    throw new InputError('project-dir', 'Input "project-dir" is required when GITHUB_REPOSITORY is not set (it defaults to /opt/<repository name>)');
  const expected = 'an absolute path on the server like /opt/myapp (no "..", no line breaks, not "/")';
  const clean = value.replace(/\/+$/, '');
  const sample = clean.replaceAll('{host}', 'host');
  if (!sample.startsWith('/') || sample === '' || /[\r\n\0{}]/.test(sample) || sample.split('/').includes('..'))
    throw invalidInput('project-dir', expected, value);
  return clean;
}

// Compose's rule for project names.
const PROJECT_NAME = /^[a-z0-9][a-z0-9_-]*$/;

/** The Compose project name; with no project-name given and no readable project-dir, there is none to derive (project-dir's error says why). */
function readProjectName(projectDir: string | undefined): Taken<string> {
  const given = getString('project-name');
  if (given !== undefined) {
    if (!PROJECT_NAME.test(given.replaceAll('{host}', 'host')))
      throw invalidInput('project-name', 'a Compose project name: lowercase letters, digits, "-" and "_", starting with a letter or digit', given);
    return given;
  }
  if (projectDir === undefined) return NOT_READ;
  const derived = basename(projectDir)
    .split('{host}')
    .map((part) => part.toLowerCase().replace(/[^a-z0-9_-]/g, '-'))
    .join('{host}')
    .replace(/^[-_]+/, '');
  if (!PROJECT_NAME.test(derived.replaceAll('{host}', 'host')))
    throw new InputError('project-name', `Input "project-name" is needed: no Compose project name can be made from project-dir ${JSON.stringify(projectDir)}`);
  return derived;
}

function readComposeFiles(): ComposeFileInput[] {
  const given = getList('compose-file');
  const root = workspace();
  const paths = given ?? [
    ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'].find((name) => existsSync(resolve(root, name))) ?? 'compose.yaml',
  ];
  const used = new Set<string>();
  const problems: string[] = [];
  const files = paths.map((path, index) => {
    let content = '';
    try {
      content = readFileSync(resolve(root, path), 'utf8');
    } catch (error) {
      problems.push(`${JSON.stringify(path)} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    // Kept by base name so error messages from compose mention familiar names; a clash gets a numbered prefix.
    let name = basename(path).replace(/[^A-Za-z0-9._-]/g, '_');
    if (used.has(name) || name.startsWith('.') || name === 'images.lock.json' || name === 'meta.json') name = `${index}-${name}`;
    used.add(name);
    return { path, name, content };
  });
  if (problems.length > 0) {
    throw new InputError(
      'compose-file',
      `Input "compose-file" must name compose files in the repository (relative to ${root}); cannot read ${problems.join(', ')}`,
    );
  }
  return files;
}

/**
 * Masks the whole file, every line and every value: a tool that echoes one variable would
 * otherwise print it in clear. Values shorter than 3 characters are left (masking "1" or "on"
 * would blank those characters in the whole log and hide nothing).
 */
/** Each value of an env file, as written and unquoted, 3 characters or longer (see readEnvFile). */
/** Variable names that say their value is a credential. */
const SECRET_NAME = /PASS|PWD|SECRET|TOKEN|KEY|CREDENTIAL|AUTH|PRIVATE|DSN|SALT|COOKIE|SESSION|CERT/i;
/** Shorter values of other variables are names (POSTGRES_DB=shop), masking which turns every path and image name that contains them into ***. */
const PLAIN_VALUE_MASK_LENGTH = 8;

/**
 * The forms of the env file's values to mask: a value whose variable names a credential (or that
 * holds a URL with a password) at any length of 3 or more, with the password inside a URL on its
 * own too; every other value from 8 characters. The runner masks each line of the secret as well.
 */
export function envValues(envFile: string): string[] {
  const values = new Set<string>();
  for (const line of envFile.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    const raw = match[2]!.trim();
    const unquoted = /^(['"])(.*)\1$/.exec(raw)?.[2] ?? raw;
    const urlPassword = /^[a-z][a-z0-9+.-]*:\/\/[^/:@\s]*:([^@\s]+)@/i.exec(unquoted)?.[1];
    const secret = SECRET_NAME.test(match[1]!) || urlPassword !== undefined;
    for (const form of [raw, unquoted]) if (form.length >= (secret ? 3 : PLAIN_VALUE_MASK_LENGTH)) values.add(form);
    if (urlPassword !== undefined && urlPassword.length >= 3) values.add(urlPassword);
  }
  return [...values];
}

function readServerBuilds(
  composeFiles: readonly ComposeFileInput[] | undefined,
  images: Readonly<Record<string, string>> | undefined,
  buildOnServer: boolean | undefined,
): { services: string[]; builds: ServerBuild[] } | undefined {
  if (composeFiles === undefined || composeFiles.length === 0 || images === undefined) return undefined;
  let found: { services: string[]; builds: ServerBuild[] };
  try {
    found = findServerBuilds(workspace(), composeFiles, images);
  } catch (error) {
    throw new InputError('compose-file', `Input "compose-file": ${(error as Error).message}`);
  }
  if (buildOnServer === false && found.builds.length > 0) {
    const list = found.builds.map((build) => `${build.service} (build: ${build.declared})`).join(', ');
    throw new InputError(
      ['build-on-server', 'images'],
      `Input "build-on-server" is false, and ${list} ${found.builds.length === 1 ? 'has' : 'have'} no "images" line: build and push ${found.builds.length === 1 ? 'it' : 'them'} with action-build-push and pass images: ${found.builds.map((build) => `${build.service}=<its image-ref output>`).join(', ')}; or set build-on-server: true to build on the server`,
    );
  }
  return found;
}

function readShippedFiles(composeFiles: readonly ComposeFileInput[] | undefined): ShippedFile[] | undefined {
  const patterns = getList('files');
  if (patterns === undefined || patterns.length === 0) return undefined;
  const first = composeFiles?.[0];
  if (first === undefined) return undefined;
  const composeDir = posix.dirname(first.path.split(sep).join('/').replace(/^\.\//, ''));
  try {
    return expandShippedFiles(workspace(), composeDir === '.' ? '' : composeDir, patterns);
  } catch (error) {
    throw new InputError('files', `Input "files" must name configuration files in the repository (relative to ${workspace()}): ${(error as Error).message}`);
  }
}

function readEnvFile(): string | undefined {
  const value = getString('env-file', { secret: true });
  if (value === undefined) return undefined;
  for (const form of envValues(value)) maskSecret(form);
  return value.endsWith('\n') ? value : `${value}\n`;
}

const SERVICE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const IMAGE_REF = new RegExp(`^(?:[a-zA-Z0-9.-]+(?::\\d+)?/)?${COMPONENT}(?:/${COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$`);

export function parseImages(lines: readonly string[]): Record<string, string> {
  const images: Record<string, string> = {};
  for (const line of lines) {
    const equals = line.indexOf('=');
    const service = line.slice(0, equals).trim();
    const image = line.slice(equals + 1).trim();
    if (equals < 0 || !SERVICE.test(service) || !IMAGE_REF.test(image)) {
      throw invalidInput('images', 'lines of service=image-ref, e.g. web=ghcr.io/acme/web:1.2.3 or web=ghcr.io/acme/web@sha256:…', line);
    }
    if (images[service] !== undefined) throw invalidInput('images', 'each service at most once', line);
    images[service] = image;
  }
  return images;
}

function readHealthUrls(): readonly string[] {
  const urls = getList('health-url') ?? [];
  for (const url of urls) {
    let ok = false;
    try {
      // {host} stands for each server's address (see healthUrlsFor).
      const parsed = new URL(url.replaceAll('{host}', 'host.example'));
      ok = (parsed.protocol === 'http:' || parsed.protocol === 'https:') && parsed.username === '' && parsed.password === '';
    } catch {
      ok = false;
    }
    if (!ok) throw invalidInput('health-url', 'http:// or https:// URLs without user:password, one per line', url);
  }
  return urls;
}

function readStatusRange(): StatusRange {
  const value = getString('health-status', { default: definitionDefault('health-status') });
  const range = parseStatusRange(value);
  if (!range) throw invalidInput('health-status', 'an HTTP status code (200), a range (200-399) or a class (2xx)', value);
  return range;
}

function readRollback(): string | undefined {
  const value = getString('rollback');
  if (value === undefined || value === 'previous') return value;
  if (!isReleaseId(value) && !GIT_SHA.test(value)) {
    throw invalidInput(
      'rollback',
      '"previous", a release id like 20261121T222430Z-1a2b3c4-9f0e (from the audit log or the release-id output), or a git commit SHA (7 to 40 hex digits)',
      value,
    );
  }
  return GIT_SHA.test(value) ? value.toLowerCase() : value;
}

/** registry-username and registry-password go together, and only where Skiff pulls (recreate, rolling). */
function readRegistryLogin(strategy: StrategyName | undefined): RegistryLogin | undefined {
  const registry = getString('registry', { default: 'ghcr.io' });
  const username = getString('registry-username');
  const password = getString('registry-password', { secret: true });
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined || password === undefined) {
    const missing = username === undefined ? 'registry-username' : 'registry-password';
    throw new InputError(
      missing,
      `Input "${missing}" is required with "${missing === 'registry-username' ? 'registry-password' : 'registry-username'}": the pull logs in with both`,
    );
  }
  if (!/^[A-Za-z0-9.-]+(:\d+)?(\/[A-Za-z0-9._/-]*)?$/.test(registry))
    throw invalidInput('registry', 'a registry host such as ghcr.io or registry.example.com:5000', registry);
  if (strategy !== undefined && strategy !== 'recreate' && strategy !== 'rolling' && strategy !== 'swarm') {
    throw new InputError(
      ['registry-username', 'strategy'],
      `Input "registry-username" is used by strategy recreate, rolling and swarm, which pull the images; strategy is ${strategy}`,
    );
  }
  return { registry, username, password };
}

function readDeployment(): GithubDeploymentInputs | undefined {
  const environment = getString('environment');
  const url = getString('environment-url');
  if (environment === undefined) {
    if (url !== undefined)
      throw new InputError(
        'environment-url',
        'Input "environment-url" is set but "environment" is not; the URL belongs to a GitHub Deployment, which needs an environment name',
      );
    return undefined;
  }
  if (/[\r\n]/.test(environment) || environment.length > 255)
    throw invalidInput('environment', 'a GitHub environment name on one line, e.g. production', environment);
  if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) throw invalidInput('environment-url', 'an http:// or https:// URL', url);
  const token = getString('github-token', { secret: true });
  if (token === undefined)
    throw new InputError('github-token', 'Input "github-token" is empty; "environment" needs a token with deployments: write (the default is github.token)');
  maskSecret(token);
  return { environment, ...(url === undefined ? {} : { url }), token };
}

function readWebhooks(): string[] | undefined {
  const lines = getList('notify-webhook', { secret: true });
  if (lines === undefined) return undefined;
  for (const line of lines) maskSecret(line);
  lines.forEach((value, index) => {
    let ok = false;
    try {
      const url = new URL(value);
      ok = url.protocol === 'https:' || url.protocol === 'http:';
    } catch {
      ok = false;
    }
    // The value is a secret: the error names the input, the line and the form, not the value.
    if (!ok)
      throw new InputError(
        'notify-webhook',
        `Input "notify-webhook"${lines.length > 1 ? ` line ${index + 1}` : ''} must be an https:// incoming-webhook URL (Slack, Discord or compatible), one per line; the value given is not a URL`,
      );
  });
  return [...lines];
}

/**
 * Inputs a strategy never reads. Set to anything but its default, each is an error naming it: a
 * team whose migration sits in pre-deploy must not believe it ran under strategy: coolify. Inputs
 * with a check of their own (files, build-on-server, backup-before-deploy, registry-username,
 * rollback, rollback-on-failure, health-command, the systemd inputs) are left to it, so each mistake is said once.
 */
/**
 * Inputs the strategy would ignore: the shared inputs its registry entry says it has no use
 * for, and every other strategy's own inputs (rolling-services has its own check, which says
 * more: readRollingInputs).
 */
function unusedBy(strategy: StrategyName): string[] {
  const entry = STRATEGY_REGISTRY[strategy];
  const ignored = entry.ignores.flatMap((group) => SHARED_INPUT_GROUPS[group]);
  const others = Object.entries(STRATEGY_REGISTRY)
    .filter(([name]) => name !== strategy)
    .flatMap(([, other]) => other.inputs.map((input) => input.name))
    .filter((name) => name !== 'rolling-services');
  return [...ignored, ...entry.ignoresInputs, ...others];
}

/** The shared inputs a strategy may declare it has no use for, by group (see StrategyEntry.ignores). */
const SHARED_INPUT_GROUPS = {
  compose: ['compose-file', 'images', 'registry', 'pull-timeout'],
  ssh: [
    ...MULTI_HOST_INPUTS.map((input) => input.name),
    'project-dir',
    'project-name',
    'env-file',
    'pre-deploy',
    'pre-deploy-timeout',
    'keep-releases',
    'lock-timeout',
    'lock-ttl',
    'sudo',
    'all-or-nothing',
  ],
} as const satisfies Record<SharedInputGroup, readonly string[]>;

/** The runner passes every input's default whether or not the workflow sets it, so only another value counts as set. */
export function setToOtherThanDefault(name: string): boolean {
  const value = rawInput(name)?.trim();
  return value !== undefined && value !== '' && value !== ACTION_INPUTS.find((input) => input.name === name)?.default;
}

function strayInputs(strategy: StrategyName): InputError | undefined {
  const stray = [...new Set(unusedBy(strategy))].filter(setToOtherThanDefault);
  if (stray.length === 0) return undefined;
  return new InputError(
    stray,
    `Input${stray.length === 1 ? '' : 's'} ${stray.map((name) => `"${name}"`).join(', ')} ${stray.length === 1 ? 'is' : 'are'} not used by strategy: ${strategy}, so ${stray.length === 1 ? 'it' : 'they'} would be ignored; remove ${stray.length === 1 ? 'it' : 'them'} (or choose the strategy that uses ${stray.length === 1 ? 'it' : 'them'})`,
  );
}

/** Every input, validated together before anything connects, so one run reports every mistake. */
export function readDeployInputs(): DeployInputs {
  const c = new InputCollector();
  const strategyRead = c.take(() => getEnum('strategy', STRATEGIES, { default: 'recreate' as const }));
  const strategy = c.known(strategyRead);
  // The chosen strategy's entry reads its own inputs; every other entry refuses its own, if set.
  const chosen = strategy === undefined ? NOT_READ : c.take(() => readChosenStrategy(strategy));
  if (strategy !== undefined) for (const [name, entry] of Object.entries(STRATEGY_REGISTRY)) if (name !== strategy) c.take(() => entry.read(strategy));
  const stray = strategy === undefined ? undefined : strayInputs(strategy);
  if (stray) c.add(stray);
  const prepareOnly = PREPARE_ONLY_INPUTS.filter(setToOtherThanDefault);
  if (prepareOnly.length > 0)
    c.add(
      new InputError(
        prepareOnly,
        `${prepareOnly.map((name) => `"${name}"`).join(', ')} only apply with prepare: true (a server's one-time preparation), so a deploy would ignore them; remove them from this step`,
      ),
    );
  const targets = strategy === 'coolify' ? [] : c.take(readSshTargets);
  const mode = c.take(readRunMode);
  const allOrNothing = c.take(() => getBoolean('all-or-nothing', { default: false }));
  const deployment = c.take(readDeployment);
  const notifyWebhooks = c.take(readWebhooks);
  const projectDirRead = c.take(readProjectDir);
  const projectDir = c.known(projectDirRead);
  const projectName = c.take(() => readProjectName(projectDir));
  const rollbackRead = c.take(readRollback);
  const rollback = c.known(rollbackRead);
  // A rollback re-deploys files already on the server, so the repository's compose files are not
  // needed — also when its value was wrong (that error is the one to show). Coolify deploys from
  // its own configuration: no compose file is uploaded.
  const rollbackRequested = rawInput('rollback') !== undefined;
  const composeFilesRead = !rollbackRequested && strategy !== 'coolify' && strategy !== 'systemd' ? c.take(readComposeFiles) : [];
  const composeFiles = c.known(composeFilesRead);
  const shippedFiles = c.take(() => readShippedFiles(composeFiles));
  const envFileRead = c.take(readEnvFile);
  const envFile = c.known(envFileRead);
  const imagesRead = c.take(() => parseImages(getList('images') ?? []));
  const images = c.known(imagesRead);
  const buildOnServer = c.known(c.take(() => getBoolean('build-on-server', { default: true })));
  const buildsRead = c.take(() => readServerBuilds(composeFiles, images, buildOnServer));
  const builds = c.known(buildsRead);
  const preDeploy = c.take(() => getString('pre-deploy'));
  const backupBeforeDeploy = c.take(() => readBackupBeforeDeployInputs(projectDir));
  const keepReleases = c.take(() => getInteger('keep-releases', { default: Number(definitionDefault('keep-releases')), min: 1, max: 100 }));
  const pullTimeoutSeconds = c.take(() => getDuration('pull-timeout', { default: durationDefault('pull-timeout'), min: 10, max: 6 * 3600 }));
  const preDeployTimeoutSeconds = c.take(() => getDuration('pre-deploy-timeout', { default: durationDefault('pre-deploy-timeout'), min: 10, max: 12 * 3600 }));
  const lockTimeoutSeconds = c.take(() => getDuration('lock-timeout', { default: durationDefault('lock-timeout'), min: 0, max: 6 * 3600 }));
  const lockTtlSeconds = c.take(() => getDuration('lock-ttl', { default: durationDefault('lock-ttl'), min: 10, max: 7 * 24 * 3600 }));
  const urlsRead = c.take(readHealthUrls);
  const urls = c.known(urlsRead);
  const from = c.take(() => getEnum('health-from', ['runner', 'host'] as const, { default: 'runner' as const }));
  const status = c.take(readStatusRange);
  const bodyRead = c.take(() => getString('health-body'));
  const body = c.known(bodyRead);
  const successes = c.take(() => getInteger('health-successes', { default: Number(definitionDefault('health-successes')), min: 1, max: 100 }));
  const intervalSeconds = c.take(() => getDuration('health-interval', { default: durationDefault('health-interval'), min: 1, max: 600 }));
  const timeoutSeconds = c.take(() => getDuration('health-timeout', { default: durationDefault('health-timeout'), min: 1, max: 3 * 3600 }));
  const command = c.take(() => getString('health-command'));
  const rollbackOnFailure = c.take(() => getBoolean('rollback-on-failure', { default: true }));
  const registryLogin = c.take(() => readRegistryLogin(strategy));
  const sudo = c.take(() => getBoolean('sudo', { default: false }));
  const dryRun = c.take(readDryRun);
  if (rollback !== undefined && images !== undefined && Object.keys(images).length > 0) {
    c.add(
      new InputError(
        ['rollback', 'images'],
        'Inputs "rollback" and "images" are both set; a rollback re-deploys a kept release exactly as it was, so leave "images" empty',
      ),
    );
  }
  if (getString('backup-before-deploy') !== undefined && strategy !== undefined && strategy !== 'recreate' && strategy !== 'rolling') {
    c.add(
      new InputError(
        ['backup-before-deploy', 'strategy'],
        `Input "backup-before-deploy" works with strategy recreate or rolling (it runs in the Compose project before pre-deploy); strategy is ${strategy}. Run action-backup as a step before this one instead`,
      ),
    );
  }
  if (strategy === 'swarm' && builds !== undefined && builds.builds.length > 0) {
    c.add(
      new InputError(
        ['compose-file', 'images'],
        `Strategy swarm cannot build: docker stack deploy ignores build:, so ${builds.builds.map((build) => build.service).join(', ')} would run a stale or missing image; build and push with action-build-push and pass images: <service>=<image-ref>`,
      ),
    );
  }
  if (setToOtherThanDefault('build-on-server') && strategy !== undefined && strategy !== 'recreate' && strategy !== 'rolling') {
    c.add(
      new InputError(
        ['build-on-server', 'strategy'],
        `Input "build-on-server" works with strategy recreate or rolling (Compose builds on the server); strategy is ${strategy}`,
      ),
    );
  }
  if (getList('files') !== undefined && strategy !== undefined && strategy !== 'recreate' && strategy !== 'rolling') {
    c.add(
      new InputError(
        ['files', 'strategy'],
        `Input "files" works with strategy recreate or rolling (it rewrites the Compose project's bind mounts); strategy is ${strategy}`,
      ),
    );
  } else if (rollback !== undefined && getList('files') !== undefined) {
    c.add(
      new InputError(
        ['rollback', 'files'],
        'Inputs "rollback" and "files" are both set; a rollback re-deploys the kept release with the files it shipped, so leave "files" empty',
      ),
    );
  }
  if (rollback !== undefined && envFile !== undefined) {
    c.add(
      new InputError(
        ['rollback', 'env-file'],
        'Inputs "rollback" and "env-file" are both set; a rollback re-deploys the kept release with its own .env, so leave "env-file" empty',
      ),
    );
  }
  if (body !== undefined && urls !== undefined && urls.length === 0) {
    c.add(new InputError('health-body', 'Input "health-body" is set but "health-url" is not; the body is checked in the health-url responses'));
  }
  const v = c.result({
    strategy: chosen,
    targets,
    mode,
    allOrNothing,
    deployment,
    notifyWebhooks,
    projectDir: projectDirRead,
    projectName,
    composeFiles: composeFilesRead,
    shippedFiles,
    builds: buildsRead,
    envFile: envFileRead,
    images: imagesRead,
    preDeploy,
    backupBeforeDeploy,
    registryLogin,
    keepReleases,
    pullTimeoutSeconds,
    preDeployTimeoutSeconds,
    lockTimeoutSeconds,
    lockTtlSeconds,
    urls: urlsRead,
    from,
    status,
    body: bodyRead,
    successes,
    intervalSeconds,
    timeoutSeconds,
    command,
    rollbackOnFailure,
    rollback: rollbackRead,
    sudo,
    dryRun,
  });
  return {
    strategy: v.strategy,
    targets: v.targets,
    mode: v.mode,
    allOrNothing: v.allOrNothing,
    ...(v.deployment === undefined ? {} : { deployment: v.deployment }),
    ...(v.notifyWebhooks === undefined ? {} : { notifyWebhooks: v.notifyWebhooks }),
    projectDir: v.projectDir,
    projectName: v.projectName,
    composeFiles: v.composeFiles,
    ...(v.shippedFiles === undefined ? {} : { shippedFiles: v.shippedFiles }),
    serverBuilds: v.builds?.builds ?? [],
    composeServices: v.builds?.services ?? [],
    ...(v.envFile === undefined ? {} : { envFile: v.envFile }),
    images: v.images,
    ...(v.preDeploy === undefined ? {} : { preDeploy: v.preDeploy }),
    ...(v.backupBeforeDeploy === undefined ? {} : { backupBeforeDeploy: v.backupBeforeDeploy }),
    ...(v.registryLogin === undefined ? {} : { registryLogin: v.registryLogin }),
    keepReleases: v.keepReleases,
    pullTimeoutSeconds: v.pullTimeoutSeconds,
    preDeployTimeoutSeconds: v.preDeployTimeoutSeconds,
    lockTimeoutSeconds: v.lockTimeoutSeconds,
    lockTtlSeconds: v.lockTtlSeconds,
    health: {
      urls: v.urls,
      from: v.from,
      status: v.status,
      ...(v.body === undefined ? {} : { body: v.body }),
      successes: v.successes,
      intervalSeconds: v.intervalSeconds,
      timeoutSeconds: v.timeoutSeconds,
      ...(v.command === undefined ? {} : { command: v.command }),
    },
    rollbackOnFailure: v.rollbackOnFailure,
    ...(v.rollback === undefined ? {} : { rollback: v.rollback }),
    sudo: v.sudo,
    dryRun: v.dryRun,
  };
}
