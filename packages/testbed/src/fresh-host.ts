import { createReadStream } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { registryPort, removeCgroupEverywhere, startRegistryGateways, waitForSshd } from './docker-host';
import { createNetnsHost, type NetnsHost } from './netns';
import { requirePart } from './parts';
import { childrenOf, sh, spawnDaemon, stopPid, tempDir, waitFor } from './proc';
import { fingerprintOf, type SshdServer } from './sshd';

/**
 * A new VPS before anyone touched it: Debian 12 or 13, Ubuntu 22.04 or 24.04 with systemd as PID 1, sshd, sudo
 * and apt, and no Docker (rootfs scripts/setup-testbed.sh debootstraps once: FRESH_SERVERS). Booted like
 * the modern server — its own network, mount, PID and UTS namespaces — but with systemd as
 * init, so `systemctl enable --now docker`, timers and `sshd` reloads behave as on a real server,
 * and the root filesystem is a full copy on this machine's ext4 (not an overlay), so a swap
 * file on it can really be switched on. Its apt reads only a local repository of that
 * distribution's packages.
 *
 * The kernel is this machine's: swap switched on inside is this machine's swap until `stop()`
 * switches it off, and cgroups are this machine's, so the server's systemd is started inside a
 * cgroup of its own (`skiff-fresh-NAME` in every hierarchy), which it takes as its root.
 */
export const FRESH_SERVERS = {
  'debian-12': { root: '/var/cache/skiff-testbed/fresh-bookworm-root', apt: '/var/cache/skiff-testbed/apt-fresh-bookworm' },
  'debian-13': { root: '/var/cache/skiff-testbed/fresh-trixie-root', apt: '/var/cache/skiff-testbed/apt-trixie' },
  'ubuntu-22.04': { root: '/var/cache/skiff-testbed/fresh-jammy-root', apt: '/var/cache/skiff-testbed/apt-jammy' },
  'ubuntu-24.04': { root: '/var/cache/skiff-testbed/fresh-noble-root', apt: '/var/cache/skiff-testbed/apt-noble' },
} as const;
export type FreshDistribution = keyof typeof FRESH_SERVERS;

/** An SshdServer where it matters, so `sshdActionInputs(host)` and `sshdConnectOptions(host)` log in as root. */
export interface FreshHost extends Pick<
  SshdServer,
  'host' | 'port' | 'username' | 'privateKey' | 'privateKeyPath' | 'hostPublicKey' | 'hostFingerprint' | 'knownHostsLine'
> {
  name: string;
  /** The namespace's veth address: sshd (22) and published ports listen here. */
  address: string;
  ns: NetnsHost;
  /** Runs a program inside the server (its filesystem, PID, network and UTS namespaces); stdout. */
  exec(args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<string>;
  stop(): Promise<void>;
}

export interface FreshHostOptions {
  /** Which new server (default debian-13). */
  distribution?: FreshDistribution;
  /** Registries on this machine's loopback (`127.0.0.1:PORT`) the server reaches under the same name. */
  registries?: readonly string[];
}

/**
 * Runs as PID 1 of the new namespaces: joins the server's own cgroup, then a cgroup namespace
 * rooted there (STAGE2), so systemd and the engine it starts see that cgroup as the root of
 * every hierarchy — their paths (runc's /system.slice/docker-ID.scope, /docker/ID) land inside it.
 */
const BOOT = `set -e
cgroup=$3
for hierarchy in /sys/fs/cgroup/*/; do
  [ -f "$hierarchy/cgroup.procs" ] || continue
  mkdir -p "$hierarchy$cgroup"
  # A new cpuset cgroup has no CPUs or memory nodes: nothing can join it until it has its parent's.
  if [ -f "$hierarchy/cpuset.cpus" ]; then
    cat "$hierarchy/cpuset.cpus" >"$hierarchy$cgroup/cpuset.cpus"
    cat "$hierarchy/cpuset.mems" >"$hierarchy$cgroup/cpuset.mems"
  fi
  echo 0 >"$hierarchy$cgroup/cgroup.procs"
done
exec unshare --cgroup sh -c "$STAGE2" stage2 "$@"
`;

const STAGE2 = `set -e
root=$1 apt=$2 name=$4
hostname "$name"
mount --bind "$root" "$root"
mount --bind -o ro "$apt" "$root/srv/skiff-apt"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
# The hierarchies mounted anew inside the cgroup namespace: their root is the server's cgroup.
mount -t tmpfs -o mode=0755 cgroup "$root/sys/fs/cgroup"
grep -E '^[^ ]+ /sys/fs/cgroup/[^ ]+ cgroup2? ' /proc/self/mounts | while read -r _ dir type options _; do
  sub=\${dir#/sys/fs/cgroup/}
  mkdir -p "$root/sys/fs/cgroup/$sub"
  if [ "$type" = cgroup2 ]; then mount -t cgroup2 cgroup2 "$root/sys/fs/cgroup/$sub"
  else mount -t cgroup -o "$(printf '%s' "$options" | tr , '\\n' | grep -vxE 'rw|ro|relatime|nosuid|nodev|noexec' | paste -sd, -)" cgroup "$root/sys/fs/cgroup/$sub"; fi
done
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
cd "$root"
mkdir -p .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
unset STAGE2
export container=skiff
# systemd 257 boots on cgroup v1 (all this kernel offers) only when told to; in a container it
# reads these from its own command line.
exec /sbin/init systemd.unified_cgroup_hierarchy=0 SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1
`;

/**
 * Switches off a swap file a server of this name switched on (this machine's kernel is the
 * server's, and /proc/swaps names the file only by its path inside the server), and removes
 * what a crashed run of it left in the temp directory (an active swap file cannot be deleted).
 */
async function swapOffLeftovers(name: string): Promise<void> {
  const prefix = `skiff-${name}-fresh-`;
  for (const entry of await readdir(tmpdir()).catch(() => [] as string[])) {
    if (!entry.startsWith(prefix)) continue;
    const swapfile = join(tmpdir(), entry, 'root', 'swapfile');
    await sh('swapoff', [swapfile]).catch(() => undefined);
    await rm(join(tmpdir(), entry), { recursive: true, force: true }).catch(() => undefined);
  }
}

export async function startFreshHost(name: string, options: FreshHostOptions = {}): Promise<FreshHost> {
  const distribution = options.distribution ?? 'debian-13';
  const { root: rootfs, apt } = FRESH_SERVERS[distribution];
  await requirePart(`the fresh ${distribution} server's rootfs (scripts/setup-testbed.sh)`, ['test', '-x', join(rootfs, 'usr/sbin/sshd')]);
  await requirePart(`the fresh ${distribution} server's apt repository (scripts/setup-testbed.sh)`, ['test', '-s', join(apt, 'Packages')]);
  const ports = (options.registries ?? []).map(registryPort);
  const cgroup = `skiff-fresh-${name}`;
  // A crashed run's server of this name: its processes, swap and cgroups go first.
  await removeCgroupEverywhere(cgroup);
  await swapOffLeftovers(name);
  const ns = await createNetnsHost(name);
  const dir = await tempDir(`${name}-fresh`);
  const p = (...parts: string[]) => join(dir.path, ...parts);
  const root = (...parts: string[]) => p('root', ...parts);
  const relays: number[] = [];
  let bootPid: number | undefined;
  let initPid: number | undefined;

  const stop = async () => {
    for (const pid of relays) await stopPid(pid).catch(() => undefined);
    if (initPid !== undefined) await stopPid(initPid, 5_000).catch(() => undefined);
    if (bootPid !== undefined) await stopPid(bootPid, 5_000).catch(() => undefined);
    await sh('swapoff', [root('swapfile')]).catch(() => undefined);
    await removeCgroupEverywhere(cgroup);
    await ns.remove().catch(() => undefined);
    await dir.remove().catch(() => undefined);
  };

  try {
    // A full copy, not an overlay: the kernel refuses swap files on overlayfs.
    await sh('cp', ['-a', rootfs, root()], { timeoutMs: 120_000 });
    await mkdir(p('keys'));
    await sh('ssh-keygen', ['-A', '-f', root()]);
    await writeFile(root('etc/hostname'), `${name}\n`);
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'skiff-fresh-root', '-f', p('keys', 'root_key')]);
    await mkdir(root('root/.ssh'), { recursive: true });
    await chmod(root('root/.ssh'), 0o700);
    await writeFile(root('root/.ssh/authorized_keys'), await readFile(p('keys', 'root_key.pub')), { mode: 0o600 });

    bootPid = spawnDaemon(
      `fresh server ${name}`,
      'nsenter',
      [
        `--net=/run/netns/${name}`,
        'unshare',
        '--mount',
        '--pid',
        '--uts',
        '--fork',
        '--propagation',
        'private',
        '--kill-child',
        'sh',
        '-c',
        BOOT,
        'boot',
        root(),
        apt,
        cgroup,
        name,
      ],
      { logPath: p('boot.log'), env: { ...process.env, STAGE2 } },
    );
    const boot = bootPid;
    let pid1 = 0;
    const exec = (args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}) =>
      sh('nsenter', ['-t', String(pid1), '-m', '-p', '-n', '-u', ...args], { timeoutMs: 120_000, ...opts });
    try {
      await waitFor(`PID 1 of fresh server ${name}`, async () => (await childrenOf(boot)).length > 0, 10_000, 50);
      pid1 = initPid = (await childrenOf(boot))[0]!;
      await waitFor(
        `systemd of fresh server ${name}`,
        async () => /^(running|degraded)$/.test((await exec(['systemctl', 'is-system-running'], { timeoutMs: 5_000 }).catch((e: Error) => e.message)).trim()),
        60_000,
        200,
      );
      await waitForSshd(`sshd of fresh server ${name}`, ns.nsAddress);
    } catch (error) {
      const failed = await exec(['systemctl', '--failed', '--no-legend', '--plain']).catch(() => '');
      const bootLog = await readFile(p('boot.log'), 'utf8').catch(() => '');
      throw new Error(`${(error as Error).message}\nboot: ${bootLog.trim()}\nfailed units: ${failed.trim()}`);
    }
    relays.push(...(await startRegistryGateways(name, ns, ports, dir.path)));
    const hostPublicKey = (await readFile(root('etc/ssh/ssh_host_ed25519_key.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    return {
      name,
      address: ns.nsAddress,
      ns,
      host: ns.nsAddress,
      port: 22,
      username: 'root',
      privateKey: await readFile(p('keys', 'root_key'), 'utf8'),
      privateKeyPath: p('keys', 'root_key'),
      hostPublicKey,
      hostFingerprint: fingerprintOf(hostPublicKey),
      knownHostsLine: `${ns.nsAddress} ${hostPublicKey}`,
      exec,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The stand-in for Docker's apt repository that scripts/setup-testbed.sh builds for Debian 12 and Ubuntu 24.04 (download.docker.com is out of reach here). */
export const DOCKER_REPOSITORY_STANDIN = '/var/cache/skiff-testbed/docker-repository-standin';

export interface DockerRepositoryStandin {
  /** What `docker-repository` takes: the repository without the distribution (`…/linux`). */
  url: string;
  /** The fingerprint of the key that signs it (not Docker's). */
  fingerprint: string;
  /** Every path asked for, in order. */
  requests: string[];
  /** Paths answered 404 while set, as a mirror missing a distribution's lists would. */
  missing?: RegExp;
  stop(): Promise<void>;
}

/**
 * Serves the stand-in over plain HTTP on the host's end of a fresh server's veth, as
 * download.docker.com serves the real one (same paths), so the server's curl and apt fetch its
 * key, signed lists and packages for real.
 */
export async function serveDockerRepositoryStandin(host: Pick<FreshHost, 'ns'>): Promise<DockerRepositoryStandin> {
  await requirePart("the stand-in for Docker's apt repository (scripts/setup-testbed.sh)", ['test', '-s', join(DOCKER_REPOSITORY_STANDIN, 'fingerprint')]);
  const fingerprint = (await readFile(join(DOCKER_REPOSITORY_STANDIN, 'fingerprint'), 'utf8')).trim();
  const requests: string[] = [];
  const standin: DockerRepositoryStandin = {
    url: '',
    fingerprint,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://standin').pathname);
    requests.push(path);
    const file = normalize(join(DOCKER_REPOSITORY_STANDIN, path));
    if (!file.startsWith(`${DOCKER_REPOSITORY_STANDIN}/linux/`) || request.method !== 'GET' || standin.missing?.test(path)) {
      response.writeHead(404).end();
      return;
    }
    stat(file).then(
      (info) => {
        if (!info.isFile()) {
          response.writeHead(404).end();
          return;
        }
        response.writeHead(200, { 'content-length': info.size, 'content-type': 'application/octet-stream' });
        createReadStream(file).pipe(response);
      },
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host.ns.hostAddress, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  standin.url = `http://${host.ns.hostAddress}:${port}/linux`;
  return standin;
}
