import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PlanRecorder } from '@skiff/shell';
import { codeBlock, details, inlineCode, outputs, publishPlan, readDryRun, renderPlan, setOutput, table, writeSummary, DRY_RUN_INPUT } from '../src/index';

const savedEnv = { ...process.env };
let stdout: string[] = [];
let dir: string;

/** Parses the GITHUB_OUTPUT file format: `name<<delimiter`, value lines, `delimiter`. */
function parseOutputs(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!match) continue;
    const end = lines.indexOf(match[2]!, i + 1);
    result[match[1]!] = lines.slice(i + 1, end).join('\n');
    i = end;
  }
  return result;
}

beforeEach(async () => {
  stdout = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout.push(String(chunk));
    return true;
  });
  dir = await mkdtemp(join(tmpdir(), 'action-kit-'));
  process.env.GITHUB_OUTPUT = join(dir, 'output');
  process.env.GITHUB_STEP_SUMMARY = join(dir, 'summary');
  await writeFile(process.env.GITHUB_OUTPUT, '');
  await writeFile(process.env.GITHUB_STEP_SUMMARY, '');
});

afterEach(async () => {
  vi.restoreAllMocks();
  for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
  Object.assign(process.env, savedEnv);
  await rm(dir, { recursive: true, force: true });
});

describe('outputs', () => {
  it('writes strings as they are and objects as JSON', async () => {
    setOutput('plan', 'line 1\nline 2');
    setOutput('count', 3);
    setOutput('image', { name: 'ghcr.io/o/r', tags: ['1.0'] });
    expect(parseOutputs(await readFile(process.env.GITHUB_OUTPUT!, 'utf8'))).toEqual({
      plan: 'line 1\nline 2',
      count: '3',
      image: '{"name":"ghcr.io/o/r","tags":["1.0"]}',
    });
  });

  it('offers a setter typed by the declared outputs', async () => {
    const out = outputs<{ digest: string; pushed: boolean }>();
    out.set('pushed', false);
    // @ts-expect-error an undeclared output does not compile
    out.set('digets', 'x');
    expect(parseOutputs(await readFile(process.env.GITHUB_OUTPUT!, 'utf8'))).toEqual({ pushed: 'false', digets: 'x' });
  });
});

describe('markdown helpers', () => {
  it('escapes table cells', () => {
    expect(table(['a', 'b'], [['x|y', 'line1\nline2']])).toBe('| a | b |\n| --- | --- |\n| x\\|y | line1<br>line2 |');
  });

  it('fences code longer than any backtick run inside it', () => {
    expect(codeBlock('echo hi\n', 'bash')).toBe('```bash\necho hi\n```');
    expect(codeBlock('a ```` b')).toBe('`````\na ```` b\n`````');
  });

  it('quotes inline code containing backticks', () => {
    expect(inlineCode('/srv/app')).toBe('`/srv/app`');
    expect(inlineCode('a`b')).toBe('`` a`b ``');
  });

  it('makes a collapsed section with an escaped title', () => {
    expect(details('a <b>', 'body')).toBe('<details><summary>a &lt;b&gt;</summary>\n\nbody\n\n</details>');
    expect(details('t', 'body', true)).toContain('<details open>');
  });
});

describe('renderPlan', () => {
  it('shows each step in order with its script', async () => {
    const plan = new PlanRecorder();
    await plan.run([['uname', '-sr']], { description: 'operating system' });
    await plan.run([['docker', 'compose', 'version']], { description: 'docker compose plugin' });
    expect(renderPlan(plan.steps)).toBe(
      [
        '### Plan (dry run: nothing was run)',
        '',
        '1. **operating system**',
        '',
        '   ```bash',
        '   set -euo pipefail',
        '   uname -sr',
        '   ```',
        '',
        '2. **docker compose plugin**',
        '',
        '   ```bash',
        '   set -euo pipefail',
        '   docker compose version',
        '   ```',
        '',
      ].join('\n'),
    );
  });

  it('shows upload path, mode and size, and the contents only when not secret', async () => {
    const plan = new PlanRecorder();
    await plan.upload('/srv/app/.env', 'DB_PASSWORD=s3cr3t-value\n', { mode: 0o600, description: 'env file', secret: true });
    await plan.upload('/srv/app/compose.yml', 'services: {}\n', { mode: 0o644, description: 'compose file' });
    const text = renderPlan(plan.steps);
    expect(text).toContain('1. **env file**: upload to `/srv/app/.env`, mode 0600, 25 B (contents are secret and not shown)');
    expect(text).not.toContain('s3cr3t');
    expect(text).toContain('2. **compose file**: upload to `/srv/app/compose.yml`, mode 0644, 13 B');
    expect(text).toContain('services: {}');
  });

  it('says when there is nothing to do', () => {
    expect(renderPlan([])).toBe('### Plan (dry run: nothing was run)\n\nNothing to do.\n');
  });
});

describe('dry run', () => {
  it('reads the dry-run input, false by default as declared', () => {
    expect(DRY_RUN_INPUT.default).toBe('false');
    expect(readDryRun()).toBe(false);
    process.env['INPUT_DRY-RUN'] = 'true';
    expect(readDryRun()).toBe(true);
  });

  it('publishes the plan to the log, the summary and the plan output', async () => {
    const plan = new PlanRecorder();
    await plan.run([['uname', '-sr']], { description: 'operating system' });
    const text = await publishPlan(plan.steps);
    expect(stdout.join('')).toContain('uname -sr');
    expect(await readFile(process.env.GITHUB_STEP_SUMMARY!, 'utf8')).toBe(`${text}\n`);
    expect(parseOutputs(await readFile(process.env.GITHUB_OUTPUT!, 'utf8'))).toEqual({ plan: text });
  });

  it('skips the summary outside a runner', async () => {
    delete process.env.GITHUB_STEP_SUMMARY;
    await expect(writeSummary('# hi')).resolves.toBeUndefined();
  });
});
