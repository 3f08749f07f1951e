import * as core from '@actions/core';
import type { Command, ExecResult, RunOptions, UploadOptions } from '@skiff/shell';
import type { SshConnection } from '@skiff/ssh';

/** Steps repeated every health round: their timings would drown the log. */
const QUIET = new Set(['inspect containers', 'health-command']);

/** The connection, with each step's name and duration written to the log (slow steps are what users ask about). */
export function timedServer(server: SshConnection, prefix = ''): Pick<SshConnection, 'run' | 'upload' | 'forwardLocalPort'> {
  const time = async <T>(description: string | undefined, work: () => Promise<T>): Promise<T> => {
    const start = performance.now();
    try {
      return await work();
    } finally {
      if (description && !QUIET.has(description)) core.info(`${prefix}${description} (${((performance.now() - start) / 1000).toFixed(2)} s)`);
    }
  };
  return {
    run: (commands: readonly Command[], options?: RunOptions): Promise<ExecResult> => time(options?.description, () => server.run(commands, options)),
    upload: (path: string, content: string | Buffer, options: UploadOptions): Promise<void> =>
      time(options.description, () => server.upload(path, content, options)),
    forwardLocalPort: (host: string, port: number) => server.forwardLocalPort(host, port),
  };
}
