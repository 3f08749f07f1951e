import * as core from '@actions/core';
import { InputError } from './errors';
import { codeBlock, writeSummary } from './summary';

export interface ActionPhases {
  main: () => Promise<void>;
  /** Runs as the action's `post` step (cleanup); the same bundle serves both, see runAction. */
  post?: () => Promise<void>;
}

export interface RunActionOptions {
  /** Ends the process; replaced in tests. */
  exit?: (code: number) => void;
}

const IS_POST = 'isPost';

/** The message for the log: the user's fault gets just the message, a bug also gets its stack (in debug logs). */
export function failureMessage(error: unknown): string {
  if (error instanceof InputError) return error.message;
  if (error instanceof Error) {
    if (error.stack) core.debug(error.stack);
    return error.message || error.name;
  }
  return String(error);
}

/**
 * The one entry point of every bundle. action.yml points `main` and `post` at the same
 * dist/index.js; the main phase leaves `isPost` in the step's state, which the runner hands
 * back to the post phase as STATE_isPost (the pattern actions/checkout uses).
 *
 * Exits explicitly: an SSH socket or timer left open by a failure must not keep the job
 * step hanging, and the exit status must match what was reported.
 */
export async function runAction(phases: ActionPhases, options: RunActionOptions = {}): Promise<void> {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const isPost = core.getState(IS_POST) === 'true';
  let code = 0;
  try {
    if (isPost) {
      await phases.post?.();
    } else {
      // Saved before main runs so cleanup happens even when main fails halfway.
      if (phases.post) core.saveState(IS_POST, 'true');
      await phases.main();
    }
  } catch (error) {
    const message = failureMessage(error);
    core.setFailed(message);
    // Input errors stop before anything else wrote a summary: the job page still says why.
    if (error instanceof InputError)
      await writeSummary(`### ${isPost ? 'Cleanup' : 'Nothing was done'}: the inputs need fixing\n\n${codeBlock(message)}\n`).catch(() => undefined);
    code = 1;
  }
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  exit(code === 0 && process.exitCode !== undefined && process.exitCode !== 0 ? Number(process.exitCode) : code);
}

/**
 * Waits (at most `timeoutMs`) until what was written to `stream` has reached the pipe. Node writes
 * to a full pipe asynchronously, and process.exit drops what is still queued: with 64 KiB of
 * ::add-mask:: lines ahead of it, the ::error:: line that says why the step failed was lost.
 */
export function flushed(stream: NodeJS.WriteStream, timeoutMs = 30_000): Promise<void> {
  if (stream.writableLength === 0 || stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    // Called once this empty write, and so everything queued before it, is flushed.
    stream.write('', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** The error a skeleton action ends with once it has checked everything it can. */
export function notImplemented(action: string, version: string, doing: string): Error {
  return new Error(`${action} ${version} is a skeleton: ${doing} is not implemented yet`);
}
