import { spawn } from 'node:child_process';
import { access, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { runnerEnv, tempDir, type SshdServer, startSshd } from '@skiff/testbed';
import type { Benchmark } from './harness';
import { STRICT_TRUE, sshArgs, timedOk, timedRun } from './lib';

// Valid in form, matches no key: the accept-only server never gets as far as showing one.
const ANY_FINGERPRINT = `SHA256:${'A'.repeat(43)}`;
const BUNDLE = 'action-deploy/dist/index.js';

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    });
  });
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable with `date +%s%N` on this machine. */
function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Makes every login to `server` first append a CLOCK_REALTIME stamp to `stampFile`, then run what
 * the client asked for: the earliest moment a remote command starts, seen from the server's side.
 */
async function stampLogins(server: SshdServer, stampFile: string): Promise<void> {
  const publicKey = (await readFile(join(server.dir, 'user_key.pub'), 'utf8')).trim();
  const forced = `date +%s%N >> ${stampFile}; eval "$SSH_ORIGINAL_COMMAND"`.replaceAll('"', '\\"');
  await writeFile(join(server.dir, 'authorized_keys'), `command="${forced}" ${publicKey}\n`);
}

async function firstStampMs(stampFile: string, output: () => string): Promise<number> {
  const first = (await readFile(stampFile, 'utf8').catch(() => '')).split('\n')[0]?.trim();
  if (!first || !/^\d+$/.test(first)) throw new Error(`no remote command ran (no stamp in ${stampFile}); output:\n${output().trim()}`);
  return Number(BigInt(first) / 1000n) / 1000;
}

export const bundleColdStart: Benchmark = {
  name: 'bundle-cold-start',
  description: 'process start of the built action-deploy bundle under Node 24 until it reaches the server',
  async setup({ root, node24 }) {
    const bundle = join(root, BUNDLE);
    await access(bundle).catch(() => {
      throw new Error(`${BUNDLE} is missing; run node scripts/build.mjs`);
    });

    const work = await tempDir('bench-cold-start');
    const acceptor = createServer();
    let server: SshdServer | undefined;
    const teardown = async () => {
      await new Promise<void>((resolve) => acceptor.close(() => resolve()));
      await server?.stop();
      await work.remove();
    };

    try {
      let onAccept: ((at: number) => void) | undefined;
      acceptor.on('connection', (socket) => {
        const at = performance.now();
        socket.destroy();
        onAccept?.(at);
      });
      const acceptPort = await listen(acceptor);

      server = await startSshd();
      const sshd = server;
      const stampFile = join(sshd.dir, 'stamps');
      await stampLogins(sshd, stampFile);
      const plainSsh = await sshArgs(sshd, ['-o', 'ControlMaster=no', '-o', 'ControlPath=none']);

      // action-deploy checks its compose file before it connects; the image is never pulled (the first command is what is timed).
      await writeFile(join(work.path, 'compose.yaml'), 'services:\n  web:\n    image: 127.0.0.1:1/skiff-bench/web:1\n');
      // Whatever the run gets to do on the server stays in the bench's own directory.
      const projectDir = join(work.path, 'project');
      // The runner's view of a step: INPUT_* variables and fresh file-command files, nothing else from our environment.
      const { env: toAcceptor } = await runnerEnv(work.path, {
        inputs: {
          'project-dir': projectDir,
          host: '127.0.0.1',
          port: String(acceptPort),
          username: 'root',
          key: sshd.privateKey,
          fingerprint: ANY_FINGERPRINT,
          'connect-timeout': '2',
        },
      });
      const { env: toSshd } = await runnerEnv(work.path, {
        inputs: {
          'project-dir': projectDir,
          host: sshd.host,
          port: String(sshd.port),
          username: sshd.username,
          key: sshd.privateKey,
          fingerprint: sshd.hostFingerprint,
          'connect-timeout': '10',
        },
      });

      return {
        teardown,
        cases: [
          {
            name: 'bundle-cold-start',
            what: `spawn(node24 ${BUNDLE}) until a local TCP server accepts its connection`,
            ours: async () => {
              const accepted = new Promise<number>((resolve) => (onAccept = resolve));
              const start = performance.now();
              const child = spawn(node24, [bundle], { cwd: work.path, env: toAcceptor, stdio: ['ignore', 'pipe', 'pipe'] });
              let output = '';
              child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
              child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
              const exited = new Promise<number | null>((resolve, reject) => {
                child.on('error', reject);
                child.on('close', resolve);
              });
              let timer: NodeJS.Timeout | undefined;
              const outcome = await Promise.race([
                accepted.then((at) => ({ at })),
                exited.then((code) => ({ code })),
                new Promise<{ timedOut: true }>((resolve) => (timer = setTimeout(() => resolve({ timedOut: true }), 15_000))),
              ]);
              clearTimeout(timer);
              onAccept = undefined;
              // Only the time to connect matters; the action would go on to retry, which is not what is measured.
              child.kill('SIGKILL');
              await exited;
              if ('at' in outcome) return outcome.at - start;
              throw new Error(`the bundle ${'code' in outcome ? `exited ${outcome.code}` : 'timed out'} before connecting; output:\n${output.trim()}`);
            },
            floor: {
              label: 'node -e 0',
              what: 'spawn(node24 -e 0) until it exits (informational: the least any Node 24 action can cost)',
              measure: () => timedOk(node24, ['-e', '0'], { cwd: work.path, env: toAcceptor }),
            },
            target: { maxMs: 300 },
          },
          {
            name: 'bundle-cold-start (first command)',
            what: `spawn(node24 ${BUNDLE}) against a real sshd until its first remote command starts (server-side timestamp)`,
            ours: async () => {
              await writeFile(stampFile, '');
              const start = epochMs();
              const run = await timedRun(node24, [bundle], { cwd: work.path, env: toSshd });
              return (await firstStampMs(stampFile, () => `exit ${run.code}\n${run.output}`)) - start;
            },
            floor: {
              label: 'ssh',
              what: `spawn(ssh … "${STRICT_TRUE}") until the remote command starts (same timestamp)`,
              measure: async () => {
                await writeFile(stampFile, '');
                const start = epochMs();
                const run = await timedRun('ssh', [...plainSsh, STRICT_TRUE]);
                return (await firstStampMs(stampFile, () => `exit ${run.code}\n${run.output}`)) - start;
              },
            },
          },
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
