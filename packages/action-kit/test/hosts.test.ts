import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SshConnectOptions } from '@skiff/ssh';
import { InputError, forEachHost, parseHostEntry, parseHostList, readSshInputs, readSshTargets } from '../src/index';

const savedEnv = { ...process.env };
const FP = 'SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8';

function setInputs(values: Record<string, string>): void {
  for (const [name, value] of Object.entries(values)) process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
}

beforeEach(() => {
  vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
});
afterEach(() => {
  vi.restoreAllMocks();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
});

describe('parseHostEntry', () => {
  it.each([
    ['web1.example.com', { host: 'web1.example.com' }],
    ['10.0.0.5', { host: '10.0.0.5' }],
    ['deploy@10.0.0.5:2222', { host: '10.0.0.5', port: 2222, username: 'deploy' }],
    ['[2001:db8::1]:22', { host: '2001:db8::1', port: 22 }],
    ['root@[2001:db8::1]', { host: '2001:db8::1', username: 'root' }],
    ['2001:db8::1', { host: '2001:db8::1' }],
    ['host.example.', { host: 'host.example.' }],
  ])('%s', (entry, expected) => {
    expect(parseHostEntry(entry)).toEqual(expected);
  });

  it.each(['', 'a b', 'host:0', 'host:65536', 'host:x', '[10.0.0.1]:22', '[2001:db8::1', 'us er@host', 'http://host', '-bad.example', 'host/path'])(
    'rejects %j',
    (entry) => {
      expect(parseHostEntry(entry)).toBeUndefined();
    },
  );
});

describe('parseHostList', () => {
  it('splits on newlines and commas, keeping order', () => {
    expect(parseHostList('a.example, b.example\n\n  deploy@c.example:2200 \n')).toEqual([
      { host: 'a.example' },
      { host: 'b.example' },
      { host: 'c.example', port: 2200, username: 'deploy' },
    ]);
  });

  it('names every bad entry at once', () => {
    expect(() => parseHostList('good.example, bad host, x:99999')).toThrow(/"bad host, x:99999"/);
  });

  it('refuses a host listed twice', () => {
    expect(() => parseHostList('a.example\nA.example')).toThrow(InputError);
  });
});

describe('readSshTargets', () => {
  it('gives one target per host with per-host user and port overrides', () => {
    setInputs({
      host: 'a.example\nops@[2001:db8::2]:2222',
      username: 'deploy',
      port: '2200',
      key: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----',
      fingerprint: FP,
    });
    const targets = readSshTargets();
    expect(targets.map(({ host, port, username }) => ({ host, port, username }))).toEqual([
      { host: 'a.example', port: 2200, username: 'deploy' },
      { host: '2001:db8::2', port: 2222, username: 'ops' },
    ]);
    expect(targets[1]!.hostKey).toEqual({ kind: 'fingerprint', fingerprints: [FP] });
  });

  it('reports a bad host together with the other input problems', () => {
    setInputs({ host: 'a.example, b@', username: 'deploy' });
    try {
      readSshTargets();
      throw new Error('expected errors');
    } catch (error) {
      expect((error as InputError).inputs).toEqual(expect.arrayContaining(['host', 'key', 'password']));
    }
  });

  it('leaves the single-host reader as it was: a list is not a host there', () => {
    setInputs({ host: 'a.example, b.example', username: 'deploy', password: 'pw', fingerprint: FP });
    expect(() => readSshInputs()).toThrow(/Input "host" must be a hostname or IP address/);
  });
});

const targets = (n: number): SshConnectOptions[] =>
  Array.from({ length: n }, (_, i) => ({ host: `h${i}`, port: 22, username: 'u', hostKey: { kind: 'insecure-ignore' } }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('forEachHost', () => {
  it('runs serially in order and stops at the first failure', async () => {
    const order: string[] = [];
    const results = await forEachHost(targets(4), { parallel: false }, async (target) => {
      order.push(target.host);
      if (target.host === 'h1') throw new Error('boom');
      return target.host.toUpperCase();
    });
    expect(order).toEqual(['h0', 'h1']);
    expect(results.map((r) => r.status)).toEqual(['ok', 'failed', 'skipped', 'skipped']);
    expect(results[0]!.value).toBe('H0');
    expect(results[1]!.error?.message).toBe('boom');
    expect(results[1]!.label).toBe('u@h1:22');
  });

  it('runs in parallel up to the limit and reports every host', async () => {
    let running = 0;
    let peak = 0;
    const results = await forEachHost(targets(7), { parallel: true, maxParallel: 3 }, async (target) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(30);
      running--;
      if (target.host === 'h2') throw new Error('down');
      return 1;
    });
    expect(peak).toBe(3);
    expect(results.map((r) => r.status)).toEqual(['ok', 'ok', 'failed', 'ok', 'ok', 'ok', 'ok']);
    expect(results.every((r) => r.durationMs >= 25)).toBe(true);
  });

  it('in parallel with stopOnFailure starts no new host and aborts the signal', async () => {
    const seen: boolean[] = [];
    const results = await forEachHost(targets(5), { parallel: true, maxParallel: 2, stopOnFailure: true }, async (target, { signal }) => {
      if (target.host === 'h0') throw new Error('first');
      await sleep(30);
      seen.push(signal.aborted);
      return 1;
    });
    expect(results.map((r) => r.status)).toEqual(['failed', 'ok', 'skipped', 'skipped', 'skipped']);
    expect(seen).toEqual([true]);
  });
});
