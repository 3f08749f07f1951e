import * as core from '@actions/core';
import type { Command, ExecResult, RunOptions, UploadOptions } from '@skiff/shell';
import type { SshConnection } from '@skiff/ssh';
import { WATCH_DESCRIPTION } from './container-events';

/** Steps repeated every health round, and the gate's watch (as long as the gate): their timings would drown the log. */
const QUIET = new Set(['inspect containers', 'health-command', WATCH_DESCRIPTION]);

/**
 * The connection, with each step's name and duration written to the log (slow steps are what
 * users ask about). A step that runs beside another (the configuration read during the pull) is
 * logged in the order the steps began, not the order they ended: the log reads the same on
 * every run, and in the order of the dry run's plan.
 */
export function timedServer(server: SshConnection, prefix = ''): Pick<SshConnection, 'run' | 'upload' | 'forwardLocalPort'> {
  const waiting: { line?: string }[] = [];
  const flush = () => {
    while (waiting[0]?.line !== undefined) core.info(waiting.shift()!.line!);
  };
  const time = async <T>(description: string | undefined, work: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    const entry: { line?: string } = {};
    if (description && !QUIET.has(description)) waiting.push(entry);
    try {
      return await work();
    } finally {
      entry.line = `${prefix}${description} (${((performance.now() - start) / 1000).toFixed(2)} s)`;
      flush();
    }
  };
  return {
    run: (commands: readonly Command[], options?: RunOptions): Promise<ExecResult> => time(options?.description, () => server.run(commands, options)),
    upload: (path: string, content: string | Buffer, options: UploadOptions): Promise<void> =>
      time(options.description, () => server.upload(path, content, options)),
    forwardLocalPort: (host: string, port: number) => server.forwardLocalPort(host, port),
  };
}
