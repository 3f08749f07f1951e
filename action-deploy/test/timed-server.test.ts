import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Command, ExecResult, RunOptions } from '@skiff/shell';
import type { SshConnection } from '@skiff/ssh';
import { pullImages, type Deployer, type Release } from '../src/deploy';
import type { DeployInputs } from '../src/deploy-inputs';
import { timedServer } from '../src/timed-server';

let written: string[] = [];
beforeEach(() => {
  written = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
});
afterEach(() => vi.restoreAllMocks());

const later = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A server whose steps take as long as `durations` says, recording when each began and ended. */
function slowServer(durations: Record<string, number>) {
  const events: string[] = [];
  const server = {
    async run(_commands: readonly Command[], options?: RunOptions): Promise<ExecResult> {
      const description = options?.description ?? 'run';
      events.push(`begin ${description}`);
      await later(durations[description] ?? 0);
      events.push(`end ${description}`);
      return { code: 0, stdout: `output of ${description}`, stderr: '' };
    },
    async upload() {},
    async forwardLocalPort() {
      throw new Error('not used');
    },
  } as unknown as SshConnection;
  return { server, events };
}

const logged = () =>
  written
    .join('')
    .split('\n')
    .filter((line) => / \(\d+\.\d\d s\)$/.test(line))
    .map((line) => line.replace(/ \(\d+\.\d\d s\)$/, ''));

describe('timedServer', () => {
  it('logs steps that run at once in the order they began, whichever ends first', async () => {
    const { server, events } = slowServer({ slow: 120, quick: 10 });
    const timed = timedServer(server);
    const slow = timed.run([], { description: 'slow' });
    const quick = timed.run([], { description: 'quick' });
    await quick;
    expect(events).toEqual(['begin slow', 'begin quick', 'end quick']);
    // The quick step ended, but the one begun before it has not: its line waits.
    expect(logged()).toEqual([]);
    await slow;
    expect(logged()).toEqual(['slow', 'quick']);
    await timed.run([], { description: 'next' });
    expect(logged()).toEqual(['slow', 'quick', 'next']);
  });

  it('a failing step is logged too, and does not hold back the steps after it', async () => {
    const { server } = slowServer({});
    const failing = {
      ...server,
      run: async (commands: readonly Command[], options?: RunOptions) => {
        if (options?.description === 'fails') throw new Error('exit 1');
        return server.run(commands, options);
      },
    } as unknown as SshConnection;
    const timed = timedServer(failing);
    await expect(timed.run([], { description: 'fails' })).rejects.toThrow('exit 1');
    await timed.run([], { description: 'after' });
    expect(logged()).toEqual(['fails', 'after']);
  });
});

describe('pullImages', () => {
  const release = (): Release => ({
    id: 'r1',
    project: { name: 'shop', directory: '/opt/shop', files: ['/opt/shop/releases/r1/compose.yaml'] },
    composeFiles: ['compose.yaml'],
    hasEnv: false,
    hasFiles: false,
    built: [],
    images: {},
    unpinned: [],
  });
  const deployer = (server: SshConnection): Deployer => ({
    server,
    cli: { compose: 'v2', sudo: false },
    inputs: { composeServices: [], pullTimeoutSeconds: 60 } as unknown as DeployInputs,
    ctx: { actor: 'a', sha: 'abc', ref: 'refs/heads/main', runUrl: '', token: 't' },
  });

  it('reads the compose configuration while the pull runs, for the digests step', async () => {
    const { server, events } = slowServer({ 'pull images (pull-timeout)': 150, 'read the compose configuration': 20 });
    const pulled = release();
    await pullImages(deployer(server), pulled);
    expect(events.indexOf('begin read the compose configuration')).toBeLessThan(events.indexOf('end pull images (pull-timeout)'));
    await expect(pulled.configRead).resolves.toBe('output of read the compose configuration');
  });

  it('a pull that fails is the error, whatever the configuration read does', async () => {
    const { server } = slowServer({});
    const failing = {
      ...server,
      run: async (commands: readonly Command[], options?: RunOptions) => {
        await later(5);
        throw new Error(`${options?.description} failed: unauthorized`);
      },
    } as unknown as SshConnection;
    await expect(pullImages(deployer(failing), release())).rejects.toThrow(/pull images \(pull-timeout\) failed: unauthorized[\s\S]*registry-username/);
  });
});
