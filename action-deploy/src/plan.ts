import type { PlanRecorder, PlanStep } from '@skiff/shell';
import type { RunContext } from './run-context';
import type { Deployer } from './deploy';
import { detectDockerCli } from './docker-cli';
import type { DeployInputs } from './deploy-inputs';
import { tryLock } from './lock-commands';
import { newReleaseId } from './release-history';
import { hostStrategy } from './strategies';
import { deployNewRelease, rollbackTo } from './story';

/**
 * The dry-run plan: the deploy story itself (story.ts), run against a recorder instead of a
 * server, so the plan cannot drift from what a deploy does. Reads answer with nothing, so the
 * plan is a first release's happy path; the health gate records one round of its checks, and
 * what follows a failure (diagnostics, rollback) is named in the gate's step.
 */
export async function planDeploy(recorder: PlanRecorder, inputs: DeployInputs, ctx: RunContext): Promise<PlanStep[]> {
  if (inputs.strategy.name === 'coolify') throw new Error('strategy: coolify has its own plan (planCoolify)');
  const strategy = hostStrategy(inputs.strategy);
  const cli = strategy.usesDocker ? await detectDockerCli(recorder, inputs.sudo, true, inputs.projectDir) : { compose: 'v2' as const, sudo: inputs.sudo };
  const planCtx = { ...ctx, releaseId: newReleaseId(new Date(), ctx.sha, '0000') };
  const d: Deployer = { server: recorder, cli, inputs, ctx: planCtx, planning: recorder };
  await recorder.run(
    tryLock(inputs.projectDir, { token: 'TOKEN', actor: ctx.actor, runUrl: ctx.runUrl, release: 'RELEASE', startedAt: 'NOW' }, inputs.lockTtlSeconds),
    { description: 'take the deploy lock' },
  );
  await (inputs.rollback === undefined ? deployNewRelease(d, strategy) : rollbackTo(d, strategy, inputs.rollback));
  return recorder.steps;
}
