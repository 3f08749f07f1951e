import * as core from '@actions/core';
import type { Command, Executor } from '@skiff/shell';
import { PlanRecorder, render } from '@skiff/shell';
import { SshConnection, type SshConnectOptions } from '@skiff/ssh';
import { publishPlan } from './dry-run';
import { inlineCode, table, writeSummary } from './summary';

/** A read-only look at the server before changing anything, e.g. "is docker installed?". */
export interface PreflightCheck {
  description: string;
  command: Command;
}

export interface PreflightResult {
  description: string;
  command: string;
  ok: boolean;
  /** First line of stdout (or of stderr when it failed). */
  output: string;
}

const PREFLIGHT_TIMEOUT_SECONDS = 30;

/** The checks every SSH action starts with. */
export const BASE_PREFLIGHT: readonly PreflightCheck[] = [
  { description: 'operating system', command: ['uname', '-sr'] },
  { description: 'docker installed', command: ['command', '-v', 'docker'] },
  { description: 'docker compose plugin', command: ['docker', 'compose', 'version'] },
];

/**
 * Runs each check on its own and keeps going when one fails: a missing tool is a finding to
 * report, and all findings together say more than the first one.
 */
export async function runPreflight(executor: Executor, checks: readonly PreflightCheck[]): Promise<PreflightResult[]> {
  const results: PreflightResult[] = [];
  for (const check of checks) {
    const result = await executor.run([check.command], {
      allowFailure: true,
      description: check.description,
      timeoutSeconds: PREFLIGHT_TIMEOUT_SECONDS,
    });
    const ok = result.code === 0;
    const text = (ok ? result.stdout : result.stderr || result.stdout).trim();
    results.push({
      description: check.description,
      command: render(check.command),
      ok,
      output: text.split('\n')[0] ?? '',
    });
  }
  return results;
}

export function renderPreflight(results: readonly PreflightResult[], host: string): string {
  return [
    `### Preflight on ${host}`,
    '',
    table(
      ['Check', 'Command', 'Result'],
      results.map((result) => [result.description, inlineCode(result.command), `${result.ok ? '✅' : '❌'} ${result.output}`.trim()]),
    ),
    '',
  ].join('\n');
}

/** Plain-text form of the results for the log. */
export function formatPreflightLog(results: readonly PreflightResult[]): string {
  return results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.description}${r.output ? `: ${r.output}` : ''}`).join('\n');
}

/**
 * The first chapter of every SSH action: with dry-run, record the checks as a plan and publish
 * it without connecting; otherwise connect (host key verified), run them and report findings.
 */
export async function checkServer(ssh: SshConnectOptions, dryRun: boolean, checks: readonly PreflightCheck[]): Promise<void> {
  if (dryRun) {
    const plan = new PlanRecorder();
    await runPreflight(plan, checks);
    await publishPlan(plan.steps);
    return;
  }
  const server = await SshConnection.connect(ssh);
  try {
    const findings = await runPreflight(server, checks);
    core.info(formatPreflightLog(findings));
    await writeSummary(renderPreflight(findings, ssh.host));
  } finally {
    await server.close();
  }
}
