import { details, inlineCode, table } from '@skiff/action-kit';
import type { HostReport } from './each-host';
import { renderSummary, type Outcome } from './host-outcome';

/** The whole run across hosts: what the outputs, the summary, GitHub and the webhook are told. */
export interface RunResult {
  /** `deployed`: every host runs the new release; `rolled-back`: every host runs what it ran before; else `failed`. */
  status: Outcome['status'];
  rolledBack: boolean;
  reports: HostReport[];
  durationSeconds: number;
  mode: Outcome['mode'];
  /** The release the run was about (the same id on every host). */
  releaseId: string;
  previousReleaseId?: string;
  images: Record<string, string>;
  error?: string;
}

export function combine(reports: HostReport[], durationSeconds: number, mode: Outcome['mode'], releaseId: string): RunResult {
  const all = (status: HostReport['status'] | HostReport['status'][]) => reports.every((report) => [status].flat().includes(report.status));
  const status: Outcome['status'] = all('deployed')
    ? 'deployed'
    : all(['rolled-back', 'skipped']) && reports.some((r) => r.status === 'rolled-back')
      ? 'rolled-back'
      : 'failed';
  const first = reports.find((report) => report.outcome)?.outcome;
  const running = reports.find((report) => report.status === 'deployed')?.outcome ?? first;
  const problems = reports.filter((report) => report.status !== 'deployed');
  const error =
    status === 'deployed'
      ? undefined
      : reports.length === 1
        ? (reports[0]!.error ?? reports[0]!.outcome?.error ?? 'failed')
        : problems.map((report) => `${report.label}: ${describe(report)}`).join('\n');
  return {
    status,
    rolledBack: reports.some((report) => report.status === 'rolled-back'),
    reports,
    durationSeconds,
    mode,
    releaseId: first?.releaseId ?? releaseId,
    ...(first?.previousReleaseId ? { previousReleaseId: first.previousReleaseId } : {}),
    images: running?.images ?? {},
    ...(error ? { error } : {}),
  };
}

function describe(report: HostReport): string {
  if (report.status === 'skipped') return 'not started (an earlier host failed)';
  if (report.undo)
    return report.undo.ok ? `switched, then rolled back to ${report.undo.to} (all-or-nothing)` : `all-or-nothing rollback failed: ${report.undo.error}`;
  return report.error ?? report.outcome?.error ?? report.status;
}

/** The `hosts` output: one entry per host, keyed by user@host:port. */
export function hostsOutput(result: RunResult): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    result.reports.map((report) => [
      report.label,
      {
        status: report.status,
        release: report.outcome?.releaseId ?? null,
        'previous-release': report.outcome?.previousReleaseId ?? null,
        'rolled-back': report.status === 'rolled-back',
        'duration-seconds': Math.round(report.durationSeconds * 10) / 10,
        ...(report.outcome?.backups && report.outcome.backups.length > 0 ? { backups: report.outcome.backups.map((b) => b.id) } : {}),
        ...(report.undo ? { 'rollback-seconds': Math.round(report.undo.seconds * 10) / 10, 'rolled-back-to': report.undo.to || null } : {}),
        ...(report.status === 'deployed' ? {} : { error: describe(report) }),
      },
    ]),
  );
}

const ICON = { deployed: '✅', 'rolled-back': '↩️', failed: '❌', skipped: '⏭️' } as const;

/** One host: the summary as before. Several: a row per host, then each host's own summary folded. */
export function renderRunSummary(result: RunResult, projectDir: string): string {
  if (result.reports.length === 1 && result.reports[0]!.outcome) return renderSummary(result.reports[0]!.outcome, result.reports[0]!.projectDir);
  const parts = [
    `### ${ICON[result.status]} Skiff ${result.mode === 'rollback' ? 'rollback' : 'deploy'} to ${result.reports.length} host${result.reports.length === 1 ? '' : 's'}: ${result.status}`,
    '',
    table(
      ['Host', 'Result', 'Release', 'Previous', 'Duration', 'Detail'],
      result.reports.map((report) => [
        inlineCode(report.label),
        `${ICON[report.status]} ${report.status}`,
        report.outcome ? inlineCode(report.outcome.releaseId) : '—',
        report.outcome?.previousReleaseId ? inlineCode(report.outcome.previousReleaseId) : '—',
        `${report.durationSeconds.toFixed(1)} s${report.undo ? ` + ${report.undo.seconds.toFixed(1)} s rollback` : ''}`,
        report.status === 'deployed' ? '' : describe(report).replaceAll('\n', ' '),
      ]),
    ),
    '',
    `Project directory ${inlineCode(projectDir)} · total ${result.durationSeconds.toFixed(1)} s`,
    '',
  ];
  for (const report of result.reports) {
    if (!report.outcome) continue;
    const body = renderSummary(report.outcome, report.projectDir).replace(/^(#{3,4}) /gm, '#$1 ');
    parts.push(details(`${report.label}: ${report.status}`, body, report.status !== 'deployed'), '');
  }
  return `${parts.join('\n').trimEnd()}\n`;
}
