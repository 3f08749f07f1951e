import * as core from '@actions/core';
import { BASE_PREFLIGHT, checkServer, notImplemented } from '@skiff/action-kit';
import { version } from '../package.json';
import { readDeployInputs } from './inputs';

const PREFLIGHT = BASE_PREFLIGHT;

export async function run(): Promise<void> {
  const inputs = readDeployInputs();
  await checkServer(inputs.ssh, inputs.dryRun, PREFLIGHT);
  if (inputs.dryRun) return;
  throw notImplemented('action-deploy', version, 'deploying');
}

/** Will release the deploy lock main takes on the server; the skeleton takes none. */
export async function post(): Promise<void> {
  core.info(`action-deploy ${version} takes no deploy lock yet, so there is none to release`);
}
