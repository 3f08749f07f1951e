import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { sh } from './proc';
import { requirePart } from './parts';

export interface NetnsHost {
  name: string;
  /** Address of the host's end of the veth pair (source of host → namespace traffic). */
  hostAddress: string;
  /** Address of the namespace's end: where servers inside it listen. */
  nsAddress: string;
  hostIf: string;
  nsIf: string;
  /** `10.213.N.0/24` */
  subnet: string;
  /** Runs a program inside the namespace; stdout. */
  exec(args: string[]): Promise<string>;
  /** Adds another source address on the host end (e.g. for `curl --interface` allow/deny tests). */
  addHostAddress(addr: string): Promise<void>;
  remove(): Promise<void>;
}

// All test-bed namespaces live here; nothing on these machines routes it anywhere else.
const PREFIX = '10.213';

async function quiet(args: string[]): Promise<string | undefined> {
  return sh('ip', args, { timeoutMs: 15_000 }).catch(() => undefined);
}

async function namespaceExists(name: string): Promise<boolean> {
  const list = (await quiet(['netns', 'list'])) ?? '';
  return list.split('\n').some((line) => line.split(/\s+/)[0] === name);
}

async function linkExists(ifName: string): Promise<boolean> {
  return (await quiet(['link', 'show', 'dev', ifName])) !== undefined;
}

/** Deletes a namespace by name: kills what still runs in it (a crashed run's sshd), then the ns. */
async function deleteNamespace(name: string, hostIf: string): Promise<void> {
  if (await namespaceExists(name)) {
    const pids = ((await quiet(['netns', 'pids', name])) ?? '').split(/\s+/).filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await sh('ip', ['netns', 'del', name]);
  }
  // Deleting the ns destroys its veth end and with it the pair; this covers a half-made pair.
  if (await linkExists(hostIf)) await quiet(['link', 'del', 'dev', hostIf]);
}

/** Third octet used by someone else's interface already? Then the subnet is taken. */
async function octetTaken(octet: number, ownIfs: readonly string[]): Promise<boolean> {
  const out = (await quiet(['-o', '-4', 'addr', 'show'])) ?? '';
  return out.split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    const ifName = fields[1] ?? '';
    const inet = fields[3] ?? '';
    return inet.startsWith(`${PREFIX}.${octet}.`) && !ownIfs.includes(ifName);
  });
}

function parseAddress(addr: string): { ip: string; prefix?: number } {
  const [ip, prefix] = addr.split('/');
  if (!ip || !/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) throw new Error(`test bed: not an IPv4 address: ${addr}`);
  return prefix === undefined ? { ip } : { ip, prefix: Number(prefix) };
}

/**
 * A "remote host" as a network namespace joined to this machine by a veth pair. The /24 and the
 * interface names derive from `name`, so reruns reuse the same addresses and a crashed run's
 * leftovers are found and replaced.
 */
export async function createNetnsHost(name: string): Promise<NetnsHost> {
  await requirePart('iproute2', ['ip', '-V']);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new Error(`test bed: bad namespace name ${JSON.stringify(name)}`);
  const hash = createHash('sha256').update(name).digest('hex');
  // 3 + 8 chars: well under IFNAMSIZ (15) and unique enough across concurrent test files.
  const hostIf = `skh${hash.slice(0, 8)}`;
  const nsIf = `skn${hash.slice(0, 8)}`;

  await deleteNamespace(name, hostIf);

  let octet = (parseInt(hash.slice(8, 12), 16) % 254) + 1;
  for (let tries = 0; await octetTaken(octet, [hostIf]); tries++) {
    if (tries >= 254) throw new Error(`test bed: no free /24 left in ${PREFIX}.0.0/16`);
    octet = (octet % 254) + 1;
  }
  const subnet = `${PREFIX}.${octet}.0/24`;
  const hostAddress = `${PREFIX}.${octet}.1`;
  const nsAddress = `${PREFIX}.${octet}.2`;

  const remove = () => deleteNamespace(name, hostIf);
  try {
    await sh('ip', ['netns', 'add', name]);
    await sh('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    // IPv6 autoconf would only add noise (router solicitations, DAD) on a link tests never use for v6.
    await writeFile(`/proc/sys/net/ipv6/conf/${hostIf}/disable_ipv6`, '1').catch(() => undefined);
    await sh('ip', ['link', 'set', nsIf, 'netns', name]);
    await sh('ip', ['addr', 'add', `${hostAddress}/24`, 'dev', hostIf]);
    await sh('ip', ['link', 'set', hostIf, 'up']);
    await sh('ip', ['-n', name, 'addr', 'add', `${nsAddress}/24`, 'dev', nsIf]);
    await sh('ip', ['-n', name, 'link', 'set', nsIf, 'up']);
    await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (error) {
    await remove().catch(() => undefined);
    throw error;
  }

  const exec = (args: string[]) => sh('ip', ['netns', 'exec', name, ...args]);
  return {
    name,
    hostAddress,
    nsAddress,
    hostIf,
    nsIf,
    subnet,
    exec,
    async addHostAddress(addr: string) {
      const { ip, prefix } = parseAddress(addr);
      const inSubnet = ip.startsWith(`${PREFIX}.${octet}.`);
      await sh('ip', ['addr', 'replace', `${ip}/${prefix ?? (inSubnet ? 24 : 32)}`, 'dev', hostIf]);
      // The namespace only knows its /24; give it a way back to an address outside it.
      if (!inSubnet) await sh('ip', ['-n', name, 'route', 'replace', `${ip}/32`, 'dev', nsIf]);
    },
    remove,
  };
}

export interface PrivateNetwork {
  /** `10.215.N.0/24` */
  subnet: string;
  /** Each host's address on it, by namespace name. */
  addressOf(host: NetnsHost): string;
  remove(): Promise<void>;
}

// Private networks between test hosts live beside the host links (10.213) and the namespaced
// engines' bridges (10.214), and only inside the namespaces they join.
const PRIVATE_PREFIX = '10.215';

/**
 * A cloud's private network (a VPC, Hetzner's or Oracle's private subnet) between two test hosts:
 * a veth pair from one namespace straight into the other, so the two talk without the machine's
 * root namespace routing anything. `.1` is `a`'s address, `.2` is `b`'s.
 */
export async function linkPrivateNetwork(a: NetnsHost, b: NetnsHost): Promise<PrivateNetwork> {
  const hash = createHash('sha256').update(`${a.name}\0${b.name}`).digest('hex');
  const aIf = `skp${hash.slice(0, 8)}`;
  const bIf = `skq${hash.slice(0, 8)}`;
  const octet = (parseInt(hash.slice(8, 12), 16) % 254) + 1;
  const subnet = `${PRIVATE_PREFIX}.${octet}.0/24`;
  const addresses = new Map([
    [a.name, `${PRIVATE_PREFIX}.${octet}.1`],
    [b.name, `${PRIVATE_PREFIX}.${octet}.2`],
  ]);
  // A crashed run's pair goes with its namespaces (each start makes them anew); this covers a rerun on live ones.
  await quiet(['-n', a.name, 'link', 'del', 'dev', aIf]);
  await sh('ip', ['link', 'add', aIf, 'netns', a.name, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
  for (const [host, ifName] of [
    [a, aIf],
    [b, bIf],
  ] as const) {
    await sh('ip', ['-n', host.name, 'addr', 'add', `${addresses.get(host.name)!}/24`, 'dev', ifName]);
    await sh('ip', ['-n', host.name, 'link', 'set', ifName, 'up']);
  }
  return {
    subnet,
    addressOf(host) {
      const address = addresses.get(host.name);
      if (!address) throw new Error(`test bed: ${host.name} is not on the private network ${subnet}`);
      return address;
    },
    remove: async () => void (await quiet(['-n', a.name, 'link', 'del', 'dev', aIf])),
  };
}
