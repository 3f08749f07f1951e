import { join } from 'node:path';
import { SshConnection } from '@skiff/ssh';
import type { Benchmark } from './harness';
import { sshdConnectOptions, startSshd } from '@skiff/testbed';
import { STRICT_TRUE, medianOf, sshArgs, timedOk } from './lib';

// One command takes about a millisecond, so a run is the median of many to get above timer and scheduler noise.
const COMMANDS_PER_RUN = 50;
// A full connection costs a key exchange; fewer per run keeps the benchmark short.
const CONNECTS_PER_RUN = 5;

export const sshRoundTrip: Benchmark = {
  name: 'ssh-round-trip',
  description: 'one command on an open connection, and a fresh connection plus one command',
  async setup() {
    const server = await startSshd();
    const controlPath = join(server.dir, 'cm');
    let connection: SshConnection | undefined;
    let masterArgs: string[] | undefined;
    const teardown = async () => {
      await connection?.close();
      // `-O exit` asks the master to quit; without it the detached master would outlive the benchmark.
      if (masterArgs) await timedOk('ssh', [...masterArgs.slice(0, -1), '-O', 'exit', masterArgs.at(-1)!]).catch(() => undefined);
      await server.stop();
    };
    try {
      const plain = await sshArgs(server, ['-o', 'ControlMaster=no', '-o', 'ControlPath=none']);
      const muxed = await sshArgs(server, ['-o', 'ControlMaster=no', '-o', `ControlPath=${controlPath}`]);
      masterArgs = await sshArgs(server, ['-o', `ControlPath=${controlPath}`]);
      // -f backgrounds the master only after it has authenticated, so once this exits the socket is ready.
      await timedOk('ssh', [...masterArgs.slice(0, -1), '-M', '-N', '-f', masterArgs.at(-1)!], { stdio: 'ignore' });
      await timedOk('ssh', [...masterArgs.slice(0, -1), '-O', 'check', masterArgs.at(-1)!]);
      connection = await SshConnection.connect(sshdConnectOptions(server));
      const open = connection;

      return {
        teardown,
        cases: [
          {
            name: 'ssh-round-trip',
            what: `SshConnection.run([['true']]) on one open connection; per-run median of ${COMMANDS_PER_RUN} commands`,
            ours: () =>
              medianOf(COMMANDS_PER_RUN, async () => {
                const start = performance.now();
                await open.run([['true']]);
                return performance.now() - start;
              }),
            floor: {
              label: 'ssh ControlMaster',
              what: `ssh -o ControlPath=… (master started with -M -N -f) "${STRICT_TRUE}"; per-run median of ${COMMANDS_PER_RUN}`,
              measure: () => medianOf(COMMANDS_PER_RUN, () => timedOk('ssh', [...muxed, STRICT_TRUE])),
            },
            target: { maxRatio: 1.5 },
          },
          {
            name: 'ssh-round-trip (connect)',
            what: `SshConnection.connect + run([['true']]) + close, no reuse; per-run median of ${CONNECTS_PER_RUN}`,
            ours: () =>
              medianOf(CONNECTS_PER_RUN, async () => {
                const start = performance.now();
                const fresh = await SshConnection.connect(sshdConnectOptions(server));
                try {
                  await fresh.run([['true']]);
                } finally {
                  await fresh.close();
                }
                return performance.now() - start;
              }),
            floor: {
              label: 'ssh',
              what: `ssh -o ControlPath=none "${STRICT_TRUE}" (a full connection per command); per-run median of ${CONNECTS_PER_RUN}`,
              measure: () => medianOf(CONNECTS_PER_RUN, () => timedOk('ssh', [...plain, STRICT_TRUE])),
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
