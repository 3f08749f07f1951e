import { table } from '@skiff/action-kit';
import type { BackupResult, Manifest, RestoreResult } from '@skiff/backup';

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

export type SourceOutcome = { source: string; result?: BackupResult; error?: string };

/** One row per source: what was stored, how long it took, what checked it, what retention did. */
export function backupTable(outcomes: readonly SourceOutcome[]): string {
  return table(
    ['Source', 'Backup', 'Size', 'Duration', 'Verified', 'Kept', 'Pruned'],
    outcomes.map(({ source, result, error }) =>
      result
        ? [
            source,
            result.manifest.id,
            formatBytes(result.manifest.size) + (result.manifest.globals ? ` + ${formatBytes(result.manifest.globals.size)} globals` : ''),
            `${(result.durationMs / 1000).toFixed(1)}s`,
            result.manifest.verification.join(', ') + (result.manifest.globals ? `; globals: ${result.manifest.globals.verification.join(', ')}` : ''),
            String(result.kept.length),
            result.pruned.join(', ') || '—',
          ]
        : [source, 'FAILED', '—', '—', error ?? '', '—', 'nothing (failed backups never prune)'],
    ),
  );
}

export function listTable(source: string, manifests: readonly Manifest[]): string {
  return table(
    ['Backup', 'Time', 'Size', 'sha256', 'Encrypted', 'Globals'],
    manifests.map((m) => [
      m.id,
      m.time,
      formatBytes(m.size),
      m.sha256.slice(0, 16),
      m.encryption ? 'age' : 'no',
      m.globals ? formatBytes(m.globals.size) : '—',
    ]),
  ).replace(/^/, `**${source}**\n\n`);
}

export type DrillOutcome = { source: string; result?: RestoreResult; durationMs: number; error?: string };

/** One row per source of a drill: which backup was restored into a scratch copy, and what it held. */
export function drillTable(outcomes: readonly DrillOutcome[]): string {
  return table(
    ['Source', 'Backup', 'Result', 'Duration', 'Restored copy held'],
    outcomes.map(({ source, result, durationMs, error }) => [
      source,
      result?.manifest.id ?? '—',
      result ? `passed${result.globals ? ' (globals checked, not applied)' : ''}` : 'FAILED',
      `${(durationMs / 1000).toFixed(1)}s`,
      result ? (result.report ?? []).join('\n') || '—' : (error ?? ''),
    ]),
  );
}
