import type { Probe } from '@skiff/health';
import type { Deployer } from '../../deploy';
import { Diagnostics } from '../../diagnostics';
import { appProbes, runHealthGate, type GateReport } from '../../health-gate';
import { touchLock } from '../../lock-commands';
import { evaluateUnit, parseShow, resetFailedUnit, restartUnit, unitJournal, unitState, unitStatus } from './systemd-commands';

/** What the user can do about a refused restart, when the output says. */
export function restartFailureHint(unit: string, sudo: boolean, said: string, resetWorked: boolean): string {
  if (sudo && /password is required|not allowed|not in the sudoers|may not run/i.test(said))
    return ` (the SSH user needs passwordless sudo for \`systemctl reset-failed ${unit}\` and \`systemctl restart ${unit}\`; see "strategy: systemd" in the README)`;
  if (!resetWorked && /reset-failed|start-limit|too quickly/i.test(said))
    return ` (systemd refuses to start ${unit} after its crash loop until \`systemctl reset-failed ${unit}\`, which the SSH user could not run: add \`/usr/bin/systemctl reset-failed ${unit}\` to its sudoers rule; see "strategy: systemd" in the README)`;
  return '';
}

/** A gate that failed before it could start (the restart itself failed), shaped like any other for the summary. */
function refused(unit: string, reason: string): GateReport {
  return {
    ok: false,
    elapsedMs: 0,
    rounds: 0,
    probes: [{ name: unit, state: 'failed', detail: reason }],
    reason: `${unit}: ${reason}`,
    failing: [unit],
    containers: [],
    failingServices: [],
  };
}

/**
 * Restarts the unit and runs the health gate: the unit active and not restarted by systemd since
 * (a crash loop fails at once), plus health-url and health-command as for every strategy. A
 * failed restart fails the gate without waiting: if `systemctl restart` could not run (sudo
 * refused), the old process may still answer health-url, which must not count as the new release.
 */
export async function restartAndGate(d: Deployer, unit: string, sudo: boolean): Promise<GateReport> {
  // A sudoers rule written before reset-failed was needed refuses it; the restart then says whether it mattered.
  const reset = await d.server.run(resetFailedUnit(unit, sudo), { description: `reset-failed ${unit}`, allowFailure: true, timeoutSeconds: 60 });
  const restart = await d.server.run(restartUnit(unit, sudo), { description: `restart ${unit}`, allowFailure: true, timeoutSeconds: 300 });
  if (restart.code !== 0) {
    const said = `${restart.stderr}${restart.stdout}`.trim().split('\n').slice(-3).join(' ');
    const hint = restartFailureHint(unit, sudo, said, reset.code === 0);
    return refused(unit, `systemctl restart failed (exit ${restart.code})${said ? `: ${said}` : ''}${hint}`);
  }
  const read = async () =>
    parseShow(
      (await d.server.run([...touchLock(d.inputs.projectDir, d.ctx.token), ...unitState(unit)], { description: `state of ${unit}`, timeoutSeconds: 60 }))
        .stdout,
    );
  const restartsAtStart = Number((await read()).NRestarts ?? '0');
  const unitProbe: Probe = { name: unit, check: async () => evaluateUnit(await read(), restartsAtStart) };
  const app = await appProbes(d);
  try {
    const planned =
      'the health gate (unit active and not restarted by systemd, health-url, health-command); on failure: systemctl status, journalctl, and current back to the previous release';
    return { ...(await runHealthGate(d, [unitProbe, ...app.probes], planned)), containers: [], failingServices: [] };
  } finally {
    await app.close();
  }
}

/** `systemctl status` and the unit's last 100 journal lines, gathered before a rollback restarts it. */
export async function unitDiagnostics(d: Deployer, unit: string, sudo: boolean, releaseId: string): Promise<string> {
  const found = new Diagnostics(d);
  await found.run(`systemctl status ${unit}`, unitStatus(unit, sudo));
  await found.run(`journalctl --unit ${unit} --lines=100`, unitJournal(unit, sudo));
  return found.report(releaseId);
}
