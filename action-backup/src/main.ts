import { tmpdir } from 'node:os';
import * as core from '@actions/core';
import { BASE_PREFLIGHT, codeBlock, formatPreflightLog, liveLog, outputs, publishPlan, renderPreflight, runPreflight, writeSummary } from '@skiff/action-kit';
import {
  BackupFailed,
  HostStore,
  backupSource,
  describeTarget,
  drillSource,
  dumpCommand,
  findBackup,
  globalsCommand,
  prepareRunnerSources,
  pruneSource,
  restoreBackup,
  startScratchServer,
  type RestoreTarget,
  type RunnerClient,
  type Source,
  type Store,
} from '@skiff/backup';
import { LocalExecutor, PlanRecorder, type Executor } from '@skiff/shell';
import { SshConnection } from '@skiff/ssh';
import { ping } from './healthcheck';
import { readBackupInputs, retentionConfigured, type BackupInputs } from './inputs';
import { backupTable, drillTable, listTable, type DrillOutcome, type SourceOutcome } from './report';

type Outputs = { 'backup-id': string; location: string; size: string; sha256: string; verified: string; pruned: Record<string, string[]>; plan: string };

/** The runner destinations' code (S3 SDK, age, @actions/artifact) loads only when one is used. */
async function storeFor(inputs: BackupInputs, executor: Executor): Promise<Store> {
  const destination = inputs.destination;
  switch (destination.kind) {
    case 'host':
      return new HostStore(executor, destination.path);
    case 's3': {
      const { S3Store } = await import('@skiff/backup/s3');
      return new S3Store(destination.settings);
    }
    case 'artifact': {
      const { ArtifactStore, GitHubArtifactsApi } = await import('@skiff/backup/artifact');
      if (!destination.github) core.info("destination artifact without github-token: only this run's artifacts are visible to list, restore, drill and prune");
      return new ArtifactStore(destination.name, { ...(destination.github ? { github: new GitHubArtifactsApi(destination.github) } : {}), log: core.warning });
    }
  }
}

/** Artifacts are downloadable by anyone who can read the repository: say so wherever they are made unencrypted. */
export const UNENCRYPTED_ARTIFACT_WARNING =
  'destination artifact without encrypt-recipients: anyone with read access to this repository can download these backups. Set encrypt-recipients (age public keys) to encrypt them on the runner.';

export async function run(): Promise<void> {
  const inputs = readBackupInputs();
  // A dry-run prune reads the manifests (read-only) to show what would go; other dry runs do not connect.
  if (inputs.dryRun && inputs.mode !== 'prune') return planOnly(inputs);
  await ping(inputs.healthcheckUrl, 'start');
  try {
    await runMode(inputs);
    await ping(inputs.healthcheckUrl, 'success');
  } catch (error) {
    await ping(inputs.healthcheckUrl, 'fail', (error as Error).message);
    throw error;
  }
}

/**
 * Where the sources' tools run: the server over SSH (checked by the preflight), or for databases
 * the runner reaches itself, the runner, with client tools matched to each server's version.
 */
interface Workplace {
  executor: Executor;
  sources: Source[];
  /** Runner-side sources, by name: the client chosen for each. */
  clients?: ReadonlyMap<string, RunnerClient>;
  /** Runner-side sources that could not be used, by name: each fails on its own, the others go on. */
  unusable?: ReadonlyMap<string, string>;
  close(): Promise<void>;
}

async function openWorkplace(inputs: BackupInputs): Promise<Workplace> {
  if (inputs.ssh) {
    const ssh = await SshConnection.connect(inputs.ssh);
    try {
      const findings = await runPreflight(ssh, BASE_PREFLIGHT);
      core.info(formatPreflightLog(findings));
      await writeSummary(renderPreflight(findings, inputs.ssh.host));
    } catch (error) {
      await ssh.close();
      throw error;
    }
    return { executor: ssh, sources: inputs.sources, close: () => ssh.close() };
  }
  const local = new LocalExecutor({ liveOutput: liveLog() });
  // list and prune read only the destination: they work while the database is down.
  if (inputs.mode === 'list' || inputs.mode === 'prune') return { executor: local, sources: inputs.sources, close: () => Promise.resolve() };
  const runnerSources = await core.group('Databases reached from the runner: server versions and matching clients', () =>
    prepareRunnerSources(local, inputs.sources, { tempRoot: process.env.RUNNER_TEMP || tmpdir(), log: core.info }),
  );
  const prepared = runnerSources.prepared;
  const clients = new Map(prepared.flatMap((entry) => ('client' in entry ? [[entry.source.name, entry.client] as const] : [])));
  const unusable = new Map(prepared.flatMap((entry) => ('error' in entry ? [[entry.source.name, entry.error.message] as const] : [])));
  await writeSummary(
    `### Databases reached from the runner\n\n${prepared.map((entry) => `- ${'client' in entry ? entry.client.describe : `**cannot be used**: ${entry.error.message}`}`).join('\n')}\n`,
  );
  return { executor: local, sources: prepared.map((entry) => entry.source), clients, unusable, close: () => runnerSources.cleanup() };
}

async function runMode(inputs: BackupInputs): Promise<void> {
  const out = outputs<Outputs>();
  let workplace: Workplace;
  try {
    workplace = await openWorkplace(inputs);
  } catch (error) {
    out.set('verified', 'false');
    await writeSummary(
      `### ${inputs.mode}: nothing was read or stored\n\n${inputs.ssh ? `The server ${inputs.ssh.host}` : 'A database'} could not be used:\n\n${codeBlock((error as Error).message)}\n`,
    );
    throw error;
  }
  const { executor, sources } = workplace;
  inputs = { ...inputs, sources };
  let store: Store | undefined;
  try {
    store = await storeFor(inputs, executor);
    switch (inputs.mode) {
      case 'backup':
        return await backupAll(inputs, executor, store, out, workplace.unusable);
      case 'list': {
        const sections = [];
        for (const source of inputs.sources) sections.push(listTable(source.name, await store.list(source.name)));
        core.info(sections.join('\n\n'));
        await writeSummary(`### Backups in ${store.describe()}\n\n${sections.join('\n\n')}\n`);
        return;
      }
      case 'prune': {
        const pruned: Record<string, string[]> = {};
        for (const source of inputs.sources) {
          if (!retentionConfigured(inputs.retention))
            throw new Error('mode prune needs a retention rule: set keep-daily, keep-weekly, keep-monthly, keep-yearly or keep-days');
          pruned[source.name] = (await pruneSource(store, source.name, inputs.retention, { now: new Date(), dryRun: inputs.dryRun, log: core.info })).pruned;
        }
        out.set('pruned', pruned);
        await writeSummary(
          `### ${inputs.dryRun ? 'Would prune (dry run)' : 'Pruned'}\n\n${Object.entries(pruned)
            .map(([name, ids]) => `- ${name}: ${ids.join(', ') || 'nothing'}`)
            .join('\n')}\n`,
        );
        return;
      }
      case 'restore': {
        const source = inputs.sources[0]!;
        const manifest = await findBackup(store, source, inputs.backupId);
        const target: RestoreTarget =
          source.type === 'postgres' || source.type === 'mysql'
            ? { database: inputs.restoreTarget ?? source.database!, force: inputs.force }
            : inputs.restoreTarget === undefined
              ? { inPlace: true, force: inputs.force }
              : { path: inputs.restoreTarget, force: inputs.force };
        const restored = await restoreBackup(executor, store, source, manifest, target, { identities: inputs.decryptIdentities });
        const globalsNote = restored.globals === 'applied' ? '; missing roles and tablespaces (globals) created first' : '';
        const where = describeTarget(source, target);
        core.info(`restored ${manifest.id} (sha256 ${manifest.sha256} checked) into ${where}${globalsNote}`);
        out.set('backup-id', manifest.id);
        out.set('location', manifest.location);
        out.set('sha256', manifest.sha256);
        out.set('verified', 'true');
        await writeSummary(
          `### Restored ${manifest.id}\n\ninto \`${where}\` (sha256 checked before writing${globalsNote}${target.inPlace ? '; the previous contents were kept aside until the restore finished' : ''})\n`,
        );
        return;
      }
      case 'drill':
        return await drillAll(inputs, executor, store, out, workplace);
    }
  } finally {
    store?.close?.();
    await workplace.close();
  }
}

/** Every source is tried; retention runs per source only after its new backup is verified and stored. */
async function backupAll(
  inputs: BackupInputs,
  executor: Executor,
  store: Store,
  out: ReturnType<typeof outputs<Outputs>>,
  unusable: ReadonlyMap<string, string> = new Map(),
): Promise<void> {
  const outcomes: SourceOutcome[] = [];
  const unencryptedArtifact = store.kind === 'artifact' && inputs.encryptRecipients.length === 0;
  if (unencryptedArtifact) core.warning(UNENCRYPTED_ARTIFACT_WARNING);
  for (const source of inputs.sources) {
    const cannotUse = unusable.get(source.name);
    if (cannotUse !== undefined) {
      core.error(cannotUse);
      outcomes.push({ source: source.name, error: cannotUse });
      continue;
    }
    try {
      const result = await backupSource(executor, store, source, {
        minSize: inputs.minSize,
        maxShrinkPercent: inputs.maxShrinkPercent,
        encryptRecipients: inputs.encryptRecipients,
        retention: retentionConfigured(inputs.retention) ? inputs.retention : { keepDays: 36_500, minKeep: inputs.retention.minKeep ?? 3 },
        log: core.info,
      });
      outcomes.push({ source: source.name, result });
    } catch (error) {
      const message = (error as Error).message;
      core.error(`${source.name}: ${message}`);
      outcomes.push({ source: source.name, error: error instanceof BackupFailed ? message.split('\n')[0]! : message });
    }
  }
  const done = outcomes.flatMap((o) => (o.result ? [o.result] : []));
  out.set('backup-id', done.map((r) => r.manifest.id).join(','));
  out.set('location', done.map((r) => r.manifest.location).join(','));
  out.set('size', done[0] ? String(done[0].manifest.size) : '');
  out.set('sha256', done[0]?.manifest.sha256 ?? '');
  out.set('verified', String(done.length === outcomes.length));
  out.set('pruned', Object.fromEntries(done.map((r) => [r.manifest.source, r.pruned])));
  await writeSummary(
    `### Backups to ${store.describe()}\n\n${unencryptedArtifact ? `> [!WARNING]\n> ${UNENCRYPTED_ARTIFACT_WARNING}\n\n` : ''}${backupTable(outcomes)}\n`,
  );
  const failed = outcomes.filter((o) => o.error);
  if (failed.length > 0) throw new Error(`${failed.length} of ${outcomes.length} backups failed: ${failed.map((o) => o.source).join(', ')}`);
}

/** Every source is drilled (each into its own scratch copy, dropped afterwards); one failing does not stop the others. */
async function drillAll(
  inputs: BackupInputs,
  executor: Executor,
  store: Store,
  out: ReturnType<typeof outputs<Outputs>>,
  { clients, unusable }: Pick<Workplace, 'clients' | 'unusable'>,
): Promise<void> {
  const outcomes: DrillOutcome[] = [];
  for (const source of inputs.sources) {
    const started = Date.now();
    const cannotUse = unusable?.get(source.name);
    if (cannotUse !== undefined) {
      core.error(`drill failed: ${cannotUse}`);
      outcomes.push({ source: source.name, durationMs: 0, error: cannotUse });
      continue;
    }
    // A runner-side source is drilled on a throwaway server of its major version unless drill-target says server.
    const client = clients?.get(source.name);
    let scratch: Awaited<ReturnType<typeof startScratchServer>> | undefined;
    try {
      if (client && inputs.drillTarget === 'runner') scratch = await startScratchServer(executor, client);
      const result = await drillSource(executor, store, source, {
        backupId: inputs.backupId,
        identities: inputs.decryptIdentities,
        ...(inputs.drillQuery ? { drillQuery: inputs.drillQuery } : {}),
        ...(scratch ? { restoreInto: scratch.source } : {}),
      });
      core.info(`drill of ${result.manifest.id} passed${result.globals ? ' (globals checked, not applied)' : ''}:\n${(result.report ?? []).join('\n')}`);
      outcomes.push({ source: source.name, result, durationMs: Date.now() - started });
    } catch (error) {
      core.error(`${source.name}: drill failed: ${(error as Error).message}`);
      outcomes.push({ source: source.name, durationMs: Date.now() - started, error: (error as Error).message.split('\n')[0]! });
    } finally {
      await scratch?.stop();
    }
  }
  const passed = outcomes.flatMap((o) => (o.result ? [o.result] : []));
  out.set('backup-id', passed.map((r) => r.manifest.id).join(','));
  out.set('location', passed.map((r) => r.manifest.location).join(','));
  out.set('sha256', passed[0]?.manifest.sha256 ?? '');
  out.set('verified', String(passed.length === outcomes.length));
  const failed = outcomes.filter((o) => o.error);
  await writeSummary(`### Restore drill: ${failed.length === 0 ? 'passed' : `${failed.length} of ${outcomes.length} failed`}\n\n${drillTable(outcomes)}\n`);
  if (failed.length > 0) throw new Error(`${failed.length} of ${outcomes.length} drills failed: ${failed.map((o) => o.source).join(', ')}`);
}

async function planOnly(inputs: BackupInputs): Promise<void> {
  const plan = new PlanRecorder();
  // From the runner there is no server to check; the versions are asked when the run connects.
  if (inputs.ssh) await runPreflight(plan, BASE_PREFLIGHT);
  for (const source of inputs.sources) {
    const secretFile = source.password !== undefined ? '/tmp/skiff-backup-XXXX.secret' : undefined;
    if (source.globals)
      await plan.run([globalsCommand(source, secretFile)], {
        description: `${inputs.mode} ${source.name}: roles and tablespaces (globals) to ${describeDestination(inputs)}`,
      });
    await plan.run([dumpCommand(source, secretFile)], {
      description: `${inputs.mode} ${source.name}: dump${inputs.ssh ? '' : " on the runner, with the client tools of the server's major version (asked first)"} to ${describeDestination(inputs)}`,
    });
  }
  await publishPlan(plan.steps);
}

function describeDestination(inputs: BackupInputs): string {
  const destination = inputs.destination;
  if (destination.kind === 'host') return destination.path;
  if (destination.kind === 's3') return `s3://${destination.settings.bucket}`;
  return `GitHub artifacts ${destination.name}.*`;
}
