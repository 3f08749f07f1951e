import { expect } from 'vitest';
import type { SshConnection } from '@skiff/ssh';
import { containerEvents } from '../src/container-events';

const BUSYBOX = 'skiff-testbed/busybox:1';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The health gate's wake-up calls against a real engine, over real SSH: a container turning
 * healthy and one dying wake the watch, another container's health does not, and stopping the
 * watch leaves no `docker events` on the server. `docker` runs the docker CLI against the
 * server's engine.
 */
export async function expectEventsWakeTheGate(connection: SshConnection, docker: (args: readonly string[]) => Promise<string>, name: string): Promise<void> {
  const start = async (suffix: string) =>
    (
      await docker([
        'run',
        '-d',
        '--name',
        `${name}-${suffix}`,
        '--health-cmd',
        'test -f /tmp/ready',
        '--health-interval',
        '1s',
        '--health-retries',
        '100',
        BUSYBOX,
        'sleep',
        '300',
      ])
    ).trim();
  const health = async (id: string) => (await docker(['inspect', '--format', '{{.State.Health.Status}}', id])).trim();
  const [watched, other] = await Promise.all([start('watched'), start('other')]);
  const events = containerEvents(connection, { compose: 'v2', sudo: false }, [`container=${watched}`], 120);
  try {
    const healthy = events.after(0);
    await events.watching;
    expect(events.count()).toBe(0);

    // Another container's health is not the gate's business.
    await docker(['exec', other, 'touch', '/tmp/ready']);
    for (let i = 0; i < 100 && (await health(other)) !== 'healthy'; i++) await sleep(200);
    expect(await health(other)).toBe('healthy');
    await sleep(1500);
    expect(events.count()).toBe(0);

    await docker(['exec', watched, 'touch', '/tmp/ready']);
    await healthy;
    expect(await health(watched)).toBe('healthy');

    const died = events.after(events.count());
    await docker(['kill', watched]);
    await died;
  } finally {
    await events.stop();
    await docker(['rm', '-f', watched, other]);
  }
  const processes = (await connection.run([['ps', '-eo', 'args']])).stdout.split('\n');
  expect(processes.filter((line) => /^(sudo -n )?docker events\b/.test(line))).toEqual([]);
}
