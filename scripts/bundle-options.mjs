// The one way Skiff bundles TypeScript for Node 24: the actions' dist/index.js, the benchmarks
// and the test fixtures that must run exactly like an action does.

// esbuild's ESM output has no `require`, `__filename` or `__dirname`, which CommonJS
// dependencies such as ssh2 use; the prefixed names cannot clash with bundled code.
export const BANNER =
  "import { createRequire as __skiffCreateRequire } from 'node:module'; const require = __skiffCreateRequire(import.meta.url); " +
  "import { fileURLToPath as __skiffFileURLToPath } from 'node:url'; import { dirname as __skiffDirname } from 'node:path'; " +
  'const __filename = __skiffFileURLToPath(import.meta.url); const __dirname = __skiffDirname(__filename);';

export const NODE_BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  legalComments: 'none',
  // ssh2's optional native addons are compiled for the build machine's Node ABI, not the
  // runner's; left out, ssh2 falls back to its pure-JS crypto.
  external: ['*.node', 'cpu-features'],
  banner: { js: BANNER },
};
