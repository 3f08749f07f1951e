import { readdir } from 'node:fs/promises';
import { expect } from 'vitest';
import { runBundle, type BundleRun, type S3Server } from '@skiff/testbed';

/** What the managed-database tests share: the bundle run as the runner runs it, with its own RUNNER_TEMP. */
export function runnerSide(runnerTemp: () => string) {
  return {
    backup: (inputs: Record<string, string>, env: Record<string, string> = {}) =>
      runBundle('action-backup', { inputs, env: { RUNNER_TEMP: runnerTemp(), ...env }, timeoutMs: 400_000 }),

    /** No secret in the log (but the runner's own mask commands), the summary, or a file left in RUNNER_TEMP. */
    expectNoLeak: async (run: BundleRun, secrets: readonly string[]): Promise<void> => {
      for (const secret of secrets) {
        expect(run.stdout.split('\n').filter((line) => line.includes(secret) && !line.startsWith('::add-mask::'))).toEqual([]);
        expect(run.summary).not.toContain(secret);
      }
      expect(await readdir(runnerTemp())).toEqual([]);
    },
  };
}

export function s3Destination(s3: S3Server, prefix: string): Record<string, string> {
  return {
    destination: 's3',
    's3-endpoint': s3.endpoint,
    's3-region': s3.region,
    's3-bucket': s3.bucket,
    's3-prefix': prefix,
    's3-access-key-id': s3.accessKeyId,
    's3-secret-access-key': s3.secretAccessKey,
  };
}
