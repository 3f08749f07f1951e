import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { sh, waitFor } from './proc';
import { requirePart } from './parts';

export const DOCKERD_LOG = '/var/log/skiff-dockerd.log';

export interface DockerInfo {
  serverVersion: string;
  composeVersion: string;
  buildxVersion: string;
}

async function engineVersion(): Promise<string | undefined> {
  try {
    return (await sh('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 15_000 })).trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * One engine per machine, shared by every test file and left running: starting dockerd is slow
 * and its images are the cache that makes later runs fast. If two processes race to start it,
 * dockerd's own pid file makes the loser exit and both end up waiting on the winner.
 */
export async function ensureDocker(): Promise<DockerInfo> {
  await requirePart('docker CLI', ['docker', '--version']);
  let serverVersion = await engineVersion();
  if (!serverVersion) {
    await requirePart('dockerd (docker.io)', ['dockerd', '--version']);
    const log = openSync(DOCKERD_LOG, 'a');
    try {
      const child = spawn('dockerd', [], { detached: true, stdio: ['ignore', log, log] });
      child.on('error', () => undefined);
      child.unref();
    } finally {
      closeSync(log);
    }
    await waitFor(`docker engine (log: ${DOCKERD_LOG})`, async () => (serverVersion = await engineVersion()) !== undefined, 90_000, 500);
  }
  await requirePart('docker compose v2 plugin', ['docker', 'compose', 'version']);
  await requirePart('docker buildx plugin', ['docker', 'buildx', 'version']);
  const composeVersion = (await sh('docker', ['compose', 'version', '--short'])).trim();
  // Bookworm's docker-compose is v1; only the v2 plugin (Debian prints "2.x", upstream "v2.x") is supported.
  if (!/^v?2\./.test(composeVersion)) {
    throw new Error(`test bed: docker compose is ${composeVersion}, need v2. Run \`bash scripts/setup-testbed.sh\` as root.`);
  }
  const buildxVersion = (await sh('docker', ['buildx', 'version'])).trim().split(/\s+/)[1] ?? '';
  return { serverVersion: serverVersion!, composeVersion, buildxVersion };
}
