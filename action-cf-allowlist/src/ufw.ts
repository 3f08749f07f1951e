import { raw, type Command, type Executor } from '@skiff/shell';
import type { Backend, LiveState } from './backend';
import { parseCidr, type Cidr } from './cidr';
import type { GuardPaths } from './guard';
import { SSH_PORT, type Allowlist } from './render';

/** One ufw rule this action owns; `from` undefined means "anyone" (the deny after the allows). */
export interface UfwRule {
  action: 'allow' | 'deny';
  from?: Cidr;
  ports: string;
}

const key = (rule: UfwRule) => `${rule.action}|${rule.from?.text ?? 'any'}|${rule.ports}`;

export function wantedUfwRules(list: Allowlist): UfwRule[] {
  const web = list.ports.join(',');
  const rules: UfwRule[] = [...list.cf4, ...list.cf6, ...list.extra].map((from) => ({ action: 'allow', from, ports: web }));
  rules.push({ action: 'deny', ports: web });
  if (list.sshAllow) {
    rules.push(...list.sshAllow.map((from): UfwRule => ({ action: 'allow', from, ports: String(SSH_PORT) })));
    rules.push({ action: 'deny', ports: String(SSH_PORT) });
  }
  return rules;
}

/**
 * Reads our rules from `ufw show added`, recognised by their comment. ufw prints them back as
 * `ufw allow from X to any port P proto tcp comment 'T'` and `ufw deny P/tcp comment 'T'`.
 */
export function parseUfwAdded(text: string, tag: string): UfwRule[] {
  const rules: UfwRule[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim().endsWith(`comment '${tag}'`)) continue;
    const allow = /^ufw allow from (\S+) to any port (\S+) proto tcp /.exec(line.trim());
    const deny = /^ufw deny (?:(\S+)\/tcp|proto tcp (?:from any )?to any port (\S+)) /.exec(line.trim());
    if (allow) {
      const from = parseCidr(allow[1]!);
      if (typeof from !== 'string') rules.push({ action: 'allow', from, ports: allow[2]! });
    } else if (deny) {
      rules.push({ action: 'deny', ports: (deny[1] ?? deny[2])! });
    }
  }
  return rules;
}

export function ufwDiff(live: readonly UfwRule[], wanted: readonly UfwRule[]): { add: UfwRule[]; remove: UfwRule[] } {
  const liveKeys = new Set(live.map(key));
  const wantedKeys = new Set(wanted.map(key));
  return { add: wanted.filter((rule) => !liveKeys.has(key(rule))), remove: live.filter((rule) => !wantedKeys.has(key(rule))) };
}

function spec(rule: UfwRule): string[] {
  return rule.from ? ['proto', 'tcp', 'from', rule.from.text, 'to', 'any', 'port', rule.ports] : ['proto', 'tcp', 'to', 'any', 'port', rule.ports];
}

/**
 * New allows first (prepended, so they sit above any deny), then the denies (appended, so
 * they come after every allow), then the removals: at no point is a still-wanted range missing.
 */
export function ufwChangeCommands(diff: { add: UfwRule[]; remove: UfwRule[] }, tag: string): Command[] {
  const allows = diff.add.filter((rule) => rule.action === 'allow').map((rule): Command => ['ufw', 'prepend', 'allow', ...spec(rule), 'comment', tag]);
  const denies = diff.add.filter((rule) => rule.action === 'deny').map((rule): Command => ['ufw', 'deny', ...spec(rule), 'comment', tag]);
  const removals = diff.remove.map((rule): Command => ['ufw', 'delete', rule.action, ...spec(rule)]);
  return [...allows, ...denies, ...removals].map((command) => [...command, raw('>/dev/null')]);
}

const RULE_FILES = ['/etc/ufw/user.rules', '/etc/ufw/user6.rules'];

export function ufwBackend(list: Allowlist): Backend {
  const tag = list.table;
  const wanted = wantedUfwRules(list);
  let diff: { add: UfwRule[]; remove: UfwRule[] } = { add: wanted, remove: [] };
  const readRules = async (server: Executor): Promise<UfwRule[]> => {
    const result = await server.run([['ufw', 'status'], ['ufw', 'show', 'added']], { description: 'read ufw rules', timeoutSeconds: 60 });
    if (!/^Status: active/m.test(result.stdout)) {
      throw new Error('ufw is not active on the host; enable it yourself (with SSH allowed) first: this action never enables ufw, which could lock you out');
    }
    return parseUfwAdded(result.stdout, tag);
  };
  return {
    name: 'ufw',
    async inspect(server): Promise<LiveState> {
      const live = await readRules(server);
      diff = ufwDiff(live, wanted);
      const cf = (family: 'ipv4' | 'ipv6') =>
        live.filter((r) => r.action === 'allow' && r.ports === list.ports.join(',') && r.from?.family === family).map((r) => r.from!);
      const managed = live.flatMap((r) => (r.from ? [r.from] : []));
      // The extra CIDRs share the web rules, so on ufw they count toward the shrink guard too.
      return { upToDate: diff.add.length === 0 && diff.remove.length === 0, ...(live.length > 0 ? { cf: { ipv4: cf('ipv4'), ipv6: cf('ipv6') } } : {}), managed };
    },
    async stage(server, paths: GuardPaths): Promise<Command[]> {
      await server.run(
        RULE_FILES.map((file): Command => ['cp', '-p', file, `${paths.dir}/last-good-${file.split('/').pop()}`]),
        { description: 'save the live ufw rules as last-good', timeoutSeconds: 30 },
      );
      return [...RULE_FILES.map((file): Command => ['cp', '-p', `${paths.dir}/last-good-${file.split('/').pop()}`, file]), ['ufw', 'reload']];
    },
    async apply(server) {
      await server.run(ufwChangeCommands(diff, tag), { description: `add ${diff.add.length} and delete ${diff.remove.length} ufw rules tagged ${tag}`, timeoutSeconds: 600 });
    },
    async verify(server) {
      const after = ufwDiff(await readRules(server), wanted);
      return after.add.length === 0 && after.remove.length === 0;
    },
  };
}
