import type { Readable, Writable } from 'node:stream';
import type { Command } from './command';

export interface RunOptions {
  /** Seconds before the remote process group is terminated. */
  timeoutSeconds?: number;
  /** Data streamed to the script's stdin; without it the script reads /dev/null. */
  stdin?: Readable | string | Buffer;
  /** Stream stdout here (with backpressure) instead of collecting it. */
  stdout?: Writable;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
  /** Human words for logs, plans and errors, e.g. "pull images". */
  description?: string;
  /**
   * Show the output while the command runs, line by line, under `description` (where the
   * executor has somewhere to show it): `all`, or `stderr` for a step whose stdout is data.
   * Collected output and errors are the same either way.
   */
  live?: 'all' | 'stderr';
}

export interface ExecResult {
  code: number;
  signal?: string;
  stdout: string;
  stderr: string;
}

export interface UploadOptions {
  /** File mode, e.g. 0o600 for env files. */
  mode: number;
  description?: string;
  /** Contents are secret: plans show the size, never the contents. */
  secret?: boolean;
}

/** Runs command builders' output somewhere: over SSH for real, or into a plan for dry-run. */
export interface Executor {
  run(commands: readonly Command[], options?: RunOptions): Promise<ExecResult>;
  upload(remotePath: string, content: string | Buffer, options: UploadOptions): Promise<void>;
}

export class RemoteCommandError extends Error {
  constructor(
    readonly description: string,
    readonly result: ExecResult,
  ) {
    const detail = result.stderr.trim().split('\n').slice(-20).join('\n');
    super(`${description} failed with exit code ${result.code}${detail ? `:\n${detail}` : ''}`);
    this.name = 'RemoteCommandError';
  }
}

export class RemoteTimeoutError extends Error {
  constructor(
    readonly description: string,
    readonly timeoutSeconds: number,
  ) {
    super(`${description} did not finish within ${timeoutSeconds}s; its processes on the server were stopped`);
    this.name = 'RemoteTimeoutError';
  }
}
