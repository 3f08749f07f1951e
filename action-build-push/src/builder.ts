import { randomBytes } from 'node:crypto';
import * as core from '@actions/core';
import {
  buildxCreateCommand,
  buildxInspectCommand,
  buildxRemoveCommand,
  cacheFlags,
  DOCKER_CONTEXT_SHOW,
  DOCKER_DRIVER_STATUS,
  parseBuildxInspect,
  usesContainerdStore,
  type BuildxInspect,
  type CacheType,
} from './commands';
import type { BuilderChoice, CacheMode } from './inputs';
import { CommandError, runCommand } from './run-command';

/** buildx with the builder every build names, or the classic `docker build` when buildx is missing. */
export type Builder =
  | {
      kind: 'buildx';
      name: string;
      driver: string;
      /** What the builder can run (natively or by emulation); empty when not known (not booted yet). */
      platforms: string[];
      /** The engine stores images with containerd, so even the `docker` driver builds several platforms and exports a cache. */
      containerdStore: boolean;
      /** Made by this run, removed when it ends. */
      created: boolean;
    }
  | { kind: 'classic' };

/** What the build asks of its builder. */
export interface BuilderNeeds {
  platforms: readonly string[];
  /** A gha or registry cache is to be exported. */
  cacheExport: boolean;
  secrets: number;
}

/** Pinned in the README too: a tag can be moved, a commit SHA cannot. */
export const SETUP_QEMU = 'docker/setup-qemu-action@29109295f81e9208d7d86ff1c6c12d2833863392 # v3.6.0';
export const SETUP_BUILDX = 'docker/setup-buildx-action (pinned to a commit SHA)';

type Inspected = BuildxInspect & { containerdStore: boolean };

/** What the builder's driver cannot do of what is asked: `docker` without the containerd image store keeps one platform per tag and exports no cache. */
export function shortfalls(builder: Pick<Inspected, 'driver' | 'containerdStore'>, needs: BuilderNeeds): Array<'platforms' | 'cache'> {
  if (builder.driver !== 'docker' || builder.containerdStore) return [];
  return [...(needs.platforms.length > 1 ? (['platforms'] as const) : []), ...(needs.cacheExport ? (['cache'] as const) : [])];
}

export type BuilderDecision =
  | { action: 'keep' }
  | { action: 'classic' }
  /** `auto` and the current builder falls short: make a docker-container builder for this run. */
  | { action: 'create'; because: Array<'platforms' | 'cache'> }
  | { action: 'fail'; problems: string[] };

/**
 * Which builder builds. `auto` keeps the current builder when its driver can do what is asked and
 * otherwise creates one; `docker` and a named builder are used as they are, so a shortfall there is
 * an error (several platforms) or a note (a cache, which the build can go without).
 */
export function decideBuilder(choice: BuilderChoice, current: Inspected | 'classic', needs: BuilderNeeds): BuilderDecision {
  if (current === 'classic') {
    const problems: string[] = [];
    if (choice.mode === 'named')
      problems.push(
        `Input "builder" names the buildx builder "${choice.name}", but docker buildx is not installed; install it (${SETUP_BUILDX}) or remove the input`,
      );
    if (needs.platforms.length > 1) {
      problems.push(
        `Input "platforms" lists ${needs.platforms.length} platforms, but buildx is not installed and docker build makes one platform at a time; set up buildx first with ${SETUP_BUILDX}`,
      );
    }
    if (needs.secrets > 0)
      problems.push(`Input "build-secrets" needs BuildKit, but buildx is not installed; install buildx (${SETUP_BUILDX}) or drop the secrets`);
    return problems.length > 0 ? { action: 'fail', problems } : { action: 'classic' };
  }
  const short = shortfalls(current, needs);
  if (short.length === 0) return { action: 'keep' };
  if (choice.mode === 'auto') return { action: 'create', because: short };
  if (!short.includes('platforms')) return { action: 'keep' }; // the cache is noted and skipped by planCache
  const which = choice.mode === 'docker' ? '"builder" is `docker`' : `"builder" names "${choice.name}"`;
  return {
    action: 'fail',
    problems: [
      `Input "platforms" lists ${needs.platforms.length} platforms, but input ${which}, a builder with the \`docker\` driver, which cannot build several platforms at once; ` +
        'set "builder" to auto (the default) to have a docker-container builder made for this run, or name one set up with ' +
        SETUP_BUILDX,
    ],
  };
}

/** `linux/arm/v7` → `linux/arm`: emulation is per architecture, variants run wherever their architecture does. */
function osArch(platform: string): string {
  return platform.toLowerCase().split('/').slice(0, 2).join('/');
}

/** Platforms asked for that the builder can neither run natively nor emulate; nothing when its list is not known. */
export function missingPlatforms(builderPlatforms: readonly string[], asked: readonly string[]): string[] {
  if (builderPlatforms.length === 0) return [];
  const offered = new Set(builderPlatforms.map(osArch));
  return asked.filter((platform) => !offered.has(osArch(platform)));
}

export function qemuHint(missing: readonly string[], builderPlatforms: readonly string[]): string {
  return (
    `The builder cannot run ${missing.join(', ')} (it offers ${builderPlatforms.join(', ')}): a RUN step for ${missing.length === 1 ? 'that platform' : 'those platforms'} ` +
    `fails with "exec format error" unless QEMU emulation is installed. Add \`uses: ${SETUP_QEMU}\` as a step before this one`
  );
}

/** `exec format error` is what running a foreign binary without emulation says. */
export function isMissingEmulation(output: string): boolean {
  return /exec format error/i.test(output);
}

/** Unique per run attempt and job (the random part), so parallel jobs on one engine never share a builder. */
export function throwawayBuilderName(env: NodeJS.ProcessEnv, random: string = randomBytes(3).toString('hex')): string {
  const runId = /^\d+$/.test(env.GITHUB_RUN_ID ?? '') ? env.GITHUB_RUN_ID : 'local';
  const attempt = /^\d+$/.test(env.GITHUB_RUN_ATTEMPT ?? '') ? env.GITHUB_RUN_ATTEMPT : '1';
  return `skiff-${runId}-${attempt}-${random}`;
}

export function describeBuilder(builder: Builder): string {
  if (builder.kind === 'classic') return 'docker build + docker push (buildx is not installed)';
  return `docker buildx (builder ${builder.name}, ${builder.driver} driver${builder.created ? ', made for this run' : ''})`;
}

// --- running it ---

/** The last `ERROR:` line buildx printed, or its last line: the reason without the progress noise. */
function buildxReason(error: unknown): string {
  if (!(error instanceof CommandError)) return error instanceof Error ? error.message : String(error);
  const lines = `${error.result.stderr}\n${error.result.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return [...lines].reverse().find((l) => l.startsWith('ERROR:')) ?? lines.at(-1) ?? `exit ${error.result.code}`;
}

/** One `docker buildx inspect`: `classic` when the plugin is missing, undefined when there is no builder of that name. */
async function inspect(name?: string, bootstrap = false): Promise<BuildxInspect | 'classic' | undefined> {
  const result = await runCommand(buildxInspectCommand(name, { bootstrap }), { quiet: true, allowFailure: true });
  const said = result.stderr + result.stdout;
  if (result.code !== 0) {
    // A missing plugin makes docker say `unknown command`; anything else is a broken builder worth reporting.
    if (/unknown command|is not a docker command|unknown flag/i.test(said)) return 'classic';
    if (name !== undefined && /no builder .* found/i.test(said)) return undefined;
    throw new CommandError(buildxInspectCommand(name, { bootstrap }), result);
  }
  const parsed = parseBuildxInspect(result.stdout);
  if (parsed === undefined) throw new Error(`docker buildx inspect printed no builder name and driver:\n${result.stdout.trim()}`);
  return parsed;
}

async function containerdStore(): Promise<boolean> {
  const result = await runCommand(DOCKER_DRIVER_STATUS, { quiet: true, allowFailure: true });
  return result.code === 0 && usesContainerdStore(result.stdout);
}

export interface PreparedBuilder {
  builder: Builder;
  /** For the log and the summary. */
  notes: string[];
  /** Set when the builder was made for this run. */
  remove?: () => Promise<void>;
  /** Why the builder a cache needs could not be made (the build goes on without the cache). */
  noCacheBecause?: string;
}

export const BUILDER_STATE = 'builder';

/**
 * Finds (or, for `auto`, makes) the builder and checks it can run the platforms asked. A builder
 * made here is recorded in the step's state before it exists, so the post step removes it even
 * when this run is cancelled halfway.
 */
export async function prepareBuilder(choice: BuilderChoice, needs: BuilderNeeds, buildkitImage: string): Promise<PreparedBuilder> {
  let name: string | undefined;
  if (choice.mode === 'named') name = choice.name;
  else if (choice.mode === 'docker') name = (await runCommand(DOCKER_CONTEXT_SHOW, { quiet: true, allowFailure: true })).stdout.trim() || 'default';
  const found = await inspect(name);
  if (found === undefined) {
    throw new Error(
      choice.mode === 'named'
        ? `Input "builder" names "${choice.name}", but docker buildx has no builder of that name (\`docker buildx ls\` lists them); set it up in an earlier step with ${SETUP_BUILDX}, or use builder: auto`
        : `docker buildx has no builder for the Docker context "${name}"`,
    );
  }
  const current: Inspected | 'classic' =
    found === 'classic'
      ? 'classic'
      : { ...found, containerdStore: found.driver === 'docker' && (needs.platforms.length > 1 || needs.cacheExport) ? await containerdStore() : false };
  const decision = decideBuilder(choice, current, needs);
  if (decision.action === 'fail') throw new Error(decision.problems.join('\n'));
  if (decision.action === 'classic' || current === 'classic') return { builder: { kind: 'classic' }, notes: [] };
  const kept: PreparedBuilder = { builder: { kind: 'buildx', ...pick(current), created: false }, notes: [] };
  if (decision.action === 'create') {
    const made = await createBuilder(current, decision.because, needs, buildkitImage);
    return withEmulationCheck('noCacheBecause' in made ? { ...kept, ...made } : made, needs);
  }
  return withEmulationCheck(kept, needs);
}

function pick(info: Inspected): Omit<Extract<Builder, { kind: 'buildx' }>, 'kind' | 'created'> {
  return { name: info.name, driver: info.driver, platforms: info.platforms, containerdStore: info.containerdStore };
}

function withEmulationCheck(prepared: PreparedBuilder, needs: BuilderNeeds): PreparedBuilder {
  const { builder } = prepared;
  if (builder.kind !== 'buildx') return prepared;
  const missing = missingPlatforms(builder.platforms, needs.platforms);
  return missing.length === 0 ? prepared : { ...prepared, notes: [...prepared.notes, `${qemuHint(missing, builder.platforms)}.`] };
}

/**
 * Makes and boots a docker-container builder. When it cannot start, several platforms are an
 * error (they cannot be built otherwise); a cache alone is not worth failing for, so the build
 * goes on with the current builder and says why (the second form of the result).
 */
async function createBuilder(
  current: Inspected,
  because: Array<'platforms' | 'cache'>,
  needs: BuilderNeeds,
  buildkitImage: string,
): Promise<PreparedBuilder | { noCacheBecause: string }> {
  const name = throwawayBuilderName(process.env);
  const why = because.includes('platforms') ? `${needs.platforms.length} platforms` : 'a cache export';
  core.info(
    `The current builder ${current.name} (${current.driver} driver) cannot do ${why}: making a docker-container builder ${name} for this run (${buildkitImage})`,
  );
  core.saveState(BUILDER_STATE, name);
  const remove = () => removeBuilder(name);
  try {
    await runCommand(buildxCreateCommand(name, buildkitImage), { quiet: true });
    // Booting pulls the BuildKit image and starts its container: the step that fails on a runner without access to it.
    const booted = await inspect(name, true);
    if (booted === undefined || booted === 'classic') throw new Error(`docker buildx lost the builder ${name} while booting it`);
    return {
      builder: { kind: 'buildx', ...pick({ ...booted, containerdStore: false }), created: true },
      notes: [`Built with a docker-container builder made for this run (${buildkitImage}), removed afterwards.`],
      remove,
    };
  } catch (error) {
    await remove();
    const reason = buildxReason(error);
    const fix =
      `let the runner pull ${buildkitImage} (or set "buildkit-image" to a BuildKit image it can pull, e.g. a copy in your own registry), ` +
      `or set up a builder in an earlier step with ${SETUP_BUILDX}, which builder: auto then uses`;
    if (because.includes('platforms')) {
      throw new Error(
        `Input "platforms" lists ${needs.platforms.length} platforms, which the current builder ${current.name} (${current.driver} driver) cannot build at once, ` +
          `so a docker-container builder was made for this run, but it could not start: ${reason}\nTo fix it, ${fix}. Nothing was built, and the builder was removed.`,
      );
    }
    return {
      noCacheBecause: `needs a docker-container builder, and the one made for this run could not start (${reason}); built with ${current.name} (${current.driver} driver) without the cache. To fix it, ${fix}`,
    };
  }
}

/** Idempotent: a builder already gone is fine (the post step may follow a main that removed it). */
export async function removeBuilder(name: string): Promise<void> {
  const result = await runCommand(buildxRemoveCommand(name), { quiet: true, allowFailure: true });
  if (result.code === 0) {
    core.info(`Removed the builder ${name} made for this run`);
    core.saveState(BUILDER_STATE, '');
  } else if (/no builder .* found/i.test(result.stderr + result.stdout)) {
    core.saveState(BUILDER_STATE, '');
  } else {
    core.warning(
      `Could not remove the builder ${name} made for this run: ${(result.stderr || result.stdout).trim()}; remove it with \`docker buildx rm ${name}\``,
    );
  }
}

/** The runner's cache service: v1 (ACTIONS_CACHE_URL) or v2 (ACTIONS_RESULTS_URL + ACTIONS_CACHE_SERVICE_V2), both with a runtime token. */
export function ghaCacheAvailable(env: NodeJS.ProcessEnv): boolean {
  if (!env.ACTIONS_RUNTIME_TOKEN) return false;
  return Boolean(env.ACTIONS_CACHE_URL) || (Boolean(env.ACTIONS_RESULTS_URL) && Boolean(env.ACTIONS_CACHE_SERVICE_V2));
}

/** The cache type the inputs and the runner ask for, before any builder is known (it decides whether one must be made). */
export function wantedCache(mode: CacheMode, env: NodeJS.ProcessEnv): { type?: CacheType; note?: string } {
  if (mode === 'none') return {};
  if (mode === 'auto') return ghaCacheAvailable(env) ? { type: 'gha' } : {};
  if (mode === 'gha' && !ghaCacheAvailable(env)) {
    return {
      note: "cache `gha` needs the runner's cache service (ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL, and ACTIONS_RUNTIME_TOKEN), which this job does not have; built without it",
    };
  }
  return { type: mode };
}

export interface CachePlan {
  type?: CacheType;
  cacheFrom: string[];
  cacheTo: string[];
  /** Why the cache asked for is not used; shown in the log and the summary. */
  note?: string;
}

/** `noBuilder`: why no builder able to export a cache could be made, which says more than the driver's limits. */
export function planCache(mode: CacheMode, builder: Builder, image: string, env: NodeJS.ProcessEnv, noBuilder?: string): CachePlan {
  const none = (note?: string): CachePlan => ({ cacheFrom: [], cacheTo: [], ...(note === undefined ? {} : { note }) });
  const { type, note } = wantedCache(mode, env);
  if (type === undefined) return none(note);
  if (builder.kind === 'classic') return none(`cache \`${type}\` needs buildx, which is not installed; built with the engine's local layer cache only`);
  if (builder.driver === 'docker' && !builder.containerdStore) {
    if (noBuilder !== undefined) return none(`cache \`${type}\` ${noBuilder}`);
    return none(
      `cache \`${type}\` is not supported by the \`docker\` buildx driver (it cannot export a cache); built with the engine's local layer cache only. ` +
        'With builder: auto a docker-container builder is made for the cache when it can start',
    );
  }
  return { type, ...cacheFlags(type, image) };
}
