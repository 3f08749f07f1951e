import * as core from '@actions/core';
import { codeBlock, forEachHost, hostLabel, outputs, publishPlan, table, writeSummary } from '@skiff/action-kit';
import {
  PlanRecorder,
  armGuard,
  cancelGuard,
  disarmGuard,
  guardPaths,
  guardRevertScript,
  prepareGuardDir,
  raw,
  type Command,
  type Executor,
} from '@skiff/shell';
import { SshConnection, SshConnectionError, knownHostsName, sha256Fingerprint, type SshConnectOptions } from '@skiff/ssh';
import type { PrepareInputs } from './inputs';
import {
  DAEMON_JSON,
  dockerPackagesFor,
  ensureDocker,
  ensureSwap,
  ensureUnattendedUpgrades,
  readDaemonJson,
  withLogRotation,
  writeDaemonJson,
  type LogRotation,
} from './system-commands';
import {
  HARDENING_FILE,
  REFUSED_EXIT,
  applyHardening,
  asRoot,
  ensureAuthorizedKeys,
  ensureDockerAccess,
  ensureProjectDir,
  ensureUser,
  inspectServer,
  readSshdState,
  undoHardening,
} from './prepare-commands';

export { readPrepareInputs } from './inputs';

type StepState = 'already' | 'changed';

interface StepReport {
  name: string;
  state: StepState;
  detail: string;
}

interface HostKey {
  type: string;
  base64: string;
  fingerprint: string;
}

interface HostPrepared {
  label: string;
  steps: StepReport[];
  hostKeys: HostKey[];
  knownHosts: string[];
  error?: string;
  /** Not started: serially, a host before it failed. */
  skipped?: boolean;
}

/** What the server said of itself before anything changed. */
export interface ServerFacts {
  distribution: { id: string; version: string; pretty: string };
  root: boolean;
  sudo: boolean;
  hostKeys: HostKey[];
}

const SUPPORTED: Record<string, readonly string[]> = { ubuntu: ['22.04', '24.04'], debian: ['12', '13'] };

/** A server prepare will not touch, or a step that found the server unlike what it expects: said before that step changed anything. */
class Refused extends Error {}

export function parseServerFacts(stdout: string): ServerFacts {
  const [osRelease = '', uid = '', sudo = '', keys = ''] = stdout.split(/^--- (?:uid|sudo|host keys)$/m);
  const field = (name: string) =>
    new RegExp(`^${name}=(.*)$`, 'm')
      .exec(osRelease)?.[1]
      ?.trim()
      .replace(/^"(.*)"$/, '$1') ?? '';
  const hostKeys = keys
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([type, base64]) => type && base64 && /^[A-Za-z0-9+/]+={0,2}$/.test(base64))
    .map(([type, base64]) => ({ type: type!, base64: base64!, fingerprint: sha256Fingerprint(Buffer.from(base64!, 'base64')) }));
  return {
    distribution: { id: field('ID'), version: field('VERSION_ID'), pretty: field('PRETTY_NAME') || field('ID') || 'an unknown system' },
    root: uid.trim() === '0',
    sudo: sudo.trim() === 'yes',
    hostKeys,
  };
}

/** Why prepare will not run on this server, or undefined. */
export function refusalOf(facts: ServerFacts, username: string): string | undefined {
  const { id, version, pretty } = facts.distribution;
  if (!SUPPORTED[id]?.includes(version))
    return `prepare supports Ubuntu 22.04 and 24.04 and Debian 12 and 13; this server runs ${pretty}${version ? ` (${id} ${version})` : ''}`;
  if (!facts.root && !facts.sudo)
    return `${username} is neither root nor allowed passwordless sudo (sudo -n true failed); connect as root or as a user with passwordless sudo`;
  return undefined;
}

/** How to install Docker with the Compose v2 plugin on this distribution, for the step's error. */
export function dockerInstallHint(distribution: ServerFacts['distribution']): string {
  if (distribution.id === 'ubuntu')
    return `Install it from Ubuntu's packages (sudo apt-get install docker.io docker-compose-v2), or let prepare do it (install-docker: distribution), then run prepare again.`;
  if (distribution.id === 'debian' && distribution.version === '12')
    return `Debian 12 has no Compose v2 package: let prepare install Docker from Docker's apt repository (install-docker: docker-repository), or install Docker Engine and docker-compose-plugin from there yourself (https://docs.docker.com/engine/install/debian/), then run prepare again.`;
  return `Install it from Debian's packages (sudo apt-get install docker.io docker-cli docker-compose), or let prepare do it (install-docker: distribution), then run prepare again.`;
}

export function knownHostsLines(target: Pick<SshConnectOptions, 'host' | 'port'>, keys: readonly HostKey[]): string[] {
  return keys.map((key) => `${knownHostsName(target.host, target.port)} ${key.type} ${key.base64}`);
}

interface Step {
  name: string;
  commands: Command[];
}

/** The steps before sshd is hardened (the deploy user must be able to log in first), then Docker, then the system. */
function stepsFor(inputs: PrepareInputs, facts: ServerFacts | undefined): { account: Step[]; docker: Step; dockerAccess: Step; system: Step[] } {
  const hint = facts ? dockerInstallHint(facts.distribution) : 'Install Docker with the Compose v2 plugin, then run prepare again.';
  const packages =
    inputs.installDocker.kind === 'distribution'
      ? facts
        ? dockerPackagesFor(facts.distribution)
        : { required: ["(the distribution's Docker packages)"], optional: [] }
      : undefined;
  return {
    account: [
      { name: `deploy user ${inputs.deployUser}`, commands: ensureUser(inputs.deployUser) },
      { name: `authorized keys of ${inputs.deployUser}`, commands: ensureAuthorizedKeys(inputs.deployUser, inputs.keys) },
      { name: `project directory ${inputs.projectDir}`, commands: ensureProjectDir(inputs.projectDir, inputs.deployUser) },
    ],
    docker: { name: 'Docker and the Compose v2 plugin', commands: ensureDocker(inputs.installDocker, packages, hint) },
    dockerAccess: {
      name: inputs.dockerAccess === 'sudo' ? `sudo -n docker for ${inputs.deployUser}` : `${inputs.deployUser} in the docker group`,
      commands: ensureDockerAccess(inputs.deployUser, inputs.dockerAccess),
    },
    system: [
      ...(inputs.swapMiB !== undefined ? [{ name: `swap file /swapfile (${inputs.swapMiB} MiB)`, commands: ensureSwap(inputs.swapMiB) }] : []),
      ...(inputs.unattendedUpgrades ? [{ name: 'unattended security upgrades', commands: ensureUnattendedUpgrades() }] : []),
    ],
  };
}

const LOG_STEP = 'Docker log rotation';

/** daemon.json read, merged on the runner (every other setting kept), and written back only when it changes. */
async function rotateDockerLogs(server: Executor, rotation: LogRotation, elevate: boolean, planning: boolean): Promise<StepReport | undefined> {
  const read = await server.run(asRoot(elevate, readDaemonJson()), { description: `${LOG_STEP}: read ${DAEMON_JSON}`, timeoutSeconds: 60 });
  let merged: { text: string; detail: string } | undefined;
  if (planning) merged = { text: '(daemon.json with log-opts merged in)', detail: '' };
  else {
    const [state = '', ...lines] = read.stdout.split('\n');
    try {
      merged = withLogRotation(state.trim() === 'present' ? lines.join('\n') : undefined, rotation);
    } catch (error) {
      throw new Refused(`${LOG_STEP}: ${(error as Error).message}`);
    }
    if (!merged)
      return {
        name: LOG_STEP,
        state: 'already',
        detail: `${DAEMON_JSON} rotates json-file logs at max-size ${rotation.maxSize}, max-file ${rotation.maxFile}`,
      };
  }
  const written = await runStep(server, { name: LOG_STEP, commands: writeDaemonJson() }, elevate, planning, merged.text);
  return written && { ...written, detail: `${merged.detail}; ${written.detail}` };
}

/** Runs one step and says what it found or did; a refusal or failure throws with the step's name. */
async function runStep(server: Executor, step: Step, elevate: boolean, planning: boolean, stdin?: string): Promise<StepReport | undefined> {
  const result = await server.run(asRoot(elevate, step.commands), {
    description: step.name,
    allowFailure: true,
    // apt on a small VM, waiting for a first boot's own apt run to let go of its lock.
    timeoutSeconds: 900,
    live: 'all',
    ...(stdin !== undefined ? { stdin } : {}),
  });
  if (planning) return undefined;
  const said = /^(already|changed|refused): (.*)$/m.exec(result.stdout.trim().split('\n').at(-1) ?? '');
  if (result.code === REFUSED_EXIT && said?.[1] === 'refused') throw new Refused(`${step.name}: ${said[2]}`);
  if (result.code !== 0 || !said || said[1] === 'refused') {
    // stderr last: the line that says why (apt's E:, a command's complaint) is what the last lines must keep.
    const detail = `${result.stdout}\n${result.stderr}`.trim().split('\n').slice(-10).join('\n');
    throw new Error(`${step.name} failed with exit code ${result.code}${detail ? `:\n${detail}` : ''}`);
  }
  return { name: step.name, state: said[1] as StepState, detail: said[2]! };
}

const SSHD_STEP = 'sshd: key logins only, no root login';
const SSHD_GUARD = { dir: '/var/lib/skiff-prepare/sshd', unit: 'skiff-prepare-sshd-revert', seconds: 90 };
const HARDENED = ['kbdinteractiveauthentication no', 'passwordauthentication no', 'permitrootlogin no'];

/**
 * A new SSH connection as the deploy user with its own key, as deploys will log in; throws what
 * failed. sshd re-executes itself on reload, and a connection in that moment is dropped before
 * the handshake: that is tried again, for a few seconds, but a refused login is final.
 */
async function proveDeployLogin(target: SshConnectOptions, user: string, privateKey: string): Promise<void> {
  const { password: _password, passphrase: _passphrase, privateKey: _key, ...where } = target;
  for (let attempt = 1; ; attempt++) {
    try {
      const server = await SshConnection.connect({ ...where, username: user, privateKey, attempts: 1, connectTimeoutSeconds: 15 });
      try {
        await server.run([['true']], { description: `log in as ${user}`, timeoutSeconds: 30 });
        return;
      } finally {
        await server.close();
      }
    } catch (error) {
      const final = !(error instanceof SshConnectionError) || /^SSH authentication/.test(error.message);
      if (final || attempt >= 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

async function sshdSettings(server: Executor, elevate: boolean, description: string): Promise<{ hardened: boolean; effective: string }> {
  const result = await server.run(asRoot(elevate, readSshdState()), { description, allowFailure: true, timeoutSeconds: 60 });
  const refused = /^refused: (.*)$/m.exec(result.stdout);
  if (result.code === REFUSED_EXIT && refused) throw new Refused(`${SSHD_STEP}: ${refused[1]}`);
  if (result.code !== 0) throw new Error(`${description} failed with exit code ${result.code}: ${result.stderr.trim().split('\n').slice(-5).join(' ')}`);
  const effective = /^effective: (.*)$/m.exec(result.stdout)?.[1]?.trim().toLowerCase() ?? '';
  return { hardened: HARDENED.every((setting) => effective.includes(setting)), effective };
}

/**
 * harden-ssh under a lockout guard: nothing changes until a key login as the deploy user works;
 * then a revert is armed on the server, the drop-in written and checked by sshd -t, sshd
 * reloaded, and the change kept only if a NEW key login as the deploy user works and sshd
 * reports the settings. Otherwise it is undone at once over the session still open (reloading
 * sshd does not end it), or by the armed timer if that session is gone too.
 */
async function hardenSsh(
  server: Executor,
  inputs: PrepareInputs,
  target: SshConnectOptions,
  elevate: boolean,
  planning: boolean,
): Promise<StepReport | undefined> {
  const user = inputs.deployUser;
  const key = inputs.hardenSsh!.deployUserKey;
  const before = await sshdSettings(server, elevate, `${SSHD_STEP}: read sshd's settings`);
  if (!planning && before.hardened) return { name: SSHD_STEP, state: 'already', detail: `sshd already applies ${HARDENED.join(', ')}` };
  const proof = (when: string) => ({
    kind: 'run' as const,
    description: `${SSHD_STEP}: a new key login as ${user} (from the runner, ${when})`,
    script: `# ssh ${user}@host with deploy-user-key; ${when === 'before' ? 'if it fails, sshd is left as it is' : 'if it fails, the change is undone at once'}`,
  });
  if (server instanceof PlanRecorder) server.steps.push(proof('before'));
  else
    await proveDeployLogin(target, user, key).catch((error: Error) => {
      throw new Refused(`${SSHD_STEP}: a key login as ${user} with deploy-user-key failed (${error.message}); sshd was left as it is`);
    });
  const paths = guardPaths(SSHD_GUARD.dir);
  const revert = guardRevertScript(
    paths,
    undoHardening(),
    `Armed by skiff prepare (harden-ssh): removes ${HARDENING_FILE} and reloads sshd unless the runner confirmed a new login in time.`,
  );
  await server.run(
    asRoot(elevate, [
      prepareGuardDir(paths),
      [raw('cat >'), paths.revertScript],
      ['chmod', '0700', paths.revertScript],
      ...armGuard(SSHD_GUARD.unit, paths, SSHD_GUARD.seconds),
    ]),
    {
      description: `${SSHD_STEP}: arm the revert (${SSHD_GUARD.seconds}s)`,
      stdin: revert,
      timeoutSeconds: 60,
    },
  );
  const cancel = asRoot(elevate, cancelGuard(SSHD_GUARD.unit, paths, 'the lockout guard already undid the sshd change'));
  const applied = await server.run(asRoot(elevate, applyHardening()), {
    description: `${SSHD_STEP}: write ${HARDENING_FILE}, check it with sshd -t, reload sshd`,
    allowFailure: true,
    timeoutSeconds: 60,
  });
  if (server instanceof PlanRecorder) {
    server.steps.push(proof('after'));
    await server.run(cancel, { description: `${SSHD_STEP}: confirm (cancel the revert)` });
    return undefined;
  }
  // Run the armed revert now, over the session a reload does not end; if that fails, the timer still will.
  const undo = async (): Promise<string> => {
    const undone = await server
      .run(asRoot(elevate, [['sh', paths.revertScript], ...disarmGuard(SSHD_GUARD.unit, paths)]), {
        description: `${SSHD_STEP}: undo`,
        allowFailure: true,
        timeoutSeconds: 60,
      })
      .catch(() => undefined);
    return undone?.code === 0
      ? `the change was undone (${HARDENING_FILE} removed, sshd reloaded)`
      : `the revert armed on the server undoes it within ${SSHD_GUARD.seconds}s`;
  };
  if (applied.code !== 0)
    throw new Error(`${SSHD_STEP}: ${applied.stderr.trim().split('\n').slice(-5).join(' ') || `exit code ${applied.code}`}; ${await undo()}`);
  let why: string | undefined;
  try {
    await proveDeployLogin(target, user, key);
    const after = await sshdSettings(server, elevate, `${SSHD_STEP}: read sshd's settings again`);
    if (!after.hardened) why = `sshd applies ${after.effective || 'nothing readable'} instead of ${HARDENED.join(', ')}`;
  } catch (error) {
    why = `a new key login as ${user} failed (${(error as Error).message})`;
  }
  if (why !== undefined) throw new Error(`${SSHD_STEP}: after sshd reloaded, ${why}; ${await undo()}`);
  await server.run(cancel, { description: `${SSHD_STEP}: confirm (cancel the revert)`, timeoutSeconds: 60 });
  return { name: SSHD_STEP, state: 'changed', detail: `wrote ${HARDENING_FILE} and reloaded sshd; a new key login as ${user} worked after it` };
}

/**
 * The preparation of one server: look at it (refuse an unsupported distribution, or a user that
 * is neither root nor a passwordless sudoer, before any change), then each step in order, each
 * checking before it changes. Against a PlanRecorder it is the dry run's plan.
 */
async function prepareHost(
  server: Executor,
  inputs: PrepareInputs,
  target: SshConnectOptions,
  report: HostPrepared,
  say: (line: string) => void = core.info,
): Promise<void> {
  const planning = server instanceof PlanRecorder;
  const looked = await server.run(inspectServer(), { description: 'look at the server (distribution, root or sudo, host keys)', timeoutSeconds: 60 });
  const facts = planning ? undefined : parseServerFacts(looked.stdout);
  if (facts) {
    report.hostKeys = facts.hostKeys;
    report.knownHosts = knownHostsLines(target, facts.hostKeys);
    const refusal = refusalOf(facts, target.username);
    if (refusal) throw new Refused(`${refusal}. Nothing was changed.`);
    say(`${facts.distribution.pretty}, connected as ${facts.root ? 'root' : `${target.username} (sudo -n)`}`);
  }
  const elevate = facts !== undefined && !facts.root;
  const steps = stepsFor(inputs, facts);
  const done = (step: StepReport | undefined) => {
    if (!step) return;
    report.steps.push(step);
    say(`${step.name}: ${step.state === 'already' ? 'already done' : 'done'}: ${step.detail}`);
  };
  for (const step of steps.account) done(await runStep(server, step, elevate, planning));
  if (inputs.hardenSsh) done(await hardenSsh(server, inputs, target, elevate, planning));
  done(await runStep(server, steps.docker, elevate, planning));
  if (inputs.logRotation) done(await rotateDockerLogs(server, inputs.logRotation, elevate, planning));
  done(await runStep(server, steps.dockerAccess, elevate, planning));
  for (const step of steps.system) done(await runStep(server, step, elevate, planning));
}

/** prepare: true — each host in turn, stopping at the first that fails; the log, summary and outputs say what each step found or did. */
export async function runPrepare(inputs: PrepareInputs): Promise<void> {
  if (inputs.dryRun) {
    const recorder = new PlanRecorder();
    const target = inputs.targets[0]!;
    await prepareHost(recorder, inputs, target, { label: hostLabel(target), steps: [], hostKeys: [], knownHosts: [] });
    await publishPlan(
      recorder.steps,
      `Prepare plan for ${inputs.targets.map(hostLabel).join(', ')} (as root; as a sudo user each step runs through sudo -n bash -c)`,
    );
    return;
  }
  const many = inputs.targets.length > 1;
  const reports: HostPrepared[] = inputs.targets.map((target) => ({ label: hostLabel(target), steps: [], hostKeys: [], knownHosts: [] }));
  const results = await forEachHost(inputs.targets, inputs.mode, async (target, { index, label }) => {
    const report = reports[index]!;
    // Hosts prepared at the same time interleave in the log: their lines carry the host instead of a group.
    const say = many && inputs.mode.parallel ? (line: string) => core.info(`[${label}] ${line}`) : core.info;
    const work = async () => {
      try {
        const server = await SshConnection.connect(target);
        try {
          await prepareHost(server, inputs, target, report, say);
        } finally {
          await server.close();
        }
      } catch (error) {
        report.error = (error as Error).message;
        throw error;
      }
    };
    await (many && inputs.mode.parallel ? work() : core.group(`Prepare ${label}`, work));
  });
  for (const [index, result] of results.entries()) if (result.status === 'skipped') reports[index]!.skipped = true;
  await finish(reports);
}

async function finish(reports: readonly HostPrepared[]): Promise<void> {
  const failed = reports.find((report) => report.error);
  const skipped = reports.filter((report) => report.skipped);
  const out = outputs<{ status: string; 'known-hosts': string }>();
  out.set('status', failed ? 'failed' : 'prepared');
  const knownHosts = reports.flatMap((report) => report.knownHosts);
  out.set('known-hosts', knownHosts.join('\n'));
  for (const report of reports) {
    if (report.hostKeys.length === 0) continue;
    core.info(
      `Host keys of ${report.label} — paste one fingerprint into the deploys' fingerprint input, or the lines into known-hosts:\n${report.hostKeys
        .map((key) => `  ${key.fingerprint} (${key.type})`)
        .join('\n')}\n${report.knownHosts.map((line) => `  ${line}`).join('\n')}`,
    );
  }
  await writeSummary(renderPrepareSummary(reports));
  if (failed)
    throw new Error(
      `prepare ${failed.label}: ${failed.error}${skipped.length > 0 ? ` (not prepared: ${skipped.map((report) => report.label).join(', ')})` : ''}`,
    );
}

export function renderPrepareSummary(reports: readonly HostPrepared[]): string {
  const parts = reports.map((report) => {
    if (report.skipped) return `### ⏭️ ${report.label} was not prepared (a host before it failed)`;
    const head = report.error ? `### ❌ Prepare ${report.label} stopped` : `### ✅ ${report.label} is prepared`;
    const steps =
      report.steps.length === 0
        ? ''
        : table(
            ['Step', 'Result', 'Detail'],
            report.steps.map((step) => [step.name, step.state === 'already' ? 'already done' : 'done', step.detail]),
          );
    const error = report.error ? `\n\n${codeBlock(report.error)}` : '';
    const keys =
      report.hostKeys.length === 0
        ? ''
        : `\n\nHost keys — the \`fingerprint\` input takes one of these, \`known-hosts\` the lines below:\n\n${table(
            ['Type', 'Fingerprint'],
            report.hostKeys.map((key) => [key.type, key.fingerprint]),
          )}\n\n${codeBlock(report.knownHosts.join('\n'))}`;
    return `${head}\n\n${steps}${error}${keys}`;
  });
  return `${parts.join('\n\n')}\n`;
}
