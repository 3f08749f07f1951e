import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { sh } from './proc';
import type { NetnsHost } from './netns';

export interface NetnsIpv6 {
  /** The pair's unique local /64, e.g. `fdd2:b3b9:26f8::/64`; derived from the namespace name. */
  subnet: string;
  /** The /64's first three groups (the fourth is 0), e.g. `fdd2:b3b9:26f8`: append `::1`, `::a00:10`, … */
  prefix: string;
  /** `PREFIX::1` on the host end: the source of host → namespace traffic by default. */
  hostAddress: string;
  /** `PREFIX::2` in the namespace: where its servers listen. */
  nsAddress: string;
  /**
   * Another source address on the host end, inside `subnet`, for `curl -6 --interface` allow/deny
   * tests. `hostAddress` stays the default source of connections to the namespace.
   */
  addHostAddress(addr: string): Promise<void>;
}

/** The eight 16-bit groups of an IPv6 address (no embedded IPv4), as numbers. */
function groups(ip: string): number[] {
  const [head = '', tail] = ip.split('::');
  const part = (text: string) => (text ? text.split(':').map((g) => parseInt(g, 16)) : []);
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  return [...left, ...Array<number>(8 - left.length - right.length).fill(0), ...right];
}

/**
 * Gives a namespace host made by createNetnsHost real IPv6: a unique local (fd00::/8) /64 that
 * exists only on this veth pair, so nothing leaves the machine. createNetnsHost keeps IPv6 off
 * on the host end by default (autoconf noise); this turns it back on for that one link only.
 * Addresses are added with `nodad` so they work at once; the pair's removal takes them along.
 */
export async function enableNetnsIpv6(host: NetnsHost): Promise<NetnsIpv6> {
  const h = createHash('sha256').update(`ipv6:${host.name}`).digest('hex');
  // Written the way `ip` and `nft` print addresses back (no leading zeros, no zero group), so tests can compare text.
  const group = (hex: string) => (parseInt(hex, 16) || 1).toString(16);
  const prefix = `fd${h.slice(0, 2)}:${group(h.slice(2, 6))}:${group(h.slice(6, 10))}`;
  const subnet = `${prefix}::/64`;
  const hostAddress = `${prefix}::1`;
  const nsAddress = `${prefix}::2`;
  const inNs = (args: string[]) => sh('ip', ['netns', 'exec', host.name, ...args]);

  // No router advertisements or autoconf on either end: only the addresses set here exist.
  for (const [key, value] of [
    ['accept_ra', '0'],
    ['autoconf', '0'],
    ['disable_ipv6', '0'],
  ] as const) {
    await writeFile(`/proc/sys/net/ipv6/conf/${host.hostIf}/${key}`, value);
  }
  await inNs([
    'sysctl',
    '-qw',
    'net.ipv6.conf.all.disable_ipv6=0',
    'net.ipv6.conf.lo.disable_ipv6=0',
    `net.ipv6.conf.${host.nsIf}.accept_ra=0`,
    `net.ipv6.conf.${host.nsIf}.autoconf=0`,
    `net.ipv6.conf.${host.nsIf}.disable_ipv6=0`,
  ]);
  await sh('ip', ['-6', 'addr', 'replace', `${hostAddress}/64`, 'dev', host.hostIf, 'nodad']);
  await sh('ip', ['-n', host.name, '-6', 'addr', 'replace', `${nsAddress}/64`, 'dev', host.nsIf, 'nodad']);

  return {
    subnet,
    prefix,
    hostAddress,
    nsAddress,
    async addHostAddress(addr: string) {
      const ip = addr.split('/')[0] ?? '';
      if (!isIPv6(ip) || groups(ip).slice(0, 4).join(':') !== groups(`${prefix}::`).slice(0, 4).join(':'))
        throw new Error(`test bed: ${addr} is not an IPv6 address inside ${subnet}`);
      // Deprecated (preferred_lft 0): still usable as an explicit source (`curl --interface`), never
      // picked by default. Linux caps source selection's longest-prefix rule at the /64, so without
      // this the newest address would become the source of every connection, SSH included.
      await sh('ip', ['-6', 'addr', 'replace', `${ip}/64`, 'dev', host.hostIf, 'nodad', 'preferred_lft', '0']);
    },
  };
}
