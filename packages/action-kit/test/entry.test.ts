import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Command, ExecResult, Executor, RunOptions } from '@skiff/shell';
import { BASE_PREFLIGHT, InputError, InputErrors, formatPreflightLog, notImplemented, renderPreflight, runAction, runPreflight } from '../src/index';

const savedEnv = { ...process.env };
let stdout: string[] = [];
let dir: string;

beforeEach(async () => {
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout.push(String(chunk));
    return true;
  });
  dir = await mkdtemp(join(tmpdir(), 'action-kit-'));
  process.env.GITHUB_STATE = join(dir, 'state');
  await writeFile(process.env.GITHUB_STATE, '');
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
  // core.setFailed sets it; left behind it would fail the test run itself.
  process.exitCode = undefined;
  await rm(dir, { recursive: true, force: true });
});

async function run(phases: Parameters<typeof runAction>[0]): Promise<number> {
  let code: number | undefined;
  await runAction(phases, { exit: (c) => (code = c) });
  if (code === undefined) throw new Error('runAction did not exit');
  return code;
}

const errors = () => stdout.filter((line) => line.startsWith('::error::'));

describe('runAction', () => {
  it('runs main, remembers for the post phase, and exits 0', async () => {
    const main = vi.fn(async () => {});
    const post = vi.fn(async () => {});
    expect(await run({ main, post })).toBe(0);
    expect(main).toHaveBeenCalledOnce();
    expect(post).not.toHaveBeenCalled();
    expect(await readFile(process.env.GITHUB_STATE!, 'utf8')).toMatch(/^isPost<<(.+)\ntrue\n\1\n$/);
  });

  it('saves no state when there is no post phase', async () => {
    expect(await run({ main: async () => {} })).toBe(0);
    expect(await readFile(process.env.GITHUB_STATE!, 'utf8')).toBe('');
  });

  it('runs post instead of main in the post phase', async () => {
    process.env.STATE_isPost = 'true';
    const main = vi.fn(async () => {});
    const post = vi.fn(async () => {});
    expect(await run({ main, post })).toBe(0);
    expect(post).toHaveBeenCalledOnce();
    expect(main).not.toHaveBeenCalled();
  });

  it('saves the post state even when main fails', async () => {
    expect(await run({ main: async () => Promise.reject(new Error('boom')), post: async () => {} })).toBe(1);
    expect(await readFile(process.env.GITHUB_STATE!, 'utf8')).toContain('isPost<<');
  });

  it('reports an input error as just its message and exits 1', async () => {
    const code = await run({
      main: async () => {
        throw new InputErrors([new InputError('a', 'Input "a" is bad'), new InputError('b', 'Input "b" is bad')]);
      },
    });
    expect(code).toBe(1);
    expect(errors()).toEqual(['::error::2 problems with the inputs:%0A- Input "a" is bad%0A- Input "b" is bad\n']);
    expect(stdout.join('')).not.toContain('at ');
  });

  it('reports other errors by message, the stack only in debug output', async () => {
    expect(await run({ main: async () => Promise.reject(new Error('connection refused')) })).toBe(1);
    expect(errors()).toEqual(['::error::connection refused\n']);
    expect(stdout.some((line) => line.startsWith('::debug::Error: connection refused%0A    at '))).toBe(true);
  });

  it('reports a failing post phase', async () => {
    process.env.STATE_isPost = 'true';
    expect(await run({ main: async () => {}, post: async () => Promise.reject(new Error('lock not released')) })).toBe(1);
    expect(errors()).toEqual(['::error::lock not released\n']);
  });

  it('exits 1 when main marked the step failed without throwing', async () => {
    const core = await import('@actions/core');
    expect(await run({ main: async () => core.setFailed('partial failure') })).toBe(1);
  });

  it('words the skeleton failure', () => {
    expect(notImplemented('action-deploy', '0.1.0', 'deploying').message).toBe('action-deploy 0.1.0 is a skeleton: deploying is not implemented yet');
  });
});

class FakeServer implements Executor {
  readonly scripts: string[] = [];
  readonly options: RunOptions[] = [];
  constructor(private readonly answers: Record<string, ExecResult>) {}
  async run(commands: readonly Command[], options: RunOptions = {}): Promise<ExecResult> {
    const line = commands.map((command) => command.join(' ')).join('\n');
    this.scripts.push(line);
    this.options.push(options);
    return this.answers[line] ?? { code: 127, stdout: '', stderr: `${line}: not found` };
  }
  async upload(): Promise<void> {
    throw new Error('preflight must not upload');
  }
}

describe('preflight', () => {
  it('runs every check, keeps going past failures, and reports them', async () => {
    const server = new FakeServer({
      'uname -sr': { code: 0, stdout: 'Linux 6.1.0\n', stderr: '' },
      'command -v docker': { code: 1, stdout: '', stderr: '' },
    });
    const results = await runPreflight(server, BASE_PREFLIGHT);
    expect(server.scripts).toEqual(['uname -sr', 'command -v docker', 'docker compose version']);
    expect(server.options.every((options) => options.allowFailure === true && options.timeoutSeconds === 30)).toBe(true);
    expect(results).toEqual([
      { description: 'operating system', command: 'uname -sr', ok: true, output: 'Linux 6.1.0' },
      { description: 'docker installed', command: 'command -v docker', ok: false, output: '' },
      { description: 'docker compose plugin', command: 'docker compose version', ok: false, output: 'docker compose version: not found' },
    ]);
    expect(renderPreflight(results, 'example.com')).toBe(
      [
        '### Preflight on example.com',
        '',
        '| Check | Command | Result |',
        '| --- | --- | --- |',
        '| operating system | `uname -sr` | ✅ Linux 6.1.0 |',
        '| docker installed | `command -v docker` | ❌ |',
        '| docker compose plugin | `docker compose version` | ❌ docker compose version: not found |',
        '',
      ].join('\n'),
    );
    expect(formatPreflightLog(results)).toBe(
      'ok   operating system: Linux 6.1.0\nFAIL docker installed\nFAIL docker compose plugin: docker compose version: not found',
    );
  });
});
