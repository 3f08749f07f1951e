import type { Command, Executor } from '@skiff/shell';
import type { Backend, LiveState } from './backend';
import { parseCidr, type Cidr, type Family } from './cidr';
import type { GuardPaths } from './guard';
import { SSH_PORT, type Allowlist } from './render';

/**
 * One ufw rule this action owns. Denies are per family (`from 0.0.0.0/0` or `from ::/0`) so each
 * can be placed right below our allows of its family; ufw numbers IPv4 rules first, then IPv6.
 */
export interface UfwRule {
  action: 'allow' | 'deny';
  family: Family;
  /** undefined: anyone (a deny). */
  from?: Cidr;
  ports: string;
}

export interface NumberedRule extends UfwRule {
  number: number;
  tagged: boolean;
}

const key = (rule: UfwRule) => `${rule.action}|${rule.family}|${rule.from?.text ?? 'any'}|${rule.ports}`;
const ANYONE: Record<Family, string> = { ipv4: '0.0.0.0/0', ipv6: '::/0' };

export function wantedUfwRules(list: Allowlist): UfwRule[] {
  const rules: UfwRule[] = [];
  const group = (ports: string, sources: readonly Cidr[]) => {
    rules.push(...sources.map((from): UfwRule => ({ action: 'allow', family: from.family, from, ports })));
    rules.push({ action: 'deny', family: 'ipv4', ports }, { action: 'deny', family: 'ipv6', ports });
  };
  group(list.ports.join(','), [...list.cf4, ...list.cf6, ...list.extra]);
  if (list.sshAllow) group(String(SSH_PORT), list.sshAllow);
  return rules;
}

const NUMBERED = /^\[\s*(\d+)\]\s+(\S+)( \(v6\))?\s+(ALLOW|DENY|REJECT|LIMIT)(?: (?:IN|OUT|FWD))?\s+(\S+)( \(v6\))?(?:\s+#\s?(.*))?$/;

/** Reads `ufw status numbered`: every rule with its number, ours recognised by the comment. */
export function parseUfwNumbered(text: string, tag: string): NumberedRule[] {
  const rules: NumberedRule[] = [];
  for (const line of text.split('\n')) {
    const match = NUMBERED.exec(line.trim());
    if (!match) continue;
    const [, number, to, toV6, action, from, fromV6, comment] = match;
    const ports = /^([\d,:]+)\/tcp$/.exec(to!)?.[1];
    const source = from === 'Anywhere' ? undefined : parseCidr(from!);
    const family: Family = toV6 || fromV6 || (typeof source === 'object' && source.family === 'ipv6') ? 'ipv6' : 'ipv4';
    const tagged = comment?.trim() === tag;
    if (ports === undefined || typeof source === 'string' || (action !== 'ALLOW' && action !== 'DENY')) {
      // Not a shape this action writes; still counted so positions stay right.
      rules.push({ number: Number(number), action: 'allow', family, ports: '', tagged: false });
      continue;
    }
    rules.push({ number: Number(number), action: action === 'ALLOW' ? 'allow' : 'deny', family, ports, tagged, ...(source ? { from: source } : {}) });
  }
  return rules;
}

/** Our deny for a family and ports must sit below every allow of ours for them, or those allows do nothing. */
function misplacedDenies(live: readonly NumberedRule[]): NumberedRule[] {
  const ours = live.filter((rule) => rule.tagged);
  return ours.filter(
    (deny) =>
      deny.action === 'deny' &&
      ours.some((allow) => allow.action === 'allow' && allow.family === deny.family && allow.ports === deny.ports && allow.number > deny.number),
  );
}

/**
 * ufw holds one rule per match: `deny … from anyone to port P` is "the same rule" as an admin's
 * `allow P/tcp`, and ufw skips inserting it. Such an allow would let everyone in, so it is refused
 * up front, before anything changes, with what to do about it.
 */
export function conflictingRules(live: readonly NumberedRule[], wanted: readonly UfwRule[]): string[] {
  return wanted
    .filter((rule) => rule.action === 'deny')
    .flatMap((deny) =>
      live
        .filter((r) => !r.tagged && r.action === 'allow' && r.from === undefined && r.family === deny.family && r.ports === deny.ports)
        .map((r) => `rule ${r.number} (allow ${r.ports}/tcp from anywhere${r.family === 'ipv6' ? ', IPv6' : ''})`),
    );
}

export function ufwDiff(live: readonly NumberedRule[], wanted: readonly UfwRule[]): { add: UfwRule[]; remove: UfwRule[] } {
  const ours = live.filter((rule) => rule.tagged);
  const misplaced = new Set(misplacedDenies(live).map(key));
  const liveKeys = new Set(ours.map(key).filter((k) => !misplaced.has(k)));
  const wantedKeys = new Set(wanted.map(key));
  return {
    add: wanted.filter((rule) => !liveKeys.has(key(rule))),
    remove: ours.filter((rule) => !wantedKeys.has(key(rule)) || misplaced.has(key(rule))).map(({ number: _n, tagged: _t, ...rule }) => rule),
  };
}

function spec(rule: UfwRule): string[] {
  return ['proto', 'tcp', 'from', rule.from?.text ?? ANYONE[rule.family], 'to', 'any', 'port', rule.ports];
}

export function allowCommand(rule: UfwRule, tag: string): Command {
  return ['ufw', 'prepend', 'allow', ...spec(rule), 'comment', tag];
}

export function deleteCommand(rule: UfwRule): Command {
  return ['ufw', 'delete', rule.action, ...spec(rule)];
}

/**
 * Where a deny goes: right below our last allow of its family and ports (above any rule of the
 * admin's that would let everyone in), or at the top of its family when there is none. ufw
 * inserts by number and refuses a number of the other family, so past the family's last rule
 * it is appended instead.
 */
export function denyCommand(rule: UfwRule, live: readonly NumberedRule[], tag: string): Command {
  const family = live.filter((r) => r.family === rule.family);
  const ourAllows = family.filter((r) => r.tagged && r.action === 'allow' && r.ports === rule.ports);
  const position = ourAllows.length > 0 ? Math.max(...ourAllows.map((r) => r.number)) + 1 : family[0]?.number;
  const last = family.at(-1)?.number;
  if (position === undefined || last === undefined || position > last) return ['ufw', 'deny', ...spec(rule), 'comment', tag];
  return ['ufw', 'insert', String(position), 'deny', ...spec(rule), 'comment', tag];
}

const RULE_FILES = ['/etc/ufw/user.rules', '/etc/ufw/user6.rules'];

export function ufwBackend(list: Allowlist): Backend {
  const tag = list.table;
  const wanted = wantedUfwRules(list);
  let diff: { add: UfwRule[]; remove: UfwRule[] } = { add: wanted, remove: [] };
  const readRules = async (server: Executor): Promise<NumberedRule[]> => {
    const result = await server.run([['ufw', 'status', 'numbered']], { description: 'read ufw rules', timeoutSeconds: 60 });
    if (!/^Status: active/m.test(result.stdout)) {
      throw new Error('ufw is not active on the host; enable it yourself (with SSH allowed) first: this action never enables ufw, which could lock you out');
    }
    return parseUfwNumbered(result.stdout, tag);
  };
  const quiet = (command: Command): Command => [...command, { raw: '>/dev/null' }];
  return {
    name: 'ufw',
    async inspect(server): Promise<LiveState> {
      const live = await readRules(server);
      const conflicts = conflictingRules(live, wanted);
      if (conflicts.length > 0) {
        throw new Error(
          `ufw already has ${conflicts.join(' and ')}, which lets everyone reach the port this action restricts; ufw cannot hold a deny with the same match next to it. ` +
            'Delete that rule (e.g. `ufw delete allow 22/tcp`) or narrow it to your own network, then rerun; nothing was changed',
        );
      }
      diff = ufwDiff(live, wanted);
      const ours = live.filter((r) => r.tagged);
      const web = list.ports.join(',');
      const cf = (family: Family) => ours.filter((r) => r.action === 'allow' && r.ports === web && r.family === family).map((r) => r.from!);
      const managed = ours.flatMap((r) => (r.from ? [r.from] : []));
      // On ufw the extra CIDRs share the web rules, so they count toward the shrink guard too.
      return {
        upToDate: diff.add.length === 0 && diff.remove.length === 0,
        ...(ours.length > 0 ? { cf: { ipv4: cf('ipv4'), ipv6: cf('ipv6') } } : {}),
        managed,
      };
    },
    async stage(server, paths: GuardPaths): Promise<Command[]> {
      await server.run(
        RULE_FILES.map((file): Command => ['cp', '-p', file, `${paths.dir}/last-good-${file.split('/').pop()}`]),
        { description: 'save the live ufw rules as last-good', timeoutSeconds: 30 },
      );
      return [...RULE_FILES.map((file): Command => ['cp', '-p', `${paths.dir}/last-good-${file.split('/').pop()}`, file]), ['ufw', 'reload']];
    },
    async apply(server) {
      // New allows first (to the top), stale rules next, denies last, each placed from a fresh read:
      // no wanted range is ever missing, and a deny never lands above an allow of ours.
      const allows = diff.add.filter((r) => r.action === 'allow');
      const denies = diff.add.filter((r) => r.action === 'deny');
      if (allows.length > 0)
        await server.run(
          allows.map((r) => quiet(allowCommand(r, tag))),
          { description: `add ${allows.length} ufw allow rules tagged ${tag}`, timeoutSeconds: 600, live: 'all' },
        );
      if (diff.remove.length > 0)
        await server.run(
          diff.remove.map((r) => quiet(deleteCommand(r))),
          { description: `delete ${diff.remove.length} stale ufw rules tagged ${tag}`, timeoutSeconds: 600, live: 'all' },
        );
      for (const deny of denies) {
        const read = await server.run([['ufw', 'status', 'numbered']], { description: 'read ufw rule numbers', timeoutSeconds: 60 });
        const live = parseUfwNumbered(read.stdout, tag);
        await server.run([quiet(denyCommand(deny, live, tag))], { description: `add the ${deny.family} deny for port(s) ${deny.ports}`, timeoutSeconds: 60 });
      }
    },
    async verify(server) {
      const after = ufwDiff(await readRules(server), wanted);
      return after.add.length === 0 && after.remove.length === 0;
    },
  };
}
