import * as core from '@actions/core';
import { context } from '@actions/github';
import { codeBlock, details, outputs, table, writeSummary } from '@skiff/action-kit';
import { version as actionVersion } from '../package.json';
import { buildAndPush, buildEveryPlatform, buildLocally, type BuildJob } from './build';
import { BUILDER_STATE, describeBuilder, planCache, prepareBuilder, removeBuilder, wantedCache } from './builder';
import { loginCommand, logoutCommand } from './commands';
import { explainRegistryError } from './errors';
import { ACTION_OUTPUTS, readBuildPushInputs, type BuildPushInputs } from './inputs';
import { computeMetadata, type EventInfo } from './metadata';
import { runnerPlatform } from './platforms';
import { runCommand } from './run-command';
import { findingsTable, onPath, scanImage, TRIVY_MISSING } from './scan';
import { smokeTest, SmokeTestError, LOG_LINES } from './smoke';

const LOGGED_IN_STATE = 'registry';

function eventFromContext(): EventInfo {
  return {
    eventName: context.eventName ?? '',
    ref: context.ref ?? '',
    sha: context.sha ?? '',
    payload: context.payload,
    ...(process.env.GITHUB_REPOSITORY ? { repository: process.env.GITHUB_REPOSITORY } : {}),
    serverUrl: context.serverUrl,
  };
}

export async function run(): Promise<void> {
  const inputs = readBuildPushInputs();
  const progress = { summarized: false };
  try {
    await buildPushScan(inputs, progress);
  } catch (error) {
    // A failure the steps below did not report themselves (a build error, a refused login, a
    // builder that would not start) still leaves the job summary saying what failed.
    if (!progress.summarized) await writeSummary(failureSummary(inputs, error as Error)).catch(() => undefined);
    throw error;
  }
}

function failureSummary(inputs: BuildPushInputs, error: Error): string {
  const lines = error.message.split('\n');
  const detail = lines.length > 1 ? ['', details('What it said', codeBlock(lines.slice(-40).join('\n')), true)] : [];
  return ['### Build and push: failed', '', `Image \`${inputs.image}\`: ${lines[0]}`, ...detail, ''].join('\n');
}

async function buildPushScan(inputs: BuildPushInputs, progress: { summarized: boolean }): Promise<void> {
  if (inputs.scanSeverities.length > 0 && !onPath('trivy')) throw new Error(TRIVY_MISSING);
  const event = eventFromContext();
  if (!event.sha) throw new Error('GITHUB_SHA is not set: this action computes its tags from the workflow event, so it must run in GitHub Actions');
  const meta = computeMetadata(event, { extraTags: inputs.tags, now: new Date().toISOString(), extraLabels: inputs.labels });
  const refs = meta.tags.map((tag) => `${inputs.image}:${tag}`);
  const notes: string[] = [];

  let push = inputs.push;
  if (push && meta.fromFork) {
    push = false;
    notes.push('This pull request comes from a fork, whose token cannot write packages: the image is built but not pushed.');
  }

  const smokePlatform = inputs.smoke === undefined ? undefined : smokeTestPlatform(inputs);
  const cacheWanted = wantedCache(inputs.cache, process.env);
  const needs = { platforms: inputs.platforms, cacheExport: cacheWanted.type !== undefined, secrets: Object.keys(inputs.buildSecrets).length };

  // Finding (or making) the builder and the login are independent docker calls: run them side by
  // side. The login only touches the runner's docker config; post undoes it either way.
  const [prepared, loggedIn] = await Promise.allSettled([
    prepareBuilder(inputs.builder, needs, inputs.buildkitImage),
    push || inputs.password !== undefined ? login(inputs, push) : Promise.resolve(),
  ]);
  if (prepared.status === 'rejected') throw prepared.reason;
  const { builder, remove } = prepared.value;
  try {
    if (loggedIn.status === 'rejected') throw loggedIn.reason;
    notes.push(...prepared.value.notes);
    if (builder.kind === 'classic') notes.push('docker buildx is not installed: built with `docker build` and pushed with `docker push`.');
    const cache = planCache(inputs.cache, builder, inputs.image, process.env, prepared.value.noCacheBecause);
    if (cache.note) notes.push(`Cache: ${cache.note}.`);
    for (const note of notes) core.notice(note);
    core.info(`Building ${inputs.image} with ${describeBuilder(builder)}; tags: ${meta.tags.join(', ')}`);
    await buildPushAndReport(
      { inputs, builder, cache, refs, labels: meta.labels },
      { push, smokePlatform, notes, version: meta.version, revision: meta.revision },
      progress,
    );
  } finally {
    await remove?.();
  }
}

interface RunFacts {
  push: boolean;
  smokePlatform: string | undefined;
  notes: readonly string[];
  version: string;
  revision: string;
}

async function buildPushAndReport(job: BuildJob, facts: RunFacts, progress: { summarized: boolean }): Promise<void> {
  const { inputs, builder, refs } = job;
  const { push, smokePlatform, notes } = facts;
  let smoke: { passed: string; seconds: number } | undefined;
  if (inputs.smoke !== undefined) {
    await buildLocally(job, smokePlatform);
    try {
      smoke = await smokeTest(refs[0]!, inputs.smoke, inputs.platforms.length > 0 ? smokePlatform : undefined);
      core.info(`Smoke test passed in ${smoke.seconds.toFixed(1)}s: ${smoke.passed}`);
    } catch (error) {
      if (error instanceof SmokeTestError) {
        await reportSmokeFailure(inputs, refs, error);
        progress.summarized = true;
      }
      throw error;
    }
  }

  let digest = '';
  if (push) digest = await buildAndPush(job, inputs.smoke !== undefined);
  // Not pushing several platforms: build them all into the builder's cache (the engine's store holds one platform per tag), which proves they build.
  else if (inputs.platforms.length > 1) await buildEveryPlatform(job);
  else if (inputs.smoke === undefined) await buildLocally(job, inputs.platforms[0]);

  const imageRef = digest ? `${inputs.image}@${digest}` : '';
  const out = outputs<Record<keyof typeof ACTION_OUTPUTS, string>>();
  out.set('image', inputs.image);
  out.set('tags', refs.join('\n'));
  out.set('version', facts.version);
  out.set('digest', digest);
  out.set('image-ref', imageRef);
  out.set(
    'metadata',
    JSON.stringify({ image: inputs.image, tags: refs, labels: job.labels, version: facts.version, revision: facts.revision, digest, pushed: push }),
  );

  const summary = [
    '### Build and push',
    '',
    table(['Image', 'Pushed', 'Digest', 'Builder'], [[inputs.image, push ? 'yes' : 'no', digest || '(not pushed)', describeBuilder(builder)]]),
    '',
    `**Tags:** ${refs.map((ref) => `\`${ref}\``).join(', ')}`,
    ...(smoke ? ['', `**Smoke test:** passed in ${smoke.seconds.toFixed(1)}s (${smoke.passed})`] : []),
    ...notes.map((note) => `\n> ${note}`),
  ];
  await writeSummary(summary.join('\n'));
  progress.summarized = true;

  if (inputs.scanSeverities.length > 0) {
    const findings = await scanImage(imageRef || refs[0]!, inputs.scanSeverities);
    const heading = `### Scan (trivy, ${inputs.scanSeverities.join(', ')})`;
    await writeSummary(findings.length === 0 ? `${heading}\n\nNo findings.` : `${heading}\n\n${findingsTable(findings)}`);
    if (findings.length > 0) {
      throw new Error(
        `trivy found ${findings.length} vulnerabilit${findings.length === 1 ? 'y' : 'ies'} of severity ${inputs.scanSeverities.join(' or ')} in ${imageRef || refs[0]}; see the job summary`,
      );
    }
  }
}

/** The smoke test runs natively, so it needs the runner's platform among those built. */
function smokeTestPlatform(inputs: BuildPushInputs): string {
  const native = runnerPlatform();
  if (inputs.platforms.length > 0 && !inputs.platforms.includes(native)) {
    throw new Error(`The smoke test runs the image on the runner (${native}), but "platforms" does not include it; add ${native} or turn smoke-test off`);
  }
  return native;
}

async function login(inputs: BuildPushInputs, required: boolean): Promise<void> {
  if (inputs.password === undefined || inputs.username === undefined) return;
  try {
    await runCommand(loginCommand(inputs.registry, inputs.username), { input: inputs.password });
    core.saveState(LOGGED_IN_STATE, inputs.registry);
  } catch (error) {
    const explained = explainRegistryError(error, `Logging in to ${inputs.registry} as ${inputs.username}`, inputs.registry);
    // Not pushing (e.g. a fork's read-only token): a login only helps pull private base images.
    if (!required) core.warning(`${explained.message}\nContinuing without a login because nothing will be pushed.`);
    else throw explained;
  }
}

async function reportSmokeFailure(inputs: BuildPushInputs, refs: readonly string[], error: SmokeTestError): Promise<void> {
  if (error.logs) core.info(`Last ${LOG_LINES} log lines of the smoke test container:\n${error.logs}`);
  await writeSummary(
    [
      '### Build and push: smoke test failed',
      '',
      `${error.message}. Image: \`${refs[0]}\` (${inputs.image}).`,
      '',
      details(`Last ${LOG_LINES} log lines of the container`, error.logs ? codeBlock(error.logs) : '(the container wrote no logs)', true),
    ].join('\n'),
  );
}

/**
 * Undoes what main left: the registry login (so the runner's docker config keeps no token) and a
 * builder made for the run that main could not remove itself (it was cancelled or killed).
 */
export async function post(): Promise<void> {
  const builder = core.getState(BUILDER_STATE);
  if (builder) await removeBuilder(builder);
  const registry = core.getState(LOGGED_IN_STATE);
  if (registry) await runCommand(logoutCommand(registry), { allowFailure: true });
  if (!builder && !registry) core.info(`action-build-push ${actionVersion}: no registry login to undo`);
}
