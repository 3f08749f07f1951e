import * as core from '@actions/core';
import { outputs, publishPlan, writeSummary } from '@skiff/action-kit';
import { PlanRecorder } from '@skiff/shell';
import { SshConnection } from '@skiff/ssh';
import { version } from '../package.json';
import { runContext } from './context';
import type { Deployer } from './deploy';
import { detectDockerCli } from './docker-cli';
import { envValues, readDeployInputs } from './inputs';
import { releaseLock } from './lock';
import { acquireLock, savedLock } from './locking';
import { deployNewRelease, rollbackTo } from './story';
import { redact, renderSummary, type Outcome } from './summary';
import { planDeploy } from './plan';
import { timedServer } from './timed';

type Outputs = {
  'release-id': string;
  'previous-release-id': string;
  status: string;
  'rolled-back': boolean;
  images: Record<string, string>;
  'duration-seconds': number;
};

export async function run(): Promise<void> {
  const inputs = readDeployInputs();
  const started = performance.now();
  const ctx = runContext();
  if (inputs.dryRun) {
    await publishPlan(await planDeploy(new PlanRecorder(), inputs, ctx));
    return;
  }
  const server = await SshConnection.connect(inputs.ssh);
  try {
    const cli = await detectDockerCli(server, inputs.sudo);
    core.info(`Using ${cli.compose === 'v2' ? 'docker compose (v2)' : 'docker-compose (v1)'}${cli.sudo ? ' with sudo -n' : ''}`);
    const d: Deployer = { server: timedServer(server), cli, inputs, ctx };
    const owner = { token: ctx.token, actor: ctx.actor, runUrl: ctx.runUrl, release: inputs.rollback ?? ctx.sha, startedAt: new Date().toISOString() };
    const lock = await acquireLock(server, inputs.projectDir, owner, { timeoutSeconds: inputs.lockTimeoutSeconds, ttlSeconds: inputs.lockTtlSeconds });
    let result: Awaited<ReturnType<typeof deployNewRelease>>;
    try {
      result = inputs.rollback === undefined ? await deployNewRelease(d) : await rollbackTo(d, inputs.rollback);
    } finally {
      // If this fails (connection lost), the lock stays in the step's state and the post step retries.
      await lock.release().catch((error: Error) => core.warning(`Could not release the deploy lock: ${error.message}`));
    }
    const outcome: Outcome = { ...result, durationSeconds: (performance.now() - started) / 1000, mode: inputs.rollback === undefined ? 'deploy' : 'rollback' };
    report(outcome);
    await writeSummary(redact(renderSummary(outcome, inputs.projectDir), inputs.envFile === undefined ? [] : envValues(inputs.envFile)));
    if (outcome.error) throw new Error(outcome.error);
    core.info(`Release ${outcome.releaseId} is ${outcome.status}.`);
  } finally {
    await server.close();
  }
}

function report(outcome: Outcome): void {
  const out = outputs<Outputs>();
  out.set('release-id', outcome.releaseId);
  out.set('previous-release-id', outcome.previousReleaseId ?? '');
  out.set('status', outcome.status);
  out.set('rolled-back', outcome.status === 'rolled-back');
  out.set('images', outcome.images);
  out.set('duration-seconds', Math.round(outcome.durationSeconds));
}

/** Frees the deploy lock when main could not (job cancelled, runner lost the connection). */
export async function post(): Promise<void> {
  const held = savedLock();
  if (!held) {
    core.info(`action-deploy ${version}: no deploy lock left to release`);
    return;
  }
  const inputs = readDeployInputs();
  const server = await SshConnection.connect(inputs.ssh);
  try {
    const result = await server.run(releaseLock(held.projectDir, held.token), { description: 'release the deploy lock', timeoutSeconds: 60 });
    core.info(result.stdout.trim() === 'released' ? `Released the deploy lock in ${held.projectDir} that this job still held` : `The deploy lock in ${held.projectDir} is no longer this job's`);
  } finally {
    await server.close();
  }
}
