import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHttp, evaluateContainers, parseInspect, parseStatusRange, runGate, wakeCounter, type Probe, type ProbeOutcome } from '../src';

function scripted(name: string, outcomes: ProbeOutcome['state'][]): Probe & { calls: number } {
  const probe = {
    name,
    calls: 0,
    async check(): Promise<ProbeOutcome> {
      const state = outcomes[Math.min(probe.calls, outcomes.length - 1)]!;
      probe.calls++;
      return { state, detail: `${name} ${state}` };
    },
  };
  return probe;
}

/** Waiting three rounds, then ok; records when each round looked. */
function timedProbe(onRound?: (round: number) => void): { probe: Probe; seen: number[] } {
  const seen: number[] = [];
  const states: ProbeOutcome['state'][] = ['waiting', 'waiting', 'waiting', 'ok', 'ok'];
  const probe: Probe = {
    name: 'containers',
    async check() {
      seen.push(performance.now());
      onRound?.(seen.length);
      const state = states[Math.min(seen.length - 1, states.length - 1)]!;
      return { state, detail: state };
    },
  };
  return { probe, seen };
}

describe('runGate', () => {
  it('passes after the required consecutive all-ok rounds, and a waiting round resets the streak', async () => {
    const a = scripted('a', ['ok', 'waiting', 'ok', 'ok']);
    const result = await runGate([a], { intervalMs: 1, timeoutMs: 5000, successes: 2 });
    expect(result.ok).toBe(true);
    expect(result.rounds).toBe(4);
    expect(result.probes[0]?.firstOkMs).toBeGreaterThanOrEqual(0);
  });

  it('looks again sooner while something is not ok yet, but keeps the rounds of a streak intervalMs apart', async () => {
    const { probe, seen } = timedProbe();
    const result = await runGate([probe], { intervalMs: 300, waitingIntervalMs: 20, timeoutMs: 10_000, successes: 2 });
    expect(result.ok).toBe(true);
    expect(result.rounds).toBe(5);
    const gaps = seen.slice(1).map((at, index) => at - seen[index]!);
    for (const gap of gaps.slice(0, 3)) expect(gap).toBeLessThan(150);
    expect(gaps[3]).toBeGreaterThanOrEqual(295);
  });

  it('an event ends a waiting pause at once, one during the round means no pause at all, and none shortens a streak', async () => {
    const wake = wakeCounter();
    // Round 2's event comes while it runs (before its pause); round 4's during a streak.
    const { probe, seen } = timedProbe((round) => (round === 2 || round === 4) && wake.add());
    // Round 1's pause is ended by an event 100 ms in.
    const event = setTimeout(() => wake.add(), 100);
    const result = await runGate([probe], { intervalMs: 1500, waitingIntervalMs: 1000, timeoutMs: 20_000, successes: 2, wake });
    clearTimeout(event);
    expect(result.ok).toBe(true);
    expect(result.rounds).toBe(5);
    const gaps = seen.slice(1).map((at, index) => at - seen[index]!);
    expect(gaps[0]).toBeGreaterThanOrEqual(90);
    expect(gaps[0]).toBeLessThan(600);
    expect(gaps[1]).toBeLessThan(100);
    // Round 3 waited with no event: the whole waiting pause.
    expect(gaps[2]).toBeGreaterThanOrEqual(995);
    expect(gaps[3]).toBeGreaterThanOrEqual(1495);
  });

  it('fails at once when a probe fails, without waiting for the timeout', async () => {
    const a = scripted('containers', ['waiting', 'failed']);
    const b = scripted('url', ['ok']);
    const started = Date.now();
    const result = await runGate([a, b], { intervalMs: 1, timeoutMs: 60_000, successes: 2 });
    expect(result.ok).toBe(false);
    expect(result.rounds).toBe(2);
    expect(result.reason).toBe('containers: containers failed');
    expect(result.failing).toEqual(['containers']);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a streak cut short by the timeout still says what failed in the last round that was not ok', async () => {
    // E.g. a proxy answering from the old and the new containers in turn: the last rounds pass, an earlier one did not.
    const url = scripted('http://app/health', ['waiting', 'ok']);
    const result = await runGate([url], { intervalMs: 20, timeoutMs: 50, successes: 3 });
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(
      /^not healthy within 0s \(only [12] of 3 consecutive successful checks; the last failed round: http:\/\/app\/health: http:\/\/app\/health waiting\)$/,
    );
  });

  it('gives up at the timeout naming what was still waiting; a throwing probe counts as waiting', async () => {
    const broken: Probe = { name: 'cmd', check: async () => Promise.reject(new Error('boom')) };
    const result = await runGate([broken], { intervalMs: 20, timeoutMs: 100, successes: 1 });
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^not healthy within 0s \(cmd: boom\)$/);
    expect(result.rounds).toBeGreaterThan(1);
  });
});

describe('parseStatusRange', () => {
  it('reads single codes, ranges and classes, and refuses nonsense', () => {
    expect(parseStatusRange('200')).toEqual({ min: 200, max: 200 });
    expect(parseStatusRange('200-399')).toEqual({ min: 200, max: 399 });
    expect(parseStatusRange('2xx')).toEqual({ min: 200, max: 299 });
    for (const bad of ['', 'ok', '399-200', '700', '20']) expect(parseStatusRange(bad)).toBeUndefined();
  });
});

describe('checkHttp against a local server', () => {
  let server: Server;
  let port = 0;
  const seenHosts: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seenHosts.push(req.headers.host ?? '');
      if (req.url === '/fail') res.writeHead(500).end('oops');
      else res.writeHead(200).end('hello version=2');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('judges status and body, and sends the URL host through a detour', async () => {
    const status = { min: 200, max: 399 };
    expect(await checkHttp({ url: `http://127.0.0.1:${port}/`, status, body: 'version=2', timeoutMs: 2000 })).toEqual({ state: 'ok', detail: 'HTTP 200' });
    expect((await checkHttp({ url: `http://127.0.0.1:${port}/`, status, body: 'version=3', timeoutMs: 2000 })).state).toBe('waiting');
    expect(await checkHttp({ url: `http://127.0.0.1:${port}/fail`, status, timeoutMs: 2000 })).toEqual({
      state: 'waiting',
      detail: 'HTTP 500, expected 200-399',
    });
    const via = await checkHttp({ url: 'http://app.internal:8080/', status, timeoutMs: 2000, via: { host: '127.0.0.1', port } });
    expect(via.state).toBe('ok');
    expect(seenHosts.at(-1)).toBe('app.internal:8080');
  });

  it('reports a refused connection as waiting', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await checkHttp({ url: `http://127.0.0.1:${closedPort}/`, status: { min: 200, max: 200 }, timeoutMs: 2000 })).toEqual({
      state: 'waiting',
      detail: 'ECONNREFUSED',
    });
  });
});

const inspect = (entries: object[]) => JSON.stringify(entries);
const container = (name: string, service: string, state: object, restartCount = 0, labels: Record<string, string> = {}) => ({
  Name: `/${name}`,
  RestartCount: restartCount,
  State: state,
  Config: { Labels: { 'com.docker.compose.service': service, ...labels } },
});

describe('containers', () => {
  it('parses docker inspect, including output split over several arrays', () => {
    const text = `${inspect([container('p-web-1', 'web', { Status: 'running', ExitCode: 0, Health: { Status: 'healthy', Log: [{ ExitCode: 0, Output: 'ok\n' }] } })])}\n${inspect([container('p-db-1', 'db', { Status: 'running', ExitCode: 0 })])}`;
    const parsed = parseInspect(text);
    expect(parsed.map((c) => [c.name, c.service, c.status, c.health])).toEqual([
      ['p-web-1', 'web', 'running', 'healthy'],
      ['p-db-1', 'db', 'running', undefined],
    ]);
    expect(parsed[0]?.healthLog).toEqual(['exit 0: ok']);
    expect(parseInspect('')).toEqual([]);
  });

  it('is ok when every service runs and every HEALTHCHECK is healthy', () => {
    const c = parseInspect(
      inspect([container('p-web-1', 'web', { Status: 'running', Health: { Status: 'healthy' } }), container('p-db-1', 'db', { Status: 'running' })]),
    );
    expect(evaluateContainers(c, { services: ['web', 'db'] })).toMatchObject({ state: 'ok', detail: '2 container(s) running, 1 healthy by HEALTHCHECK' });
  });

  it('waits for starting health checks and missing services', () => {
    const c = parseInspect(inspect([container('p-web-1', 'web', { Status: 'running', Health: { Status: 'starting' } })]));
    expect(evaluateContainers(c, { services: ['web', 'db'] })).toEqual({
      state: 'waiting',
      detail: 'p-web-1 is starting; service db has no container',
      failingServices: ['db', 'web'],
    });
  });

  it('fails at once on exit, restart loop, new restarts or unhealthy; ignores one-off containers', () => {
    const judge = (state: object, restarts = 0, baseline = 0) =>
      evaluateContainers(
        parseInspect(
          inspect([
            container('p-web-1', 'web', state, restarts),
            container('p-run-x', 'web', { Status: 'exited', ExitCode: 3 }, 0, { 'com.docker.compose.oneoff': 'True' }),
          ]),
        ),
        {
          services: ['web'],
          baselineRestarts: new Map([['p-web-1', baseline]]),
        },
      );
    expect(judge({ Status: 'exited', ExitCode: 1 })).toMatchObject({ state: 'failed', detail: 'p-web-1 exited with code 1', failingServices: ['web'] });
    expect(judge({ Status: 'restarting', ExitCode: 1 }).state).toBe('failed');
    expect(judge({ Status: 'running' }, 2, 1)).toMatchObject({ state: 'failed', detail: 'p-web-1 restarted 1 time(s)' });
    expect(judge({ Status: 'running' }, 2, 2).state).toBe('ok');
    expect(judge({ Status: 'running', Health: { Status: 'unhealthy' } }).state).toBe('failed');
  });
});
