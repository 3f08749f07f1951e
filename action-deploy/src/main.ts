import * as core from '@actions/core';
import { getBoolean, hostLabel, outputs, publishPlan, readSshTargets, sendNotification, writeSummary, type Notification } from '@skiff/action-kit';
import { PlanRecorder } from '@skiff/shell';
import { SshConnection } from '@skiff/ssh';
import { version } from '../package.json';
import { runContext } from './run-context';
import { startDeployment } from './github-deployment';
import { deployCoolify, planCoolify } from './strategies/coolify';
import { deployHosts, forHost } from './each-host';
import { envValues, readDeployInputs, type DeployInputs } from './inputs';
import { releaseLock } from './lock-commands';
import { savedLocks } from './deploy-lock';
import { deployNotification } from './notification';
import { planDeploy } from './plan';
import { readPrepareInputs, runPrepare } from './prepare';
import { combine, hostsOutput, renderRunSummary, type RunResult } from './run-report';
import { redact } from './host-outcome';

type Outputs = {
  'release-id': string;
  'previous-release-id': string;
  status: string;
  'rolled-back': boolean;
  images: Record<string, string>;
  'duration-seconds': number;
  hosts: Record<string, Record<string, unknown>>;
  'deployment-id': string;
};

export async function run(): Promise<void> {
  if (getBoolean('prepare', { default: false })) return runPrepare(readPrepareInputs());
  const inputs = readDeployInputs();
  const started = performance.now();
  const ctx = runContext();
  if (inputs.dryRun) {
    // The plan is the same on every host; it is shown for the first, with its {host} filled in.
    const steps =
      inputs.strategy.name === 'coolify' ? planCoolify(inputs) : await planDeploy(new PlanRecorder(), forHost(inputs, inputs.targets[0]!.host), ctx);
    if (inputs.targets.length > 1) {
      const how = inputs.mode.parallel ? `in parallel, at most ${inputs.mode.maxParallel} at once` : 'one after another, stopping at the first failure';
      steps.unshift({
        kind: 'run',
        description: `on each of ${inputs.targets.length} hosts, ${how}${inputs.allOrNothing ? ', all-or-nothing' : ''}: ${inputs.targets.map(hostLabel).join(', ')} (shown for the first)`,
        script: '# every host has its own lock, releases and audit log',
      });
    }
    await publishPlan(steps);
    return;
  }
  const deployment = inputs.deployment ? await startDeployment(inputs.deployment, ctx) : undefined;
  if (deployment) outputs<Outputs>().set('deployment-id', String(deployment.id));
  const mode = inputs.rollback === undefined ? 'deploy' : 'rollback';
  let result: RunResult;
  try {
    const reports = inputs.strategy.name === 'coolify' ? await deployCoolify(inputs, ctx) : await deployHosts(inputs, ctx);
    // A host that failed before its story began (connection, host key, lock) is reported like
    // any failure: outputs and summary, then its own error.
    result = combine(reports, (performance.now() - started) / 1000, mode, ctx.releaseId ?? '');
  } catch (error) {
    // Whatever escaped (Coolify unreachable, a bug) still leaves the outputs and a summary behind.
    const out = outputs<Outputs>();
    out.set('status', 'failed');
    out.set('rolled-back', false);
    out.set('duration-seconds', Math.round((performance.now() - started) / 1000));
    const secrets = inputs.envFile === undefined ? [] : envValues(inputs.envFile);
    await writeSummary(redact(`### ❌ Skiff ${mode} failed\n\n${(error as Error).message}\n`, secrets)).catch(() => undefined);
    await deployment?.status('failure', `Failed: ${(error as Error).message.split('\n')[0]}`);
    await notifyAll(inputs, deployNotification(inputs, ctx, { error: (error as Error).message, durationSeconds: (performance.now() - started) / 1000, mode }));
    throw error;
  }
  report(result);
  const secrets = inputs.envFile === undefined ? [] : envValues(inputs.envFile);
  await writeSummary(redact(renderRunSummary(result, inputs.projectDir), secrets));
  await deployment?.status(result.status === 'deployed' ? 'success' : 'failure', statusLine(result));
  await notifyAll(inputs, deployNotification(inputs, ctx, { result }));
  if (result.error) throw new Error(result.error);
  core.info(`Release ${result.releaseId} is ${result.status}${result.reports.length > 1 ? ` on ${result.reports.length} hosts` : ''}.`);
}

function statusLine(result: RunResult): string {
  if (result.status === 'deployed') return `Release ${result.releaseId} deployed and healthy`;
  if (result.status === 'rolled-back') return `Release ${result.releaseId} failed the health gate; rolled back`;
  return `Release ${result.releaseId} failed`;
}

function report(result: RunResult): void {
  const out = outputs<Outputs>();
  out.set('release-id', result.releaseId);
  out.set('previous-release-id', result.previousReleaseId ?? '');
  out.set('status', result.status);
  out.set('rolled-back', result.rolledBack);
  out.set('images', result.images);
  out.set('duration-seconds', Math.round(result.durationSeconds));
  out.set('hosts', hostsOutput(result));
}

/** Frees the deploy locks main could not (job cancelled, runner lost the connection), host by host. */
export async function post(): Promise<void> {
  const held = savedLocks();
  if (held.length === 0) {
    core.info(`action-deploy ${version}: no deploy lock left to release`);
    return;
  }
  const targets = readSshTargets();
  for (const lock of held) {
    const target = lock.host === undefined ? targets[0] : targets.find((candidate) => hostLabel(candidate) === lock.host);
    if (!target) {
      core.warning(`A deploy lock on ${lock.host} is left, but that host is no longer in the host input`);
      continue;
    }
    try {
      const server = await SshConnection.connect(target);
      try {
        const result = await server.run(releaseLock(lock.projectDir, lock.token), { description: 'release the deploy lock', timeoutSeconds: 60 });
        const where = `${lock.projectDir}${targets.length > 1 ? ` on ${hostLabel(target)}` : ''}`;
        core.info(
          result.stdout.trim() === 'released'
            ? `Released the deploy lock in ${where} that this job still held`
            : `The deploy lock in ${where} is no longer this job's`,
        );
      } finally {
        await server.close();
      }
    } catch (error) {
      if (held.length === 1) throw error;
      core.warning(`Could not release the deploy lock on ${hostLabel(target)}: ${(error as Error).message}`);
    }
  }
}

/** Every channel gets the message; one that fails is a warning and does not stop the others. */
async function notifyAll(inputs: DeployInputs, message: Notification): Promise<void> {
  await Promise.all((inputs.notifyWebhooks ?? []).map((url) => sendNotification(url, message)));
}
