import ipaddr from 'ipaddr.js';

export type Family = 'ipv4' | 'ipv6';

export interface Cidr {
  family: Family;
  /** Canonical text: network address (compressed lower-case IPv6) and prefix length, e.g. `2400:cb00::/32`. */
  text: string;
  start: bigint;
  end: bigint;
}

const BITS: Record<Family, number> = { ipv4: 32, ipv6: 128 };

function toBigInt(bytes: readonly number[]): bigint {
  return bytes.reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
}

/**
 * Parses one CIDR strictly: dotted-quad IPv4 or IPv6, a prefix length, and no host bits set
 * (an entry like 1.2.3.4/8 is a typo or a corrupted answer, not something to guess about).
 * A bare address means a single host (/32 or /128). Returns a reason string when it is not valid.
 */
export function parseCidr(text: string, expected?: Family): Cidr | string {
  const value = text.trim();
  const withPrefix = value.includes('/') ? value : `${value}/${value.includes(':') ? 128 : 32}`;
  let family: Family;
  if (ipaddr.IPv4.isValidCIDRFourPartDecimal(withPrefix)) family = 'ipv4';
  else if (!withPrefix.includes('.') && ipaddr.IPv6.isValidCIDR(withPrefix)) family = 'ipv6';
  else return 'not a valid IPv4 or IPv6 CIDR';
  if (expected !== undefined && family !== expected)
    return `an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} range where ${expected === 'ipv4' ? 'IPv4' : 'IPv6'} was expected`;
  const [address, length] = ipaddr.parseCIDR(withPrefix);
  const bits = BITS[family];
  const start = toBigInt(address.toByteArray());
  const hostMask = (1n << BigInt(bits - length)) - 1n;
  if ((start & hostMask) !== 0n) return `host bits set (the network is ${networkText(family, start & ~hostMask, length)})`;
  return { family, text: networkText(family, start, length), start, end: start | hostMask };
}

function networkText(family: Family, start: bigint, length: number): string {
  const bytes: number[] = [];
  for (let i = BITS[family] / 8 - 1; i >= 0; i--) bytes.push(Number((start >> BigInt(i * 8)) & 0xffn));
  const address = ipaddr.fromByteArray(bytes);
  return `${address.toString()}/${length}`;
}

/** Merged, sorted [start, end] intervals: what a `flags interval; auto-merge` set ends up covering. */
export function coverage(cidrs: readonly Pick<Cidr, 'start' | 'end'>[]): Array<[bigint, bigint]> {
  const sorted = [...cidrs].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const merged: Array<[bigint, bigint]> = [];
  for (const { start, end } of sorted) {
    const last = merged.at(-1);
    if (last && start <= last[1] + 1n) last[1] = last[1] > end ? last[1] : end;
    else merged.push([start, end]);
  }
  return merged;
}

export function sameCoverage(a: readonly Pick<Cidr, 'start' | 'end'>[], b: readonly Pick<Cidr, 'start' | 'end'>[]): boolean {
  const x = coverage(a);
  const y = coverage(b);
  return x.length === y.length && x.every(([s, e], i) => s === y[i]![0] && e === y[i]![1]);
}

/** Canonical texts, sorted by address, duplicates dropped. */
export function uniqueSorted(cidrs: readonly Cidr[]): Cidr[] {
  const byText = new Map(cidrs.map((cidr) => [cidr.text, cidr]));
  return [...byText.values()].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : a.end < b.end ? -1 : 1));
}

/** Entries of `a` not in `b`, by canonical text. */
export function minus(a: readonly Cidr[], b: readonly Cidr[]): Cidr[] {
  const inB = new Set(b.map((cidr) => cidr.text));
  return a.filter((cidr) => !inB.has(cidr.text));
}

/** The fewest CIDRs covering exactly [start, end] (nft prints merged intervals that are no prefix as ranges). */
export function rangeToCidrs(family: Family, start: bigint, end: bigint): Cidr[] {
  const bits = BITS[family];
  const out: Cidr[] = [];
  let cursor = start;
  while (cursor <= end) {
    let size = 0;
    while (size < bits && (cursor & ((1n << BigInt(size + 1)) - 1n)) === 0n && cursor + (1n << BigInt(size + 1)) - 1n <= end) size++;
    const last = cursor + (1n << BigInt(size)) - 1n;
    out.push({ family, text: networkText(family, cursor, bits - size), start: cursor, end: last });
    cursor = last + 1n;
  }
  return out;
}

/** Entries of `a` not wholly covered by the addresses of `b`: a diff that auto-merge cannot fool. */
export function notCoveredBy(a: readonly Cidr[], b: readonly Cidr[]): Cidr[] {
  const merged = {
    ipv4: coverage(b.filter((cidr) => cidr.family === 'ipv4')),
    ipv6: coverage(b.filter((cidr) => cidr.family === 'ipv6')),
  };
  return a.filter((cidr) => !merged[cidr.family].some(([start, end]) => cidr.start >= start && cidr.end <= end));
}
