import * as core from '@actions/core';
import { releaseMeta, type Deployer } from '../../deploy';
import { RefusedBeforeChange } from '../../refusal';
import { ENV_FILE, META, markDeployed, pointCurrent, releaseDir, removeReleases, type ServerState } from '../../release-history';
import { artifactCompression, artifactDescription, artifactStream } from './artifact';
import { createSystemdRelease, extractArchive, gitExport, inReleaseDir, inspectHost, parseShow, runsFromCurrent } from './systemd-commands';
import { restartAndGate, unitDiagnostics } from './gate';
import type { ReleaseSource, SystemdInputs } from './inputs';
import type { HostStrategy, PrepareStep, StrategyEntry } from '../strategy';
import { SYSTEMD_INPUTS, readSystemdInputs } from './inputs';

/** What a new release is made of; the inputs require one of artifact-path and git-repository unless rolling back. */
function sourceOf(settings: SystemdInputs): ReleaseSource {
  if (!settings.source) throw new Error('strategy: systemd needs artifact-path or git-repository');
  return settings.source;
}

/**
 * Checks the unit exists before anything changes and decides on sudo: a user other than root
 * cannot restart a system unit without it (over SSH there is no polkit agent to ask).
 */
async function inspectUnit(d: Deployer, unit: string): Promise<{ sudo: boolean }> {
  const inspected = await d.server.run(inspectHost(unit), {
    description: `inspect ${unit} (must be installed; sudo -n for systemctl unless the user is root)`,
    allowFailure: true,
    timeoutSeconds: 60,
  });
  if (d.planning) return { sudo: d.inputs.sudo };
  const config = parseShow(inspected.stdout);
  if (inspected.code !== 0 || config.LoadState === undefined) {
    const said = `${inspected.stderr}`.trim().split('\n').slice(-2).join(' ') || `exit ${inspected.code}`;
    throw new RefusedBeforeChange(
      `systemd-unit: cannot ask systemd about ${unit} on the server (systemctl said: ${said}). strategy: systemd needs a server whose init is systemd.`,
    );
  }
  const dir = d.inputs.projectDir;
  if (config.LoadState !== 'loaded') {
    const what = config.LoadState === 'not-found' ? 'is not installed' : `cannot be loaded (LoadState=${config.LoadState ?? 'unknown'})`;
    throw new RefusedBeforeChange(
      `systemd-unit: ${unit} ${what} on the server. Install its unit file first (e.g. /etc/systemd/system/${unit} with WorkingDirectory=${dir}/current), then run \`systemctl daemon-reload\` and \`systemctl enable ${unit}\`; see "strategy: systemd" in the README.`,
    );
  }
  if (!runsFromCurrent(config, dir)) {
    core.warning(
      `${unit} (${config.FragmentPath || 'unit file unknown'}) mentions ${dir}/current in neither WorkingDirectory nor ExecStart, so switching releases may not change what it runs.`,
    );
  }
  return { sudo: d.inputs.sudo || config.uid !== '0' };
}

/** The release a failed deploy returns to: current if it passed the gate, else the newest that did (a run may have died between switch and gate). */
function previousOf(state: ServerState): string | undefined {
  if (state.current !== undefined && state.deployed.has(state.current)) return state.current;
  return [...state.deployed]
    .filter((id) => state.releases.includes(id))
    .sort()
    .at(-1);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function uploadArtifact(d: Deployer, source: Extract<ReleaseSource, { kind: 'artifact' }>, dir: string): Promise<void> {
  if (d.planning) {
    const compression = await artifactCompression(source.absolute, source.isDirectory);
    const description = await artifactDescription(source.absolute, source.isDirectory);
    await d.server.run(extractArchive(dir, compression), { description: `upload ${source.path} (${description})` });
    return;
  }
  const artifact = await artifactStream(source.absolute, source.isDirectory);
  try {
    await d.server.run(extractArchive(dir, artifact.compression), {
      stdin: artifact.stream,
      description: `upload ${source.path} (${artifact.description})`,
      timeoutSeconds: 3600,
      live: 'stderr',
    });
  } catch (error) {
    // If tar on the runner failed, the server only saw a cut-short archive: the runner's reason is the useful one.
    const local = await Promise.race([
      artifact.finished.then(
        () => undefined,
        (reason: Error) => reason,
      ),
      sleep(2000).then(() => undefined),
    ]);
    artifact.stop();
    throw local ?? error;
  }
  // The server has the whole stream; tar on the runner may still be exiting, and its status counts too.
  await artifact.finished;
}

/** Creates the release directory with its meta.json; the app's files come in the first prepare step. */
async function createRelease(d: Deployer, id: string, unit: string, source: ReleaseSource): Promise<void> {
  const dir = releaseDir(d.inputs.projectDir, id);
  await d.server.run(createSystemdRelease(d.inputs.projectDir, id), { description: `create release ${id}`, timeoutSeconds: 60 });
  const meta = {
    ...releaseMeta(d, id, {}),
    strategy: 'systemd',
    unit,
    source: source.kind === 'artifact' ? { artifactPath: source.path } : { gitRepository: source.repository, sha: source.sha },
  };
  await d.server.upload(`${dir}/${META}`, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o644, description: 'upload meta.json' });
}

/** The app's files (artifact streamed as tar, or a git export on the server) and the env file (0600). */
async function uploadFiles(d: Deployer, id: string, source: ReleaseSource): Promise<void> {
  const dir = releaseDir(d.inputs.projectDir, id);
  if (source.kind === 'artifact') await uploadArtifact(d, source, dir);
  else
    await d.server.run(gitExport(d.inputs.projectDir, source.repository, source.sha, dir), {
      description: `fetch ${source.sha.slice(0, 12)} from ${source.repository} into the release`,
      timeoutSeconds: 3600,
      live: 'all',
    });
  if (d.inputs.envFile !== undefined)
    await d.server.upload(`${dir}/${ENV_FILE}`, d.inputs.envFile, { mode: 0o600, secret: true, description: 'upload the env file' });
}

/**
 * strategy: systemd — the app is run by a systemd unit from <project-dir>/current, no Docker:
 * upload → install-command → pre-deploy → point `current` → restart → health gate → mark
 * deployed. Unlike the compose strategies `current` must move before the gate (the unit runs
 * whatever it points at), so "passed the gate" is the `deployed` mark alone, and a failed
 * release returns to the newest release that has it.
 */
export function systemdStrategy(settings: SystemdInputs): HostStrategy {
  // Decided by check() for this host's run: a user other than root needs sudo for systemctl.
  let sudo = false;
  return {
    usesDocker: false,
    async check(d) {
      if (d.inputs.rollback === undefined) sourceOf(settings);
      ({ sudo } = await inspectUnit(d, settings.unit));
    },
    subject: () => ` of ${settings.unit}`,
    previousOf,
    async upload(d, id) {
      await createRelease(d, id, settings.unit, sourceOf(settings));
      return { id, images: {} };
    },
    prepare(d, release) {
      const { installCommand } = settings;
      const source = sourceOf(settings);
      const run = (what: string, command: string) => async () => {
        await d.server.run(inReleaseDir(d.inputs.projectDir, release.id, command), {
          description: what,
          timeoutSeconds: d.inputs.preDeployTimeoutSeconds,
          live: 'all',
        });
      };
      const steps: PrepareStep[] = [{ what: 'Uploading the release', run: () => uploadFiles(d, release.id, source) }];
      if (installCommand !== undefined) steps.push({ what: 'install-command', run: run('install-command', installCommand) });
      if (d.inputs.preDeploy !== undefined) steps.push({ what: 'pre-deploy', run: run('pre-deploy', d.inputs.preDeploy) });
      return steps;
    },
    async switchOn(d, release) {
      await d.server.run(pointCurrent(d.inputs.projectDir, release.id), { description: `point current at ${release.id}`, timeoutSeconds: 60 });
      const gate = await restartAndGate(d, settings.unit, sudo);
      return { gates: [{ label: `release ${release.id}`, gate }], gate };
    },
    load: async (_d, id) => ({ id, images: {} }),
    markCurrent: (d, release) => markDeployed(d.inputs.projectDir, release.id),
    diagnose: (d, release) => unitDiagnostics(d, settings.unit, sudo, release.id),
    left: {
      noRollback: 'it was left current for inspection',
      noPrevious: 'it was left current for inspection',
    },
    removeCommands: (d, plan) => removeReleases(d.inputs.projectDir, plan.remove),
    plannedRollback: (_d, wanted) => `point current at release ${wanted}, restart ${settings.unit}, then the health gate`,
  };
}

/** No Docker: the Compose inputs have nothing to act on. */
export const systemd: StrategyEntry<SystemdInputs> = {
  inputs: SYSTEMD_INPUTS,
  ignores: ['compose'],
  ignoresInputs: [],
  read: readSystemdInputs,
  host: systemdStrategy,
};
