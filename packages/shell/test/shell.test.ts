import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  PlanRecorder,
  and,
  or,
  pipe,
  quote,
  raw,
  readToEnd,
  redirectFrom,
  redirectTo,
  remoteCommandLine,
  render,
  script,
  subshell,
  tolerate,
  type Command,
} from '../src';
import { HOSTILE_VALUES } from './hostile';

/** Runs a rendered command in a real local bash and returns each argv entry printf saw. */
function argvSeenByBash(rendered: string): string[] {
  const result = spawnSync('bash', ['-c', `set -euo pipefail; printf '%s\\0' ${rendered}`], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  expect(result.status, result.stderr).toBe(0);
  return result.stdout.split('\0').slice(0, -1);
}

describe('quote', () => {
  it('keeps plain words bare and readable', () => {
    expect(quote('docker')).toBe('docker');
    expect(quote('/opt/app/compose.yaml')).toBe('/opt/app/compose.yaml');
    expect(quote('ghcr.io/acme/app@sha256:abc')).toBe('ghcr.io/acme/app@sha256:abc');
  });

  it('quotes everything a shell would interpret', () => {
    expect(quote('')).toBe("''");
    expect(quote('a b')).toBe("'a b'");
    expect(quote("it's")).toBe("'it'\\''s'");
    expect(quote('$(x)')).toBe("'$(x)'");
    expect(quote('A=b')).toBe("'A=b'");
    expect(quote('*')).toBe("'*'");
  });

  it('refuses a NUL byte instead of truncating the value', () => {
    expect(() => quote('a\0b')).toThrow(/NUL/);
  });

  it.each(HOSTILE_VALUES.map((value) => [value.slice(0, 40), value]))('delivers %j to bash as one literal argument', (_label, value) => {
    expect(argvSeenByBash(quote(value))).toEqual([value]);
  });

  it('delivers all hostile values at once, in order, with no side effects', () => {
    expect(argvSeenByBash(render(HOSTILE_VALUES))).toEqual(HOSTILE_VALUES);
    for (const marker of ['/tmp/skiff-pwned-subst', '/tmp/skiff-pwned-backtick', '/tmp/skiff-pwned-redirect']) {
      expect(existsSync(marker)).toBe(false);
    }
  });
});

describe('command builders', () => {
  it('render data quoted and syntax raw', () => {
    expect(render(['docker', 'compose', '-p', 'my app', 'up', '-d'])).toBe("docker compose -p 'my app' up -d");
    expect(render(pipe(['pg_dump', '-Fc', 'db'], ['gzip']))).toBe('pg_dump -Fc db | gzip');
    expect(render(and(['mkdir', '-p', '/a b'], ['cd', '/a b']))).toBe("mkdir -p '/a b' && cd '/a b'");
    expect(render(or(['test', '-f', 'x'], ['true']))).toBe('test -f x || true');
    expect(render(subshell(['cd', '/x']))).toBe('( cd /x )');
    expect(render(redirectTo(['echo', 'hi'], '/tmp/o f'))).toBe("echo hi > '/tmp/o f'");
    expect(render(redirectTo(['echo', 'hi'], '/tmp/log', { append: true }))).toBe('echo hi >> /tmp/log');
    expect(render(redirectFrom(['cat'], '/tmp/in'))).toBe('cat < /tmp/in');
    expect(render(['echo', raw('"$HOME"')])).toBe('echo "$HOME"');
  });

  it('a user value that looks like an operator stays data', () => {
    expect(render(['echo', '|', '&&', ';'])).toBe("echo '|' '&&' ';'");
  });
});

describe('script and remote command line', () => {
  it('starts every script in strict mode, one command per line', () => {
    expect(script([['true'], ['echo', 'a b']])).toBe("set -euo pipefail\ntrue\necho 'a b'");
  });

  it('supervises scripts that read no input, and bounds time with timeout', () => {
    const supervised = /^bash -c '(?:[^']|'\\'')*setsid "\$@" <\/dev\/null 3<&- &(?:[^']|'\\'')*' skiff-supervisor /;
    expect(remoteCommandLine('true')).toMatch(supervised);
    expect(remoteCommandLine('true').replace(supervised, '')).toBe('bash -c true');
    expect(remoteCommandLine('sleep 9', { timeoutSeconds: 2.2 }).replace(supervised, '')).toBe("timeout -k 5 3 bash -c 'sleep 9'");
    expect(remoteCommandLine('cat', { stdin: true })).toBe('bash -c cat');
  });

  it('the supervisor passes the exit status through and ends the whole session when its stdin closes', async () => {
    // Like the SSH client, keep stdin open while the command runs.
    const finished = spawn('bash', ['-c', remoteCommandLine(script([['sh', '-c', 'echo out; echo err >&2; exit 7']]))], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    finished.stdout.on('data', (d: Buffer) => (out += d.toString()));
    finished.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((resolve) => finished.on('close', resolve));
    finished.stdin.end();
    expect([code, out, err]).toEqual([7, 'out\n', 'err\n']);

    const marker = `88${Date.now() % 100000}.25`;
    const child = spawn('bash', ['-c', remoteCommandLine(script([['sh', '-c', `sleep ${marker} & sleep ${marker}`]]))], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    const running = () =>
      spawnSync('pgrep', ['-f', `sleep ${marker}`], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .filter(Boolean);
    // Both sleeps, plus the shells whose command lines carry the marker.
    for (let i = 0; i < 50 && running().length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    expect(running().length).toBeGreaterThanOrEqual(2);
    // The stdin pipe closing stands for the SSH channel going away.
    child.stdin.end();
    for (let i = 0; i < 50 && running().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(running()).toEqual([]);
  });

  it('a strict script really stops at a failing pipe stage and at unset variables (local bash)', () => {
    const failingPipe = spawnSync('bash', ['-c', script([pipe(['false'], ['cat']), ['echo', 'not reached']])], { encoding: 'utf8' });
    expect(failingPipe.status).not.toBe(0);
    expect(failingPipe.stdout).not.toContain('not reached');
    const unset = spawnSync(
      'bash',
      [
        '-c',
        script([
          ['echo', raw('"$SKIFF_SURELY_UNSET"')],
          ['echo', 'not reached'],
        ]),
      ],
      { encoding: 'utf8' },
    );
    expect(unset.status).not.toBe(0);
    expect(unset.stdout).not.toContain('not reached');
  });

  it('a script given no stdin cannot read the caller’s input', async () => {
    const child = spawn('bash', ['-c', remoteCommandLine(script([['cat']]))], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // The script may be gone before the write lands: EPIPE then is the point, not a failure.
    child.stdin.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
    child.stdin.write('secret from stdin');
    const code = await new Promise((resolve) => child.on('close', resolve));
    child.stdin.end();
    expect(code).toBe(0);
    expect(out).toBe('');
  });
});

describe('readToEnd: a consumer that stops early', () => {
  // 14 MB of text is far beyond any pipe buffer: whether the writer is still writing when the reader stops is not a matter of luck.
  const writer: Command = ['seq', '1', '2000000'];
  const status = (lines: Command[]) => spawnSync('bash', ['-c', script(lines)], { encoding: 'utf8' }).status;

  it('without it the writer dies of SIGPIPE and pipefail fails the run (exit 141)', () => {
    expect(status([pipe(writer, ['head', '-c', '10'])])).toBe(141);
  });

  it('with it the rest is drained and the run succeeds, also inside a command substitution', () => {
    expect(status([pipe(writer, readToEnd([...pipe(['head', '-c', '10'], ['od']), raw('>/dev/null')]))])).toBe(0);
    expect(status([[raw('x=$('), ...pipe(writer, readToEnd(['head', '-c', '10'])), raw(')')], [raw('[ "$x" = "$(seq 1 5)" ]')]])).toBe(0);
  });

  it('a failing consumer still fails with its own status, at once, also where bash clears errexit', () => {
    expect(status([pipe(writer, readToEnd(['sh', '-c', 'head -c 10 >/dev/null; exit 7']))])).toBe(7);
    expect(
      status([
        [raw('x=$('), ...pipe(writer, readToEnd(['sh', '-c', 'exit 9'])), raw(')')],
        ['echo', 'not reached'],
      ]),
    ).toBe(9);
  });
});

describe('tolerate: a part of a script whose failure is reported, not fatal', () => {
  const run = (lines: Command[]) => spawnSync('bash', ['-c', script(lines)], { encoding: 'utf8' });

  it('stops the part at its first failure, prints the marker, and the script goes on in strict mode', () => {
    const result = run([
      ['echo', 'before'],
      ...tolerate(
        [
          ['echo', 'part 1'],
          ['sh', '-c', 'echo part broke >&2; exit 3'],
          ['echo', 'part not reached'],
        ],
        'PART FAILED',
      ),
      ['echo', 'after'],
      ['false'],
      ['echo', 'not reached'],
    ]);
    expect(result.stdout).toBe('before\npart 1\nPART FAILED\nafter\n');
    expect(result.stderr).toContain('part broke');
    expect(result.status).toBe(1);
  });

  it('prints nothing of its own when the part succeeds; a failing pipe stage and an unset variable count as failures', () => {
    expect(run([...tolerate([['echo', 'ok']], 'PART FAILED'), ['echo', 'after']]).stdout).toBe('ok\nafter\n');
    expect(run([...tolerate([pipe(['false'], ['cat']), ['echo', 'no']], 'PART FAILED')]).stdout).toBe('PART FAILED\n');
    expect(
      run([
        ...tolerate(
          [
            ['echo', raw('"$SKIFF_SURELY_UNSET"')],
            ['echo', 'no'],
          ],
          'PART FAILED',
        ),
      ]).stdout,
    ).toBe('PART FAILED\n');
  });
});

describe('PlanRecorder (dry-run)', () => {
  it('records the exact scripts and uploads in order without running anything', async () => {
    const plan = new PlanRecorder();
    await plan.run([['docker', 'compose', 'pull']], { description: 'pull images' });
    await plan.upload('/opt/app/.env', 'TOKEN=abc123', { mode: 0o600, description: 'env file', secret: true });
    await plan.upload('/opt/app/compose.yaml', 'services: {}', { mode: 0o644 });
    expect(plan.steps).toEqual([
      { kind: 'run', description: 'pull images', script: 'set -euo pipefail\ndocker compose pull' },
      { kind: 'upload', description: 'env file', remotePath: '/opt/app/.env', mode: '0600', bytes: 12 },
      { kind: 'upload', description: 'upload', remotePath: '/opt/app/compose.yaml', mode: '0644', bytes: 12, preview: 'services: {}' },
    ]);
    expect(JSON.stringify(plan.steps)).not.toContain('abc123');
  });
});
