import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { table } from '@skiff/action-kit';
import { trivyCommand } from './commands';
import type { Severity } from './inputs';
import { runCommand } from './run-command';

export interface Finding {
  target: string;
  id: string;
  pkg: string;
  installed: string;
  fixed: string;
  severity: string;
  title: string;
  url: string;
}

const SEVERITY_ORDER = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];

/** The fields of a trivy result this action reads (all strings in trivy's schema 2). */
interface TrivyResult {
  Target?: string;
  Vulnerabilities?: {
    VulnerabilityID?: string;
    PkgName?: string;
    InstalledVersion?: string;
    FixedVersion?: string;
    Severity?: string;
    Title?: string;
    PrimaryURL?: string;
  }[];
}

/** Findings from a `trivy image --format json` report (SchemaVersion 2), worst first. */
export function parseTrivyReport(json: string): Finding[] {
  const report = JSON.parse(json) as { SchemaVersion?: number; Results?: TrivyResult[] };
  if (report.SchemaVersion !== 2) throw new Error(`trivy report has SchemaVersion ${report.SchemaVersion}; this action reads version 2`);
  const findings: Finding[] = [];
  for (const result of report.Results ?? []) {
    for (const v of result.Vulnerabilities ?? []) {
      findings.push({
        target: String(result.Target ?? ''),
        id: String(v.VulnerabilityID ?? ''),
        pkg: String(v.PkgName ?? ''),
        installed: String(v.InstalledVersion ?? ''),
        fixed: String(v.FixedVersion ?? ''),
        severity: String(v.Severity ?? 'UNKNOWN').toUpperCase(),
        title: String(v.Title ?? ''),
        url: String(v.PrimaryURL ?? ''),
      });
    }
  }
  const rank = (s: string) => (SEVERITY_ORDER.indexOf(s) + SEVERITY_ORDER.length + 1) % (SEVERITY_ORDER.length + 1);
  return findings.sort((a, b) => rank(a.severity) - rank(b.severity) || a.id.localeCompare(b.id) || a.pkg.localeCompare(b.pkg));
}

export function findingsAtOrAbove(findings: readonly Finding[], severities: readonly Severity[]): Finding[] {
  return findings.filter((f) => (severities as readonly string[]).includes(f.severity));
}

export function findingsTable(findings: readonly Finding[]): string {
  return table(
    ['Severity', 'ID', 'Package', 'Installed', 'Fixed in', 'Title'],
    findings.map((f) => [f.severity, f.url ? `[${f.id}](${f.url})` : f.id, f.pkg, f.installed, f.fixed || '(no fix yet)', f.title]),
  );
}

export function onPath(program: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir || '.', program), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export const TRIVY_MISSING =
  'Input "scan-severity" is set but the trivy CLI is not on PATH; add a step before this one that installs it, ' +
  'e.g. aquasecurity/setup-trivy pinned to a commit SHA (see the README)';

/** Runs the real trivy CLI on the image and returns the findings of the given severities. */
export async function scanImage(imageRef: string, severities: readonly Severity[]): Promise<Finding[]> {
  if (!onPath('trivy')) throw new Error(TRIVY_MISSING);
  const dir = await mkdtemp(join(tmpdir(), 'skiff-trivy-'));
  try {
    const report = join(dir, 'report.json');
    await runCommand(trivyCommand(imageRef, severities, report));
    return findingsAtOrAbove(parseTrivyReport(await readFile(report, 'utf8')), severities);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
