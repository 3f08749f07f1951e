import { codeBlock, details, inlineCode, table } from '@skiff/action-kit';
import type { TakenBackup } from './backup-before-deploy-inputs';
import type { GateReport } from './health-gate';

export interface Outcome {
  status: 'deployed' | 'rolled-back' | 'failed';
  releaseId: string;
  previousReleaseId?: string;
  /** The running release's pins. */
  images: Record<string, string>;
  gates: { label: string; gate: GateReport }[];
  diagnostics?: string;
  /** Set when the step must fail. */
  error?: string;
  pruned: string[];
  /** backup-before-deploy: what was dumped before pre-deploy, to undo a bad migration. */
  backups?: TakenBackup[];
  durationSeconds: number;
  mode: 'deploy' | 'rollback';
}

const ICON = { deployed: '✅', 'rolled-back': '↩️', failed: '❌' } as const;

function gateTable(gate: GateReport): string {
  return table(
    ['Check', 'Result', 'Healthy after', 'Detail'],
    gate.probes.map((probe) => [probe.name, probe.state, probe.firstOkMs === undefined ? '—' : `${(probe.firstOkMs / 1000).toFixed(1)} s`, probe.detail]),
  );
}

/** The job summary: what runs now, its images and digests, how the health gate went, and on failure why. */
export function renderSummary(outcome: Outcome, projectDir: string): string {
  const parts = [
    `### ${ICON[outcome.status]} Skiff ${outcome.mode === 'rollback' ? 'rollback' : 'deploy'}: ${outcome.status}`,
    '',
    table(
      ['', ''],
      [
        ['Release', inlineCode(outcome.releaseId)],
        ['Previous release', outcome.previousReleaseId ? inlineCode(outcome.previousReleaseId) : '—'],
        ['Project directory', inlineCode(projectDir)],
        ['Duration', `${outcome.durationSeconds.toFixed(1)} s`],
        ...(outcome.pruned.length > 0 ? [['Deleted old releases', outcome.pruned.join(', ')]] : []),
      ],
    ),
    '',
  ];
  if (outcome.error) parts.push(`**${outcome.error.replaceAll('\n', ' ')}**`, '');
  if (outcome.backups && outcome.backups.length > 0) {
    parts.push(
      '#### Backup before deploy',
      '',
      table(
        ['Source', 'Backup id', 'Location', 'Size', 'sha256'],
        outcome.backups.map((b) => [b.source, inlineCode(b.id), inlineCode(b.location), `${b.size} B`, inlineCode(b.sha256.slice(0, 16))]),
      ),
      '',
      `To undo a bad migration, restore it with action-backup: ${inlineCode('mode: restore')}, ${inlineCode('destination-path')} = the backup directory, ${inlineCode('backup-id')} = the id above.`,
      '',
    );
  }
  const services = Object.entries(outcome.images);
  if (services.length > 0) {
    parts.push(
      '#### Services',
      '',
      table(
        ['Service', 'Image'],
        services.map(([service, image]) => [service, inlineCode(image)]),
      ),
      '',
    );
  }
  for (const { label, gate } of outcome.gates) {
    parts.push(`#### Health gate: ${label} — ${gate.ok ? 'passed' : 'failed'} in ${(gate.elapsedMs / 1000).toFixed(1)} s (${gate.rounds} round(s))`, '');
    if (gate.reason) parts.push(gate.reason, '');
    parts.push(gateTable(gate), '');
  }
  if (outcome.diagnostics) parts.push(details('Diagnostics', codeBlock(outcome.diagnostics), outcome.status !== 'deployed'), '');
  return `${parts.join('\n').trimEnd()}\n`;
}

/**
 * The runner masks secrets in the log, but diagnostics (container logs) also go to the job
 * summary: every env value is blanked there too, longest first so no fragment survives.
 */
export function redact(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) if (secret.length >= 3) result = result.replaceAll(secret, '***');
  return result;
}

export type HostStatus = 'deployed' | 'rolled-back' | 'failed' | 'skipped';

/** One host's part of the run, for the `hosts` output, the summary and the notifications. */
export interface HostReport {
  label: string;
  /** project-dir on this host ({host} filled in). */
  projectDir: string;
  status: HostStatus;
  /** The deploy (or manual rollback) as the story told it; absent when the host failed before it (connection, lock) or was skipped. */
  outcome?: Outcome;
  error?: string;
  durationSeconds: number;
  /** all-or-nothing: another host failed, so this one went back to its previous release. */
  undo?: { to: string; ok: boolean; seconds: number; error?: string };
}
