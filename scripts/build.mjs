// Bundles each action into one self-contained ESM file, <action>/dist/index.js, which is
// committed: the runner executes it straight from the repository, with no npm install.
//
//   node scripts/build.mjs          write the bundles
//   node scripts/build.mjs --check  rebuild in a temp dir and fail if a committed bundle is stale
//   node scripts/build.mjs action-deploy [...]   only these actions (either mode)
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { NODE_BUNDLE_OPTIONS } from './bundle-options.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ALL_ACTIONS = ['action-build-push', 'action-deploy', 'action-cf-allowlist', 'action-backup'];

async function bundle(action, outfile) {
  await build({
    absWorkingDir: root, // the path comments esbuild writes are relative to this, so output does not depend on the caller's cwd
    entryPoints: [join(action, 'src/index.ts')],
    outfile,
    ...NODE_BUNDLE_OPTIONS,
    logLevel: 'warning',
  });
}

async function main() {
  const check = process.argv.includes('--check');
  const named = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
  const unknown = named.filter((name) => !ALL_ACTIONS.includes(name));
  if (unknown.length > 0) throw new Error(`unknown action(s): ${unknown.join(', ')}; expected some of ${ALL_ACTIONS.join(', ')}`);
  const ACTIONS = named.length > 0 ? named : ALL_ACTIONS;
  if (!check) {
    for (const action of ACTIONS) {
      await bundle(action, join(root, action, 'dist/index.js'));
      console.log(`built ${action}/dist/index.js`);
    }
    return;
  }

  const temp = await mkdtemp(join(tmpdir(), 'skiff-build-check-'));
  try {
    const stale = [];
    for (const action of ACTIONS) {
      const fresh = join(temp, action, 'index.js');
      await bundle(action, fresh);
      const committed = await readFile(join(root, action, 'dist/index.js')).catch(() => undefined);
      if (!committed || !committed.equals(await readFile(fresh))) stale.push(`${action}/dist/index.js`);
    }
    if (stale.length > 0) {
      for (const path of stale) console.error(`stale bundle: ${path} does not match its sources`);
      console.error('Run `npm run build` and commit the dist/ files.');
      process.exitCode = 1;
    } else {
      console.log(`all ${ACTIONS.length} bundles are up to date`);
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

await main();
