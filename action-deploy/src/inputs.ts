import type { SshConnectOptions } from '@skiff/ssh';
import { DRY_RUN_INPUT, SSH_INPUTS, readDryRun, readInputs, readSshInputs, type InputDefinition } from '@skiff/action-kit';

/** What action.yml declares; a unit test keeps action.yml and the README in step with these. */
export const ACTION_INPUTS: readonly InputDefinition[] = [...SSH_INPUTS, DRY_RUN_INPUT];
export const ACTION_OUTPUTS = {
  plan: 'With dry-run: the plan of what would run on the server, as Markdown.',
} as const;

export interface DeployInputs {
  ssh: SshConnectOptions;
  dryRun: boolean;
}

export function readDeployInputs(): DeployInputs {
  return readInputs({ ssh: readSshInputs, dryRun: readDryRun });
}
