import * as exec from '@actions/exec';
import type { Argv } from './commands';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunCommandOptions {
  /** Written to the program's stdin (how the registry password travels). */
  input?: string;
  /** Keep the output out of the log (it is still returned). */
  quiet?: boolean;
  /** Added to the runner's environment. */
  env?: Record<string, string>;
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean;
}

export class CommandError extends Error {
  constructor(
    readonly argv: Argv,
    readonly result: CommandResult,
  ) {
    const tail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-20).join('\n');
    super(`${argv.slice(0, 3).join(' ')} exited ${result.code}${tail ? `:\n${tail}` : ''}`);
    this.name = 'CommandError';
  }
}

/** Runs one argv on the runner through @actions/exec (no shell), streaming its output to the log unless quiet. */
export async function runCommand(argv: Argv, options: RunCommandOptions = {}): Promise<CommandResult> {
  const [file, ...args] = argv;
  const env = options.env === undefined ? undefined : { ...(process.env as Record<string, string>), ...options.env };
  const output = await exec.getExecOutput(file!, args, {
    ignoreReturnCode: true,
    silent: options.quiet ?? false,
    ...(options.input === undefined ? {} : { input: Buffer.from(options.input) }),
    ...(env === undefined ? {} : { env }),
  });
  const result = { code: output.exitCode, stdout: output.stdout, stderr: output.stderr };
  if (result.code !== 0 && !options.allowFailure) throw new CommandError(argv, result);
  return result;
}
