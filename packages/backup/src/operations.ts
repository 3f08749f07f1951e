import { randomBytes } from 'node:crypto';
import { quote, raw, render, RemoteCommandError, type Command, type Executor } from '@skiff/shell';
import { backupId } from './formats';
import type { Manifest } from './manifest';
import { decideRetention, type RetentionPolicy } from './retention';
import {
  REFUSED_EXIT,
  applyGlobalsCommand,
  describeTarget,
  drillQueryCommand,
  filesInPlace,
  dropScratchCommand,
  existingGlobalsQuery,
  parseExistingGlobals,
  prepareTargetScript,
  restoreCommand,
  scratchTarget,
  type RestoreTarget,
} from './restore';
import type { Source } from './sources';
import { BackupFailed, type Store } from './store';
import { dumpCommand, globalsCommand, secretFileContent, toolVersionCommand } from './tools';

export interface BackupOptions {
  minSize: number;
  maxShrinkPercent: number;
  encryptRecipients: readonly string[];
  retention: RetentionPolicy;
  /** Decide and report retention but delete nothing. */
  dryRunPrune?: boolean;
  now?: () => Date;
  log?: (message: string) => void;
}

export interface BackupResult {
  manifest: Manifest;
  kept: string[];
  pruned: string[];
  durationMs: number;
}

/**
 * A host-level tool's password goes to a 0600 file in the server's /tmp for the duration of `fn`
 * (the tool reads it via PGPASSFILE, --defaults-extra-file or $(cat)), never onto a command line.
 */
export async function withSecretFile<T>(executor: Executor, source: Source, fn: (path: string | undefined) => Promise<T>): Promise<T> {
  const content = secretFileContent(source);
  if (content === undefined) return fn(undefined);
  // Reached from the runner, the file goes in the source's private directory (shared with a client container).
  const path = `${source.runner?.directory ?? '/tmp'}/skiff-backup-${randomBytes(8).toString('hex')}.secret`;
  await executor.upload(path, content, { mode: 0o600, secret: true, description: `credentials for ${source.name} (removed after use)` });
  try {
    return await fn(path);
  } finally {
    await executor.run([['rm', '-f', '--', path]], { description: 'remove credentials file', allowFailure: true }).catch(() => undefined);
  }
}

async function toolVersions(executor: Executor, source: Source): Promise<Record<string, string>> {
  const command = toolVersionCommand(source);
  if (!command) return {};
  const result = await executor.run([command], { description: `${source.type} tool version`, allowFailure: true }).catch(() => undefined);
  const line = result?.code === 0 ? result.stdout.trim().split('\n')[0] : undefined;
  const tool = command[command.length - 2];
  return line ? { [typeof tool === 'string' ? tool : source.type]: line } : {};
}

/**
 * One source: dump → verify → store → manifest, then retention over the verified set. Any
 * failure before the manifest exists throws BackupFailed and prunes nothing.
 */
export async function backupSource(executor: Executor, store: Store, source: Source, options: BackupOptions): Promise<BackupResult> {
  const started = Date.now();
  const time = (options.now ?? (() => new Date()))();
  const id = backupId(source.name, time);
  const existing = await store.list(source.name);
  if (existing.some((manifest) => manifest.id === id)) throw new BackupFailed(`a backup ${id} already exists; not overwriting it`);
  const tools = await toolVersions(executor, source);
  const manifest = await withSecretFile(executor, source, (secretFile) =>
    store.backup(executor, {
      source,
      id,
      time,
      dump: dumpCommand(source, secretFile),
      ...(source.globals ? { globals: globalsCommand(source, secretFile) } : {}),
      ...(secretFile ? { secretFile } : {}),
      minSize: options.minSize,
      ...(existing[0] ? { previousSize: existing[0].size } : {}),
      maxShrinkPercent: options.maxShrinkPercent,
      encryptRecipients: options.encryptRecipients,
      tools,
    }),
  );
  options.log?.(`${source.name}: stored ${manifest.id} (${manifest.size} bytes, sha256 ${manifest.sha256}) at ${manifest.location}`);
  const { kept, pruned } = await pruneSource(store, source.name, options.retention, {
    now: time,
    dryRun: options.dryRunPrune ?? false,
    ...(options.log ? { log: options.log } : {}),
  });
  return { manifest, kept, pruned, durationMs: Date.now() - started };
}

export async function pruneSource(
  store: Store,
  sourceName: string,
  policy: RetentionPolicy,
  options: { now: Date; dryRun: boolean; log?: (message: string) => void },
): Promise<{ kept: string[]; pruned: string[] }> {
  const manifests = await store.list(sourceName);
  const decision = decideRetention(manifests, policy, options.now);
  for (const manifest of decision.prune) {
    if (options.dryRun) options.log?.(`${sourceName}: would prune ${manifest.id}`);
    else {
      await store.remove(manifest);
      options.log?.(`${sourceName}: pruned ${manifest.id}`);
    }
  }
  return { kept: decision.keep.map((entry) => entry.backup.id), pruned: decision.prune.map((manifest) => manifest.id) };
}

export async function findBackup(store: Store, source: Source, backupIdOrLatest: string): Promise<Manifest> {
  const manifests = await store.list(source.name);
  const manifest = backupIdOrLatest === 'latest' ? manifests[0] : manifests.find((candidate) => candidate.id === backupIdOrLatest);
  if (!manifest) {
    const known = manifests
      .slice(0, 5)
      .map((m) => m.id)
      .join(', ');
    throw new Error(`no verified backup ${backupIdOrLatest} of ${source.name} in ${store.describe()}${known ? ` (newest: ${known})` : ' (there are none)'}`);
  }
  return manifest;
}

export interface RestoreResult {
  manifest: Manifest;
  target: RestoreTarget;
  /** The drill query's output lines (`name|value`), for drills. */
  report?: string[];
  /** The backup's globals: applied (restore), or checked but not applied (drill). */
  globals?: 'applied' | 'verified';
}

/**
 * Restores a backup. The stored bytes' sha256 is checked first; only then is the target
 * checked (refused if not empty unless forced) and written.
 */
export async function restoreBackup(
  executor: Executor,
  store: Store,
  source: Source,
  manifest: Manifest,
  target: RestoreTarget,
  options: {
    identities?: readonly string[];
    drillQuery?: string;
    drill?: boolean;
    /**
     * Apply the backup's globals (roles, tablespaces) before the database. Default: yes for a
     * restore, no for a drill (its scratch copy lives in the same cluster, whose roles exist).
     */
    globals?: boolean;
  } = {},
): Promise<RestoreResult> {
  const data = await store.fetch(manifest, options.identities ?? []);
  const applyGlobals = manifest.globals !== undefined && (options.globals ?? !options.drill);
  if (applyGlobals && !data.globals)
    throw new Error(`${manifest.id} lists globals (${manifest.globals!.file}) but ${store.describe()} returned none; refusing a restore without its roles`);
  const globalsState = manifest.globals ? { globals: applyGlobals ? ('applied' as const) : ('verified' as const) } : {};
  return withSecretFile(executor, source, async (secretFile) => {
    const prepare = prepareTargetScript(source, target, secretFile);
    const drop = options.drill ? dropScratchCommand(source, target, secretFile) : undefined;
    const cleanup: Command[] = drop ? [[raw(`trap ${quote(`${render(drop)} >/dev/null 2>&1 || true`)} EXIT`)]] : [];
    const query = options.drill ? [drillQueryCommand(source, target, options.drillQuery, secretFile)] : [];
    const description = `${options.drill ? 'drill' : 'restore'} ${manifest.id} into ${describeTarget(source, target)}`;
    // In place, the previous contents go only once the whole restore is known to have succeeded.
    const inPlace = target.inPlace && source.type === 'files';
    const settle = async (ok: boolean, error?: unknown) => {
      // A refusal (not empty, or an earlier restore's previous contents still there) moved nothing.
      const refused = error instanceof RemoteCommandError && error.result.code === REFUSED_EXIT;
      if (inPlace && !refused)
        await executor.run([filesInPlace(source, target.force, ok ? 'finish' : 'undo')], {
          description: ok ? 'remove the previous contents' : 'put the previous contents back',
        });
    };
    try {
      // What the target cluster already has decides which globals statements are left out (read only).
      const existingGlobals = async () =>
        applyGlobals
          ? parseExistingGlobals(
              (await executor.run([existingGlobalsQuery(source, secretFile)], { description: 'roles and tablespaces in the target cluster' })).stdout,
            )
          : undefined;
      if (data.kind === 'server') {
        const existing = await existingGlobals();
        const globals = existing && data.globals ? [applyGlobalsCommand(source, existing, secretFile, data.globals)] : [];
        const result = await executor
          .run([...cleanup, ...data.check, ...prepare, ...globals, [...data.feed, raw('|'), ...restoreCommand(source, target, secretFile)], ...query], {
            description,
            live: 'stderr',
          })
          .catch(async (error: unknown) => {
            await settle(false, error).catch(() => undefined);
            throw error;
          });
        await settle(true);
        return { manifest, target, ...globalsState, ...(options.drill ? { report: lines(result.stdout) } : {}) };
      }
      try {
        if (prepare.length > 0) await executor.run(prepare, { description: `check restore target ${describeTarget(source, target)}` });
        const existing = await existingGlobals();
        if (existing && data.globals) {
          await executor.run([applyGlobalsCommand(source, existing, secretFile)], {
            description: `apply globals (roles, tablespaces) of ${manifest.id}`,
            stdin: await data.globals(),
          });
        }
        await executor
          .run([restoreCommand(source, target, secretFile)], { description, stdin: await data.open(), live: 'stderr' })
          .catch(async (error: unknown) => {
            await settle(false, error).catch(() => undefined);
            throw error;
          });
        await settle(true);
        if (!options.drill) return { manifest, target, ...globalsState };
        const result = await executor.run(query, { description: `drill query on ${target.database ?? target.path}` });
        return { manifest, target, ...globalsState, report: lines(result.stdout) };
      } finally {
        await data.cleanup();
        if (drop) await executor.run([drop], { description: 'drop the drill copy', allowFailure: true }).catch(() => undefined);
      }
    } catch (error) {
      if (error instanceof RemoteCommandError) throw new Error(`${description} failed: ${error.message}`);
      throw error;
    }
  });
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/** Restores the latest backup into a scratch copy, runs the drill query, reports next to the manifest, drops the copy. */
export async function drillSource(
  executor: Executor,
  store: Store,
  source: Source,
  options: {
    backupId?: string;
    identities?: readonly string[];
    drillQuery?: string;
    now?: () => Date;
    /** Another server to drill on (a throwaway one on the runner): the source as seen there. Its roles are not production's, so GRANTs are left out. */
    restoreInto?: Source;
  },
): Promise<RestoreResult> {
  const manifest = await findBackup(store, source, options.backupId ?? 'latest');
  const target: RestoreTarget = { ...scratchTarget(source, randomBytes(4).toString('hex')), ...(options.restoreInto ? { withoutPrivileges: true } : {}) };
  const result = await restoreBackup(executor, store, options.restoreInto ?? source, manifest, target, { ...options, drill: true });
  const report = {
    id: manifest.id,
    time: (options.now ?? (() => new Date()))().toISOString(),
    query: options.drillQuery ?? 'row counts',
    rows: result.report ?? [],
  };
  await store.writeReport(manifest, 'drill', `${JSON.stringify(report)}\n`);
  return result;
}
