import type { BundleRun } from '@skiff/testbed';
import type { ActionRun } from './actions';
import { renderMarkdown } from './markdown';
import { bold, cyan, dim, green, red, renderTable, terminalWidth, wrapText, yellow } from './terminal';

/** How the demo talks: step headers, each action run's summary and outputs, checks, and the closing table. */

export const print = (line = '') => process.stdout.write(`${line}\n`);

const SHOW_LOGS = process.env.SKIFF_DEMO_LOGS === '1';
const LONG_VALUE = 400;

export function header(number: number, total: number, title: string, expectation: string): void {
  const width = terminalWidth();
  const label = ` ${number}/${total}  ${title} `;
  print();
  print(bold(cyan(`━━${label}${'━'.repeat(Math.max(2, width - label.length - 2))}`)));
  for (const line of wrapText(`Expected: ${expectation}`, width - 2)) print(`  ${dim(line)}`);
}

export function note(text: string): void {
  wrapText(text, terminalWidth() - 4).forEach((line, n) => print(`  ${n === 0 ? dim('·') : ' '} ${line}`));
}

/** `::warning::` / `::notice::` workflow commands of a log (with or without properties), unescaped. */
function annotations(log: string): { kind: string; text: string }[] {
  return log
    .split('\n')
    .map((line) => /^::(warning|notice)(?: [^:]*)?::(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ kind: match[1]!, text: match[2]!.replaceAll('%0A', '\n').replaceAll('%0D', '').replaceAll('%25', '%') }));
}

function shorten(value: string): string {
  return value.length > LONG_VALUE ? `${value.slice(0, LONG_VALUE)}… (${value.length - LONG_VALUE} more characters)` : value;
}

function showLog(run: BundleRun, lines?: number): void {
  const log = run.masked
    .split('\n')
    .filter((line) => !line.startsWith('::') || line.startsWith('::error') || line.startsWith('::warning'))
    .filter((line) => line.trim() !== '');
  const shown = lines === undefined ? log : log.slice(-lines);
  if (lines !== undefined && log.length > lines) print(dim(`    … ${log.length - lines} earlier log lines (SKIFF_DEMO_LOGS=1 shows every log in full)`));
  for (const line of shown) print(dim(`    │ ${line}`));
}

/** One action run as a job page would show it: exit, errors and warnings, the step summary, the outputs, the post step. */
export function showRun(action: string, run: ActionRun, expectedCode: number): void {
  const { main, post } = run;
  const code = main.code === null ? 'killed' : `exit ${main.code}`;
  const outcome = main.code === expectedCode ? green(code) : red(`${code} (expected exit ${expectedCode})`);
  print();
  print(`  ${bold(`▶ ${action}`)} ${dim('dist/index.js on Node 24 —')} ${outcome} ${dim(`in ${(main.ms / 1000).toFixed(1)} s`)}`);
  for (const error of main.errors) for (const line of error.split('\n')) print(`    ${red('error')} ${line}`);
  for (const { kind, text } of annotations(main.masked)) for (const line of text.split('\n')) print(`    ${yellow(kind)} ${line}`);
  if (SHOW_LOGS) showLog(main);
  else if (main.code !== expectedCode) showLog(main, 40);

  print();
  print(`  ${bold('Step summary')} ${dim('(GITHUB_STEP_SUMMARY)')}`);
  print(main.summary.trim() === '' ? `    ${dim('(empty)')}` : renderMarkdown(main.summary, terminalWidth(), '    '));

  const outputs = Object.entries(main.outputs);
  print();
  print(`  ${bold('Outputs')} ${dim('(GITHUB_OUTPUT)')}`);
  if (outputs.length === 0) print(`    ${dim('(none)')}`);
  const width = Math.max(...outputs.map(([name]) => name.length), 0);
  for (const [name, value] of outputs) {
    const [first, ...rest] = shorten(value).split('\n');
    print(`    ${cyan(name.padEnd(width))}  ${first ?? ''}`);
    for (const line of rest) print(`    ${' '.repeat(width)}  ${line}`);
  }

  if (post) {
    const last =
      post.masked
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.startsWith('::'))
        .at(-1) ?? '';
    const postCode = post.code === 0 ? green('exit 0') : red(post.code === null ? 'killed' : `exit ${post.code}`);
    print();
    print(`  ${bold('Post step')} ${dim('(STATE_* from main)')} ${postCode}${last ? dim(` — ${last}`) : ''}`);
    if (SHOW_LOGS || post.code !== 0) showLog(post, SHOW_LOGS ? undefined : 20);
  }
}

/** The checks a step makes on what happened, each printed as it is decided. */
export class Checks {
  readonly failed: string[] = [];

  constructor() {
    print();
  }

  that(passed: boolean, text: string): boolean {
    print(`  ${passed ? green('✔') : red('✘')} ${text}`);
    if (!passed) this.failed.push(text);
    return passed;
  }

  get ok(): boolean {
    return this.failed.length === 0;
  }
}

export interface StepResult {
  title: string;
  /** passed: as expected; failed: not as expected; skipped: not run because an earlier step it needs failed. */
  status: 'passed' | 'failed' | 'skipped';
  result: string;
  seconds: number;
}

export function finalTable(results: readonly StepResult[], totalSeconds: number, setupSeconds: number): void {
  const width = terminalWidth();
  print();
  print(bold(cyan(`━━ What happened ${'━'.repeat(Math.max(2, width - 17))}`)));
  const rows = results.map((step, index) => [
    String(index + 1),
    step.title,
    step.status === 'passed' ? `✔ ${step.result}` : step.status === 'skipped' ? `– not run: ${step.result}` : `✘ UNEXPECTED: ${step.result}`,
    // Right-aligned under the header.
    step.seconds.toFixed(1).padStart('Seconds'.length),
  ]);
  for (const line of renderTable(['#', 'Step', 'Result', 'Seconds'], rows, width)) print(line);
  const passed = results.filter((step) => step.status === 'passed').length;
  print();
  const verdict =
    passed === results.length
      ? green(`All ${results.length} steps went as expected.`)
      : red(`${results.length - passed} of ${results.length} steps did not go as expected.`);
  print(`  ${verdict} ${dim(`Sandbox set-up ${setupSeconds.toFixed(1)} s, total ${totalSeconds.toFixed(1)} s.`)}`);
}
