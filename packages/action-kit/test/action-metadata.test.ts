import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InputDefinition } from '../src/index';
import { DRY_RUN_INPUT, SSH_INPUTS } from '../src/index';
import * as buildPush from '../../../action-build-push/src/inputs';
import * as deploy from '../../../action-deploy/src/inputs';
import * as cfAllowlist from '../../../action-cf-allowlist/src/inputs';
import * as backup from '../../../action-backup/src/inputs';

const root = join(import.meta.dirname, '../../..');

interface ActionModule {
  ACTION_INPUTS: readonly InputDefinition[];
  ACTION_OUTPUTS: Record<string, string>;
}

const ACTIONS: Record<string, { module: ActionModule; ssh: boolean; post: boolean }> = {
  'action-build-push': { module: buildPush, ssh: false, post: true },
  'action-deploy': { module: deploy, ssh: true, post: true },
  'action-cf-allowlist': { module: cfAllowlist, ssh: true, post: false },
  'action-backup': { module: backup, ssh: true, post: false },
};

type Yaml = { [key: string]: unknown };

describe.each(Object.entries(ACTIONS))('%s', (action, { module, ssh, post }) => {
  const yml = parseYaml(readFileSync(join(root, action, 'action.yml'), 'utf8')) as Yaml;
  const readme = readFileSync(join(root, action, 'README.md'), 'utf8');

  it('declares the inputs the code reads, with the same descriptions, requiredness and defaults', () => {
    const declared = Object.entries(yml.inputs as Yaml).map(([name, spec]) => {
      const { description, required, default: value, ...rest } = spec as Record<string, unknown>;
      expect(rest).toEqual({});
      return { name, description, required: required === true, ...(value === undefined ? {} : { default: String(value) }) };
    });
    expect(declared).toEqual(module.ACTION_INPUTS.map(({ secret: _secret, ...input }) => input));
  });

  it('uses the shared SSH inputs and dry-run when it is an SSH action', () => {
    const names = module.ACTION_INPUTS.map((input) => input.name);
    if (ssh) expect(names).toEqual(expect.arrayContaining([...SSH_INPUTS.map((input) => input.name), DRY_RUN_INPUT.name]));
    else expect(names).not.toContain('host');
  });

  it('declares the outputs the code sets', () => {
    expect(yml.outputs).toEqual(Object.fromEntries(Object.entries(module.ACTION_OUTPUTS).map(([name, description]) => [name, { description }])));
  });

  it('runs the bundle on node24, with a post step only where cleanup is needed', () => {
    expect(yml.runs).toEqual({ using: 'node24', main: 'dist/index.js', ...(post ? { post: 'dist/index.js' } : {}) });
    expect(yml.author).toBe('Skiff');
    expect(Object.keys(yml.branding as Yaml).sort()).toEqual(['color', 'icon']);
  });

  it('documents every input and output in the README tables', () => {
    const cell = (text: string) => text.replaceAll('|', '\\|');
    for (const input of module.ACTION_INPUTS) {
      const value = input.default === undefined ? '' : cell(`\`${input.default}\``);
      expect(readme).toContain(`| \`${input.name}\` | ${input.required ? 'yes' : 'no'} | ${value} | ${cell(input.description)} |`);
    }
    for (const [name, description] of Object.entries(module.ACTION_OUTPUTS)) {
      expect(readme).toContain(`| \`${name}\` | ${cell(description)} |`);
    }
    const rows = readme.split('\n').filter((line) => /^\| `[^`]+` \|/.test(line));
    expect(rows).toHaveLength(module.ACTION_INPUTS.length + Object.keys(module.ACTION_OUTPUTS).length);
  });
});
