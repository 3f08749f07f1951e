import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requirePart } from './parts';
import { sh, stopPid, tempDir, waitFor } from './proc';

export interface NetnsWebServer {
  url: string;
  stop(): Promise<void>;
}

/**
 * busybox httpd serving one page on ADDRESS:PORT inside a network namespace: the "web app"
 * that firewall tests try to reach from allowed and refused source addresses.
 */
export async function startNetnsWebServer(netns: string, address: string, port = 80, body = 'skiff-web-ok\n'): Promise<NetnsWebServer> {
  await requirePart('busybox', ['busybox', '--help']);
  await requirePart('curl', ['curl', '--version']);
  const dir = await tempDir('web');
  await writeFile(join(dir.path, 'index.html'), body);
  const child = spawn('ip', ['netns', 'exec', netns, 'busybox', 'httpd', '-f', '-p', `${address}:${port}`, '-h', dir.path], {
    stdio: 'ignore',
    detached: true,
  });
  child.on('error', () => undefined);
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('test bed: busybox httpd did not start');
  const url = `http://${address}:${port}/`;
  try {
    await waitFor(
      `httpd on ${address}:${port} in ${netns}`,
      async () => {
        const out = await sh('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '1', url]);
        return out === body;
      },
      10_000,
    );
  } catch (error) {
    await stopPid(pid);
    await dir.remove();
    throw error;
  }
  return {
    url,
    async stop() {
      await stopPid(pid);
      await dir.remove();
    },
  };
}
