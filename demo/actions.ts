import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { startBundle, type BundleRun, type RunnerEvent } from '@skiff/testbed';
import type { ChildProcess } from 'node:child_process';

/**
 * Runs an action's committed bundle (<action>/dist/index.js) the way GitHub's runner does, through
 * @skiff/testbed's runner: Node 24, inputs as INPUT_* variables, GITHUB_OUTPUT /
 * GITHUB_STEP_SUMMARY / GITHUB_STATE files, then the post step with the state main saved when the
 * action.yml declares one. Like the runner, every input the caller leaves out gets its action.yml
 * default (expressions such as `${{ github.token }}` have no value outside GitHub and are left out).
 */

export type Action = 'action-build-push' | 'action-deploy' | 'action-backup' | 'action-cf-allowlist';

interface ActionYml {
  inputs?: Record<string, { default?: unknown } | null>;
  runs: { using: string; main: string; post?: string };
}

export interface ActionRun {
  main: BundleRun;
  /** The post step's run, when the action has one. */
  post?: BundleRun;
}

export interface JobContext {
  root: string;
  /** The job's environment: HOME (shared by main and post, as on a runner), GITHUB_* of the "repository". */
  env: Record<string, string>;
  /** The checked-out repository (GITHUB_WORKSPACE, the step's working directory). */
  workspace: string;
}

/** Bundles still running, so an interrupted demo can stop them before cleaning up. */
export const running = new Set<ChildProcess>();
/** Set when the demo is interrupted: no further bundle starts. */
export const control = { stopped: false };

async function readActionYml(root: string, action: Action): Promise<ActionYml> {
  return parseYaml(await readFile(join(root, action, 'action.yml'), 'utf8')) as ActionYml;
}

function defaults(yml: ActionYml): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, spec] of Object.entries(yml.inputs ?? {})) {
    const value = spec?.default;
    if (value === undefined || value === null) continue;
    const text = String(value);
    if (!text.includes('${{')) values[name] = text;
  }
  return values;
}

async function runOnce(action: Action, job: JobContext, options: Parameters<typeof startBundle>[1]): Promise<BundleRun> {
  if (control.stopped) throw new Error('the demo was interrupted');
  const started = startBundle(join(job.root, action, 'dist/index.js'), { cwd: job.workspace, timeoutMs: 240_000, ...options });
  const child = await started.spawned;
  running.add(child);
  try {
    return await started.done;
  } finally {
    running.delete(child);
  }
}

export async function runAction(action: Action, job: JobContext, inputs: Record<string, string>, event?: RunnerEvent): Promise<ActionRun> {
  const yml = await readActionYml(job.root, action);
  if (yml.runs.using !== 'node24') throw new Error(`${action}/action.yml runs on ${yml.runs.using}; the demo runs bundles on Node 24 only`);
  const all = { ...defaults(yml), ...inputs };
  const common = { inputs: all, env: job.env, ...(event ? { event } : {}) };
  const main = await runOnce(action, job, common);
  if (!yml.runs.post) return { main };
  // A runner runs post steps at the end of the job, even when main failed, with the state main saved;
  // the demo runs each right after its main step so a step's story is told in one place.
  const post = await runOnce(action, job, { ...common, phase: 'post', state: main.state });
  return { main, post };
}
