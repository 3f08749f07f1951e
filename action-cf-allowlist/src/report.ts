import { inlineCode, table } from '@skiff/action-kit';

export interface HostReport {
  host: string;
  status: 'unchanged' | 'changed' | 'failed' | 'skipped';
  changed: boolean;
  added: string[];
  removed: string[];
  /** Entries wanted on the host per family (Cloudflare + extra). */
  ipv4: number;
  ipv6: number;
  reverted?: boolean;
  error?: string;
  durationMs: number;
}

export function union(lists: readonly string[][]): string[] {
  return [...new Set(lists.flat())];
}

const list = (items: readonly string[]) => (items.length === 0 ? '—' : items.map(inlineCode).join(', '));

/** The job summary: one row per host, the diff, counts per family. */
export function renderSummary(reports: readonly HostReport[], etag: string, backend: string, source: string): string {
  return [
    '### Cloudflare allowlist',
    '',
    `Source ${inlineCode(source)}, etag ${inlineCode(etag || 'none')}, backend ${backend}.`,
    '',
    table(
      ['Host', 'Result', 'IPv4', 'IPv6', 'Added', 'Removed'],
      reports.map((r) => [
        r.host,
        r.status === 'failed' ? `❌ ${r.error ?? 'failed'}${r.reverted ? ' (reverted)' : ''}` : r.status,
        String(r.ipv4),
        String(r.ipv6),
        list(r.added),
        list(r.removed),
      ]),
    ),
    '',
  ].join('\n');
}
