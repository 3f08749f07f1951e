import { BASE_PREFLIGHT, checkServer, notImplemented } from '@skiff/action-kit';
import { version } from '../package.json';
import { readBackupInputs } from './inputs';

const PREFLIGHT = BASE_PREFLIGHT;

export async function run(): Promise<void> {
  const inputs = readBackupInputs();
  await checkServer(inputs.ssh, inputs.dryRun, PREFLIGHT);
  if (inputs.dryRun) return;
  throw notImplemented('action-backup', version, 'backing up');
}
