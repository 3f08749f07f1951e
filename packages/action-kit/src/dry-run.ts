import * as core from '@actions/core';
import type { PlanStep } from '@skiff/shell';
import type { InputDefinition } from './definitions';
import { getBoolean } from './inputs';
import { setOutput } from './outputs';
import { renderPlan, writeSummary } from './summary';

export const DRY_RUN_INPUT = {
  name: 'dry-run',
  description: 'Only show what would run on the server (in the log, the job summary and the plan output), without connecting.',
  required: false,
  default: 'false',
} as const satisfies InputDefinition;

export function readDryRun(): boolean {
  return getBoolean(DRY_RUN_INPUT.name, { default: false });
}

/** Shows a dry run's plan in the log and the job summary and sets the `plan` output; returns the rendered plan. */
export async function publishPlan(steps: readonly PlanStep[], title?: string): Promise<string> {
  const plan = renderPlan(steps, title);
  core.info(plan);
  await writeSummary(plan);
  setOutput('plan', plan);
  return plan;
}
