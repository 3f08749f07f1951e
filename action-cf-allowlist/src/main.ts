import * as core from '@actions/core';
import {
  formatPreflightLog,
  notImplemented,
  publishPlan,
  renderPreflight,
  runPreflight,
  writeSummary,
  type PreflightCheck,
} from '@skiff/action-kit';
import { PlanRecorder } from '@skiff/shell';
import { SshConnection } from '@skiff/ssh';
import { version } from '../package.json';
import { readAllowlistInputs } from './inputs';

// The allowlist will be written as firewall rules, so what matters is which firewall tools exist.
const PREFLIGHT: readonly PreflightCheck[] = [
  { description: 'operating system', command: ['uname', '-sr'] },
  { description: 'nftables installed', command: ['command', '-v', 'nft'] },
  { description: 'iptables installed', command: ['command', '-v', 'iptables'] },
  { description: 'docker installed', command: ['command', '-v', 'docker'] },
];

export async function run(): Promise<void> {
  const inputs = readAllowlistInputs();

  if (inputs.dryRun) {
    const plan = new PlanRecorder();
    await runPreflight(plan, PREFLIGHT);
    await publishPlan(plan.steps);
    return;
  }

  const server = await SshConnection.connect(inputs.ssh);
  try {
    const findings = await runPreflight(server, PREFLIGHT);
    core.info(formatPreflightLog(findings));
    await writeSummary(renderPreflight(findings, inputs.ssh.host));
  } finally {
    await server.close();
  }

  throw notImplemented('action-cf-allowlist', version, 'updating the Cloudflare allowlist');
}
