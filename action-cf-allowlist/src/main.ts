import { checkServer, notImplemented, type PreflightCheck } from '@skiff/action-kit';
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
  await checkServer(inputs.ssh, inputs.dryRun, PREFLIGHT);
  if (inputs.dryRun) return;
  throw notImplemented('action-cf-allowlist', version, 'updating the Cloudflare allowlist');
}
