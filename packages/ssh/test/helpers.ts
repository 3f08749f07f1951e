import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import { NODE_BUNDLE_OPTIONS } from '../../../scripts/bundle-options.mjs';
import { sshdConnectOptions } from '@skiff/testbed';

/** Test sshd login options: user key, host key pinned. */
export const connectOptions = sshdConnectOptions;

/** Bundles a TypeScript fixture into one runnable ESM file (the same way actions are bundled). */
export async function bundleFixture(entry: string, outfile: string): Promise<string> {
  await esbuild.build({ ...NODE_BUNDLE_OPTIONS, entryPoints: [entry], outfile, logLevel: 'silent' });
  return outfile;
}

export const fixture = (name: string) => join(import.meta.dirname, 'fixtures', name);

/** Processes on this machine whose command line contains `marker` (the test sshd runs locally). */
export function processesMatching(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', marker], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line && !line.includes('pgrep'));
  } catch {
    return [];
  }
}
