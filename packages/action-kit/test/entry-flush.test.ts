import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { NODE_BUNDLE_OPTIONS } from '../../../scripts/bundle-options.mjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The real process exit, not a stub: a bundle whose stdout is a pipe the runner reads late. Before,
 * process.exit dropped whatever Node still had queued for the full pipe — the ::error:: line last.
 */

let dir: string;
let script: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'action-kit-flush-'));
  script = join(dir, 'action.mjs');
  const entry = join(import.meta.dirname, '../src/index.ts');
  const result = await build({
    stdin: {
      contents: `
        import { runAction, InputError } from ${JSON.stringify(entry)};
        const big = 'x'.repeat(100 * 1024);
        runAction({
          main: async () => {
            // What reading a 100 kB secret input does: one ::add-mask:: line per value.
            process.stdout.write('::add-mask::' + big + '\\n');
            for (let i = 0; i < 50; i++) process.stdout.write('::debug::' + big.slice(0, 4000) + '\\n');
            throw process.env.KIND === 'input' ? new InputError('key', 'Input "key" must be a private key') : new Error('the last words of the step');
          },
        });`,
      resolveDir: dir,
      loader: 'ts',
    },
    ...NODE_BUNDLE_OPTIONS,
    write: false,
    logLevel: 'error',
  });
  await writeFile(script, result.outputFiles[0]!.text);
});

afterAll(() => rm(dir, { recursive: true, force: true }));

/** Runs the action with a reader that starts only after the action has finished writing (a busy runner). */
function runWithLateReader(env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: process.env.PATH ?? '', ...env } });
    const chunks: Buffer[] = [];
    child.stdout.pause();
    setTimeout(() => {
      child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
      child.stdout.resume();
    }, 1500);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(chunks).toString() }));
  });
}

describe('runAction exits only after its output reached the pipe', () => {
  it('the ::error:: line survives 300 kB of output queued before it', async () => {
    const { code, stdout } = await runWithLateReader({});
    expect(code).toBe(1);
    expect(stdout.length).toBeGreaterThan(290 * 1024);
    expect(stdout.trimEnd().split('\n').at(-1)).toBe('::error::the last words of the step');
  });

  it('an input error also writes the job summary', async () => {
    const summary = join(dir, 'summary.md');
    await writeFile(summary, '');
    const { code, stdout } = await runWithLateReader({ KIND: 'input', GITHUB_STEP_SUMMARY: summary });
    expect(code).toBe(1);
    expect(stdout).toContain('::error::Input "key" must be a private key');
    expect(await readFile(summary, 'utf8')).toMatch(/Nothing was done: the inputs need fixing[\s\S]*Input "key" must be a private key/);
  });
});
