import { script } from './script';
import type { Command } from './command';
import type { ExecResult, Executor, RunOptions, UploadOptions } from './executor';

export type PlanStep =
  | { kind: 'run'; description: string; script: string }
  | { kind: 'upload'; description: string; remotePath: string; mode: string; bytes: number; preview?: string };

/**
 * The dry-run executor: records exactly what would run, in order, and runs nothing.
 * Reads report success with empty output, so a plan shows the happy path.
 */
export class PlanRecorder implements Executor {
  readonly steps: PlanStep[] = [];

  async run(commands: readonly Command[], options: RunOptions = {}): Promise<ExecResult> {
    this.steps.push({ kind: 'run', description: options.description ?? 'run', script: script(commands) });
    return { code: 0, stdout: '', stderr: '' };
  }

  async upload(remotePath: string, content: string | Buffer, options: UploadOptions): Promise<void> {
    const bytes = Buffer.byteLength(content);
    this.steps.push({
      kind: 'upload',
      description: options.description ?? 'upload',
      remotePath,
      mode: options.mode.toString(8).padStart(4, '0'),
      bytes,
      ...(options.secret ? {} : { preview: content.toString().slice(0, 2000) }),
    });
  }
}
