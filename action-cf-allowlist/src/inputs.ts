import type { SshConnectOptions } from '@skiff/ssh';
import {
  DRY_RUN_INPUT,
  MULTI_HOST_INPUTS,
  getBoolean,
  getDuration,
  getEnum,
  getInteger,
  getList,
  getString,
  invalidInput,
  readDryRun,
  readInputs,
  readRunMode,
  readSshTargets,
  type InputDefinition,
  type RunMode,
} from '@skiff/action-kit';
import { parseCidr, type Cidr } from './cidr';
import { checkSourceUrl } from './ranges';

export const DEFAULT_SOURCE_URL = 'https://api.cloudflare.com/client/v4/ips';

/** What action.yml declares; a unit test keeps action.yml and the README in step with these. */
export const ACTION_INPUTS: readonly InputDefinition[] = [
  ...MULTI_HOST_INPUTS,
  { name: 'ports', description: 'TCP ports only Cloudflare may reach, separated by commas or spaces.', required: false, default: '80,443' },
  {
    name: 'ssh-allow',
    description: 'CIDRs allowed to reach SSH (port 22); everyone else is dropped there. Empty: this action does not touch SSH at all.',
    required: false,
  },
  {
    name: 'extra-cidrs',
    description: 'More CIDRs allowed on the ports besides Cloudflare, e.g. an uptime monitor (newline, comma or space separated).',
    required: false,
  },
  { name: 'include-jdcloud', description: "Also allow Cloudflare's China network ranges (jdcloud_cidrs), true or false.", required: false, default: 'false' },
  {
    name: 'source-url',
    description: "Where to fetch Cloudflare's ranges (https; plain http only for a loopback address).",
    required: false,
    default: DEFAULT_SOURCE_URL,
  },
  {
    name: 'table',
    description: 'Name of the nftables table this action owns (inet family); with ufw, the comment its rules are tagged with.',
    required: false,
    default: 'skiff_cf',
  },
  {
    name: 'docker-published',
    description: "Also filter ports Docker publishes, in a prerouting hook that runs before Docker's DNAT (true or false). nftables backend only.",
    required: false,
    default: 'true',
  },
  {
    name: 'backend',
    description: 'Firewall to drive: nftables (its own table) or ufw (tagged rules, which must already be active).',
    required: false,
    default: 'nftables',
  },
  {
    name: 'confirm-timeout',
    description: 'After applying, the host restores the previous rules unless a new SSH login confirms within this time, e.g. 60s.',
    required: false,
    default: '60s',
  },
  { name: 'min-ipv4', description: 'Refuse an answer with fewer IPv4 ranges than this.', required: false, default: '10' },
  { name: 'min-ipv6', description: 'Refuse an answer with fewer IPv6 ranges than this.', required: false, default: '4' },
  {
    name: 'max-shrink-percent',
    description: 'Refuse to remove more than this percentage of the Cloudflare ranges live on a host (per family) in one run.',
    required: false,
    default: '25',
  },
  {
    name: 'allow-shrink',
    description: 'Allow a shrink larger than max-shrink-percent (true or false), after checking the list.',
    required: false,
    default: 'false',
  },
  DRY_RUN_INPUT,
];

export const ACTION_OUTPUTS = {
  changed: 'true when any host was changed.',
  added: 'JSON list of the CIDRs added on at least one host.',
  removed: 'JSON list of the CIDRs removed from at least one host.',
  etag: "The etag of Cloudflare's answer (changes when the list changes).",
  hosts: 'JSON list with one entry per host: status, changed, added, removed, counts per family, duration.',
  plan: 'With dry-run: the plan of what would run on the servers, as Markdown.',
} as const;

export interface AllowlistInputs {
  targets: SshConnectOptions[];
  mode: RunMode;
  ports: number[];
  sshAllow?: Cidr[];
  extra: Cidr[];
  includeJdcloud: boolean;
  sourceUrl: string;
  table: string;
  dockerPublished: boolean;
  backend: 'nftables' | 'ufw';
  confirmTimeoutSeconds: number;
  minIpv4: number;
  minIpv6: number;
  maxShrinkPercent: number;
  allowShrink: boolean;
  dryRun: boolean;
  /**
   * Not an input: where the guard keeps its files on each host. Tests that run several
   * namespace "hosts" on one machine (one shared filesystem) give each its own.
   */
  stateDirFor?: (target: SshConnectOptions) => string;
}

function readPorts(): number[] {
  const values = getList('ports', { split: 'any', default: ['80', '443'] });
  const ports = values.map((value) => (/^\d+$/.test(value) ? Number(value) : Number.NaN));
  const bad = values.filter((_, i) => !(ports[i]! >= 1 && ports[i]! <= 65535));
  if (bad.length > 0 || ports.length === 0) throw invalidInput('ports', 'TCP port numbers from 1 to 65535 separated by commas, e.g. 80,443', bad.join(','));
  return [...new Set(ports)].sort((a, b) => a - b);
}

function readCidrs(name: string): Cidr[] | undefined {
  const values = getList(name, { split: 'any' });
  if (values === undefined) return undefined;
  const parsed = values.map((value) => parseCidr(value));
  const bad = values.filter((_, i) => typeof parsed[i] === 'string');
  if (bad.length > 0) {
    throw invalidInput(
      name,
      'IPv4 or IPv6 CIDRs (network address without host bits, e.g. 203.0.113.0/24 or 2001:db8::/48) separated by commas or newlines',
      bad.join(', '),
    );
  }
  return parsed as Cidr[];
}

function readTable(): string {
  const value = getString('table', { default: 'skiff_cf' });
  if (!/^[A-Za-z][A-Za-z0-9_]{0,30}$/.test(value))
    throw invalidInput('table', 'a name of letters, digits and _ starting with a letter (at most 31 characters)', value);
  return value;
}

function readSourceUrl(): string {
  const value = getString('source-url', { default: DEFAULT_SOURCE_URL });
  const problem = checkSourceUrl(value);
  if (problem) throw invalidInput('source-url', problem, value);
  return value;
}

export function readAllowlistInputs(): AllowlistInputs {
  const inputs = readInputs({
    targets: readSshTargets,
    mode: readRunMode,
    ports: readPorts,
    sshAllow: () => readCidrs('ssh-allow'),
    extra: () => readCidrs('extra-cidrs') ?? [],
    includeJdcloud: () => getBoolean('include-jdcloud', { default: false }),
    sourceUrl: readSourceUrl,
    table: readTable,
    dockerPublished: () => getBoolean('docker-published', { default: true }),
    backend: () => getEnum('backend', ['nftables', 'ufw'] as const, { default: 'nftables' }),
    confirmTimeoutSeconds: () => getDuration('confirm-timeout', { default: 60, min: 5, max: 3600 }),
    minIpv4: () => getInteger('min-ipv4', { default: 10, min: 1 }),
    minIpv6: () => getInteger('min-ipv6', { default: 4, min: 0 }),
    maxShrinkPercent: () => getInteger('max-shrink-percent', { default: 25, min: 0, max: 100 }),
    allowShrink: () => getBoolean('allow-shrink', { default: false }),
    dryRun: readDryRun,
  });
  const { sshAllow, ...rest } = inputs;
  return { ...rest, ...(sshAllow === undefined ? {} : { sshAllow }) };
}
