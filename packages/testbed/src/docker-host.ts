import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNetnsHost, type NetnsHost } from './netns';
import { startNetnsDocker, type NetnsDocker } from './netns-docker';
import { sh, spawnDaemon, stopPid, tempDir, waitFor } from './proc';
import { startSshd, type SshdServer } from './sshd';

/**
 * A "server" of its own: a network namespace joined to this machine by a veth pair
 * (createNetnsHost), a Docker engine inside it (startNetnsDocker) and an sshd on its veth address,
 * port 22, whose sessions have DOCKER_HOST pointing at that engine (sshd's SetEnv). A deploy's
 * `docker …` over SSH drives this engine and nothing else, as on a real host; several of them do
 * not share one engine's locks, networks or iptables.
 */
export interface DockerHost {
  name: string;
  /** Where the sshd (port 22) and the engine's published ports listen: the namespace's veth address. */
  address: string;
  sshd: SshdServer;
  ns: NetnsHost;
  engine: NetnsDocker;
  /** The docker CLI against this host's engine; stdout. */
  docker(args: readonly string[], options?: { timeoutMs?: number }): Promise<string>;
  /** The host's CPU budget, when started with `cpuQuota`. */
  cpu?: HostCpu;
  /** Stops the sshd, the registry gateways, the engine (and its containers), removes the cgroups and the namespace. */
  stop(): Promise<void>;
}

/**
 * A host's own cgroups (v1): `cpu` holds the CFS quota, `cpuacct` counts the CPU time used. The
 * engine (so containerd, the shims and the containers) and the sshd (so every session's bash,
 * docker and compose) are in both; the registry gateways are not (they stand for the network).
 */
export interface HostCpu {
  /** `/sys/fs/cgroup/cpu/skiff-NAME` and `/sys/fs/cgroup/cpuacct/skiff-NAME`. */
  groups: { cpu: string; cpuacct: string };
  /** Sets the budget in cores (0.3: 30 ms of CPU time per 100 ms period, on any cores), or lifts it (`undefined`). */
  setQuota(cores: number | undefined): Promise<void>;
  /** Counters since the host started. */
  stats(): Promise<HostCpuStats>;
}

export interface HostCpuStats {
  /** CPU time used by everything in the host's cgroups (cpuacct.usage). */
  usageSeconds: number;
  /** CFS periods in which the host ran, and those in which it hit its quota and had to wait (cpu.stat). */
  periods: number;
  throttledPeriods: number;
  /** Time its runnable processes spent waiting for the next period. */
  throttledSeconds: number;
}

export interface DockerHostOptions {
  /** More variables for every SSH session, beside DOCKER_HOST (sshd's SetEnv). */
  env?: Readonly<Record<string, string>>;
  /**
   * Registries on this machine's loopback (`127.0.0.1:PORT`, e.g. startRegistry's) that the host's
   * engine pulls from under the same name. A gateway inside the namespace listens on its own
   * 127.0.0.1:PORT (loopback, so the engine allows it without TLS, as it does for the machine's
   * engine) and forwards across the veth pair to a gateway on the machine's end of the pair, which
   * forwards to the registry: every pull crosses the host's network link, and `docker login` on
   * this machine covers the host's sessions too (same root user, same ~/.docker/config.json).
   */
  registries?: readonly string[];
  /**
   * A fixed CPU budget in cores for the host (e.g. 0.3, like a small VPS's fractional vCPU), so
   * several hosts on this machine do not compete for its cores as if they were one server's.
   * Needs cgroup v1's cpu and cpuacct controllers (`/sys/fs/cgroup/cpu`, `/sys/fs/cgroup/cpuacct`).
   * Without it the host shares the machine's CPU like any other process.
   */
  cpuQuota?: number;
}

const CGROUPS = '/sys/fs/cgroup';
const CFS_PERIOD_US = 100_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Kills whatever is left in a cgroup directory and its children (all of it this host's), then removes them, deepest first. */
/** Removes a cgroup of that name (and what is under it) from every hierarchy of this machine. */
export async function removeCgroupEverywhere(cgroup: string): Promise<void> {
  for (const controller of await readdir('/sys/fs/cgroup').catch(() => [] as string[]))
    await removeCgroupTree(join('/sys/fs/cgroup', controller, cgroup)).catch(() => undefined);
}

export async function removeCgroupTree(dir: string): Promise<void> {
  const children = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (children === undefined) return;
  for (const child of children) if (child.isDirectory()) await removeCgroupTree(join(dir, child.name));
  // A killed process leaves its cgroup a moment after the signal: rmdir says EBUSY until then.
  for (let attempt = 0; ; attempt++) {
    const pids = (await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    try {
      await rmdir(dir);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      if (attempt >= 50) throw new Error(`test bed: cannot remove cgroup ${dir}: ${(error as Error).message}`);
      await sleep(100);
    }
  }
}

async function createHostCpu(name: string, cores: number): Promise<HostCpu> {
  if (!Number.isFinite(cores) || cores < 0.01) throw new Error(`test bed: cpuQuota must be a number of cores ≥ 0.01, not ${cores}`);
  for (const file of ['cpu/cpu.cfs_quota_us', 'cpuacct/cpuacct.usage']) {
    await readFile(join(CGROUPS, file)).catch(() => {
      throw new Error(`test bed: cpuQuota needs cgroup v1's cpu and cpuacct controllers, and ${join(CGROUPS, file)} is missing`);
    });
  }
  const groups = { cpu: join(CGROUPS, 'cpu', `skiff-${name}`), cpuacct: join(CGROUPS, 'cpuacct', `skiff-${name}`) };
  const setQuota = async (quota: number | undefined) => {
    await writeFile(join(groups.cpu, 'cpu.cfs_period_us'), String(CFS_PERIOD_US));
    await writeFile(join(groups.cpu, 'cpu.cfs_quota_us'), quota === undefined ? '-1' : String(Math.round(quota * CFS_PERIOD_US)));
  };
  try {
    // A crashed run's groups (and anything still in them) go first, so counters start at zero.
    for (const dir of Object.values(groups)) {
      await removeCgroupTree(dir);
      await mkdir(dir);
    }
    await setQuota(cores);
  } catch (error) {
    for (const dir of Object.values(groups)) await removeCgroupTree(dir).catch(() => undefined);
    throw error;
  }
  return {
    groups,
    setQuota,
    async stats() {
      const stat = Object.fromEntries(
        (await readFile(join(groups.cpu, 'cpu.stat'), 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((line) => line.split(' ') as [string, string]),
      );
      const usage = Number((await readFile(join(groups.cpuacct, 'cpuacct.usage'), 'utf8')).trim());
      return {
        usageSeconds: usage / 1e9,
        periods: Number(stat.nr_periods ?? 0),
        throttledPeriods: Number(stat.nr_throttled ?? 0),
        throttledSeconds: Number(stat.throttled_time ?? 0) / 1e9,
      };
    },
  };
}

// A TCP relay in a few lines of Node (no socat on a fresh test bed): LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT.
const RELAY = [
  "const net = require('node:net');",
  'const [lh, lp, th, tp] = process.argv.slice(-4);',
  'const server = net.createServer((client) => {',
  '  const upstream = net.connect(Number(tp), th);',
  '  const end = () => { client.destroy(); upstream.destroy(); };',
  "  for (const s of [client, upstream]) { s.on('error', end); s.on('close', end); }",
  '  client.pipe(upstream); upstream.pipe(client);',
  '});',
  "server.listen(Number(lp), lh, () => console.log('relay listening'));",
].join('\n');

export async function startRelay(
  what: string,
  prefix: readonly string[],
  listen: [string, number],
  target: [string, number],
  dir: string,
  log: string,
): Promise<number> {
  const [file, ...args] = [...prefix, process.execPath, '-e', RELAY, listen[0], String(listen[1]), target[0], String(target[1])];
  const pid = spawnDaemon(what, file, args, { logPath: join(dir, log) });
  try {
    await waitFor(`${what} on ${listen[0]}:${listen[1]}`, async () => (await readFile(join(dir, log), 'utf8')).includes('relay listening'), 15_000, 50);
  } catch (error) {
    await stopPid(pid);
    const tail = await readFile(join(dir, log), 'utf8').catch(() => '');
    throw new Error(`${(error as Error).message}\n${tail}`);
  }
  return pid;
}

/**
 * A namespace host reaches each registry on this machine's loopback under its own name
 * (`127.0.0.1:PORT`): one relay from the host side of the veth to 127.0.0.1:PORT here, and one
 * inside the namespace from 127.0.0.1:PORT to the host side. Returns the relays' pids.
 */
export async function startRegistryGateways(name: string, ns: NetnsHost, ports: readonly number[], dir: string): Promise<number[]> {
  const relays: number[] = [];
  for (const port of ports) {
    relays.push(await startRelay(`registry gateway for ${name}`, [], [ns.hostAddress, port], ['127.0.0.1', port], dir, `relay-host-${port}.log`));
    relays.push(
      await startRelay(
        `registry gateway in ${name}`,
        ['nsenter', `--net=/run/netns/${name}`],
        ['127.0.0.1', port],
        [ns.hostAddress, port],
        dir,
        `relay-ns-${port}.log`,
      ),
    );
  }
  return relays;
}

/** Waits until an sshd on `address`:22 offers its ed25519 host key. */
export async function waitForSshd(what: string, address: string): Promise<void> {
  await waitFor(
    what,
    async () => (await sh('ssh-keyscan', ['-T', '1', '-t', 'ed25519', '-p', '22', address]).catch(() => '')).includes('ssh-ed25519'),
    30_000,
    200,
  );
}

export function registryPort(registry: string): number {
  const match = /^127\.0\.0\.1:(\d{1,5})$/.exec(registry);
  if (!match) throw new Error(`test bed: a docker host reaches registries on 127.0.0.1:PORT only, not ${JSON.stringify(registry)}`);
  return Number(match[1]);
}

/** Starts a namespace host with its own engine and sshd; `name` names the namespace (≤ 40 characters; reruns replace a crashed run's leftovers). */
export async function startDockerHost(name: string, options: DockerHostOptions = {}): Promise<DockerHost> {
  const ports = (options.registries ?? []).map(registryPort);
  const ns = await createNetnsHost(name);
  let dir: { path: string; remove(): Promise<void> } | undefined;
  let cpu: HostCpu | undefined;
  let engine: NetnsDocker | undefined;
  let sshd: SshdServer | undefined;
  const relays: number[] = [];
  const stop = async () => {
    await sshd?.stop().catch(() => undefined);
    await engine?.stop().catch(() => undefined);
    for (const pid of relays) await stopPid(pid).catch(() => undefined);
    // After the engine: its containers' cgroups (created inside the host's, see NetnsDockerOptions) are gone or empty by now.
    if (cpu) for (const group of Object.values(cpu.groups)) await removeCgroupTree(group).catch(() => undefined);
    await ns.remove().catch(() => undefined);
    await dir?.remove();
  };
  try {
    dir = await tempDir(`${name}-host`);
    if (options.cpuQuota !== undefined) cpu = await createHostCpu(name, options.cpuQuota);
    engine = await startNetnsDocker(ns, cpu ? { cgroups: Object.values(cpu.groups) } : {});
    relays.push(...(await startRegistryGateways(name, ns, ports, dir.path)));
    sshd = await startSshd({ netns: name, listenAddress: ns.nsAddress, env: { DOCKER_HOST: `unix://${engine.socket}`, ...options.env } });
    if (cpu) {
      // The listening sshd joins now, while no session is open: every session it forks from here on inherits the groups.
      const pid = (await readFile(join(sshd.dir, 'sshd.pid'), 'utf8')).trim();
      for (const group of Object.values(cpu.groups)) await writeFile(join(group, 'cgroup.procs'), pid);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const own = engine;
  return {
    name,
    address: ns.nsAddress,
    sshd,
    ns,
    engine: own,
    docker: (args, opts) => own.docker(args, opts),
    ...(cpu ? { cpu } : {}),
    stop,
  };
}
