import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import type { SshdServer } from '@skiff/testbed';
import type { SshConnectOptions } from '../src/index';

export function connectOptions(server: SshdServer, overrides: Partial<SshConnectOptions> = {}): SshConnectOptions {
  return {
    host: server.host,
    port: server.port,
    username: server.username,
    privateKey: server.privateKey,
    hostKey: { kind: 'known-hosts', knownHosts: `${server.knownHostsLine}\n` },
    connectTimeoutSeconds: 10,
    attempts: 1,
    ...overrides,
  };
}

/** Bundles a TypeScript fixture into one runnable ESM file (the same way actions are bundled). */
export async function bundleFixture(entry: string, outfile: string): Promise<string> {
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['*.node', 'cpu-features'],
    logLevel: 'silent',
    banner: {
      js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url); import { fileURLToPath as __fu } from 'node:url'; import { dirname as __dn } from 'node:path'; const __filename = __fu(import.meta.url); const __dirname = __dn(__filename);",
    },
  });
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
