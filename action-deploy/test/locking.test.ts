import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Executor } from '@skiff/shell';
import { LOCK_STATE, acquireLock, savedLocks, takeLockWhereDeployed } from '../src/deploy-lock';
import { probeBesideLock } from '../src/each-host';
import type { DeployInputs } from '../src/deploy-inputs';

/** What core.saveState writes: `::save-state name=deploy-lock::VALUE` when GITHUB_STATE is not set. */
let written: string[] = [];
const saved = { ...process.env };

beforeEach(() => {
  written = [];
  delete process.env.GITHUB_STATE;
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  process.env = { ...saved };
});

const lastState = () => {
  const line = written.filter((text) => text.startsWith(`::save-state name=${LOCK_STATE}::`)).at(-1)!;
  return line.slice(`::save-state name=${LOCK_STATE}::`.length).trim();
};

const answering = (stdout: string): Executor =>
  ({
    run: async () => ({ code: 0, stdout, stderr: '' }),
    upload: async () => undefined,
    exec: async () => ({ code: 0, stdout, stderr: '' }),
  }) as unknown as Executor;

const owner = { token: 'tok', actor: 'a', runUrl: '', release: 'r', startedAt: 'now' };

describe('deploy locks in the step state', () => {
  it('holds one entry per host while held, so the post step can free each; empties when all are released', async () => {
    const a = await acquireLock(answering('acquired\n'), '/opt/a', owner, { timeoutSeconds: 1, ttlSeconds: 60, host: 'root@h1:22' });
    const b = await acquireLock(answering('acquired\n'), '/opt/b', owner, { timeoutSeconds: 1, ttlSeconds: 60, host: 'root@h2:22' });
    expect(JSON.parse(lastState())).toEqual([
      { host: 'root@h1:22', projectDir: '/opt/a', token: 'tok' },
      { host: 'root@h2:22', projectDir: '/opt/b', token: 'tok' },
    ]);
    await a.release();
    expect(JSON.parse(lastState())).toEqual([{ host: 'root@h2:22', projectDir: '/opt/b', token: 'tok' }]);
    await b.release();
    expect(lastState()).toBe('');
  });

  it('reads the list and the single object a 0.2 main step saved', () => {
    process.env[`STATE_${LOCK_STATE}`] = JSON.stringify([{ host: 'root@h1:22', projectDir: '/opt/a', token: 't' }]);
    expect(savedLocks()).toEqual([{ host: 'root@h1:22', projectDir: '/opt/a', token: 't' }]);
    process.env[`STATE_${LOCK_STATE}`] = JSON.stringify({ projectDir: '/opt/a', token: 't' });
    expect(savedLocks()).toEqual([{ projectDir: '/opt/a', token: 't' }]);
    process.env[`STATE_${LOCK_STATE}`] = '';
    expect(savedLocks()).toEqual([]);
  });
});

describe('the lock taken beside the Compose probe', () => {
  /** A server that answers each step by its description, and remembers what ran. */
  const server = (answers: Record<string, string>) => {
    const ran: string[] = [];
    const executor = {
      run: async (_commands: unknown, options: { description: string }) => {
        ran.push(options.description);
        const key = Object.keys(answers).find((prefix) => options.description.startsWith(prefix));
        if (key === undefined) throw new Error(`unexpected step ${options.description}`);
        return { code: 0, stdout: answers[key]!, stderr: '' };
      },
    } as unknown as Executor;
    return { executor, ran };
  };
  const inputs = { projectDir: '/opt/app', sudo: false } as DeployInputs;
  const PROBE_OK = 'v2\n\nengine-ok\n';

  it('where releases exist, holds the lock and the releases read when the probe passes', async () => {
    const { executor, ran } = server({
      'find docker compose': PROBE_OK,
      'take the deploy lock, read releases': 'acquired\nrelease r1\ncurrent r1\n',
      'release the deploy lock': 'released\n',
    });
    const opened = await probeBesideLock(executor, inputs, owner, 'root@h1:22');
    expect(opened.cli).toEqual({ compose: 'v2', sudo: false });
    expect(opened.early?.then).toBe('release r1\ncurrent r1\n');
    expect(JSON.parse(lastState())).toEqual([{ host: 'root@h1:22', projectDir: '/opt/app', token: 'tok' }]);
    expect(ran.sort()).toEqual(['find docker compose', 'take the deploy lock, read releases']);
    await opened.early!.lock.release();
    expect(lastState()).toBe('');
  });

  it('on a server never deployed to (or a lock held), leaves the lock to the full attempt after the probe', async () => {
    for (const answer of ['not-deployed\n', 'busy\n']) {
      const { executor } = server({ 'find docker compose': PROBE_OK, 'take the deploy lock': answer });
      const opened = await probeBesideLock(executor, inputs, owner, 'root@h1:22');
      expect(opened.early).toBeUndefined();
      expect(lastState()).toBe('');
    }
  });

  it('gives the lock back when the read after taking it fails, and fails with that error', async () => {
    const ran: string[] = [];
    const executor = {
      run: async (_commands: unknown, options: { description: string }) => {
        ran.push(options.description);
        if (options.description.startsWith('take the deploy lock')) throw new Error('read releases failed with exit code 2');
        return { code: 0, stdout: 'released\n', stderr: '' };
      },
    } as unknown as Executor;
    await expect(
      takeLockWhereDeployed(executor, '/opt/app', '/opt/app/releases', owner, { commands: [], what: 'read releases' }, { host: 'root@h1:22' }),
    ).rejects.toThrow('read releases failed with exit code 2');
    expect(ran).toEqual(['take the deploy lock, read releases', 'release the deploy lock']);
    expect(lastState()).toBe('');
  });

  it("gives the lock back when the probe fails, and fails with the probe's error", async () => {
    const { executor, ran } = server({
      'find docker compose': 'none\ndocker: command not found\nengine-failed\n',
      'take the deploy lock, read releases': 'acquired\n',
      'release the deploy lock': 'released\n',
    });
    await expect(probeBesideLock(executor, inputs, owner, 'root@h1:22')).rejects.toThrow(/Neither `docker compose` \(v2\) nor `docker-compose` \(v1\) works/);
    expect(ran).toContain('release the deploy lock');
    expect(lastState()).toBe('');
  });
});
