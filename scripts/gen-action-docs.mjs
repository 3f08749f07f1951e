#!/usr/bin/env node
// Regenerates the inputs and outputs tables of each action's README.md from its action.yml.
//   node scripts/gen-action-docs.mjs            rewrite the tables
//   node scripts/gen-action-docs.mjs --check    exit 1 when a README differs from its action.yml
// A table sits between <!-- inputs:start --> and <!-- inputs:end --> (outputs likewise); a README
// without markers has its table found by the header row (| Input | Required | … and | Output | …).
// The row format is the one packages/action-kit/test/action-metadata.test.ts checks.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = join(fileURLToPath(import.meta.url), '../..');
export const ACTIONS = ['action-build-push', 'action-deploy', 'action-cf-allowlist', 'action-backup'];

const cell = (text) => String(text).replaceAll('|', '\\|').replaceAll('\n', ' ');

export function inputsTable(action) {
  const rows = Object.entries(action.inputs ?? {}).map(([name, spec]) => {
    const value = spec?.default === undefined ? '' : cell(`\`${String(spec.default)}\``);
    return `| \`${name}\` | ${spec?.required === true ? 'yes' : 'no'} | ${value} | ${cell(spec?.description ?? '')} |`;
  });
  return ['| Input | Required | Default | Description |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

export function outputsTable(action) {
  const rows = Object.entries(action.outputs ?? {}).map(([name, spec]) => `| \`${name}\` | ${cell(spec?.description ?? '')} |`);
  return ['| Output | Description |', '| --- | --- |', ...rows].join('\n');
}

function replaceTable(readme, kind, table) {
  const start = `<!-- ${kind}:start -->`;
  const end = `<!-- ${kind}:end -->`;
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a !== -1 && b > a) return `${readme.slice(0, a + start.length)}\n${table}\n${readme.slice(b)}`;
  const header = kind === 'inputs' ? '| Input | Required | Default | Description |' : '| Output | Description |';
  const lines = readme.split('\n');
  const first = lines.indexOf(header);
  if (first === -1) throw new Error(`no ${kind} table: add ${start} and ${end} where it belongs`);
  let last = first;
  while (last + 1 < lines.length && lines[last + 1].startsWith('|')) last++;
  return [...lines.slice(0, first), table, ...lines.slice(last + 1)].join('\n');
}

/** The README with both tables regenerated from the action.yml text. */
export function renderReadme(readme, actionYmlText) {
  const action = parse(actionYmlText);
  return replaceTable(replaceTable(readme, 'inputs', inputsTable(action)), 'outputs', outputsTable(action));
}

function main() {
  const check = process.argv.includes('--check');
  const folders = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  let drift = 0;
  for (const folder of folders.length > 0 ? folders : ACTIONS) {
    const path = join(root, folder, 'README.md');
    const readme = readFileSync(path, 'utf8');
    const next = renderReadme(readme, readFileSync(join(root, folder, 'action.yml'), 'utf8'));
    if (next === readme) continue;
    if (check) {
      drift++;
      console.error(`${folder}/README.md: inputs/outputs tables differ from action.yml (run node scripts/gen-action-docs.mjs ${folder})`);
    } else {
      writeFileSync(path, next);
      console.log(`${folder}/README.md: tables regenerated`);
    }
  }
  if (drift > 0) process.exit(1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
