import * as core from '@actions/core';
import { httpProbe, runGate } from '@skiff/health';
import type { PlanStep } from '@skiff/shell';
import type { RunContext } from '../../run-context';
import type { GateReport } from '../../health-gate';
import type { HostReport } from '../../host-outcome';
import type { DeployInputs, HealthInputs } from '../../deploy-inputs';
import type { Outcome } from '../../host-outcome';
import type { StrategyEntry } from '../strategy';
import {
  answerError,
  applicationRequest,
  deploymentRequest,
  deployRequest,
  describeRequest,
  isRunning,
  parseDeployment,
  parseTriggered,
  send,
  setImageTagRequest,
  parseApplication,
  type DockerImageApplication,
  type DeploymentState,
  type Triggered,
} from './api';
import { COOLIFY_INPUTS, readCoolifyInputs, type CoolifyInputs } from './inputs';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Lines of a failed deployment's log kept in the job summary (the whole log goes to the step log). */
const SUMMARY_LOG_LINES = 100;

interface Followed {
  triggered: Triggered;
  state?: DeploymentState;
  error?: string;
  diagnostics?: string;
  seconds: number;
}

/**
 * strategy: coolify — Coolify builds and runs the app; we trigger its deploy API, follow every
 * deployment it queued until finished or failed (printing the log of a failed one), then run the
 * health gate on health-url from the runner. One report per Coolify resource, so the summary,
 * outputs, GitHub Deployment and notification work as for SSH hosts. With coolify-image-tag the
 * applications are first told which image tag to run, and a release that fails is deployed again
 * with the tags they had (rollback-on-failure); without it there is nothing of ours to roll back
 * to: Coolify keeps its own history.
 */
export async function deployCoolify(inputs: DeployInputs, _ctx: RunContext): Promise<HostReport[]> {
  const coolify = settings(inputs);
  const started = performance.now();
  if (coolify.imageTag === undefined) {
    const round = await deployRound(inputs, started);
    return round.followed.map((f) => toReport(coolify, f, round.gate, {}));
  }

  // Every application is read before any is changed: one that cannot take a tag stops the run with nothing changed.
  const before = await Promise.all(coolify.uuids.map((uuid) => readApplication(coolify, uuid)));
  const wanted = coolify.imageTag;
  await setImageTags(
    coolify,
    before.map((app) => ({ app, from: app.tag, to: wanted })),
  );
  let round: Round;
  try {
    round = await deployRound(inputs, started);
  } catch (error) {
    // Nothing was deployed: the applications go back to the tags they had, so Coolify's next deploy is what it was.
    await setImageTags(
      coolify,
      before.map((app) => ({ app, from: wanted, to: app.tag })),
    ).catch((undo: Error) => core.warning(`Could not set the applications' image tags back: ${undo.message}`));
    throw error;
  }
  const images = Object.fromEntries(before.map((app) => [app.name, `${app.image}:${wanted}`]));
  const failure = roundFailure(round);
  if (failure === undefined) return round.followed.map((f) => toReport(coolify, f, round.gate, { images }));

  const changed = before.filter((app) => app.tag !== wanted);
  const why = `${failure}.`;
  if (!inputs.rollbackOnFailure || changed.length === 0) {
    const left = !inputs.rollbackOnFailure
      ? `rollback-on-failure is false, so Coolify keeps ${wanted} for inspection`
      : `every application already ran ${wanted} before, so there is no earlier tag to return to`;
    return round.followed.map((f) => toReport(coolify, f, round.gate, { images, error: `${why} ${left}.` }));
  }
  const previous = changed.map((app) => `${app.name} → ${app.tag}`).join(', ');
  core.warning(`${why} Rolling back: ${previous}.`);
  await setImageTags(
    coolify,
    changed.map((app) => ({ app, from: wanted, to: app.tag })),
    `so the rollback could not start: ${why} Coolify keeps ${wanted}`,
  );
  const back = await deployRound(
    { ...inputs, strategy: { name: 'coolify', settings: { ...coolify, uuids: changed.map((app) => app.uuid) } } },
    performance.now(),
  );
  const backFailure = roundFailure(back);
  const restored = Object.fromEntries(before.map((app) => [app.name, `${app.image}:${app.tag}`]));
  const backGates = back.gate ? [{ label: `rollback to ${previous}`, gate: back.gate }] : [];
  if (backFailure !== undefined)
    return round.followed.map((f) =>
      toReport(coolify, f, round.gate, { images, error: `${why} The rollback (${previous}) failed too: ${backFailure}.`, extraGates: backGates }),
    );
  return round.followed.map((f) =>
    toReport(coolify, f, round.gate, {
      images: restored,
      status: 'rolled-back',
      error: `${why} Rolled back (${previous}), which passed the health gate.`,
      extraGates: backGates,
    }),
  );
}

interface Round {
  followed: Followed[];
  gate?: GateReport;
}

/** One trigger of the deploy API, every deployment it queued followed to its end, then the gate. */
async function deployRound(inputs: DeployInputs, started: number): Promise<Round> {
  const coolify = settings(inputs);
  const trigger = deployRequest(coolify);
  core.info(`Triggering Coolify: ${describeRequest(trigger).replace('\n', ' (')})`);
  const answer = await send(trigger).catch((error: Error) => {
    throw new Error(`Could not reach Coolify at ${coolify.apiUrl}: ${error.message}`);
  });
  if (answer.status < 200 || answer.status > 299) throw new Error(answerError('Triggering the deployment failed, nothing was deployed', trigger, answer));
  const { deployments, messages } = parseTriggered(answer.body);
  for (const message of messages) core.info(`Coolify: ${message}`);

  const missing = coolify.uuids.filter((uuid) => !deployments.some((d) => d.resourceUuid === uuid));
  const followed = await Promise.all(deployments.map((triggered) => follow(coolify, triggered, started)));
  for (const uuid of missing) {
    followed.push({
      triggered: { resourceUuid: uuid },
      error: `Coolify did not deploy resource ${uuid}: it is not a resource the token's team can see`,
      seconds: 0,
    });
  }
  if (followed.length === 0) {
    // By tag, services and databases are started without a deployment to follow; Coolify says so only in its messages.
    const label = coolify.tags.join(',');
    const refused = messages.length === 0 || messages.some((m) => /unauthori|not found|no resources/i.test(m));
    followed.push({
      triggered: { resourceUuid: `tag:${label}`, ...(messages.length > 0 ? { message: messages.join(' ') } : {}) },
      ...(refused ? { error: `Coolify deployed nothing for tag ${label}${messages.length > 0 ? `: ${messages.join(' ')}` : ''}` } : {}),
      seconds: (performance.now() - started) / 1000,
    });
  }
  const allFinished = followed.every((f) => f.error === undefined);
  const gate = allFinished && inputs.health.urls.length > 0 ? await healthGate(inputs.health) : undefined;
  return { followed, ...(gate ? { gate } : {}) };
}

function roundFailure(round: Round): string | undefined {
  const failed = round.followed.find((f) => f.error !== undefined);
  if (failed) return failed.error;
  if (round.gate && !round.gate.ok) return `The Coolify deployments finished, but the health gate failed: ${round.gate.reason}`;
  return undefined;
}

async function readApplication(coolify: CoolifyInputs, uuid: string): Promise<DockerImageApplication> {
  const request = applicationRequest(coolify, uuid);
  const answer = await send(request).catch((error: Error) => {
    throw new Error(`Could not reach Coolify at ${coolify.apiUrl}: ${error.message}`);
  });
  if (answer.status !== 200) throw new Error(answerError(`Reading application ${uuid} failed, nothing was changed`, request, answer));
  return parseApplication(uuid, answer.body);
}

/** Sets each application's tag in turn; when one is refused, those already set go back, and the run stops. */
async function setImageTags(
  coolify: CoolifyInputs,
  changes: readonly { app: DockerImageApplication; from: string; to: string }[],
  /** Said when a change is refused: what that means for the run. */
  refused = 'nothing was deployed',
): Promise<void> {
  const done: { app: DockerImageApplication; from: string }[] = [];
  for (const { app, from, to } of changes) {
    const request = setImageTagRequest(coolify, app.uuid, to);
    const answer = await send(request).catch((error: Error) => ({ status: 0, body: error.message }));
    if (answer.status < 200 || answer.status > 299) {
      for (const undo of done) await send(setImageTagRequest(coolify, undo.app.uuid, undo.from)).catch(() => undefined);
      throw new Error(answerError(`Setting the image tag of ${app.name} to ${to} failed, ${refused}`, request, answer));
    }
    core.info(`[coolify:${app.uuid}] ${app.name} runs ${app.image}:${to}${to === from ? ' (unchanged)' : ` (was ${from})`}`);
    done.push({ app, from });
  }
}

async function follow(coolify: CoolifyInputs, triggered: Triggered, started: number): Promise<Followed> {
  const seconds = () => (performance.now() - started) / 1000;
  const name = `coolify:${triggered.resourceUuid}`;
  if (triggered.deploymentUuid === undefined) {
    const message = triggered.message ?? 'no deployment was queued';
    core.info(`[${name}] ${message}`);
    // Services and databases are started with no deployment to follow; anything else without one was refused.
    return /started/i.test(message)
      ? { triggered, seconds: seconds() }
      : { triggered, error: `Coolify did not deploy ${triggered.resourceUuid}: ${message}`, seconds: seconds() };
  }
  core.info(`[${name}] deployment ${triggered.deploymentUuid} queued${triggered.message ? ` (${triggered.message})` : ''}`);
  const request = deploymentRequest(coolify, triggered.deploymentUuid);
  const deadline = started + coolify.timeoutSeconds * 1000;
  let state: DeploymentState | undefined;
  let lastProblem: string | undefined;
  while (performance.now() < deadline) {
    try {
      const answer = await send(request, Math.floor(Math.max(1000, Math.min(30_000, deadline - performance.now()))));
      if (answer.status === 401 || answer.status === 403 || answer.status === 404) {
        return { triggered, error: answerError(`Following deployment ${triggered.deploymentUuid} failed`, request, answer), seconds: seconds() };
      }
      if (answer.status >= 200 && answer.status <= 299) {
        const now = parseDeployment(answer.body);
        if (now.status !== state?.status) core.info(`[${name}] ${state ? `${state.status} → ` : ''}${now.status}`);
        state = now;
        lastProblem = undefined;
        if (!isRunning(now.status)) break;
      } else {
        lastProblem = answerError('asking for the deployment status', request, answer);
      }
    } catch (error) {
      // A dropped connection or a Coolify restart: keep asking until the timeout.
      lastProblem = `asking for the deployment status: ${(error as Error).message}`;
    }
    if (lastProblem) core.warning(`[${name}] ${lastProblem}; asking again`);
    await sleep(Math.min(coolify.pollSeconds * 1000, Math.max(0, deadline - performance.now())));
  }
  if (state?.status === 'finished') return { triggered, state, seconds: seconds() };
  const why =
    state === undefined || isRunning(state.status)
      ? `did not finish within coolify-timeout (${coolify.timeoutSeconds} s; last status: ${state?.status ?? 'unknown'}${lastProblem ? `, ${lastProblem}` : ''}); Coolify may still complete it`
      : `ended ${state.status}`;
  return {
    triggered,
    state,
    error: `Coolify deployment ${triggered.deploymentUuid} of ${triggered.resourceUuid} ${why}`,
    diagnostics: printLogs(name, triggered.deploymentUuid, state, coolify.token),
    seconds: seconds(),
  };
}

/** The failed deployment's log in the step log (folded), and its end for the summary; the token blanked in both. */
function printLogs(name: string, deploymentUuid: string, state: DeploymentState | undefined, token: string): string {
  const blank = (line: string) => line.replaceAll(token, '***');
  if (state?.logs === undefined) {
    const text = 'Coolify sent no deployment log: the token needs the read:sensitive permission to see it.';
    core.warning(`[${name}] ${text}`);
    return text;
  }
  const lines = state.logs.map(blank);
  if (lines.length === 0) {
    core.info(`[${name}] Coolify's log of deployment ${deploymentUuid} is empty`);
    return `Coolify's log of deployment ${deploymentUuid} is empty.`;
  }
  core.startGroup(`Coolify log of deployment ${deploymentUuid} (${lines.length} lines)`);
  for (const line of lines) core.info(line);
  core.endGroup();
  const tail = lines.slice(-SUMMARY_LOG_LINES);
  return `$ Coolify log of deployment ${deploymentUuid}${lines.length > tail.length ? ` (last ${tail.length} of ${lines.length} lines)` : ''}\n${tail.join('\n')}`;
}

/** health-url from the runner (there is no SSH host to check from), with the usual rounds and timeout. */
async function healthGate(health: HealthInputs): Promise<GateReport> {
  const timeoutMs = Math.max(1000, Math.min(10_000, health.intervalSeconds * 1000 * 2));
  const probes = health.urls.map((url) => httpProbe({ url, status: health.status, ...(health.body === undefined ? {} : { body: health.body }), timeoutMs }));
  const result = await runGate(probes, {
    intervalMs: health.intervalSeconds * 1000,
    timeoutMs: health.timeoutSeconds * 1000,
    successes: health.successes,
    onRound: (round, reports) => core.info(`health round ${round}: ${reports.map((r) => `${r.name} ${r.state} (${r.detail})`).join('; ')}`),
  });
  return { ...result, containers: [], failingServices: [] };
}

function toReport(
  coolify: CoolifyInputs,
  f: Followed,
  gate: GateReport | undefined,
  verdict: { images?: Record<string, string>; status?: Outcome['status']; error?: string; extraGates?: Outcome['gates'] },
): HostReport {
  const id = f.triggered.deploymentUuid ?? f.triggered.resourceUuid;
  let error = verdict.error ?? f.error;
  if (!error && gate && !gate.ok)
    error = `Coolify deployment ${id} of ${f.triggered.resourceUuid} finished, but the health gate failed: ${gate.reason}. Coolify keeps it running; roll back in Coolify.`;
  const status: Outcome['status'] = verdict.status ?? (error ? 'failed' : 'deployed');
  const durationSeconds = f.seconds + (f.error ? 0 : (gate?.elapsedMs ?? 0) / 1000);
  const outcome: Outcome = {
    status,
    releaseId: id,
    images: verdict.images ?? {},
    gates: [...(gate && !f.error ? [{ label: `Coolify deployment ${id}`, gate }] : []), ...(verdict.extraGates ?? [])],
    ...(f.diagnostics ? { diagnostics: f.diagnostics } : {}),
    ...(error ? { error } : {}),
    pruned: [],
    durationSeconds,
    mode: 'deploy',
  };
  return { label: `coolify:${f.triggered.resourceUuid}`, projectDir: coolify.apiUrl, status, outcome, ...(error ? { error } : {}), durationSeconds };
}

/** The dry-run plan: the requests that would be sent (token shown as ***), the waiting and the gate. */
export function planCoolify(inputs: DeployInputs): PlanStep[] {
  const coolify = settings(inputs);
  const steps: PlanStep[] = [];
  const { imageTag } = coolify;
  if (imageTag !== undefined)
    steps.push(
      {
        kind: 'run',
        description: `read each application's image and tag (it must run a registry image); nothing is changed if one cannot`,
        script: coolify.uuids.map((uuid) => describeRequest(applicationRequest(coolify, uuid))).join('\n'),
      },
      {
        kind: 'run',
        description: `set each application's image tag to ${imageTag}${inputs.rollbackOnFailure ? ' (a failed release is deployed again with the tags they had)' : ''}`,
        script: coolify.uuids.map((uuid) => describeRequest(setImageTagRequest(coolify, uuid, imageTag))).join('\n'),
      },
    );
  steps.push(
    {
      kind: 'run',
      description: `trigger the Coolify deployment of ${coolify.uuids.length > 0 ? `resource(s) ${coolify.uuids.join(', ')}` : `every resource tagged ${coolify.tags.join(', ')}`}`,
      script: describeRequest(deployRequest(coolify)),
    },
    {
      kind: 'run',
      description: `follow each deployment Coolify queued, every ${coolify.pollSeconds} s until finished, failed or cancelled-by-user (at most ${coolify.timeoutSeconds} s); print the log of a failed one`,
      script: describeRequest(deploymentRequest(coolify, '{deployment_uuid}')).replace('%7B', '{').replace('%7D', '}'),
    },
  );
  if (inputs.health.urls.length > 0) {
    steps.push({
      kind: 'run',
      description: 'health gate from the runner once every deployment finished',
      script: inputs.health.urls.map((url) => `GET ${url}`).join('\n'),
    });
  }
  return steps;
}

/** Coolify deploys from its own configuration, through its API: no SSH host, no compose file. */
export const coolify: StrategyEntry<CoolifyInputs> = { inputs: COOLIFY_INPUTS, ignores: ['ssh', 'compose'], ignoresInputs: [], read: readCoolifyInputs };

function settings(inputs: DeployInputs): CoolifyInputs {
  if (inputs.strategy.name !== 'coolify') throw new Error(`strategy: ${inputs.strategy.name} is not coolify`);
  return inputs.strategy.settings;
}
