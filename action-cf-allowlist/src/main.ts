import * as core from '@actions/core';
import { forEachHost, hostFailures, hostLabel, outputs, publishPlan, runPreflight, writeSummary, type PreflightCheck } from '@skiff/action-kit';
import { PlanRecorder } from '@skiff/shell';
import { SshConnection } from '@skiff/ssh';
import type { Backend } from './backend';
import { guardPaths } from './guard';
import { applyWithGuard, planHost, type HostPlan, type Wanted } from './host';
import { readAllowlistInputs, type AllowlistInputs } from './inputs';
import { nftablesBackend } from './nftables-backend';
import { fetchRanges, type CloudflareRanges } from './ranges';
import { tableModel } from './render';
import { renderSummary, union, type HostReport } from './report';
import { ufwBackend } from './ufw';

// Read-only checks shown at the top of a dry run's plan: what the real run needs on the host.
const PREFLIGHT: Record<AllowlistInputs['backend'], readonly PreflightCheck[]> = {
  nftables: [
    { description: 'operating system', command: ['uname', '-sr'] },
    { description: 'nftables installed', command: ['nft', '--version'] },
  ],
  ufw: [
    { description: 'operating system', command: ['uname', '-sr'] },
    { description: 'ufw installed', command: ['ufw', 'version'] },
  ],
};

export interface AllowlistResult {
  changed: boolean;
  added: string[];
  removed: string[];
  etag: string;
  hosts: HostReport[];
  /** Set when some host failed: the job fails with it after reporting. */
  failure?: string;
}

function backendFor(inputs: AllowlistInputs, ranges: CloudflareRanges): Backend {
  const list = {
    table: inputs.table,
    ports: inputs.ports,
    cf4: ranges.ipv4,
    cf6: ranges.ipv6,
    extra: inputs.extra,
    ...(inputs.sshAllow ? { sshAllow: inputs.sshAllow } : {}),
    dockerPublished: inputs.dockerPublished,
  };
  return inputs.backend === 'ufw' ? ufwBackend(list) : nftablesBackend(tableModel(list));
}

/**
 * The whole job: fetch and validate the list (fail closed, before any host), read every host
 * and check the change is safe (still nothing changed anywhere), then apply where needed, each
 * host behind the lockout guard.
 */
export async function allowlist(inputs: AllowlistInputs, log: (message: string) => void = core.info): Promise<AllowlistResult> {
  const ranges = await fetchRanges(inputs.sourceUrl, inputs);
  log(`Cloudflare list: ${ranges.ipv4.length} IPv4 and ${ranges.ipv6.length} IPv6 ranges, etag ${ranges.etag || 'none'}`);
  // One backend per host: the ufw backend keeps the host's diff between reading and applying.
  const backends = new Map<number, Backend>();
  const wanted: Wanted = {
    table: inputs.table,
    cf: ranges,
    managed: [...ranges.ipv4, ...ranges.ipv6, ...inputs.extra, ...(inputs.sshAllow ?? [])],
  };
  const count = (family: 'ipv4' | 'ipv6') => wanted.managed.filter((c) => c.family === family).length;

  const connections = new Map<number, SshConnection>();
  try {
    const planned = await forEachHost(inputs.targets, inputs.mode, async (target, { index }) => {
      const server = await SshConnection.connect(target);
      connections.set(index, server);
      const backend = backendFor(inputs, ranges);
      backends.set(index, backend);
      return planHost(server, backend, wanted, inputs);
    });
    const reports: HostReport[] = planned.map((result) => ({
      host: result.label,
      status: result.status === 'failed' ? 'failed' : result.status === 'skipped' ? 'skipped' : result.value!.live.upToDate ? 'unchanged' : 'changed',
      changed: false,
      added: result.value?.added ?? [],
      removed: result.value?.removed ?? [],
      ipv4: count('ipv4'),
      ipv6: count('ipv6'),
      ...(result.error ? { error: result.error.message } : {}),
      durationMs: result.durationMs,
    }));
    let failure = hostFailures(planned);
    if (failure === undefined) {
      // Nothing changes anywhere unless every host could be read and passed the checks.
      const toApply = planned.filter((result) => !(result.value as HostPlan).live.upToDate).map((result) => inputs.targets.indexOf(result.target));
      const applied = await forEachHost(
        toApply.map((i) => inputs.targets[i]!),
        inputs.mode,
        async (target, { index }) =>
          applyWithGuard(connections.get(toApply[index]!)!, target, backends.get(toApply[index]!)!, inputs.table, {
            confirmTimeoutSeconds: inputs.confirmTimeoutSeconds,
            log,
            ...(inputs.stateDirFor ? { stateDir: inputs.stateDirFor(target) } : {}),
          }),
      );
      applied.forEach((result, i) => {
        const report = reports[toApply[i]!]!;
        report.durationMs += result.durationMs;
        if (result.status === 'ok') report.changed = true;
        else {
          report.status = result.status === 'skipped' ? 'skipped' : 'failed';
          if (result.error) report.error = result.error.message;
          if (result.error && 'reverted' in result.error) report.reverted = Boolean((result.error as { reverted: boolean }).reverted);
        }
      });
      failure = hostFailures(applied);
    }
    const changedReports = reports.filter((r) => r.changed);
    return {
      changed: changedReports.length > 0,
      added: union(changedReports.map((r) => r.added)),
      removed: union(changedReports.map((r) => r.removed)),
      etag: ranges.etag,
      hosts: reports,
      ...(failure === undefined ? {} : { failure }),
    };
  } finally {
    await Promise.all([...connections.values()].map((server) => server.close().catch(() => undefined)));
  }
}

/** Dry run: the list is fetched and checked for real; the host steps are recorded, not run. */
async function dryRun(inputs: AllowlistInputs): Promise<void> {
  const ranges = await fetchRanges(inputs.sourceUrl, inputs);
  const backend = backendFor(inputs, ranges);
  const plan = new PlanRecorder();
  const paths = guardPaths(inputs.table);
  await runPreflight(plan, PREFLIGHT[inputs.backend]);
  // The recorder answers every read with empty output, so the plan shows the path that changes the host.
  await backend.inspect(plan).catch(() => undefined);
  await backend.stage(plan, paths);
  await backend.apply(plan, paths);
  core.info(
    `Dry run for ${inputs.targets.map(hostLabel).join(', ')}: each host would be read first and only changed when it differs, behind a ${inputs.confirmTimeoutSeconds}s lockout guard.`,
  );
  await publishPlan(plan.steps);
  outputs<{ etag: string }>().set('etag', ranges.etag);
}

export async function run(): Promise<void> {
  const inputs = readAllowlistInputs();
  if (inputs.dryRun) return dryRun(inputs);
  const result = await allowlist(inputs);
  const out = outputs<{ changed: boolean; added: string[]; removed: string[]; etag: string; hosts: HostReport[] }>();
  out.set('changed', result.changed);
  out.set('added', result.added);
  out.set('removed', result.removed);
  out.set('etag', result.etag);
  out.set('hosts', result.hosts);
  await writeSummary(renderSummary(result.hosts, result.etag, inputs.backend, inputs.sourceUrl));
  if (result.failure) throw new Error(result.failure);
}
