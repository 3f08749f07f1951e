import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

const roots = readdirSync(ROOT)
  .filter((name) => name.startsWith('action-'))
  .concat(readdirSync(join(ROOT, 'packages')).map((name) => join('packages', name)))
  .map((dir) => join(ROOT, dir, 'src'))
  .filter((dir) => existsSync(dir));

/** `@skiff/<name>` → packages/<name>/src/index.ts; `./x` → x.ts or x/index.ts. */
function resolveImport(from: string, specifier: string): string | undefined {
  const workspace = /^@skiff\/([^/]+)$/.exec(specifier);
  if (workspace) return join(ROOT, 'packages', workspace[1]!, 'src', 'index.ts');
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(from), specifier);
  return [`${base}.ts`, join(base, 'index.ts'), base].find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
}

/** Every import, type-only ones included: a cycle of types still ties the files' changes together. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found = [...text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms)].map((match) => match[1]!);
  return found.map((specifier) => resolveImport(file, specifier)).filter((path): path is string => path !== undefined);
}

function cycles(files: readonly string[]): string[][] {
  const graph = new Map(files.map((file) => [file, importsOf(file)]));
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next].map((path) => relative(ROOT, path)));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return found;
}

describe('imports', () => {
  const files = roots.flatMap(sourceFiles);

  it('finds the source files and their imports', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(importsOf(join(ROOT, 'action-deploy/src/main.ts')).map((path) => relative(ROOT, path))).toContain('action-deploy/src/inputs.ts');
  });

  it('the cycle finder sees a cycle', () => {
    expect(cycles([join(ROOT, 'test/fixtures/cycle/a.ts'), join(ROOT, 'test/fixtures/cycle/b.ts')])).toEqual([
      ['test/fixtures/cycle/a.ts', 'test/fixtures/cycle/b.ts', 'test/fixtures/cycle/a.ts'],
    ]);
  });

  it('form no cycle, within a workspace or across workspaces', () => {
    expect(cycles(files).map((cycle) => cycle.join(' → '))).toEqual([]);
  });
});
