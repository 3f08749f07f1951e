import { InputCollector, InputError, getInteger, getString, invalidInput, maskSecret, type InputDefinition } from '@skiff/action-kit';
import { parseSources, runnerOnlyFields, type Source } from '@skiff/backup';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';

export const BACKUP_BEFORE_DEPLOY_INPUTS = [
  {
    name: 'backup-before-deploy',
    description:
      "Take a verified backup on the server before pre-deploy runs (so a bad migration can be undone): what to back up, as in action-backup's `sources` — one mapping or a list, e.g. `type: postgres`, `service: db`, `database: app`, `user: app`. A Compose `service` means the running service of this project. Skipped on the first deploy (nothing runs yet).",
    required: false,
  },
  { name: 'backup-path', description: 'Directory on the server for the backups taken before deploys. Default: <project-dir>/backups.', required: false },
  {
    name: 'backup-keep',
    description: 'How many pre-deploy backups to keep per source (the oldest beyond this are deleted after a new one is verified).',
    required: false,
    default: '10',
  },
] as const satisfies readonly InputDefinition[];

export interface BackupBeforeDeployInputs {
  sources: Source[];
  /** Absolute path on the server; `{host}` filled in per host like project-dir. */
  path: string;
  keep: number;
}

/** What the summary and the hosts output name, so a bad migration can be undone with action-backup's restore. */
export interface TakenBackup {
  source: string;
  id: string;
  location: string;
  size: number;
  sha256: string;
}

export function readBackupBeforeDeployInputs(projectDir: string | undefined): BackupBeforeDeployInputs | undefined {
  const c = new InputCollector();
  const text = getString('backup-before-deploy');
  const keep = c.read(() => getInteger('backup-keep', { default: 10, min: 1, max: 1000 }));
  const path = c.read(() => readBackupPath(projectDir, text !== undefined));
  const sources = text === undefined ? undefined : c.read(() => readSources(text));
  c.finish();
  if (text === undefined || path === undefined) return undefined;
  return { sources: sources!, path, keep: keep! };
}

function readSources(text: string): Source[] {
  const { sources, problems } = parseSources(asList(text));
  if (problems.length > 0)
    throw new InputError(
      'backup-before-deploy',
      `Input "backup-before-deploy" ${problems.length === 1 ? 'has a problem' : 'has problems'} (the same form as action-backup's sources):\n- ${problems.join('\n- ')}`,
    );
  const runnerOnly = runnerOnlyFields(sources);
  if (runnerOnly.length > 0)
    throw new InputError(
      'backup-before-deploy',
      `Input "backup-before-deploy": ${runnerOnly.join(', ')} ${runnerOnly.length > 1 ? 'are' : 'is'} only for databases reached from the runner (action-backup without host); this backup runs on the server`,
    );
  for (const source of sources) maskSecret(source.password);
  return sources;
}

function readBackupPath(projectDir: string | undefined, wanted: boolean): string | undefined {
  const given = getString('backup-path');
  if (given !== undefined && !wanted)
    throw new InputError(
      'backup-path',
      'Input "backup-path" is set but "backup-before-deploy" is not; set what to back up, e.g. "type: postgres" with its service and database',
    );
  const path = (given ?? (projectDir === undefined ? undefined : `${projectDir}/backups`))?.replace(/\/+$/, '');
  if (path === undefined) return undefined;
  const sample = path.replaceAll('{host}', 'host');
  if (!sample.startsWith('/') || sample === '' || /[\r\n\0{}]/.test(sample) || sample.split('/').includes('..')) {
    throw invalidInput('backup-path', 'an absolute path on the server like /var/backups/myapp (no "..", no line breaks, not "/")', given ?? path);
  }
  return path;
}

/** One mapping is the common case; action-backup's sources format is a list. Unparsable text is left for parseSources to report. */
function asList(text: string): string {
  try {
    const document: unknown = parseYaml(text);
    return document !== null && typeof document === 'object' && !Array.isArray(document) ? stringifyYaml([document]) : text;
  } catch {
    return text;
  }
}
