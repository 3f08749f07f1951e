import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Every workspace declares the packages its source imports (a workspace that works only because
 * another one hoisted its dependency breaks when that one drops it), and nothing it does not.
 */
const root = join(import.meta.dirname, '..');
const WORKSPACES = [
  ...readdirSync(join(root, 'packages')).map((name) => `packages/${name}`),
  ...readdirSync(root).filter((name) => name.startsWith('action-')),
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

/** Bare package names imported by the workspace's src (type-only imports too: they are part of its API). */
function imported(workspace: string): string[] {
  const names = new Set<string>();
  for (const file of files(join(root, workspace, 'src'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(/(?:from\s+|import\s+|import\(\s*)'([^'.][^']*)'/g)) {
      const specifier = match[1]!;
      if (specifier.startsWith('node:')) continue;
      names.add(specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!);
    }
  }
  return [...names].sort();
}

describe('workspace dependencies', () => {
  it.each(WORKSPACES)('%s declares exactly what its src imports', (workspace) => {
    const pkg = JSON.parse(readFileSync(join(root, workspace, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    expect(Object.keys(pkg.dependencies ?? {}).sort()).toEqual(imported(workspace));
  });
});
