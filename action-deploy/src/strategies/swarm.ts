import * as core from '@actions/core';
import type { PlanRecorder, PlanStep } from '@skiff/shell';
import { randomBytes } from 'node:crypto';
import type { RunContext } from '../context';
import { withRegistryLogin } from '../compose';
import { detectDockerCli } from '../docker-cli';
import type { DeployInputs } from '../inputs';
import { tryLock } from '../lock';
import { audit, prune, runPreDeploy, serverState, uploadRelease, type Deployer } from '../deploy';
import { IMAGE_LOCK, META, imageLockFile, newReleaseId, readMeta, readState, releaseDir, switchCurrent } from '../releases';
import { Diagnostics } from '../diagnostics';
import { RefusedBeforeChange } from '../refusal';
import { rollbackTarget } from '../rollback';
import type { Outcome } from '../summary';
import type { HostStrategy, StoryResult } from './strategy';
import { serverClockMs, stackDeploy, stackDiagnostics, swarmNodeState } from './swarm-commands';
import { swarmGate, type SwarmGateReport } from './swarm-gate';
import { STACK_FILE, stackOverride } from './swarm-stack';

/**
 * strategy: swarm — the release's compose files become a stack (`docker stack deploy`, stack name
 * = project-name) with skiff-stack.yml merged last: start-first updates that Swarm itself rolls
 * back when they fail. Swarm schedules and replaces tasks across its nodes; we wait until every
 * service has converged (or Swarm has rolled it back), run the health gate, record the digests
 * the services actually run, and keep the same release history, audit log and rollback as every
 * strategy. A failed release is undone by re-deploying the previous release's files, pinned to
 * its digests, so every service goes back, not only those Swarm rolled back.
 */
export const swarmStrategy: HostStrategy = { usesDocker: true, deploy: deploySwarm, rollback: rollbackSwarm };

/** A swarm release's meta.json: the shared fields plus which stack file it adds. */
interface SwarmMeta {
  services: Record<string, string>;
  composeFiles: string[];
  hasEnv: boolean;
  stackFile?: string;
}

async function requireManager(d: Deployer): Promise<void> {
  const said = (await d.server.run(swarmNodeState(d.cli), { description: 'check the Swarm node', timeoutSeconds: 60 })).stdout.trim();
  if (said === 'active true') return;
  if (said.startsWith('active'))
    throw new RefusedBeforeChange(
      'strategy: swarm needs a Swarm manager: this server is a worker node. Point host at a manager (`docker node ls` on a manager lists them).',
    );
  throw new RefusedBeforeChange(
    `strategy: swarm needs a Swarm, and this server's Docker engine is not part of one (Swarm state: ${said || 'unknown'}). ` +
      'Run `docker swarm init` on the server once (or join it to your Swarm as a manager); nothing was changed.',
  );
}

/** Switches a release on: `docker stack deploy` of its files, then the swarm gate. A failing deploy command is a failed gate. */
async function switchOn(d: Deployer, id: string, files: readonly string[], hasEnv: boolean): Promise<SwarmGateReport> {
  const since = Number((await d.server.run(serverClockMs(), { description: 'read the server clock', timeoutSeconds: 60 })).stdout.trim());
  if (d.cli.sudo && hasEnv)
    core.warning(
      'sudo: true — sudo resets the environment, so `docker stack deploy` does not see the env file for ${VARIABLE} substitution (services with env_file: .env still get it).',
    );
  const deploy = stackDeploy(d.cli, d.inputs.projectName, releaseDir(d.inputs.projectDir, id), files, hasEnv);
  const login = d.inputs.registryLogin;
  try {
    await d.server.run(login ? withRegistryLogin(d.cli, login, deploy) : deploy, {
      description: login
        ? `docker stack deploy release ${id} (logged in to ${login.registry} as ${login.username}; Swarm keeps the login with the services so its nodes can pull)`
        : `docker stack deploy release ${id}`,
      timeoutSeconds: 900,
      live: 'all',
      ...(login ? { stdin: `${login.password}\n` } : {}),
    });
  } catch (error) {
    const reason = `docker stack deploy failed: ${(error as Error).message}`;
    return { ok: false, elapsedMs: 0, rounds: 0, probes: [], reason, failing: [], containers: [], failingServices: [], services: [], rollingBack: new Map() };
  }
  return swarmGate(d, Number.isFinite(since) ? since : Date.now());
}

/** The images the stack's services run, as Swarm pinned them (image:tag@sha256:…). */
function runningImages(gate: SwarmGateReport): Record<string, string> {
  return Object.fromEntries(gate.services.map((s) => [s.service, s.image]));
}

/** After a release passed: its lock, meta and stack file name the digests Swarm runs, so a rollback to it gets exactly these bytes. */
async function recordDigests(d: Deployer, id: string, composeFiles: readonly string[], hasEnv: boolean, images: Record<string, string>): Promise<void> {
  const dir = releaseDir(d.inputs.projectDir, id);
  const unpinned = Object.entries(images)
    .filter(([, image]) => !image.includes('@sha256:'))
    .map(([service]) => service);
  if (unpinned.length > 0) core.warning(`Not pinned to a digest (Swarm found no registry digest for the image): ${unpinned.join(', ')}`);
  const meta = {
    id,
    sha: d.ctx.sha,
    ref: d.ctx.ref,
    actor: d.ctx.actor,
    runUrl: d.ctx.runUrl,
    createdAt: new Date().toISOString(),
    services: images,
    composeFiles: [...composeFiles],
    hasEnv,
    strategy: 'swarm',
    stackFile: STACK_FILE,
  };
  await d.server.upload(`${dir}/${STACK_FILE}`, stackOverride(d.inputs.composeFiles, images).content, {
    mode: 0o644,
    description: 'pin the stack to the digests Swarm runs',
  });
  await d.server.upload(`${dir}/${IMAGE_LOCK}`, imageLockFile(images), { mode: 0o644, description: 'record the running digests' });
  await d.server.upload(`${dir}/${META}`, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o644, description: 'record the running digests in meta.json' });
}

/** A kept release switched on again exactly: its own files, env and pinned stack file (or image lock, for a release deployed before swarm). */
async function switchOnKept(d: Deployer, id: string): Promise<{ gate: SwarmGateReport; images: Record<string, string> }> {
  const meta = JSON.parse(
    (await d.server.run(readMeta(d.inputs.projectDir, id), { description: `read release ${id}`, timeoutSeconds: 60 })).stdout,
  ) as SwarmMeta;
  const gate = await switchOn(d, id, [...meta.composeFiles, meta.stackFile ?? IMAGE_LOCK], meta.hasEnv);
  return { gate, images: gate.ok ? runningImages(gate) : meta.services };
}

async function diagnose(d: Deployer, gate: SwarmGateReport, id: string): Promise<string> {
  const services = gate.services.filter((s) => s.state !== 'ok').map((s) => s.service);
  const found = new Diagnostics(d);
  if (gate.reason) found.add('why', gate.reason);
  for (const { title, commands } of stackDiagnostics(d.cli, d.inputs.projectName, services.length > 0 ? services : gate.services.map((s) => s.service))) {
    await found.run(title, commands);
  }
  return found.report(id);
}

async function deploySwarm(d: Deployer): Promise<StoryResult> {
  // Before anything is uploaded: the server must be a manager and the compose files must parse.
  await requireManager(d);
  const override = stackOverride(d.inputs.composeFiles, d.inputs.images);
  if (override.stopFirst.length > 0)
    core.warning(`Updated stop-first (they publish a port in host mode, which two tasks cannot share on one node): ${override.stopFirst.join(', ')}`);
  const state = await serverState(d);
  const previous = state.current !== undefined && state.deployed.has(state.current) ? state.current : undefined;
  const id = d.ctx.releaseId ?? newReleaseId(new Date(), d.ctx.sha, randomBytes(2).toString('hex'));
  core.info(`Release ${id} as stack ${d.inputs.projectName}${previous ? ` (current: ${previous})` : ' (first release)'}`);
  const release = await uploadRelease(d, id);
  await d.server.upload(`${releaseDir(d.inputs.projectDir, id)}/${STACK_FILE}`, override.content, { mode: 0o644, description: `upload ${STACK_FILE}` });
  const base = { releaseId: id, ...(previous ? { previousReleaseId: previous } : {}), pruned: [] as string[], gates: [] as Outcome['gates'] };

  if (d.inputs.preDeploy !== undefined) {
    try {
      await runPreDeploy(d, release, d.inputs.preDeploy);
    } catch (error) {
      await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: 'pre-deploy failed' });
      return {
        ...base,
        status: 'failed',
        images: release.images,
        error: `pre-deploy failed, so nothing was switched${previous ? ` and release ${previous} keeps running` : ''}: ${(error as Error).message}`,
      };
    }
  }

  const gate = await switchOn(d, id, [...release.composeFiles, STACK_FILE], release.hasEnv);
  base.gates.push({ label: `release ${id}`, gate });
  if (gate.ok) {
    const images = runningImages(gate);
    await recordDigests(d, id, release.composeFiles, release.hasEnv, images);
    await d.server.run(switchCurrent(d.inputs.projectDir, id), { description: 'mark the release current', timeoutSeconds: 60 });
    await audit(d, { event: 'deploy', status: 'deployed', from: previous ?? null, to: id });
    const pruned = await prune(d, [id]);
    return { ...base, status: 'deployed', images, pruned };
  }

  const diagnostics = await diagnose(d, gate, id);
  const swarmRolledBack = gate.services.filter((s) => s.rolledBack).map((s) => s.service);
  const said = swarmRolledBack.filter((service) => gate.rollingBack.get(service)).map((service) => `${service}: ${gate.rollingBack.get(service)}`);
  const failedWhy =
    swarmRolledBack.length > 0
      ? `Release ${id} failed: Swarm rolled back its update of ${swarmRolledBack.join(', ')}${said.length > 0 ? ` (${said.join('; ')})` : ''}`
      : `Release ${id} failed the health gate: ${gate.reason}`;
  if (!previous || !d.inputs.rollbackOnFailure) {
    if (swarmRolledBack.length > 0) {
      // Swarm's own rollback already restored what ran before, for the services it rolled back.
      await audit(d, { event: 'rollback', status: 'rolled-back', from: id, to: previous ?? 'swarm-previous-spec', reason: gate.reason ?? 'update failed' });
      const rest = previous
        ? 'rollback-on-failure is false, so the other services were not returned to the previous release'
        : 'there is no earlier Skiff release, so services Swarm did not roll back keep the new spec';
      return {
        ...base,
        status: 'rolled-back',
        images: runningImages(gate),
        diagnostics,
        error: `${failedWhy}. Swarm's rollback restored their previous spec; ${rest}.`,
      };
    }
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: gate.reason ?? 'unhealthy' });
    const left = previous
      ? 'rollback-on-failure is false, so its services were left as they are for inspection'
      : 'there is no previous release to return to, so its services were left for inspection';
    return { ...base, status: 'failed', images: runningImages(gate), diagnostics, error: `${failedWhy}. ${left}.` };
  }

  core.warning(`${failedWhy}. Re-deploying release ${previous}.`);
  const back = await switchOnKept(d, previous);
  base.gates.push({ label: `rollback to ${previous}`, gate: back.gate });
  if (!back.gate.ok) {
    await audit(d, { event: 'failure', status: 'failed', from: id, to: previous, reason: `rollback unhealthy: ${back.gate.reason}` });
    return {
      ...base,
      status: 'failed',
      images: back.images,
      diagnostics,
      error: `${failedWhy}. The rollback to ${previous} did not pass the health gate either: ${back.gate.reason}`,
    };
  }
  await d.server.run(switchCurrent(d.inputs.projectDir, previous), { description: 'mark the release current', timeoutSeconds: 60 });
  await audit(d, { event: 'rollback', status: 'rolled-back', from: id, to: previous, reason: gate.reason ?? 'unhealthy' });
  return { ...base, status: 'rolled-back', images: back.images, diagnostics, error: `${failedWhy}. Rolled back to ${previous}, which passed the health gate.` };
}

/** `rollback: previous|<id>` (and all-or-nothing): re-deploys a kept release's files as the stack, through the same gate. */
async function rollbackSwarm(d: Deployer, wanted: string, reason = 'manual rollback'): Promise<StoryResult> {
  await requireManager(d);
  const state = await serverState(d);
  const id = rollbackTarget(state, wanted);
  const previous = state.current;
  core.info(`Rolling back stack ${d.inputs.projectName}: ${previous ?? '(none)'} → ${id}`);
  const { gate, images } = await switchOnKept(d, id);
  const base = { releaseId: id, ...(previous ? { previousReleaseId: previous } : {}), pruned: [], gates: [{ label: `release ${id}`, gate }] };
  if (!gate.ok) {
    const diagnostics = await diagnose(d, gate, id);
    await audit(d, { event: 'failure', status: 'failed', from: previous ?? null, to: id, reason: `${reason}, unhealthy: ${gate.reason}` });
    return { ...base, status: 'failed', images, diagnostics, error: `Rollback to ${id} failed the health gate: ${gate.reason}` };
  }
  await d.server.run(switchCurrent(d.inputs.projectDir, id), { description: 'mark the release current', timeoutSeconds: 60 });
  await audit(d, { event: 'rollback', status: 'deployed', from: previous ?? null, to: id, reason });
  return { ...base, status: 'deployed', images };
}

/** The dry-run plan: the same builders a swarm deploy runs, recorded; the gate and what follows it named. */
export async function planSwarm(recorder: PlanRecorder, inputs: DeployInputs, ctx: RunContext): Promise<PlanStep[]> {
  const cli = await detectDockerCli(recorder, inputs.sudo, true);
  const d: Deployer = { server: recorder, cli, inputs, ctx };
  await recorder.run(
    tryLock(inputs.projectDir, { token: 'TOKEN', actor: ctx.actor, runUrl: ctx.runUrl, release: 'RELEASE', startedAt: 'NOW' }, inputs.lockTtlSeconds),
    { description: 'take the deploy lock' },
  );
  await recorder.run(swarmNodeState(cli), { description: 'check the Swarm node (must be a manager)' });
  await recorder.run(readState(inputs.projectDir), { description: 'read releases' });
  if (inputs.rollback !== undefined) {
    recorder.steps.push({
      kind: 'run',
      description: `docker stack deploy of release ${inputs.rollback}'s files as stack ${inputs.projectName} (pinned to its digests), then the health gate`,
      script: '# depends on the release kept on the server',
    });
    return recorder.steps;
  }
  const override = stackOverride(inputs.composeFiles, inputs.images);
  const id = newReleaseId(new Date(), ctx.sha, '0000');
  const release = await uploadRelease(d, id);
  await recorder.upload(`${releaseDir(inputs.projectDir, id)}/${STACK_FILE}`, override.content, { mode: 0o644, description: `upload ${STACK_FILE}` });
  if (inputs.preDeploy !== undefined) await runPreDeploy(d, release, inputs.preDeploy);
  await recorder.run(serverClockMs(), { description: 'read the server clock' });
  const deploy = stackDeploy(cli, inputs.projectName, releaseDir(inputs.projectDir, id), [...release.composeFiles, STACK_FILE], release.hasEnv);
  await recorder.run(inputs.registryLogin ? withRegistryLogin(cli, inputs.registryLogin, deploy) : deploy, {
    description: `docker stack deploy release ${id}`,
  });
  recorder.steps.push({
    kind: 'run',
    description:
      'health gate: every service converged (update completed, tasks running the new image) or rolled back by Swarm, health-url, health-command; on failure: diagnostics and re-deploy of the previous release',
    script: '# runs every health-interval until health-successes or health-timeout',
  });
  recorder.steps.push({
    kind: 'run',
    description: 'record the digests Swarm runs (images.lock.json, meta.json, skiff-stack.yml)',
    script: '# depends on what Swarm resolved',
  });
  await recorder.run(switchCurrent(inputs.projectDir, id), { description: 'mark the release current' });
  return recorder.steps;
}
