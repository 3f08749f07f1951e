import { createHash } from 'node:crypto';
import type { Cidr, Family } from './cidr';

/** Everything the rendered table depends on, already validated. */
export interface Allowlist {
  table: string;
  ports: readonly number[];
  cf4: readonly Cidr[];
  cf6: readonly Cidr[];
  extra: readonly Cidr[];
  /** undefined: this action leaves SSH alone. */
  sshAllow?: readonly Cidr[];
  /** Also filter in prerouting, before Docker's DNAT (priority -100) rewrites the destination. */
  dockerPublished: boolean;
}

export const SSH_PORT = 22;

export interface SetModel {
  name: string;
  type: 'ipv4_addr' | 'ipv6_addr';
  elements: readonly Cidr[];
}

export interface ChainModel {
  name: string;
  hook: 'input' | 'prerouting';
  priority: number;
  /** Each rule carries a comment holding a hash of its text: the live rules are compared by these. */
  rules: ReadonlyArray<{ text: string; comment: string }>;
}

export interface TableModel {
  table: string;
  sets: readonly SetModel[];
  chains: readonly ChainModel[];
}

// Runs after conntrack (-200) and before Docker's DNAT (dstnat, -100): the destination port is still the published one.
export const PREROUTING_PRIORITY = -150;
// Before the usual filter chains (0) of ufw, firewalld or iptables-nft: this table only ever narrows what they allow.
export const INPUT_PRIORITY = -10;

const portSet = (ports: readonly number[]) => (ports.length === 1 ? String(ports[0]) : `{ ${ports.join(', ')} }`);

function set(name: string, family: Family, elements: readonly Cidr[]): SetModel {
  return { name, type: family === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr', elements };
}

function ruleComment(chain: string, text: string): string {
  return `skiff-cf ${createHash('sha256').update(`${chain}\n${text}`).digest('hex').slice(0, 16)}`;
}

/** The table as data: the renderer prints it and the idempotence check compares the live table with it. */
export function tableModel(list: Allowlist): TableModel {
  const v4 = (cidrs: readonly Cidr[]) => cidrs.filter((cidr) => cidr.family === 'ipv4');
  const v6 = (cidrs: readonly Cidr[]) => cidrs.filter((cidr) => cidr.family === 'ipv6');
  const sets = [set('cf4', 'ipv4', list.cf4), set('cf6', 'ipv6', list.cf6), set('extra4', 'ipv4', v4(list.extra)), set('extra6', 'ipv6', v6(list.extra))];
  if (list.sshAllow) sets.push(set('ssh4', 'ipv4', v4(list.sshAllow)), set('ssh6', 'ipv6', v6(list.sshAllow)));

  const body = (local: string): string[] => {
    const web = `${local}tcp dport ${portSet(list.ports)}`;
    const rules = [
      'iifname "lo" accept',
      `${web} ip saddr @cf4 accept`,
      `${web} ip6 saddr @cf6 accept`,
      `${web} ip saddr @extra4 accept`,
      `${web} ip6 saddr @extra6 accept`,
      `${web} drop`,
    ];
    if (list.sshAllow) {
      const ssh = `${local}tcp dport ${SSH_PORT}`;
      // Sessions already open survive a change, so the runner can still cancel the revert if its new connection fails.
      rules.push(`${ssh} ct state established,related accept`, `${ssh} ip saddr @ssh4 accept`, `${ssh} ip6 saddr @ssh6 accept`, `${ssh} drop`);
    }
    return rules;
  };
  const chain = (name: string, hook: ChainModel['hook'], priority: number, rules: string[]): ChainModel => ({
    name,
    hook,
    priority,
    rules: rules.map((text) => ({ text, comment: ruleComment(name, text) })),
  });
  const chains = [chain('input', 'input', INPUT_PRIORITY, body(''))];
  // Docker's DNAT matches `fib daddr type local`; matching the same packets covers published ports and nothing routed through.
  if (list.dockerPublished) chains.push(chain('prerouting', 'prerouting', PREROUTING_PRIORITY, body('fib daddr type local ')));
  return { table: list.table, sets, chains };
}

/**
 * The nft file: one transaction that creates the table if it is missing, deletes it and
 * defines it whole. nft -f applies it all or nothing, so there is no moment without rules,
 * and nothing outside this table is touched (no `flush ruleset`).
 */
export function renderTable(model: TableModel): string {
  const t = model.table;
  const lines = [
    '# Written by skiff action-cf-allowlist; replaced whole on every change.',
    `table inet ${t} {}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
  ];
  for (const s of model.sets) {
    lines.push(`\tset ${s.name} {`, `\t\ttype ${s.type}`, '\t\tflags interval', '\t\tauto-merge');
    if (s.elements.length > 0) lines.push(`\t\telements = { ${s.elements.map((cidr) => cidr.text).join(',\n\t\t\t     ')} }`);
    lines.push('\t}', '');
  }
  for (const c of model.chains) {
    lines.push(`\tchain ${c.name} {`, `\t\ttype filter hook ${c.hook} priority ${c.priority}; policy accept;`);
    for (const rule of c.rules) lines.push(`\t\t${rule.text} comment "${rule.comment}"`);
    lines.push('\t}', '');
  }
  if (lines.at(-1) === '') lines.pop();
  lines.push('}', '');
  return lines.join('\n');
}

/** Restores "no table": what the guard applies when the table did not exist before. */
export function renderAbsent(table: string): string {
  return `table inet ${table} {}\ndelete table inet ${table}\n`;
}
