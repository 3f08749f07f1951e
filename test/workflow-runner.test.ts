import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '@skiff/testbed';
import { runWorkflow } from './workflow-runner';

/**
 * The workflow runner the examples run through must read workflows as GitHub does: expressions
 * by GitHub's evaluator, `if:` with the implicit success(), matrix legs, step and job outputs,
 * needs, and a reusable workflow's input rules. Each case here is a way a workflow goes wrong.
 */
let repo: { path: string; remove(): Promise<void> };
const ZEROS = '0'.repeat(40);

async function workflow(name: string, text: string) {
  await writeFile(join(repo.path, '.github/workflows', name), text);
  return `.github/workflows/${name}`;
}

beforeAll(async () => {
  repo = await tempDir('skiff-runner-repo');
  await mkdir(join(repo.path, '.github/workflows'), { recursive: true });
  await writeFile(join(repo.path, 'app.txt'), 'the caller repository\n');
});
afterAll(() => repo.remove());

describe('the workflow runner', () => {
  it('evaluates expressions, implicit success(), matrix legs, outputs and needs the way GitHub does', async () => {
    const path = await workflow(
      'basic.yml',
      [
        'on:',
        '  workflow_dispatch:',
        '    inputs:',
        '      greeting: { type: string, default: hello }',
        '      loud: { type: boolean, default: false }',
        'jobs:',
        '  first:',
        '    runs-on: ubuntu-24.04',
        '    strategy:',
        '      matrix:',
        '        include: ${{ fromJSON(\'[{"name":"a"},{"name":"b"}]\') }}',
        '    outputs:',
        '      said: ${{ steps.say.outputs.text }}',
        '    steps:',
        '      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683',
        '      - id: say',
        '        env:',
        '          TEXT: ${{ inputs.greeting }} ${{ matrix.name }} from ${{ github.repository }}',
        '        run: |',
        '          cat app.txt',
        '          echo "text=$TEXT" >> "$GITHUB_OUTPUT"',
        '      - if: inputs.loud',
        '        run: echo never',
        '      - run: exit 3',
        "        if: matrix.name == 'b'",
        '      - id: after',
        '        run: echo "should not run after a failure"',
        '      - id: cleanup',
        '        if: always()',
        '        run: echo cleaned',
        '  second:',
        '    needs: first',
        '    runs-on: ubuntu-24.04',
        '    steps:',
        '      - run: echo "${{ needs.first.outputs.said }}"',
        '  third:',
        '    needs: first',
        '    if: failure()',
        '    runs-on: ubuntu-24.04',
        '    steps:',
        '      - id: report',
        '        run: echo "first was ${{ needs.first.result }}"',
      ].join('\n'),
    );
    const run = await runWorkflow({ repository: repo.path, workflow: path, event: { name: 'workflow_dispatch', inputs: { greeting: 'hi' } } });
    try {
      expect(run.result).toBe('failure');
      const say = run.steps('say');
      expect(say.map((s) => s.outputs.text)).toEqual(['hi a from acme/shop', 'hi b from acme/shop']);
      expect(say[0]!.log).toContain('the caller repository');
      expect(run.steps('after').map((s) => s.outcome)).toEqual(['success', 'skipped']);
      expect(run.steps('cleanup').map((s) => s.outcome)).toEqual(['success', 'success']);
      expect(run.jobs.find((j) => j.id === 'second')!.result).toBe('skipped');
      expect(run.steps('report')[0]!.log.trim()).toBe('first was failure');
    } finally {
      await run.remove();
    }
  });

  it('refuses a workflow that does not run on the event, and an undefined dispatch input', async () => {
    const path = await workflow('push-only.yml', 'on:\n  push:\n    branches: [main]\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: true\n');
    await expect(runWorkflow({ repository: repo.path, workflow: path, event: { name: 'workflow_dispatch' } })).rejects.toThrow(
      /does not run on workflow_dispatch/,
    );
    const dispatch = await workflow('dispatch.yml', 'on:\n  workflow_dispatch: {}\njobs:\n  j:\n    runs-on: x\n    steps:\n      - run: true\n');
    await expect(runWorkflow({ repository: repo.path, workflow: dispatch, event: { name: 'workflow_dispatch', inputs: { nope: 'x' } } })).rejects.toThrow(
      /input nope is not defined/,
    );
  });

  it("applies a reusable workflow's rules: unknown input, missing required input, wrong type, missing required secret", async () => {
    const call = (withLines: string[], secrets: string[] = ['      SSH_KEY: ${{ secrets.KEY }}']) =>
      [
        'on: push',
        'jobs:',
        '  backup:',
        `    uses: OWNER/skiff/.github/workflows/backup.yml@${ZEROS}`,
        '    with:',
        ...withLines,
        '    secrets:',
        ...secrets,
        '',
      ].join('\n');
    const cases: [string[], string[] | undefined, RegExp][] = [
      [
        ['      host: db', '      username: backup', '      sources: "- type: postgres"', '      colour: blue'],
        undefined,
        /Invalid input, colour is not defined/,
      ],
      [['      host: db', '      username: backup'], undefined, /Input sources is required/],
      [['      host: db', '      username: backup', '      sources: "- type: postgres"', '      force: "yes"'], undefined, /Input force .* is a boolean/],
    ];
    for (const [index, [withLines, secrets, error]] of cases.entries()) {
      const path = await workflow(`call-${index}.yml`, call(withLines, secrets));
      const run = await runWorkflow({ repository: repo.path, workflow: path, event: { name: 'push' }, secrets: { KEY: 'k' } });
      expect(run.result).toBe('failure');
      expect(run.jobs.map((j) => j.error ?? '').join('\n')).toMatch(error);
      await run.remove();
    }
    // A required secret not passed (cf-allowlist.yml always logs in over SSH).
    const path = await workflow(
      'call-secret.yml',
      [
        'on: push',
        'jobs:',
        '  allow:',
        `    uses: OWNER/skiff/.github/workflows/cf-allowlist.yml@${ZEROS}`,
        '    with:',
        '      hosts: web1',
        '      username: u',
        '    secrets:',
        '      SSH_PASSPHRASE: x',
        '',
      ].join('\n'),
    );
    const run = await runWorkflow({ repository: repo.path, workflow: path, event: { name: 'push' }, secrets: { KEY: 'k' } });
    expect(run.result).toBe('failure');
    expect(run.jobs.map((j) => j.error ?? '').join('\n')).toMatch(/Secret SSH_KEY is required/);
    await run.remove();
  });

  it('fails a job whose matrix include is empty, as GitHub does, and skips the jobs that need it', async () => {
    const path = await workflow(
      'empty-matrix.yml',
      [
        'on: push',
        'jobs:',
        '  build:',
        '    runs-on: x',
        '    strategy:',
        '      matrix:',
        "        include: ${{ fromJSON('[]') }}",
        '    steps:',
        '      - run: true',
        '  deploy:',
        '    needs: build',
        '    runs-on: x',
        '    steps:',
        '      - run: true',
        '',
      ].join('\n'),
    );
    const run = await runWorkflow({ repository: repo.path, workflow: path, event: { name: 'push' } });
    expect(run.jobs.map((j) => [j.id, j.result])).toEqual([
      ['build', 'failure'],
      ['deploy', 'skipped'],
    ]);
    expect(run.jobs[0]!.error).toMatch(/Matrix vector 'include' does not contain any values/);
    await run.remove();
  });
});
