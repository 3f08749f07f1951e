import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sh, spawnDaemon, stopPid, tempDir, waitFor } from './proc';
import { requirePart } from './parts';
import { freePort, randomPassword } from './sshd';

export interface Redis {
  host: '127.0.0.1';
  port: number;
  password: string;
  dir: string;
  logPath: string;
  stop(): Promise<void>;
}

/** redis-server on a loopback port with requirepass; every file it could write stays in a temp dir. */
export async function startRedis(): Promise<Redis> {
  await requirePart('redis-server', ['redis-server', '--version']);
  await requirePart('redis-cli', ['redis-cli', '--version']);
  const dir = await tempDir('redis');
  const port = await freePort();
  const password = randomPassword();
  const logPath = join(dir.path, 'redis.log');
  const args = [
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--requirepass',
    password,
    '--protected-mode',
    'yes',
    '--daemonize',
    'no',
    '--dir',
    dir.path,
    '--logfile',
    logPath,
    // No RDB/AOF: tests want a blank server each time and nothing on disk after stop().
    '--save',
    '',
    '--appendonly',
    'no',
  ];
  let pid: number;
  try {
    pid = spawnDaemon('redis-server', 'redis-server', args);
  } catch (error) {
    await dir.remove();
    throw error;
  }
  const stop = async () => {
    await stopPid(pid);
    await dir.remove();
  };
  try {
    await waitFor(
      `redis on 127.0.0.1:${port}`,
      async () => {
        const out = await sh('redis-cli', ['-h', '127.0.0.1', '-p', String(port), '--no-auth-warning', '-a', password, 'PING'], { timeoutMs: 5_000 });
        return out.trim() === 'PONG';
      },
      15_000,
    );
  } catch (error) {
    const logTail = await readFile(logPath, 'utf8').then(
      (t) => t.slice(-2000),
      () => '',
    );
    await stop();
    throw new Error(`${(error as Error).message}\n${logTail}`);
  }
  return { host: '127.0.0.1', port, password, dir: dir.path, logPath, stop };
}
