import { expect } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runBundle, startBundle, type BundleRun, type StartedBundle } from '@skiff/testbed';
export { buildApp, composeFile, removeProject, type AppKind } from './fixtures';
export { applyMasks } from '@skiff/testbed';

export type ActionRun = BundleRun;
export type StartedRun = StartedBundle;

interface DeployRunOptions {
  workspace: string;
  env?: Record<string, string>;
  phase?: 'main' | 'post';
  state?: Record<string, string>;
}

/** What a workflow run of this repository would set; the release metadata and audit log record them. */
const GITHUB_CONTEXT = {
  GITHUB_REPOSITORY: 'acme/skiffdeploy-app',
  GITHUB_RUN_ID: '42',
  GITHUB_SERVER_URL: 'https://github.example',
  GITHUB_ACTOR: 'octo-tester',
  GITHUB_SHA: '1a2b3c4d5e6f',
};

const bundleOptions = (inputs: Record<string, string>, options: DeployRunOptions) => ({
  inputs,
  cwd: options.workspace,
  env: { ...GITHUB_CONTEXT, ...options.env },
  ...(options.phase ? { phase: options.phase } : {}),
  ...(options.state ? { state: options.state } : {}),
});

/** Runs the committed bundle like the runner (see @skiff/testbed's runner), main or post. */
export function startAction(inputs: Record<string, string>, options: DeployRunOptions): StartedRun {
  return startBundle('action-deploy', bundleOptions(inputs, options));
}

export function runAction(inputs: Record<string, string>, options: DeployRunOptions): Promise<ActionRun> {
  return runBundle('action-deploy', bundleOptions(inputs, options));
}

export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(3000) });
    return { status: response.status, body: await response.text() };
  } catch (error) {
    return { status: 0, body: (error as Error).message };
  }
}

export async function auditLines(projectDir: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(projectDir, 'audit.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** What Swarm itself says a stack's service runs, and what its running containers were created from. */
export async function swarmServiceImages(
  docker: (args: readonly string[]) => Promise<string>,
  stack: string,
  service: string,
): Promise<{ spec: string; containers: string[] }> {
  const spec = (await docker(['service', 'inspect', '--format', '{{.Spec.TaskTemplate.ContainerSpec.Image}}', `${stack}_${service}`])).trim();
  const ids = (await docker(['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${stack}_${service}`])).split('\n').filter(Boolean);
  const containers = ids.length === 0 ? [] : (await docker(['inspect', '--format', '{{.Config.Image}}', ...ids])).split('\n').filter(Boolean);
  return { spec, containers };
}

const RELEASE_ID = /\d{8}T\d{6}Z-[0-9a-f]{7}-[0-9a-f]{4}/g;

/** The numbered steps of a dry run's plan (the `plan` output), release ids made comparable. */
export function planSteps(plan: string): string[] {
  return [...plan.matchAll(/^\d+\. \*\*(.+?)\*\*/gm)].map((match) => match[1]!.replace(RELEASE_ID, 'RELEASE'));
}

/** The remote steps a real run took, in order, as its log names each with its duration (`<step> (0.12 s)`). */
export function ranSteps(run: ActionRun): string[] {
  return [...run.stdout.matchAll(/^(?:\[[^\]\n]+\] )?(.+) \(\d+\.\d\d s\)$/gm)].map((match) => match[1]!.replace(RELEASE_ID, 'RELEASE'));
}

/**
 * Every remote step a real deploy ran is in the dry run's plan, in the same order (a health
 * gate's rounds count once). `covers` names the plan steps that stand for steps only the
 * server's answers decide (which services a rolling deploy rolls), with the real steps each covers.
 */
export function expectPlanCoversRun(plan: string, run: ActionRun, covers: Record<string, readonly RegExp[]> = {}): void {
  const planned = planSteps(plan);
  const ran = ranSteps(run)
    .map((step) => Object.entries(covers).find(([, patterns]) => patterns.some((pattern) => pattern.test(step)))?.[0] ?? step)
    .filter((step, index, all) => step !== all[index - 1]);
  expect(ran.length, 'the run logged its steps').toBeGreaterThan(5);
  const missing = ran.filter((step) => !planned.includes(step));
  expect(missing, `steps the run took that the plan does not list:\n${planned.join('\n')}`).toEqual([]);
  let at = -1;
  for (const step of ran) {
    const next = planned.indexOf(step, at + 1);
    expect(
      next,
      `"${step}" comes after "${planned[at] ?? '(start)'}" in the plan, as in the run:\nplan: ${planned.join(' | ')}\nrun: ${ran.join(' | ')}`,
    ).toBeGreaterThan(at);
    at = next;
  }
}
