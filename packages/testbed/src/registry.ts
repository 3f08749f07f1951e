import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, spawnDaemon, stopPid, tempDir, waitFor } from './proc';
import { requirePart } from './parts';
import { freePort, randomPassword } from './sshd';

export interface Registry {
  /** `127.0.0.1:PORT`: docker treats loopback registries as insecure-allowed, so no TLS. */
  address: string;
  username: string;
  password: string;
  dir: string;
  logPath: string;
  stop(): Promise<void>;
}

/**
 * Pushes a local image with a login of the test's own, in a Docker config that is removed again:
 * the engine and root's ~/.docker never hold it, so a deploy pulling the image needs its own.
 */
export async function pushWithOwnLogin(registry: Pick<Registry, 'address' | 'username' | 'password'>, image: string): Promise<void> {
  const config = await tempDir('registry-push');
  try {
    await sh('docker', ['--config', config.path, 'login', '-u', registry.username, '--password-stdin', registry.address], { input: registry.password });
    await sh('docker', ['--config', config.path, 'push', '-q', image], { timeoutMs: 120_000 });
  } finally {
    await config.remove();
  }
}

/**
 * A real distribution registry with htpasswd auth, standing in for GHCR; `anonymous` leaves auth
 * off, as a public registry's pulls (and a registry mirror) need.
 */
export async function startRegistry(options: { anonymous?: boolean } = {}): Promise<Registry> {
  await requirePart('docker-registry', ['docker-registry', '--version']);
  await requirePart('htpasswd (apache2-utils)', ['sh', '-c', 'command -v htpasswd']);
  const dir = await tempDir('registry');
  const p = (name: string) => join(dir.path, name);
  const username = 'skiff';
  const password = randomPassword();
  const port = await freePort();
  const address = `127.0.0.1:${port}`;

  await writeFile(p('htpasswd'), await sh('htpasswd', ['-Bbn', username, password]));
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${p('data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${address}`,
    `  secret: ${randomPassword()}`,
    ...(options.anonymous ? [] : ['auth:', '  htpasswd:', '    realm: skiff-testbed', `    path: ${p('htpasswd')}`]),
  ];
  await writeFile(p('config.yml'), `${config.join('\n')}\n`);

  const logPath = p('registry.log');
  let pid: number;
  try {
    pid = spawnDaemon('docker-registry', 'docker-registry', ['serve', p('config.yml')], { logPath });
  } catch (error) {
    await dir.remove();
    throw error;
  }
  const stop = async () => {
    await stopPid(pid);
    await dir.remove();
  };
  try {
    // 401 (not 200) proves both that it listens and that auth is on.
    const expected = options.anonymous ? 200 : 401;
    await waitFor(`registry on ${address} (log: ${logPath})`, async () => (await fetch(`http://${address}/v2/`)).status === expected, 15_000);
  } catch (error) {
    const logTail = await readFile(logPath, 'utf8').then(
      (t) => t.slice(-2000),
      () => '',
    );
    await stop();
    throw new Error(`${(error as Error).message}\n${logTail}`);
  }
  return { address, username, password, dir: dir.path, logPath, stop };
}
