import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

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
    '%s runs when copied by hand: no $default-branch, which GitHub fills in only for organisation templates',
    (path) => {
      const on = (parseYaml(readFileSync(join(root, path), 'utf8')) as { on: Record<string, { branches?: string[] } | null> }).on;
      for (const trigger of Object.values(on)) expect(trigger?.branches ?? []).not.toContain('$default-branch');
    },
  );
});
