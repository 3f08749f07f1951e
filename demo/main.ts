import { writeFile } from 'node:fs/promises';
import { control, running } from './actions';
import { Cleanup } from './cleanup';
import { bold, cyan, dim, red, renderTable, terminalWidth } from './terminal';
import { finalTable, print, type StepResult } from './report';
import { provision, type Sandbox } from './sandbox';
import { STEP_TITLES, Story } from './story';

/**
 * `npm run demo`: provisions the sandbox, tells the story, prints what happened, and cleans up
 * whatever happens (also on Ctrl-C). Exits 0 only when every step went as expected.
 * SKIFF_DEMO_RESULT=FILE writes the outcome as JSON (used by test/demo.int.test.ts).
 */

const ROOT = process.env.SKIFF_DEMO_ROOT ?? process.cwd();
const cleanup = new Cleanup();
const started = performance.now();
let interrupted = false;

async function cleanUp(): Promise<string[]> {
  control.stopped = true;
  for (const child of running) child.kill('SIGKILL');
  print();
  print(dim('  Cleaning up: the compose stack, containers, volumes, images, namespace, servers and temporary files…'));
  const failures = await cleanup.run();
  for (const failure of failures) print(red(`  could not clean up ${failure}`));
  if (failures.length === 0) print(dim('  Nothing of the sandbox is left.'));
  return failures;
}

function onSignal(signal: NodeJS.Signals): void {
  if (interrupted) return;
  interrupted = true;
  print();
  print(red(`  Interrupted (${signal}).`));
  void cleanUp().finally(() => process.exit(130));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function main(): Promise<number> {
  const width = terminalWidth();
  print(bold(cyan(`━━ Skiff demo ${'━'.repeat(Math.max(2, width - 14))}`)));
  print("  The four Skiff actions, run from their committed bundles the way GitHub's runner runs them");
  print('  (Node 24, INPUT_* variables, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_STATE and post steps),');
  print('  against a throwaway sandbox on this machine. Nothing outside it is contacted.');
  print();
  print(dim('  Setting up the sandbox…'));

  let results: StepResult[] = [];
  let setupSeconds = 0;
  let sandbox: Sandbox | undefined;
  let failures: string[] = [];
  try {
    sandbox = await provision(ROOT, cleanup);
    setupSeconds = (performance.now() - started) / 1000;
    print();
    for (const line of renderTable(['Stands in for', `The sandbox (ready in ${setupSeconds.toFixed(1)} s)`], sandbox.parts, width)) print(line);
    results = await new Story(sandbox).tell();
  } catch (error) {
    if (!interrupted) print(red(`  The sandbox could not be set up: ${(error as Error).stack ?? (error as Error).message}`));
  } finally {
    if (!interrupted) failures = await cleanUp();
  }
  if (interrupted) return 130;
  const total = (performance.now() - started) / 1000;
  // Steps the story never reached (the sandbox failed) count as not run.
  for (const title of STEP_TITLES.slice(results.length)) results.push({ title, status: 'skipped', result: 'the sandbox was not set up', seconds: 0 });
  finalTable(results, total, setupSeconds);
  const ok = results.every((step) => step.status === 'passed') && failures.length === 0;
  if (process.env.SKIFF_DEMO_RESULT) {
    await writeFile(
      process.env.SKIFF_DEMO_RESULT,
      `${JSON.stringify({ ok, steps: results, setupSeconds, totalSeconds: total, cleanupFailures: failures, ports: sandbox ? [sandbox.vps.port, Number(sandbox.registry.address.split(':')[1]), Number(new URL(sandbox.s3.endpoint).port), sandbox.appPort] : [] }, null, 2)}\n`,
    );
  }
  return ok ? 0 : 1;
}

process.exitCode = await main();
