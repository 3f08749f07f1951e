import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { script, type Command } from '@skiff/shell';

export type RunScript = (commands: readonly Command[], env?: Record<string, string>) => SpawnSyncReturns<string>;

/**
 * Runs command builders' scripts in a real bash, strict mode and all, against a `docker` that is
 * `body` (a bash script) first on PATH: how a remote script behaves when docker answers oddly.
 */
export async function withFakeDocker(body: string, use: (run: RunScript, dir: string) => Promise<void> | void): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-fake-docker-'));
  try {
    await writeFile(join(dir, 'docker'), `#!/bin/bash\n${body}`, { mode: 0o755 });
    await use((commands, env = {}) => spawnSync('bash', ['-c', script(commands)], { env: { PATH: `${dir}:/usr/bin:/bin`, ...env }, encoding: 'utf8' }), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
