// Bundles the demo story (demo/main.ts) the way Skiff bundles everything for Node 24, then runs it
// on node_modules/.bin/node (Node 24, the runner's runtime), passing the terminal through.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { NODE_BUNDLE_OPTIONS } from '../scripts/bundle-options.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const node24 = join(root, 'node_modules/.bin/node');
const outfile = join(root, '.tmp/demo/main.mjs');

if (!existsSync(node24)) {
  console.error('node_modules/.bin/node (Node 24) is missing; run npm ci');
  process.exit(1);
}

await build({
  absWorkingDir: root,
  entryPoints: ['demo/main.ts'],
  outfile,
  ...NODE_BUNDLE_OPTIONS,
  // @skiff/testbed's runner finds the repository (and Node 24) from its own folder; bundled, that
  // folder is gone, so the bundle is told where runner.ts lives. The demo's own code uses cwd.
  define: { 'import.meta.dirname': JSON.stringify(join(root, 'packages/testbed/src')) },
  sourcemap: true,
  logLevel: 'warning',
});

const child = spawn(node24, ['--enable-source-maps', outfile], { cwd: root, stdio: 'inherit', env: { ...process.env, SKIFF_DEMO_ROOT: root } });
// Ctrl-C reaches the whole foreground group: the story cleans up and exits; this launcher only waits for it.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('error', (error) => {
  console.error(error.message);
  process.exit(1);
});
child.on('close', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
