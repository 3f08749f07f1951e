import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { bundlePath, runBundle, type BundleRun, type RunnerEvent } from '@skiff/testbed';

/** Runs action-build-push's committed bundle the way the runner does (see @skiff/testbed's runner). */
const ROOT = resolve(import.meta.dirname, '../..');
const BUNDLE = bundlePath('action-build-push');

export interface RunOptions {
  cwd: string;
  /** The event: name, ref, sha and the webhook payload written to GITHUB_EVENT_PATH. */
  event: RunnerEvent;
  env?: Record<string, string>;
  /** State from the main phase, to run the post phase (STATE_*). */
  state?: Record<string, string>;
  /** Wraps the node argv, e.g. to hide docker CLI plugins. */
  wrap?: (argv: string[]) => string[];
}

export function runBuildPush(inputs: Record<string, string>, options: RunOptions): Promise<BundleRun> {
  return runBundle(BUNDLE, { inputs, ...options });
}

export async function eventPayload(name: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(join(ROOT, 'action-build-push/test/fixtures/events', `${name}.json`), 'utf8')) as Record<string, any>;
}

export const CONTEXTS = join(ROOT, 'action-build-push/test/fixtures/contexts');
