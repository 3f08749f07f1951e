import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Executor } from '@skiff/shell';
import { LOCK_STATE, acquireLock, savedLocks } from '../src/deploy-lock';

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
