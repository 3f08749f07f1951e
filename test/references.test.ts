import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { WorkflowTemplate } from '@actions/workflow-parser';
import { loadGitHubParser } from './github-parser';

/**
 * What a user copies must name something that exists: a full SHA (or the placeholder for one),
 * or a tag release-please really creates (`action-deploy/v0.6.0`, the action's current version).
 * There is no `@v0`: release.yml moves major tags only from 1.0.0 on.
 */
const root = join(import.meta.dirname, '..');
const ACTIONS = ['action-build-push', 'action-deploy', 'action-cf-allowlist', 'action-backup'];
const version = (action: string) => (JSON.parse(readFileSync(join(root, action, 'package.json'), 'utf8')) as { version: string }).version;
const SHA_FORMS = /^([0-9a-f]{40}|<full commit SHA>|<40-character SHA>)$/;
const TEMPLATES = readdirSync(join(root, 'workflows-templates'))
  .filter((name) => name.endsWith('.yml'))
  .map((name) => `workflows-templates/${name}`);
const EXAMPLES = readdirSync(join(root, 'examples')).flatMap((app) => [
  `examples/${app}/README.md`,
  ...readdirSync(join(root, 'examples', app, '.github/workflows')).map((name) => `examples/${app}/.github/workflows/${name}`),
]);
const DOCS = ['README.md', ...ACTIONS.map((action) => `${action}/README.md`), ...TEMPLATES, ...EXAMPLES];

function references(path: string): { line: number; target: string; ref: string; comment: string }[] {
  return readFileSync(join(root, path), 'utf8')
    .split('\n')
    .flatMap((text, index) => {
      const match = text.match(/uses: OWNER\/skiff\/(\S+?)@(<[^>]+>|\S+)(?:\s*#\s*(.*))?$/);
      return match ? [{ line: index + 1, target: match[1]!, ref: match[2]!, comment: match[3] ?? '' }] : [];
    });
}

describe('references users copy', () => {
  it.each(DOCS)('%s names only SHAs or tags the release process creates, at the current versions', (path) => {
    const wrong: string[] = [];
    for (const { line, target, ref, comment } of references(path)) {
      const action = ACTIONS.find((name) => target === name);
      const tagged = action ? ref === `${action}/v${version(action)}` : false;
      if (!SHA_FORMS.test(ref) && !tagged) wrong.push(`${path}:${line} ${target}@${ref}`);
      // A version in the comment beside a SHA is the one that SHA would be today.
      const named = comment.match(/(action-[a-z-]+)\/v(\d+\.\d+\.\d+)/);
      if (named && ACTIONS.includes(named[1]!) && named[2] !== version(named[1]!))
        wrong.push(`${path}:${line} says ${named[0]}, but ${named[1]} is at ${version(named[1]!)}`);
    }
    expect(wrong).toEqual([]);
  });

  it.each([...TEMPLATES, ...EXAMPLES.filter((path) => path.endsWith('.yml'))])(
    "%s, copied by hand into a repository, runs: on a push to its default branch if it has a push trigger (GitHub's parser reads `on:`), else by schedule or by hand",
    async (path) => {
      const events = await triggers(path, readFileSync(join(root, path), 'utf8'));
      if (events.push) expect(pushTriggers(events.push, DEFAULT_BRANCH), `a push to ${DEFAULT_BRANCH}`).toBe(true);
      else expect(events.schedule !== undefined || events.workflow_dispatch !== undefined).toBe(true);
    },
    // The first call bundles GitHub's parser with esbuild: seconds on a busy machine.
    60_000,
  );

  it('catches what copying breaks: $default-branch, which GitHub fills in only when an organisation offers the template, never matches a push', async () => {
    const copied = readFileSync(join(root, 'workflows-templates/skiff-ship.yml'), 'utf8').replace(/branches: \[[^\]]*\]/, 'branches: [$default-branch]');
    const events = await triggers('skiff-ship.yml', copied);
    expect(pushTriggers(events.push!, DEFAULT_BRANCH)).toBe(false);
    expect(pushTriggers({ branches: ['release/**', 'main'] }, 'main')).toBe(true);
    expect(pushTriggers({ branches: ['*'], 'branches-ignore': undefined }, 'feature/x')).toBe(false);
    expect(pushTriggers({ branches: ['**', '!main'] }, 'main')).toBe(false);
  }, 60_000);
});

/** A repository created today: GitHub names its default branch main. */
const DEFAULT_BRANCH = 'main';

/** The workflow's events as GitHub's own parser and converter read them; a template they reject fails here. */
async function triggers(path: string, text: string): Promise<WorkflowTemplate['events']> {
  const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = await loadGitHubParser();
  const parsed = parseWorkflow({ name: path, content: text }, new NoOperationTraceWriter());
  expect(parsed.context.errors.getErrors().map((error) => error.message)).toEqual([]);
  const template = await convertWorkflowTemplate(parsed.context, parsed.value!);
  expect(template.errors ?? []).toEqual([]);
  return template.events;
}

/** GitHub's branch filters: `*` within a path segment, `**` across them, a `!` pattern excluding again; the last match wins. */
function pushTriggers(push: { branches?: string[]; 'branches-ignore'?: string[] }, branch: string): boolean {
  const matches = (pattern: string) =>
    new RegExp(
      `^${pattern
        .split('**')
        .map((part) =>
          part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replaceAll('*', '[^/]*')
            .replaceAll('?', '.?'),
        )
        .join('.*')}$`,
    ).test(branch);
  if (push['branches-ignore']) return !push['branches-ignore'].some(matches);
  if (!push.branches) return true;
  let triggered = false;
  for (const pattern of push.branches) {
    if (pattern.startsWith('!')) {
      if (matches(pattern.slice(1))) triggered = false;
    } else if (matches(pattern)) triggered = true;
  }
  return triggered;
}
