import type { PlanRecorder, PlanStep } from '@skiff/shell';
import type { RunContext } from './context';
import { detectDockerCli } from './docker-cli';
import { buildOnServer, linkReleaseEnv, markCurrent, pullImages, resolveDigests, runPreDeploy, switchTo, uploadRelease, type Deployer } from './deploy';
import type { DeployInputs } from './inputs';
import { tryLock } from './lock';
import { newReleaseId, readState } from './releases';
import { planRollingSwitch } from './strategies/rolling';
import { planSwarm } from './strategies/swarm';
import { planSystemd } from './strategies/systemd';

/**
 * The dry-run plan: the same builders and steps a deploy runs, recorded instead of run. The
 * health gate, rollback and pruning depend on what the server answers, so the plan names them
 * without their commands.
 */
export async function planDeploy(recorder: PlanRecorder, inputs: DeployInputs, ctx: RunContext): Promise<PlanStep[]> {
  if (inputs.strategy === 'systemd') return planSystemd(recorder, inputs, ctx);
  if (inputs.strategy === 'swarm') return planSwarm(recorder, inputs, ctx);
  const cli = await detectDockerCli(recorder, inputs.sudo, true);
  const d: Deployer = { server: recorder, cli, inputs, ctx };
  await recorder.run(
    tryLock(inputs.projectDir, { token: 'TOKEN', actor: ctx.actor, runUrl: ctx.runUrl, release: 'RELEASE', startedAt: 'NOW' }, inputs.lockTtlSeconds),
    { description: 'take the deploy lock' },
  );
  await recorder.run(readState(inputs.projectDir), { description: 'read releases' });
  if (inputs.rollback !== undefined) {
    recorder.steps.push({
      kind: 'run',
      description: `re-deploy release ${inputs.rollback} (its own compose files, env and digests), then the health gate`,
      script: '# depends on the release kept on the server',
    });
    return recorder.steps;
  }
  const release = await uploadRelease(d, newReleaseId(new Date(), ctx.sha, '0000'));
  await linkReleaseEnv(d, release);
  await pullImages(d, release);
  await buildOnServer(d, release);
  await resolveDigests(d, release);
  if (inputs.backupBeforeDeploy) {
    const what = inputs.backupBeforeDeploy.sources.map((source) => `${source.name} (${source.type})`).join(', ');
    recorder.steps.push({
      kind: 'run',
      description: `backup-before-deploy: dump and verify ${what} into ${inputs.backupBeforeDeploy.path}, keeping ${inputs.backupBeforeDeploy.keep}; a failed backup stops the deploy here`,
      script: '# as action-backup with destination: host (skipped on the first release)',
    });
  }
  if (inputs.preDeploy !== undefined) await runPreDeploy(d, release, inputs.preDeploy);
  await (inputs.strategy === 'rolling' ? planRollingSwitch(recorder, d, release) : switchTo(d, release));
  recorder.steps.push({
    kind: 'run',
    description: 'health gate (containers running and healthy, health-url, health-command); on failure: diagnostics and rollback to the previous release',
    script: '# runs every health-interval until health-successes (one round when compose up created or replaced no container) or health-timeout',
  });
  await markCurrent(d, release);
  return recorder.steps;
}
