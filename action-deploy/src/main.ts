import * as core from '@actions/core';
import { BASE_PREFLIGHT, formatPreflightLog, notImplemented, publishPlan, renderPreflight, runPreflight, writeSummary } from '@skiff/action-kit';
import { PlanRecorder } from '@skiff/shell';
import { SshConnection } from '@skiff/ssh';
import { version } from '../package.json';
import { readDeployInputs } from './inputs';

const PREFLIGHT = BASE_PREFLIGHT;

export async function run(): Promise<void> {
  const inputs = readDeployInputs();

  if (inputs.dryRun) {
    const plan = new PlanRecorder();
    await runPreflight(plan, PREFLIGHT);
    await publishPlan(plan.steps);
    return;
  }

  const server = await SshConnection.connect(inputs.ssh);
  try {
    const findings = await runPreflight(server, PREFLIGHT);
    core.info(formatPreflightLog(findings));
    await writeSummary(renderPreflight(findings, inputs.ssh.host));
  } finally {
    await server.close();
  }

  throw notImplemented('action-deploy', version, 'deploying');
}

/** Will release the deploy lock main takes on the server; the skeleton takes none. */
export async function post(): Promise<void> {
  core.info(`action-deploy ${version} takes no deploy lock yet, so there is none to release`);
}
