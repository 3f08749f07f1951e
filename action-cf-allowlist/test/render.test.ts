import { describe, expect, it } from 'vitest';
import { parseCidr, type Cidr } from '../src/cidr';
import { liveMatches, parseLiveTable } from '../src/live';
import { renderAbsent, renderTable, tableModel, type Allowlist } from '../src/render';

const c = (text: string) => parseCidr(text) as Cidr;

const LIST: Allowlist = {
  table: 'skiff_cf',
  ports: [80, 443],
  cf4: [c('103.21.244.0/22'), c('173.245.48.0/20')],
  cf6: [c('2400:cb00::/32')],
  extra: [c('192.0.2.7'), c('2001:db8::/48')],
  dockerPublished: false,
};

describe('renderTable', () => {
  it('renders one create-delete-define transaction for the table, exactly', () => {
    expect(renderTable(tableModel(LIST))).toBe(`# Written by skiff action-cf-allowlist; replaced whole on every change.
table inet skiff_cf {}
delete table inet skiff_cf
table inet skiff_cf {
\tset cf4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 103.21.244.0/22,
\t\t\t     173.245.48.0/20 }
\t}

\tset cf6 {
\t\ttype ipv6_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 2400:cb00::/32 }
\t}

\tset extra4 {
\t\ttype ipv4_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 192.0.2.7/32 }
\t}

\tset extra6 {
\t\ttype ipv6_addr
\t\tflags interval
\t\tauto-merge
\t\telements = { 2001:db8::/48 }
\t}

\tchain input {
\t\ttype filter hook input priority -10; policy accept;
\t\tiifname "lo" accept comment "skiff-cf d50df1c583f70e28"
\t\ttcp dport { 80, 443 } ip saddr @cf4 accept comment "skiff-cf f5fadec792abba42"
\t\ttcp dport { 80, 443 } ip6 saddr @cf6 accept comment "skiff-cf 17a38ab46d149400"
\t\ttcp dport { 80, 443 } ip saddr @extra4 accept comment "skiff-cf b1aa281b5cb7ba60"
\t\ttcp dport { 80, 443 } ip6 saddr @extra6 accept comment "skiff-cf 8440a12baff5dd6f"
\t\ttcp dport { 80, 443 } drop comment "skiff-cf 584672491e686c59"
\t}
}
`);
  });

  it('adds SSH rules only when ssh-allow is given, keeping open sessions', () => {
    const text = renderTable(tableModel({ ...LIST, ports: [443], sshAllow: [c('198.51.100.0/24')] }));
    expect(text).toContain('\tset ssh4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n\t\telements = { 198.51.100.0/24 }\n\t}');
    expect(text).toContain('\tset ssh6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\tauto-merge\n\t}');
    expect(text).toMatch(
      /tcp dport 22 ct state established,related accept comment "skiff-cf [0-9a-f]{16}"\n\t\ttcp dport 22 ip saddr @ssh4 accept .*\n\t\ttcp dport 22 ip6 saddr @ssh6 accept .*\n\t\ttcp dport 22 drop /,
    );
    expect(text).toContain('tcp dport 443 drop');
    expect(renderTable(tableModel(LIST))).not.toContain('dport 22');
  });

  it('with docker-published, filters local destinations in prerouting before Docker’s DNAT (-100)', () => {
    const text = renderTable(tableModel({ ...LIST, dockerPublished: true }));
    expect(text).toContain('\tchain prerouting {\n\t\ttype filter hook prerouting priority -150; policy accept;\n\t\tiifname "lo" accept');
    expect(text).toContain('\t\tfib daddr type local tcp dport { 80, 443 } ip saddr @cf4 accept comment');
    expect(text).toContain('\t\tfib daddr type local tcp dport { 80, 443 } drop comment');
  });

  it('never flushes the ruleset or names another table', () => {
    const text = renderTable(tableModel({ ...LIST, dockerPublished: true, sshAllow: [] }));
    expect(text).not.toMatch(/flush/);
    expect([...text.matchAll(/table (\S+ \S+)/g)].map((m) => m[1])).toEqual(['inet skiff_cf', 'inet skiff_cf', 'inet skiff_cf']);
    expect(renderAbsent('skiff_cf')).toBe('table inet skiff_cf {}\ndelete table inet skiff_cf\n');
  });
});

/** The shape `nft -j list table` prints (nftables 1.0.6), for the rendered LIST after auto-merge. */
function liveJson(model = tableModel(LIST), edit: (items: unknown[]) => void = () => undefined): string {
  const items: unknown[] = [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, { table: { family: 'inet', name: 'skiff_cf', handle: 3 } }];
  for (const s of model.sets) {
    const elem = s.elements.map((e) => {
      const [addr, len] = e.text.split('/');
      return Number(len) === (e.family === 'ipv4' ? 32 : 128) ? addr : { prefix: { addr, len: Number(len) } };
    });
    items.push({ set: { family: 'inet', name: s.name, table: 'skiff_cf', type: s.type, handle: 1, flags: ['interval'], ...(elem.length ? { elem } : {}) } });
  }
  for (const ch of model.chains) {
    items.push({ chain: { family: 'inet', table: 'skiff_cf', name: ch.name, handle: 9, type: 'filter', hook: ch.hook, prio: ch.priority, policy: 'accept' } });
    for (const r of ch.rules) items.push({ rule: { family: 'inet', table: 'skiff_cf', chain: ch.name, handle: 10, comment: r.comment, expr: [] } });
  }
  edit(items);
  return JSON.stringify({ nftables: items });
}

describe('liveMatches', () => {
  it('is true for the table as nft prints it back', () => {
    expect(liveMatches(parseLiveTable(liveJson()), tableModel(LIST))).toBe(true);
  });

  it('sees through auto-merge: adjacent prefixes printed as one range', () => {
    const list = { ...LIST, cf4: [c('104.16.0.0/13'), c('104.24.0.0/14')] };
    const json = liveJson(tableModel(list), (items) => {
      const cf4 = items.find((i) => (i as { set?: { name: string } }).set?.name === 'cf4') as { set: { elem: unknown[] } };
      cf4.set.elem = [{ range: ['104.16.0.0', '104.27.255.255'] }];
    });
    const live = parseLiveTable(json);
    expect(live.sets.find((s) => s.name === 'cf4')!.elements.map((e) => e.text)).toEqual(['104.16.0.0/13', '104.24.0.0/14']);
    expect(liveMatches(live, tableModel(list))).toBe(true);
  });

  it.each([
    ['a missing element', (items: unknown[]) => ((items[2] as { set: { elem: unknown[] } }).set.elem = ['103.21.244.0'])],
    ['a rule added by hand', (items: unknown[]) => items.push({ rule: { chain: 'input', handle: 99, expr: [] } })],
    ['a rule whose text changed', (items: unknown[]) => ((items.at(-1) as { rule: { comment: string } }).rule.comment = 'skiff-cf 0000000000000000')],
    ['another priority', (items: unknown[]) => ((items.find((i) => 'chain' in (i as object)) as { chain: { prio: number } }).chain.prio = 0)],
    ['a drop policy', (items: unknown[]) => ((items.find((i) => 'chain' in (i as object)) as { chain: { policy: string } }).chain.policy = 'drop')],
  ])('is false with %s', (_name, edit) => {
    expect(liveMatches(parseLiveTable(liveJson(tableModel(LIST), edit)), tableModel(LIST))).toBe(false);
  });
});
