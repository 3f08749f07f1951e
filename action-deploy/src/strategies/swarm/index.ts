import * as core from '@actions/core';
import { withRegistryLogin } from '../../compose-commands';
import { markCurrent, releaseMeta, removeComposeReleases, runPreDeploy, uploadRelease, type Deployer, type Release } from '../../deploy';
import { Diagnostics } from '../../diagnostics';
import { RefusedBeforeChange } from '../../refusal';
import { IMAGE_LOCK, META, imageLockFile, readMeta, releaseDir } from '../../release-history';
import type { HostStrategy, StoryRelease, StrategyEntry, Switched } from '../strategy';
import { serverClockMs, stackDeploy, stackDiagnostics, swarmNodeState } from './swarm-commands';
import { swarmGate, type SwarmGateReport } from './gate';
import { STACK_FILE, stackOverride } from './stack-file';
import { SWARM_INPUTS, readSwarmInputs, type SwarmInputs } from './inputs';

/**
 * strategy: swarm — the release's compose files become a stack (`docker stack deploy`, stack name
 * = project-name) with skiff-stack.yml merged last: start-first updates that Swarm itself rolls
 * back when they fail. Swarm schedules and replaces tasks across its nodes; we wait until every
 * service has converged (or Swarm has rolled it back), run the health gate, record the digests
 * the services actually run, and keep the same release history, audit log and rollback as every
 * strategy. A failed release is undone by re-deploying the previous release's files, pinned to
 * its digests, so every service goes back, not only those Swarm rolled back.
 */
export function swarmStrategy(): HostStrategy<SwarmRelease> {
  return {
    usesDocker: true,
    async check(d) {
      // Before anything is uploaded: the server must be a manager and the compose files must parse.
      await requireManager(d);
      stackOverride(d.inputs.composeFiles, d.inputs.images);
    },
    subject: (d) => ` as stack ${d.inputs.projectName}`,
    async upload(d, id) {
      const override = stackOverride(d.inputs.composeFiles, d.inputs.images);
      if (override.stopFirst.length > 0)
        core.warning(`Updated stop-first (they publish a port in host mode, which two tasks cannot share on one node): ${override.stopFirst.join(', ')}`);
      const release = await uploadRelease(d, id);
      await d.server.upload(`${releaseDir(d.inputs.projectDir, id)}/${STACK_FILE}`, override.content, { mode: 0o644, description: `upload ${STACK_FILE}` });
      return { id, images: release.images, composeFiles: release.composeFiles, hasEnv: release.hasEnv, stackFile: STACK_FILE, compose: release };
    },
    prepare(d, release) {
      const { preDeploy } = d.inputs;
      const compose = release.compose;
      return preDeploy === undefined || !compose ? [] : [{ what: 'pre-deploy', run: () => runPreDeploy(d, compose, preDeploy) }];
    },
    switchOn,
    async load(d, id) {
      const meta = JSON.parse(
        (await d.server.run(readMeta(d.inputs.projectDir, id), { description: `read release ${id}`, timeoutSeconds: 60 })).stdout,
      ) as SwarmMeta;
      // A release deployed before swarm has no stack file: its image lock pins the same digests.
      return { id, images: meta.services, composeFiles: meta.composeFiles, hasEnv: meta.hasEnv, stackFile: meta.stackFile ?? IMAGE_LOCK };
    },
    async recordPassed(d, release, switched) {
      if (switched.images) await recordDigests(d, release, switched.images);
    },
    markCurrent,
    diagnose: (d, release, switched) => diagnose(d, switched.gate as SwarmGateReport, release.id),
    left: {
      noRollback: 'its services were left as they are for inspection',
      noPrevious: 'its services were left for inspection',
    },
    removeCommands: removeComposeReleases,
    plannedRollback: (d, wanted) =>
      `docker stack deploy of release ${wanted}'s files as stack ${d.inputs.projectName} (pinned to its digests), then the health gate`,
  };
}

/** A swarm release: the compose files and the stack file `docker stack deploy` reads after them. */
interface SwarmRelease extends StoryRelease {
  composeFiles: readonly string[];
  hasEnv: boolean;
  stackFile: string;
  /** The release as Compose sees it, for pre-deploy (set for a new release only). */
  compose?: Release;
}

/** A swarm release's meta.json: the shared fields plus which stack file it adds. */
interface SwarmMeta {
  services: Record<string, string>;
  composeFiles: string[];
  hasEnv: boolean;
  stackFile?: string;
}

async function requireManager(d: Deployer): Promise<void> {
  const said = (await d.server.run(swarmNodeState(d.cli), { description: 'check the Swarm node (must be a manager)', timeoutSeconds: 60 })).stdout.trim();
  if (said === 'active true' || d.planning) return;
  if (said.startsWith('active'))
    throw new RefusedBeforeChange(
      'strategy: swarm needs a Swarm manager: this server is a worker node. Point host at a manager (`docker node ls` on a manager lists them).',
    );
  throw new RefusedBeforeChange(
    `strategy: swarm needs a Swarm, and this server's Docker engine is not part of one (Swarm state: ${said || 'unknown'}). ` +
      'Run `docker swarm init` on the server once (or join it to your Swarm as a manager); nothing was changed.',
  );
}

/** `docker stack deploy` of the release's files, then the swarm gate. A failing deploy command is a failed gate. */
async function switchOn(d: Deployer, release: SwarmRelease): Promise<Switched> {
  const { id } = release;
  const since = Number((await d.server.run(serverClockMs(), { description: 'read the server clock', timeoutSeconds: 60 })).stdout.trim());
  if (d.cli.sudo && release.hasEnv)
    core.warning(
      'sudo: true — sudo resets the environment, so `docker stack deploy` does not see the env file for ${VARIABLE} substitution (services with env_file: .env still get it).',
    );
  const deploy = stackDeploy(d.cli, d.inputs.projectName, releaseDir(d.inputs.projectDir, id), [...release.composeFiles, release.stackFile], release.hasEnv);
  const login = d.inputs.registryLogin;
  const label = `release ${id}`;
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
    const gate: SwarmGateReport = {
      ok: false,
      elapsedMs: 0,
      rounds: 0,
      probes: [],
      reason,
      failing: [],
      containers: [],
      failingServices: [],
      services: [],
      rollingBack: new Map(),
    };
    return { gates: [{ label, gate }], gate };
  }
  const gate = await swarmGate(d, Number.isFinite(since) ? since : Date.now());
  const switched: Switched = { gates: [{ label, gate }], gate };
  if (gate.services.length > 0) switched.images = runningImages(gate);
  // A dry run has no Swarm to ask: the plan records the digests as the release asked for them.
  else if (d.planning) switched.images = release.images;
  const swarmRolledBack = gate.services.filter((s) => s.rolledBack).map((s) => s.service);
  if (!gate.ok && swarmRolledBack.length > 0) {
    const said = swarmRolledBack.filter((service) => gate.rollingBack.get(service)).map((service) => `${service}: ${gate.rollingBack.get(service)}`);
    switched.undone = {
      why: `Swarm rolled back its update of ${swarmRolledBack.join(', ')}${said.length > 0 ? ` (${said.join('; ')})` : ''}`,
      to: 'swarm-previous-spec',
    };
  }
  return switched;
}

/** The images the stack's services run, as Swarm pinned them (image:tag@sha256:…). */
function runningImages(gate: SwarmGateReport): Record<string, string> {
  return Object.fromEntries(gate.services.map((s) => [s.service, s.image]));
}

/** After a release passed: its lock, meta and stack file name the digests Swarm runs, so a rollback to it gets exactly these bytes. */
async function recordDigests(d: Deployer, release: SwarmRelease, images: Record<string, string>): Promise<void> {
  const dir = releaseDir(d.inputs.projectDir, release.id);
  const unpinned = Object.entries(images)
    .filter(([, image]) => !image.includes('@sha256:'))
    .map(([service]) => service);
  if (unpinned.length > 0) core.warning(`Not pinned to a digest (Swarm found no registry digest for the image): ${unpinned.join(', ')}`);
  const meta = {
    ...releaseMeta(d, release.id, images),
    composeFiles: [...release.composeFiles],
    hasEnv: release.hasEnv,
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

async function diagnose(d: Deployer, gate: SwarmGateReport, id: string): Promise<string> {
  const services = gate.services.filter((s) => s.state !== 'ok').map((s) => s.service);
  const found = new Diagnostics(d);
  if (gate.reason) found.add('why', gate.reason);
  for (const { title, commands } of stackDiagnostics(d.cli, d.inputs.projectName, services.length > 0 ? services : gate.services.map((s) => s.service))) {
    await found.run(title, commands);
  }
  return found.report(id);
}

/** Swarm pulls on its own nodes, in its own time: pull-timeout has nothing to bound. */
export const swarm: StrategyEntry<SwarmInputs> = {
  inputs: SWARM_INPUTS,
  ignores: [],
  ignoresInputs: ['pull-timeout'],
  read: readSwarmInputs,
  host: swarmStrategy,
};
