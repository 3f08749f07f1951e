import { parseCidr, rangeToCidrs, sameCoverage, type Cidr } from './cidr';
import type { TableModel } from './render';

export interface LiveSet {
  name: string;
  type: string;
  /** Entries as CIDRs; a range auto-merge made (adjacent prefixes) is split back into the fewest CIDRs. */
  elements: Cidr[];
}

export interface LiveChain {
  name: string;
  type?: string;
  hook?: string;
  priority?: number;
  policy?: string;
  ruleComments: (string | undefined)[];
}

export interface LiveTable {
  sets: LiveSet[];
  chains: LiveChain[];
}

type Json = Record<string, unknown>;

function ipToBigInt(text: string): bigint | undefined {
  const parsed = parseCidr(text);
  return typeof parsed === 'string' ? undefined : parsed.start;
}

function element(raw: unknown, family: 'ipv4' | 'ipv6'): Cidr[] | Cidr | undefined {
  const value = typeof raw === 'object' && raw !== null && 'elem' in raw ? (raw as { elem: { val: unknown } }).elem.val : raw;
  if (typeof value === 'string') {
    const cidr = parseCidr(value, family);
    return typeof cidr === 'string' ? undefined : cidr;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Json;
  if (v.prefix) {
    const p = v.prefix as { addr: string; len: number };
    const cidr = parseCidr(`${p.addr}/${p.len}`, family);
    return typeof cidr === 'string' ? undefined : cidr;
  }
  if (Array.isArray(v.range)) {
    const [a, b] = v.range as [string, string];
    const start = ipToBigInt(a);
    const end = ipToBigInt(b);
    if (start === undefined || end === undefined) return undefined;
    return rangeToCidrs(family, start, end);
  }
  return undefined;
}

/** Reads `nft -j list table inet NAME` output into what the comparison needs. */
export function parseLiveTable(json: string): LiveTable {
  const doc = JSON.parse(json) as { nftables?: Json[] };
  const sets: LiveSet[] = [];
  const chains = new Map<string, LiveChain>();
  for (const item of doc.nftables ?? []) {
    if (item.set) {
      const s = item.set as Json;
      const family = s.type === 'ipv6_addr' ? 'ipv6' : 'ipv4';
      const elems = Array.isArray(s.elem) ? s.elem : [];
      sets.push({ name: String(s.name), type: String(s.type), elements: elems.flatMap((e) => element(e, family) ?? []) });
    } else if (item.chain) {
      const c = item.chain as Json;
      chains.set(String(c.name), {
        name: String(c.name),
        ...(c.type === undefined ? {} : { type: text(c.type) }),
        ...(c.hook === undefined ? {} : { hook: text(c.hook) }),
        ...(c.prio === undefined ? {} : { priority: Number(c.prio) }),
        ...(c.policy === undefined ? {} : { policy: text(c.policy) }),
        ruleComments: [],
      });
    } else if (item.rule) {
      const r = item.rule as Json;
      chains.get(String(r.chain))?.ruleComments.push(typeof r.comment === 'string' ? r.comment : undefined);
    }
  }
  return { sets, chains: [...chains.values()] };
}

/**
 * True when the live table is the rendered one: the same sets covering the same addresses,
 * the same base chains, and the same rules in the same order (each rule's comment is a hash
 * of its text, so an edited, added or removed rule shows up).
 */
export function liveMatches(live: LiveTable, model: TableModel): boolean {
  if (live.sets.length !== model.sets.length || live.chains.length !== model.chains.length) return false;
  for (const wanted of model.sets) {
    const found = live.sets.find((s) => s.name === wanted.name);
    if (!found || found.type !== wanted.type || !sameCoverage(found.elements, wanted.elements)) return false;
  }
  for (const wanted of model.chains) {
    const found = live.chains.find((c) => c.name === wanted.name);
    if (!found || found.type !== 'filter' || found.hook !== wanted.hook || found.priority !== wanted.priority || found.policy !== 'accept') return false;
    const comments = wanted.rules.map((rule) => rule.comment);
    if (found.ruleComments.length !== comments.length || found.ruleComments.some((c, i) => c !== comments[i])) return false;
  }
  return true;
}

export function liveSet(live: LiveTable | undefined, name: string): Cidr[] {
  return live?.sets.find((s) => s.name === name)?.elements ?? [];
}

/** A scalar of nft's JSON as text; anything else as its JSON, never "[object Object]". */
function text(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}
