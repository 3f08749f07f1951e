import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as core from '@actions/core';
import { isMissingEmulation, SETUP_QEMU, type Builder, type CachePlan } from './builder';
import { buildxBuildCommand, dockerBuildCommand, dockerPushCommand, parseMetadataDigest, parsePushDigest, type BuildSpec } from './commands';
import { explainRegistryError } from './errors';
import type { BuildPushInputs } from './inputs';
import { CommandError, runCommand } from './run-command';

/** Where the build runs and what it makes: shared by the local build (for the smoke test) and the push. */
export interface BuildJob {
  inputs: BuildPushInputs;
  builder: Builder;
  cache: CachePlan;
  refs: readonly string[];
  labels: Readonly<Record<string, string>>;
}

// Secrets reach buildx through its environment (`--secret id=X,env=VAR`), never its command line.
function secretEnvironment(secrets: Readonly<Record<string, string>>): { names: Record<string, string>; values: Record<string, string> } {
  const names: Record<string, string> = {};
  const values: Record<string, string> = {};
  Object.entries(secrets).forEach(([id, value], index) => {
    names[id] = `SKIFF_BUILD_SECRET_${index}`;
    values[`SKIFF_BUILD_SECRET_${index}`] = value;
  });
  return { names, values };
}

function spec(job: BuildJob, output: BuildSpec['output'], platforms: readonly string[], metadataFile?: string): BuildSpec {
  const { inputs } = job;
  const { names } = secretEnvironment(inputs.buildSecrets);
  return {
    ...(job.builder.kind === 'buildx' ? { builder: job.builder.name } : {}),
    context: inputs.context,
    file: inputs.file,
    ...(inputs.target === undefined ? {} : { target: inputs.target }),
    platforms,
    buildArgs: inputs.buildArgs,
    labels: job.labels,
    refs: job.refs,
    secretEnv: names,
    cacheFrom: job.cache.cacheFrom,
    cacheTo: job.cache.cacheTo,
    output,
    ...(metadataFile === undefined ? {} : { metadataFile }),
  };
}

function buildFailure(error: unknown, job: BuildJob): Error {
  if (!(error instanceof CommandError)) return error as Error;
  const said = `${error.result.stderr}\n${error.result.stdout}`;
  // With buildx's docker driver the push happens inside the build, so its refusals arrive here.
  if (/pushing|push access denied|failed to push/i.test(said) && /unauthorized|denied|401|403|forbidden/i.test(said)) {
    return explainRegistryError(error, 'Pushing the image', job.inputs.registry);
  }
  if (isMissingEmulation(said)) {
    return new Error(
      `Building the image failed: a RUN step ran a program of another platform without emulation ("exec format error"). ` +
        `Install QEMU emulation with \`uses: ${SETUP_QEMU}\` as a step before this one, or build that stage with FROM --platform=$BUILDPLATFORM.\n${error.message}`,
    );
  }
  return new Error(`Building the image failed: ${error.message}`);
}

/** Builds into the engine's image store, for the smoke test or when not pushing. */
export async function buildLocally(job: BuildJob, platform: string | undefined): Promise<void> {
  const platforms = platform === undefined ? [] : [platform];
  const { values } = secretEnvironment(job.inputs.buildSecrets);
  try {
    if (job.builder.kind === 'buildx') await runCommand(buildxBuildCommand(spec(job, 'load', platforms)), { env: values });
    else await runCommand(dockerBuildCommand(spec(job, 'load', platforms)));
  } catch (error) {
    throw buildFailure(error, job);
  }
}

/** Builds every platform asked without exporting the result: it stays in the builder's cache. */
export async function buildEveryPlatform(job: BuildJob): Promise<void> {
  const { values } = secretEnvironment(job.inputs.buildSecrets);
  try {
    await runCommand(buildxBuildCommand(spec(job, 'none', job.inputs.platforms)), { env: values });
  } catch (error) {
    throw buildFailure(error, job);
  }
}

/**
 * Builds (from cache when the smoke test already built it) and pushes every tag; returns the
 * manifest digest the registry stores, which is what a deploy pins.
 */
export async function buildAndPush(job: BuildJob, alreadyBuilt: boolean): Promise<string> {
  if (job.builder.kind === 'classic') {
    if (!alreadyBuilt) await buildLocally(job, job.inputs.platforms[0]);
    return pushEachTag(job);
  }
  const dir = await mkdtemp(join(tmpdir(), 'skiff-build-'));
  try {
    const metadataFile = join(dir, 'metadata.json');
    const { values } = secretEnvironment(job.inputs.buildSecrets);
    try {
      await runCommand(buildxBuildCommand(spec(job, 'push', job.inputs.platforms, metadataFile)), { env: values });
    } catch (error) {
      throw buildFailure(error, job);
    }
    const digest = parseMetadataDigest(await readFile(metadataFile, 'utf8'));
    if (digest === undefined) throw new Error('docker buildx build --push wrote no containerimage.digest to its metadata file');
    return digest;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function pushEachTag(job: BuildJob): Promise<string> {
  let digest: string | undefined;
  for (const ref of job.refs) {
    let output: string;
    try {
      const result = await runCommand(dockerPushCommand(ref));
      output = result.stdout + result.stderr;
    } catch (error) {
      throw explainRegistryError(error, `Pushing ${ref}`, job.inputs.registry);
    }
    const pushed = parsePushDigest(output);
    if (pushed === undefined) throw new Error(`docker push ${ref} printed no digest`);
    // Every tag names the same image; a different digest would mean the store changed under us.
    if (digest !== undefined && pushed !== digest) throw new Error(`docker push ${ref} gave digest ${pushed}, but earlier tags got ${digest}`);
    digest = pushed;
  }
  if (digest === undefined) throw new Error('no tags to push');
  core.info(`Pushed ${job.refs.length} tag(s), digest ${digest}`);
  return digest;
}
