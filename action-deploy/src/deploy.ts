import * as core from '@actions/core';
import { posix } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { tolerate, type Command, type Executor, type PlanRecorder } from '@skiff/shell';
import type { SshConnection } from '@skiff/ssh';
import { build, config, keepCli, pull, pullWithLogin, removeImages, repoDigests, type ComposeProject, type DockerCli } from './compose-commands';
import { BUILD_DIR, BUILD_OVERRIDE, buildOverride, contextTar, unpackContext } from './server-build';
import type { RunContext } from './run-context';
import { touchLock } from './lock-commands';
import { pinImages, servicesFromConfig } from './digests';
import type { DeployInputs } from './deploy-inputs';
import { FILES_OVERRIDE, SHIPPED_DIR, pruneStore, resolveShippedFiles, storeShippedFiles, type ShippedFile } from './shipped-files';
import {
  ENV_FILE,
  IMAGE_LOCK,
  META,
  appendAudit,
  createRelease,
  imageLockFile,
  linkEnv,
  parseState,
  readMeta,
  readState,
  releaseDir,
  releasesDir,
  removeReleases,
  switchCurrent,
  type AuditEntry,
  type PrunePlan,
  type ReleaseMeta,
  type ServerState,
} from './release-history';

export interface Deployer {
  server: Executor & Partial<Pick<SshConnection, 'forwardLocalPort'>>;
  cli: DockerCli;
  inputs: DeployInputs;
  ctx: RunContext;
  /**
   * Set for a dry run: `server` is this recorder. The story runs as for a deploy; steps whose
   * outcome only the server can give (the health gate, Swarm's node state, the unit) record
   * their commands and take the happy path.
   */
  planning?: PlanRecorder;
  /** What the releases read printed in the round trip that took the lock: the story's first read uses it instead of reading again. */
  releasesReadWithLock?: string;
}

/** One release as the server holds it. */
export interface Release {
  id: string;
  project: ComposeProject;
  composeFiles: readonly string[];
  hasEnv: boolean;
  /** Whether the release has files.override.json (the `files` input). */
  hasFiles: boolean;
  /** Services built on the server for this release (build.override.json). */
  built: string[];
  /** Service → pinned image (image@sha256:… where the image has a repo digest). */
  images: Record<string, string>;
  unpinned: string[];
  /**
   * `compose config` as read to pin the images (before the pins and shipped files were added):
   * service shapes (ports, replicas, mounts, names) do not change with either, so a strategy may
   * reuse it instead of reading again. Unset for a release loaded from the server.
   */
  configYaml?: string;
  /** The same, while it is being read beside the pull (see pullImages). */
  configRead?: Promise<string>;
}

interface StoredMeta extends ReleaseMeta {
  composeFiles: string[];
  hasEnv: boolean;
  hasFiles?: boolean;
  built?: string[];
}

function projectOf(inputs: DeployInputs, id: string, composeFiles: readonly string[], hasEnv: boolean, hasFiles: boolean, hasBuild: boolean): ComposeProject {
  const dir = releaseDir(inputs.projectDir, id);
  return {
    name: inputs.projectName,
    directory: inputs.projectDir,
    files: [
      ...composeFiles.map((name) => `${dir}/${name}`),
      ...(hasBuild ? [`${dir}/${BUILD_OVERRIDE}`] : []),
      ...(hasFiles ? [`${dir}/${FILES_OVERRIDE}`] : []),
      `${dir}/${IMAGE_LOCK}`,
    ],
    ...(hasEnv ? { envFile: `${dir}/${ENV_FILE}` } : {}),
  };
}

export async function serverState(d: Deployer): Promise<ServerState> {
  const readWithLock = d.releasesReadWithLock;
  if (readWithLock !== undefined) {
    // Only the first read: later ones (an all-or-nothing undo) must see what the deploy changed.
    delete d.releasesReadWithLock;
    return parseState(readWithLock);
  }
  return parseState((await d.server.run(readState(d.inputs.projectDir), { description: 'read releases', timeoutSeconds: 60 })).stdout);
}

/** What every release's meta.json says of where it came from (this run), whatever the strategy adds. */
export function releaseMeta(d: Deployer, id: string, services: Record<string, string>): ReleaseMeta {
  return { id, sha: d.ctx.sha, ref: d.ctx.ref, actor: d.ctx.actor, runUrl: d.ctx.runUrl, createdAt: new Date().toISOString(), services };
}

function meta(d: Deployer, release: Release): StoredMeta {
  return {
    ...releaseMeta(d, release.id, release.images),
    composeFiles: [...release.composeFiles],
    hasEnv: release.hasEnv,
    hasFiles: release.hasFiles,
    built: release.built,
  };
}

/**
 * Creates the release directory with the compose files, `.env` (0600), the requested pins and
 * meta.json. With `linkEnv`, `<project-dir>/.env` is pointed at the release's env file in the
 * round trip that creates the directory (the link dangles only until the uploads that follow at
 * once are done; if one fails, the story links it back).
 */
export async function uploadRelease(d: Deployer, id: string, options: { linkEnv?: boolean } = {}): Promise<Release> {
  const { inputs, server } = d;
  const dir = releaseDir(inputs.projectDir, id);
  const hasEnv = inputs.envFile !== undefined;
  await server.run(
    [...createRelease(inputs.projectDir, id), ...(options.linkEnv ? linkEnv(inputs.projectDir, id, hasEnv) : []), ...keepCli(inputs.projectDir, d.cli)],
    {
      description: `create release ${id}${options.linkEnv ? `, ${hasEnv ? 'point .env at it' : 'remove the .env link'}` : ''}`,
      timeoutSeconds: 60,
    },
  );
  const built = inputs.serverBuilds.map((build) => build.service);
  const composeFiles = inputs.composeFiles.map((f) => f.name);
  const release: Release = {
    id,
    project: projectOf(inputs, id, composeFiles, hasEnv, false, built.length > 0),
    composeFiles,
    hasEnv,
    hasFiles: false,
    built,
    images: { ...inputs.images },
    unpinned: [],
  };
  // Each upload is a few SFTP requests on one channel: sent together, they share their round trips.
  // All of them end before a failure is reported, so none is still writing while the story puts things back.
  const uploaded = await Promise.allSettled([
    ...inputs.composeFiles.map((file) => server.upload(`${dir}/${file.name}`, file.content, { mode: 0o644, description: `upload ${file.path}` })),
    ...(inputs.envFile !== undefined
      ? [server.upload(`${dir}/${ENV_FILE}`, inputs.envFile, { mode: 0o600, secret: true, description: 'upload the env file' })]
      : []),
    // Until digests are resolved, the lock holds the images asked for in `images`; pull reads it.
    server.upload(`${dir}/${IMAGE_LOCK}`, imageLockFile(inputs.images), { mode: 0o644, description: 'upload the requested images' }),
    server.upload(`${dir}/${META}`, `${JSON.stringify(meta(d, release), null, 2)}\n`, { mode: 0o644, description: 'upload meta.json' }),
  ]);
  const failed = uploaded.find((upload) => upload.status === 'rejected');
  if (failed) throw failed.reason;
  if (inputs.shippedFiles) await uploadShippedFiles(d, dir, inputs.shippedFiles);
  for (const build of inputs.serverBuilds) {
    await server.run(unpackContext(`${dir}/${BUILD_DIR}/${build.service}`), {
      description: `upload the build context of ${build.service} (${build.declared})`,
      stdin: contextTar(build.localContext),
      timeoutSeconds: inputs.pullTimeoutSeconds,
    });
  }
  if (built.length > 0)
    await server.upload(`${dir}/${BUILD_OVERRIDE}`, buildOverride(dir, inputs.projectName, id, inputs.serverBuilds), {
      mode: 0o644,
      description: `build ${built.join(', ')} from the release, tagged with its id`,
    });
  return release;
}

/** The `files` input, into `releases/<id>/files/` with their own modes (they are copied to the store once Compose says who reads them). */
async function uploadShippedFiles(d: Deployer, dir: string, files: readonly ShippedFile[]): Promise<void> {
  const folders = [...new Set(files.map((file) => posix.dirname(`${dir}/${SHIPPED_DIR}/${file.path}`)))];
  await d.server.run([['mkdir', '-p', ...folders]], { description: `create the folders of ${files.length} shipped file(s)`, timeoutSeconds: 60 });
  for (const file of files) {
    await d.server.upload(`${dir}/${SHIPPED_DIR}/${file.path}`, file.content, { mode: file.mode, description: `upload ${file.path} (files)` });
  }
}

export async function pullImages(d: Deployer, release: Release): Promise<void> {
  const login = d.inputs.registryLogin;
  // Compose would try to pull the images it is about to build (and fail: they exist nowhere yet), so name the others.
  const services = release.built.length === 0 ? [] : d.inputs.composeServices.filter((service) => !release.built.includes(service));
  if (release.built.length > 0 && services.length === 0) return;
  const pulling = login
    ? d.server.run(pullWithLogin(d.cli, release.project, login, services), {
        description: `pull images (logged in to ${login.registry} as ${login.username} for this pull only; pull-timeout)`,
        timeoutSeconds: d.inputs.pullTimeoutSeconds,
        stdin: `${login.password}\n`,
        live: 'all',
      })
    : d.server.run(pull(d.cli, release.project, services), {
        description: 'pull images (pull-timeout)',
        timeoutSeconds: d.inputs.pullTimeoutSeconds,
        live: 'all',
      });
  // `compose config` does not depend on the pull, and each is a compose program's start: the
  // digests step reads the configuration the pull's time already paid for.
  release.configRead = readConfig(d, release);
  // A pull that fails ends the deploy before anyone asks for the configuration.
  release.configRead.catch(() => undefined);
  await pulling.catch((error: Error) => {
    throw pullFailureHint(error, login !== undefined);
  });
}

function readConfig(d: Deployer, release: Release): Promise<string> {
  return d.server.run(config(d.cli, release.project), { description: 'read the compose configuration', timeoutSeconds: 120 }).then((read) => read.stdout);
}

/** `compose build` of the services built on the server, from the release's own contexts (pull-timeout bounds it too). */
export async function buildOnServer(d: Deployer, release: Release): Promise<void> {
  if (release.built.length === 0) return;
  await d.server.run(build(d.cli, release.project, release.built), {
    description: `build ${release.built.join(', ')} on the server (pull-timeout)`,
    timeoutSeconds: d.inputs.pullTimeoutSeconds,
    live: 'all',
  });
}

/** A pull refused for want of a login says which inputs give one. */
export function pullFailureHint(error: Error, login: boolean): Error {
  if (login || !/unauthorized|denied|authentication required|no basic auth credentials/i.test(error.message)) return error;
  return new Error(
    `${error.message}\nThe registry refused the pull: for a private image (GHCR packages of private repositories are private) set registry-username and registry-password (e.g. \${{ github.actor }} and \${{ github.token }} with packages: read).`,
  );
}

/** Pins every service to the digest that was just pulled, so a rollback later gets exactly these bytes. */
export async function resolveDigests(d: Deployer, release: Release): Promise<void> {
  const read = await (release.configRead ?? readConfig(d, release));
  const configYaml = d.planning ? plannedConfig(d.inputs) : read;
  release.configYaml = configYaml;
  const services = servicesFromConfig(configYaml);
  const images = [...new Set(Object.values(services).filter((image): image is string => image !== undefined))];
  const inspect =
    images.length === 0 ? '' : (await d.server.run(repoDigests(d.cli, images), { description: 'resolve image digests', timeoutSeconds: 120 })).stdout;
  const { pinned, unpinned } = pinImages(services, images, inspect);
  // A server-built image keeps its release tag: that name is this release's alone, while a
  // containerd image store also gives a local build a "digest" no registry can serve.
  for (const service of release.built) if (services[service] !== undefined) pinned[service] = services[service]!;
  release.images = pinned;
  // A server-built image is pinned by its release tag: no other release ever uses that name.
  release.unpinned = unpinned.filter((service) => !release.built.includes(service));
  const dir = releaseDir(d.inputs.projectDir, release.id);
  if (d.inputs.shippedFiles) await placeShippedFiles(d, release, configYaml, d.inputs.shippedFiles);
  await d.server.upload(`${dir}/${IMAGE_LOCK}`, imageLockFile(pinned), { mode: 0o644, description: 'pin images to digests' });
  await d.server.upload(`${dir}/${META}`, `${JSON.stringify(meta(d, release), null, 2)}\n`, {
    mode: 0o644,
    description: 'record the pinned images in meta.json',
  });
  if (release.unpinned.length > 0 && !d.planning)
    core.warning(`Not pinned to a digest (the image has no registry digest and was not built by this deploy): ${release.unpinned.join(', ')}`);
}

/**
 * What a dry run takes `compose config` to say: each service of the compose files with its
 * image as written (or as the images input sets it), so the plan shows the digest lookup a
 * deploy makes. Later files override earlier ones, as in Compose.
 */
function plannedConfig(inputs: DeployInputs): string {
  const services: Record<string, { image?: string }> = {};
  for (const file of inputs.composeFiles) {
    const parsed = (parseYaml(file.content) ?? {}) as { services?: Record<string, { image?: unknown } | null> };
    for (const [name, service] of Object.entries(parsed.services ?? {})) {
      const image = typeof service?.image === 'string' ? service.image : services[name]?.image;
      services[name] = image === undefined ? {} : { image };
    }
  }
  for (const [name, image] of Object.entries(inputs.images)) services[name] = { image };
  return stringifyYaml({ services });
}

/**
 * Stores each mount's shipped files under their content hash and points the mounts there with
 * files.override.json, which from now on is one of the release's compose files.
 */
async function placeShippedFiles(d: Deployer, release: Release, configYaml: string, files: readonly ShippedFile[]): Promise<void> {
  const { projectDir } = d.inputs;
  const dir = releaseDir(projectDir, release.id);
  // Where Compose mounts each file only `compose config` on the server can say: the plan shows one mount per file.
  const resolution = d.planning
    ? {
        mounts: files.map((file) => ({ source: file.path, hash: 'HASH' })),
        override: '{ "services": { "…": "each bind mount of a shipped file, pointed at its store entry" } }\n',
        services: [],
      }
    : resolveShippedFiles(configYaml, projectDir, files);
  await d.server.run(storeShippedFiles(projectDir, dir, resolution.mounts), {
    description: `store ${resolution.mounts.length} mount(s) of shipped files under their content hash`,
    timeoutSeconds: 120,
  });
  await d.server.upload(`${dir}/${FILES_OVERRIDE}`, resolution.override, {
    mode: 0o644,
    description: `point ${resolution.services.join(', ') || 'the services'}' mounts at this release's files`,
  });
  release.hasFiles = true;
  release.project = projectOf(d.inputs, release.id, release.composeFiles, release.hasEnv, true, release.built.length > 0);
}

/**
 * First in pre-deploy's COMPOSE_FILE: Compose takes the project directory from the first file's
 * folder and has no variable for it, so this empty file in the project directory makes a plain
 * `docker compose run --rm app migrate` resolve `./data` and `env_file: .env` exactly where
 * Skiff's own `--project-directory` commands do, not under releases/<id>/.
 */
export const PROJECT_ANCHOR = '.skiff-project.yaml';

/** The user's pre-deploy commands, in the project directory, pointed at the new release through Compose's own variables. */
export async function runPreDeploy(d: Deployer, release: Release, script: string): Promise<void> {
  const anchor = `${d.inputs.projectDir}/${PROJECT_ANCHOR}`;
  const env = [`COMPOSE_PROJECT_NAME=${release.project.name}`, `COMPOSE_FILE=${[anchor, ...release.project.files].join(':')}`];
  if (release.project.envFile) env.push(`COMPOSE_ENV_FILES=${release.project.envFile}`);
  await d.server.upload(
    anchor,
    '# Written by Skiff: makes this folder the Compose project directory of pre-deploy (see action-deploy README).\nservices: {}\n',
    { mode: 0o644, description: 'the project directory anchor for pre-deploy' },
  );
  await d.server.run(
    [
      ['cd', d.inputs.projectDir],
      ['env', ...env, 'bash', '-c', script],
    ],
    { description: 'pre-deploy (pre-deploy-timeout)', timeoutSeconds: d.inputs.preDeployTimeoutSeconds, live: 'all' },
  );
}

/** Points `<project-dir>/.env` at `release`'s env file, or removes Skiff's link when it has none (or there is no release). */
export async function linkReleaseEnv(d: Deployer, release: Pick<Release, 'id' | 'hasEnv'> | undefined): Promise<void> {
  await d.server.run(linkEnv(d.inputs.projectDir, release?.id ?? '', release?.hasEnv ?? false), {
    description: release ? `point .env at release ${release.id}` : 'remove the .env link',
    timeoutSeconds: 60,
  });
}

/**
 * What runs before `up -d --remove-orphans` of a release: the lock refreshed (its age is what
 * marks it stale, so a slow pull or migration must not look like a crash) and `.env` pointed at
 * the release (a rollback switches a release on without uploading it).
 */
export function beforeUp(d: Deployer, release: Pick<Release, 'id' | 'hasEnv'>): Command[] {
  return [...touchLock(d.inputs.projectDir, d.ctx.token), ...linkEnv(d.inputs.projectDir, release.id, release.hasEnv)];
}

export function markCurrent(d: Deployer, release: Pick<Release, 'id'>): Command[] {
  return switchCurrent(d.inputs.projectDir, release.id);
}

type AuditLine = Omit<AuditEntry, 'actor' | 'runUrl' | 'at'>;

function auditCommands(d: Deployer, entry: AuditLine): Command[] {
  return appendAudit(d.inputs.projectDir, { ...entry, actor: d.ctx.actor, runUrl: d.ctx.runUrl, at: new Date().toISOString() });
}

export async function audit(d: Deployer, entry: AuditLine): Promise<void> {
  await d.server.run(auditCommands(d, entry), { description: 'append to the audit log', timeoutSeconds: 60 });
}

/** Printed by the last round trip when the prune in it failed (the rest of it had succeeded). */
const PRUNE_FAILED = 'skiff: deleting old releases failed';

/**
 * A release's last writes, in one round trip: the commands that make it current, its audit line
 * and, when releases are beyond keep-releases, the prune. A prune that fails (files the app wrote
 * as another user, an image still in use) is a warning: it does not undo a good deploy. Returns
 * the releases deleted.
 */
export async function markAndAudit(
  d: Deployer,
  release: string,
  mark: readonly Command[],
  entry: AuditLine,
  prune?: { plan: PrunePlan; commands: readonly Command[] },
): Promise<string[]> {
  const pruning = prune !== undefined && prune.plan.remove.length > 0 ? prune : undefined;
  const result = await d.server.run([...mark, ...auditCommands(d, entry), ...(pruning ? tolerate(pruning.commands, PRUNE_FAILED) : [])], {
    description: `mark release ${release} current, append to the audit log${pruning ? `, delete ${pruning.plan.remove.length} old release(s)` : ''}`,
    timeoutSeconds: pruning ? 600 : 60,
  });
  if (!pruning) return [];
  if (result.stdout.includes(PRUNE_FAILED)) {
    core.warning(`Could not delete every old release (${pruning.plan.remove.join(', ')}): ${result.stderr.trim().split('\n').slice(-3).join(' ')}`);
    return [];
  }
  return pruning.plan.remove;
}

/** Deletes pruned releases, the shipped files only they used and the images only they ran. */
export function removeComposeReleases(d: Deployer, plan: PrunePlan): Command[] {
  return [
    ...removeReleases(d.inputs.projectDir, plan.remove),
    ...pruneStore(d.inputs.projectDir, releasesDir(d.inputs.projectDir)),
    ...removeImages(d.cli, plan.images),
  ];
}

/** A kept release, exactly as it was deployed: its compose files, env and digests. */
export async function loadRelease(d: Deployer, id: string): Promise<Release> {
  const stored = JSON.parse(
    (await d.server.run(readMeta(d.inputs.projectDir, id), { description: `read release ${id}`, timeoutSeconds: 60 })).stdout,
  ) as StoredMeta;
  return {
    id,
    project: projectOf(d.inputs, id, stored.composeFiles, stored.hasEnv, stored.hasFiles ?? false, (stored.built ?? []).length > 0),
    composeFiles: stored.composeFiles,
    hasEnv: stored.hasEnv,
    hasFiles: stored.hasFiles ?? false,
    built: stored.built ?? [],
    images: stored.services,
    unpinned: [],
  };
}
