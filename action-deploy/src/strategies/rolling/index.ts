import * as core from '@actions/core';
import { RemoteCommandError, raw, render, type Command, type ExecResult, type PlanRecorder } from '@skiff/shell';
import {
  compose,
  config,
  configHashes,
  inspectContainers,
  inspectProjectContainers,
  listContainers,
  parseContainerRows,
  scaleUpThenList,
  LISTED_MARK,
  startMissing,
  stopAndRemove,
} from '../../compose-commands';
import { loadRelease, type Deployer, type Release } from '../../deploy';
import { containerGate, healthGate, type GateReport } from '../../health-gate';
import { touchLock } from '../../lock-commands';
import { linkEnv } from '../../release-history';
import { collectDiagnostics } from '../../rollback';
import {
  drainLeft,
  hashesIfOnlyImagesChanged,
  leftForUp,
  newContainers,
  parseConfigHashes,
  planRoll,
  scalesFor,
  serviceShapes,
  withRolled,
  type RollingService,
  type RollPlan,
  type ServiceShape,
} from './roll-plan';
import type { ContainerRow } from '../../compose-commands';
import { upAndCheck } from '../../release-check';
import { RefusedBeforeChange } from '../../refusal';
import { recreateStrategy } from '../recreate';
import type { HostStrategy, StrategyEntry, Switched } from '../strategy';
import { ROLLING_INPUTS, readRollingInputs, type RollingInputs } from './inputs';

/**
 * strategy: rolling — zero downtime behind a reverse proxy. For each service that can roll,
 * new containers start beside the old ones (`up --no-deps --no-recreate --scale svc=old+new`
 * with the new release's files and pinned images); only they are judged by the health gate.
 * If they pass, the old ones are stopped (after a drain, with their stop_grace_period) and
 * removed; if they fail, they are removed and the old ones never stopped. Then `up -d` of the
 * release converges the rest (services that cannot roll are recreated there, as recreate
 * would) and the whole release goes through the gate, as with recreate. Every other step is
 * recreate's.
 */
export function rollingStrategy(settings: RollingInputs): HostStrategy<Release> {
  const recreate = recreateStrategy();
  return {
    ...recreate,
    async upload(d, id) {
      const release = await recreate.upload(d, id);
      // Pull, build and digests change no container, pre-deploy and backup-before-deploy may: the
      // list of what runs is read beside the pull only when neither comes before the switch.
      if (d.inputs.preDeploy === undefined && d.inputs.backupBeforeDeploy === undefined) {
        const listing = d.server.run(listContainers(d.cli, d.inputs.projectName), { description: 'list the running containers', timeoutSeconds: 60 });
        listedEarly.set(
          release,
          listing.then(
            (listed) => listed.stdout,
            () => undefined,
          ),
        );
      }
      return release;
    },
    async check(d) {
      // v1 names containers differently and has no `config --hash`; it is end-of-life anyway.
      if (d.cli.compose !== 'v2')
        throw new RefusedBeforeChange(
          'strategy: rolling needs the docker compose plugin (Compose v2); this server only has docker-compose v1. Install docker-compose-plugin, or use strategy: recreate.',
        );
    },
    async switchOn(d, release, running) {
      const look = await linkEnvAndList(d, release);
      const readHashes = () => planFromHashes(d, release, look, settings);
      const guess = d.planning
        ? undefined
        : planRoll(look.shapes, hashesIfOnlyImagesChanged(look.shapes, look.rows, release.images), look.rows, settings.services);
      const gates: Switched['gates'] = [];
      let plan: RollPlan;
      let old: string[] = [];
      if (guess && guess.roll.length > 0) {
        core.info(
          `Rolling deploy: new image for ${guess.roll.map((entry) => entry.service).join(', ')}; its new containers start at once, every service's configuration hash is read while the gate waits for them`,
        );
        const rolled = await rollServices(d, release, running, guess, readHashes, settings.drainSeconds);
        gates.push(...rolled.gates);
        if (rolled.kept) return { gates, gate: gates.at(-1)!.gate, kept: rolled.kept };
        plan = rolled.plan;
        old = rolled.old;
      } else {
        const hashed = readHashes();
        plan = await hashed;
        announce(plan);
        // Which services roll depends on what runs on the server: a dry run shows the commands for a service S.
        if (d.planning) planRolls(d.planning, d, release, settings);
        else if (plan.roll.length > 0) {
          const rolled = await rollServices(d, release, running, plan, () => hashed, settings.drainSeconds);
          gates.push(...rolled.gates);
          if (rolled.kept) return { gates, gate: gates.at(-1)!.gate, kept: rolled.kept };
          old = rolled.old;
        }
      }
      // The rolled services already run the release's configuration, so `up` leaves them be.
      const left = leftForUp(look.shapes, look.rows, plan);
      if (plan.roll.length > 0 && left) core.info(`After the roll, compose up runs: ${left}`);
      let gate: GateReport;
      if (left === undefined && plan.roll.length > 0 && !d.planning) gate = await retireThenCheck(d, release, plan, old);
      else {
        await retire(d, old, retiring(plan));
        gate = await upAndCheck(d, release);
      }
      gates.push({ label: `release ${release.id}`, gate });
      return { gates, gate };
    },
  };
}

function announce(plan: RollPlan): void {
  for (const warning of plan.warnings) core.warning(warning);
  core.info(describe(plan));
}

/** The roll of each changed service as a dry run shows it, for a service S (which services roll depends on the server). */
function planRolls(recorder: PlanRecorder, d: Deployer, release: Release, settings: RollingInputs): void {
  const drain = settings.drainSeconds;
  const perService = [
    `# for each changed service S that can roll${settings.services ? ` (of ${settings.services.join(', ')})` : ''}, with N old containers and R replicas:`,
    `cd ${render([release.project.directory])} && ${render(compose(d.cli, release.project, 'up', '-d', '--no-deps', '--no-recreate', '--scale', 'S=N+R', 'S')).replace("'S=N+R'", 'S=N+R')}`,
    '# health gate on the new containers only (plus health-url and health-command); if it fails: diagnostics, then docker stop + docker rm of the new ones, the old keep serving',
    ...(drain > 0 ? [`sleep ${drain}  # rolling-drain: the proxy picks up the new containers (counted from their first healthy round)`] : []),
    ...stopAndRemove(d.cli, ['OLD-CONTAINER-IDS']).map(render),
    "# then compose up of the release (next step), unless every changed service rolled and up would change nothing: then the release check's one round alone",
  ].join('\n');
  recorder.steps.push({
    kind: 'run',
    description: 'roll each changed service: new containers beside the old, gate, drain, retire the old',
    script: perService,
  });
}

/**
 * Retires the old containers, then the release check after a roll that left nothing for
 * `compose up` to do: one round over the whole release, as after an `up` that created nothing
 * (see releaseCheckSuccesses) — which containers serve, the proxy, health-url. Its look at the
 * containers is taken in the round trip that removed the old ones, right after them.
 */
async function retireThenCheck(d: Deployer, release: Release, plan: RollPlan, old: readonly string[]): Promise<GateReport> {
  const quiet = (command: Command): Command => [...command, raw('>/dev/null')];
  const retired = await d.server.run(
    [...stopAndRemove(d.cli, old).map(quiet), ...touchLock(d.inputs.projectDir, d.ctx.token), ...inspectProjectContainers(d.cli, d.inputs.projectName)],
    { description: `${retiring(plan)}, inspect what runs`, timeoutSeconds: 900 },
  );
  core.info(
    'Release check: 1 round; compose up is not run, as it would change nothing (every changed service rolled, every other one runs the release configuration)',
  );
  return healthGate(d, Object.keys(release.images), 1, retired.stdout);
}

function retiring(plan: RollPlan): string {
  return `stop and remove the old containers of ${plan.roll.map((entry) => entry.service).join(', ')}`;
}

/** What runs, as read beside the pull by `upload` (undefined if that read failed: it is read again). */
const listedEarly = new WeakMap<Release, Promise<string | undefined>>();

interface Look {
  shapes: ServiceShape[];
  rows: ContainerRow[];
}

/**
 * Points `.env` at the release (services with `env_file: .env` read it, and so does their
 * configuration hash) and lists what runs now, in one round trip; reads what the release
 * defines unless the pull already did. Changes nothing else.
 */
async function linkEnvAndList(d: Deployer, release: Release): Promise<Look> {
  const configYaml =
    release.configYaml ?? (await d.server.run(config(d.cli, release.project), { description: 'read the compose configuration', timeoutSeconds: 120 })).stdout;
  // A release uploaded by this run has its .env linked since the upload.
  const early = await listedEarly.get(release);
  if (early !== undefined) return { shapes: serviceShapes(configYaml), rows: parseContainerRows(early) };
  const link = [...touchLock(d.inputs.projectDir, d.ctx.token), ...linkEnv(d.inputs.projectDir, release.id, release.hasEnv)];
  const listed = await d.server.run([...link, ...listContainers(d.cli, d.inputs.projectName)], {
    description: 'link the env file, list the running containers',
    timeoutSeconds: 120,
  });
  return { shapes: serviceShapes(configYaml), rows: parseContainerRows(listed.stdout) };
}

/** The plan by Compose's own configuration hashes (read after the env link: they cover `env_file` contents). */
async function planFromHashes(d: Deployer, release: Release, look: Look, settings: RollingInputs): Promise<RollPlan> {
  const hashes = await d.server.run(configHashes(d.cli, release.project), { description: 'read the configuration hashes', timeoutSeconds: 120 });
  return planRoll(look.shapes, parseConfigHashes(hashes.stdout), look.rows, settings.services);
}

function describe(plan: RollPlan): string {
  const parts = [
    plan.roll.length > 0
      ? `rolling ${plan.roll.map(({ service, old, replicas }) => `${service} (${old.length} old → ${replicas} new)`).join(', ')}`
      : 'nothing to roll',
    ...(plan.startFirst.length > 0 ? [`starting first: ${plan.startFirst.join(', ')}`] : []),
    ...(plan.recreate.length > 0 ? [`recreated by compose up: ${plan.recreate.map((entry) => entry.service).join(', ')}`] : []),
    ...(plan.unchanged.length > 0 ? [`unchanged: ${plan.unchanged.join(', ')}`] : []),
  ];
  return `Rolling deploy: ${parts.join('; ')}`;
}

/**
 * Scale up, gate the new containers and drain, then return the old ones for the caller to
 * retire — or, if the new ones fail, remove them and put the env link back, leaving the running
 * release exactly as it was.
 * `first` starts at once; `readComplete` (the plan by Compose's hashes, which may add services
 * whose configuration changed with the same image) is read while the gate waits for the new
 * containers' HEALTHCHECK — a Compose start of its own, which beside the scale-up slowed both
 * down. What it adds starts next and has a gate of its own; nothing old stops until every new
 * container passed its gate.
 */
async function rollServices(
  d: Deployer,
  release: Release,
  running: string | undefined,
  first: RollPlan,
  readComplete: () => Promise<RollPlan>,
  drain: number,
): Promise<{ gates: Switched['gates']; kept?: Switched['kept']; plan: RollPlan; old: string[] }> {
  let plan = first;
  const gates: Switched['gates'] = [];
  let fresh: string[] = [];
  let healthySince: number | undefined;
  const gateBatch = async (roll: readonly RollingService[], ids: string[]): Promise<GateReport> => {
    core.info(`New containers: ${ids.map((id) => id.slice(0, 12)).join(', ') || 'none'}`);
    const services = roll.map((entry) => entry.service);
    const gate = await newContainersGate(d, services, ids, (at) => (healthySince = at));
    gates.push({ label: `new containers of ${services.join(', ')}`, gate });
    return gate;
  };
  let gate: GateReport | undefined;
  try {
    await startMissingFirst(d, release, first.startFirst);
    fresh = await startNewContainers(d, release, first.roll);
    const complete = readComplete();
    // Awaited once the gate passed; a failed read then removes the new containers like a failed start.
    complete.catch(() => undefined);
    gate = await gateBatch(first.roll, fresh);
    if (gate.ok) {
      const whole = withRolled(await complete, first.roll);
      if (whole !== first) {
        announce(whole);
        const more = whole.roll.filter((entry) => !first.roll.some((rolled) => rolled.service === entry.service));
        plan = whole;
        if (more.length > 0) {
          await startMissingFirst(
            d,
            release,
            whole.startFirst.filter((service) => !first.startFirst.includes(service)),
          );
          const added = await startNewContainers(d, release, more);
          fresh = [...fresh, ...added];
          gate = await gateBatch(more, added);
        }
      }
    }
  } catch (error) {
    // `up` failed (e.g. the image would not start): nothing old was touched; clean up what it made.
    if (error instanceof StartFailed) fresh = [...fresh, ...error.fresh];
    gate = failedGate(`starting the new containers failed: ${(error as Error).message}`);
    gates.push({ label: `new containers of ${plan.roll.map((entry) => entry.service).join(', ')}`, gate });
  }
  if (!gate.ok) {
    const diagnostics = await collectDiagnostics(d, release, gate);
    await retire(d, fresh, 'remove the new containers');
    await relinkEnv(d, running);
    return { gates, kept: { diagnostics }, plan, old: [] };
  }
  const wait = drainLeft(drain, healthySince, performance.now());
  if (drain > 0) {
    // The drain runs from the first round of the gate's final streak, so it overlaps the remaining successes.
    const counted = drain - wait;
    core.info(
      `New containers healthy; rolling-drain ${drain}s${counted > 0 ? ` counted from their first healthy round (${counted.toFixed(1)} s ago)` : ''}: waiting ${wait.toFixed(1)} s more so the proxy routes to them before the old ones stop`,
    );
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait * 1000));
  }
  // The caller retires them: with the release check's first look in the same round trip where it can.
  return { gates, plan, old: plan.roll.flatMap((entry) => entry.old) };
}

async function startMissingFirst(d: Deployer, release: Release, services: readonly string[]): Promise<void> {
  if (services.length === 0) return;
  await d.server.run(startMissing(d.cli, release.project, services), { description: `start ${services.join(', ')} first`, timeoutSeconds: 900, live: 'all' });
}

/**
 * Scales each rolled service up beside its old containers and returns the new ones. They are
 * listed in the same round trip whether or not the scale-up worked: what it created before
 * failing is removed like the rest. Only when that list itself could not be read (a timeout, a
 * lost connection) is it read again on its own.
 */
async function startNewContainers(d: Deployer, release: Release, roll: readonly RollingService[]): Promise<string[]> {
  const description = `start new containers of ${roll.map((entry) => entry.service).join(', ')}`;
  const fromList = (stdout: string) => newContainers(roll, parseContainerRows(stdout));
  const listAgain = async () =>
    fromList((await d.server.run(listContainers(d.cli, d.inputs.projectName), { description: 'list the new containers', timeoutSeconds: 60 })).stdout);
  let started: ExecResult;
  try {
    // The lock is refreshed here too: since the list read beside the pull, nothing else may have (a slow pull).
    started = await d.server.run(
      [...touchLock(d.inputs.projectDir, d.ctx.token), ...scaleUpThenList(d.cli, release.project, d.inputs.projectName, scalesFor(roll))],
      {
        description,
        timeoutSeconds: 900,
        live: 'stderr',
        allowFailure: true,
      },
    );
  } catch (error) {
    throw new StartFailed(error as Error, await listAgain());
  }
  const [rows = '', listed] = started.stdout.split(new RegExp(`^${LISTED_MARK}$`, 'm'));
  const fresh = listed === undefined ? await listAgain() : fromList(rows);
  if (started.code !== 0) throw new StartFailed(new RemoteCommandError(description, started), fresh);
  return fresh;
}

/** The scale-up failed; `fresh` are the containers it created all the same. */
class StartFailed extends Error {
  constructor(
    why: Error,
    readonly fresh: string[],
  ) {
    super(why.message);
  }
}

/** The health gate over the new containers only (old ones may be unhealthy: that may be why this release exists), plus health-url and health-command. */
function newContainersGate(
  d: Deployer,
  services: readonly string[],
  ids: readonly string[],
  onStreakStart: (at: number | undefined) => void,
): Promise<GateReport> {
  return containerGate(d, inspectContainers(d.cli, ids), services, `health gate of the new containers of ${services.join(', ')}`, {
    failingAtStart: services,
    watch: ids.map((id) => `container=${id}`),
    onStreak: (allOk, previousAllOk) => {
      if (!allOk) onStreakStart(undefined);
      else if (!previousAllOk) onStreakStart(performance.now());
    },
  });
}

function failedGate(reason: string): GateReport {
  return { ok: false, elapsedMs: 0, rounds: 0, probes: [], reason, failing: ['containers'], containers: [], failingServices: [] };
}

async function retire(d: Deployer, ids: readonly string[], description: string): Promise<void> {
  if (ids.length > 0) await d.server.run(stopAndRemove(d.cli, ids), { description, timeoutSeconds: 900 });
}

/** Back to the running release's env file, which the new release's link replaced. */
async function relinkEnv(d: Deployer, running: string | undefined): Promise<void> {
  if (!running) return;
  const previous = await loadRelease(d, running);
  await d.server.run(linkEnv(d.inputs.projectDir, previous.id, previous.hasEnv), { description: 'link the env file back', timeoutSeconds: 60 });
}

export const rolling: StrategyEntry<RollingInputs> = { inputs: ROLLING_INPUTS, ignores: [], ignoresInputs: [], read: readRollingInputs, host: rollingStrategy };
