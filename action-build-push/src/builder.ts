import { BUILDX_INSPECT, cacheFlags, parseBuildxDriver, type CacheType } from './commands';
import type { CacheMode } from './inputs';
import { runCommand } from './run-command';

/** buildx with its current builder's driver, or the classic `docker build` when buildx is missing. */
export type Builder = { kind: 'buildx'; driver: string } | { kind: 'classic' };

/** One `docker buildx inspect`: it fails when the plugin is missing and names the driver when it is there. */
export async function detectBuilder(): Promise<Builder> {
  const inspect = await runCommand(BUILDX_INSPECT, { quiet: true, allowFailure: true });
  if (inspect.code !== 0) {
    // A missing plugin makes docker say `unknown command`; anything else is a broken builder worth reporting.
    if (/unknown command|is not a docker command|unknown flag/i.test(inspect.stderr + inspect.stdout)) return { kind: 'classic' };
    throw new Error(`docker buildx inspect failed (exit ${inspect.code}): ${(inspect.stderr || inspect.stdout).trim()}`);
  }
  return { kind: 'buildx', driver: parseBuildxDriver(inspect.stdout) ?? 'unknown' };
}

export function describeBuilder(builder: Builder): string {
  return builder.kind === 'buildx' ? `docker buildx (${builder.driver} driver)` : 'docker build + docker push (buildx is not installed)';
}

/**
 * What the builder cannot do with these inputs, found before anything is built. The default
 * `docker` driver and the classic builder put images in the engine's store, which holds one
 * platform per tag, so several platforms need a docker-container builder.
 */
export function builderProblems(builder: Builder, wanted: { platforms: readonly string[]; secrets: number }): string[] {
  const problems: string[] = [];
  const setup = 'set up a docker-container builder first with docker/setup-qemu-action and docker/setup-buildx-action (pinned to a SHA)';
  if (wanted.platforms.length > 1) {
    if (builder.kind === 'classic') {
      problems.push(`Input "platforms" lists ${wanted.platforms.length} platforms, but buildx is not installed and docker build makes one platform at a time; ${setup}`);
    } else if (builder.driver === 'docker') {
      problems.push(`Input "platforms" lists ${wanted.platforms.length} platforms, but the buildx builder uses the default \`docker\` driver, which cannot build several platforms at once; ${setup}`);
    }
  }
  if (wanted.secrets > 0 && builder.kind === 'classic') {
    problems.push('Input "build-secrets" needs BuildKit, but buildx is not installed; install buildx (docker/setup-buildx-action) or drop the secrets');
  }
  return problems;
}

/** The runner's cache service: v1 (ACTIONS_CACHE_URL) or v2 (ACTIONS_RESULTS_URL + ACTIONS_CACHE_SERVICE_V2), both with a runtime token. */
export function ghaCacheAvailable(env: NodeJS.ProcessEnv): boolean {
  if (!env.ACTIONS_RUNTIME_TOKEN) return false;
  return Boolean(env.ACTIONS_CACHE_URL) || (Boolean(env.ACTIONS_RESULTS_URL) && Boolean(env.ACTIONS_CACHE_SERVICE_V2));
}

export interface CachePlan {
  type?: CacheType;
  cacheFrom: string[];
  cacheTo: string[];
  /** Why the cache asked for is not used; shown in the log and the summary. */
  note?: string;
}

export function planCache(mode: CacheMode, builder: Builder, image: string, env: NodeJS.ProcessEnv): CachePlan {
  const none = (note?: string): CachePlan => ({ cacheFrom: [], cacheTo: [], ...(note === undefined ? {} : { note }) });
  let type: CacheType | undefined;
  if (mode === 'auto') type = ghaCacheAvailable(env) ? 'gha' : undefined;
  else if (mode === 'gha' || mode === 'registry') type = mode;
  if (type === undefined) return none();
  if (type === 'gha' && !ghaCacheAvailable(env)) {
    return none('cache `gha` needs the runner\'s cache service (ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL, and ACTIONS_RUNTIME_TOKEN), which this job does not have; built without it');
  }
  if (builder.kind === 'classic') return none(`cache \`${type}\` needs buildx, which is not installed; built with the engine's local layer cache only`);
  if (builder.driver === 'docker') {
    return none(
      `cache \`${type}\` is not supported by the default \`docker\` buildx driver (it cannot export a cache); built with the engine's local layer cache only. ` +
        'Use docker/setup-buildx-action (docker-container driver) for a cache that survives between runs',
    );
  }
  return { type, ...cacheFlags(type, image) };
}
