import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, readdir, rm, rmdir, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requirePart } from './parts';
import { sh, spawnDaemon, stopPid } from './proc';

export interface NetnsDocker {
  /** Path of the engine's API socket. */
  socket: string;
  /** The engine's own bridge inside the namespace, e.g. `skd1a2b3c4d`. */
  bridge: string;
  /** Private subnet of that bridge (`10.214.N.0/24`); containers get addresses from it. */
  subnet: string;
  /** Runs the docker CLI against this engine only (`-H unix://SOCKET`); stdout. */
  docker(args: readonly string[], options?: { timeoutMs?: number }): Promise<string>;
  /** Copies an image from the machine's engine into this one (`docker save | docker -H … load`). */
  loadImage(image: string): Promise<void>;
  /** Removes its containers, stops dockerd and its containerd by pid, removes the temp dir. */
  stop(): Promise<void>;
}

// createNetnsHost uses 10.213.0.0/16 for veth pairs; the engines' bridges live beside it and only
// inside their own namespaces, so nothing on the machine's root namespace ever routes to them.
const BRIDGE_PREFIX = '10.214';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const cmdlineOf = (pid: number) =>
  readFile(`/proc/${pid}/cmdline`, 'utf8').then(
    (c) => c.split('\0').join(' '),
    () => '',
  );

async function pidFrom(file: string): Promise<number | undefined> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const pid = Number(text.trim());
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

/** Every pid whose command line mentions `needle`, or whose cgroup path has `/<cgroup>/` in it. */
async function pidsOf(needle: string, cgroup: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const groups = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '');
    if (groups.split('\n').some((line) => line.includes(`/${cgroup}/`) || line.endsWith(`/${cgroup}`)) || (await cmdlineOf(pid)).includes(needle)) {
      found.push(pid);
    }
  }
  return found;
}

/** Cgroup directories made for this engine's containers (v1: one per controller; v2: one). */
async function cgroupDirs(cgroup: string): Promise<string[]> {
  const roots = ['/sys/fs/cgroup', ...(await readdir('/sys/fs/cgroup').catch(() => [] as string[])).map((c) => join('/sys/fs/cgroup', c))];
  // The relative --cgroup-parent puts them under the daemon's own cgroup, which it inherited from
  // this process: the root in most hierarchies, but not all (e.g. memory:/process_api/…).
  const own = new Set([
    '/',
    ...(await readFile('/proc/self/cgroup', 'utf8').catch(() => ''))
      .split('\n')
      .map((line) => line.split(':').slice(2).join(':'))
      .filter((path) => path.startsWith('/')),
  ]);
  const dirs: string[] = [];
  for (const top of roots.flatMap((root) => [...own].map((path) => join(root, path, cgroup)))) {
    const children = await readdir(top, { withFileTypes: true }).catch(() => undefined);
    if (children === undefined) continue;
    for (const child of children) if (child.isDirectory()) dirs.push(join(top, child.name));
    dirs.push(top);
  }
  return dirs;
}

/**
 * Removes whatever an engine with this directory left behind: its containers' processes, the shims,
 * containerd and dockerd (each checked to belong to THIS engine before it is killed), the overlay and
 * netns mounts under the directory, the directory itself and the containers' cgroups. Safe when
 * nothing is left.
 */
async function sweep(dir: string, cgroup: string): Promise<void> {
  for (const pid of await pidsOf(`${dir}/`, cgroup)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) await sh('umount', ['-l', point]).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  // Cgroup directories go with rmdir once empty (their files are not real files).
  for (const d of await cgroupDirs(cgroup)) await rmdir(d).catch(() => undefined);
}

function pipeImage(image: string, socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const save = spawn('docker', ['save', image], { stdio: ['ignore', 'pipe', 'pipe'] });
    const load = spawn('docker', ['-H', `unix://${socket}`, 'load', '-q'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    save.stderr.on('data', (d: Buffer) => (err += d.toString()));
    load.stderr.on('data', (d: Buffer) => (err += d.toString()));
    save.stdout.pipe(load.stdin);
    const timer = setTimeout(() => {
      save.kill('SIGKILL');
      load.kill('SIGKILL');
    }, 120_000);
    let saveCode: number | null | undefined;
    save.on('close', (code) => (saveCode = code));
    save.on('error', reject);
    load.on('error', reject);
    load.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0 && saveCode !== 1) resolve();
      else reject(new Error(`test bed: copying ${image} into the netns engine failed (save ${saveCode}, load ${code}): ${err.trim()}`));
    });
  });
}

/**
 * A second, throwaway Docker engine whose network namespace is `ns` (a createNetnsHost host): its
 * bridge, its published ports and the DNAT/filter rules it writes with iptables exist only there,
 * never in the machine's root namespace, and the machine's own engine is not touched (except to
 * read an image in loadImage). The directory, bridge name, subnet and cgroup derive from `ns`, so a
 * crashed run's engine with the same name is found and replaced.
 */
export interface NetnsDockerOptions {
  /**
   * Cgroup v1 directories (one per controller, e.g. `/sys/fs/cgroup/cpu/skiff-x`) that dockerd is
   * started in, before it runs: containerd, the shims and the containers inherit them (the
   * containers' `--cgroup-parent` is relative, i.e. created under the daemon's own cgroup).
   */
  cgroups?: readonly string[];
}

export async function startNetnsDocker(ns: string | { name: string }, options: NetnsDockerOptions = {}): Promise<NetnsDocker> {
  const name = typeof ns === 'string' ? ns : ns.name;
  if (!/^[A-Za-z0-9_.-]{1,40}$/.test(name)) throw new Error(`test bed: bad namespace name for a netns engine ${JSON.stringify(name)}`);
  await requirePart('dockerd (docker.io)', ['dockerd', '--version']);
  await requirePart('docker CLI', ['docker', '--version']);
  await requirePart('nsenter (util-linux)', ['nsenter', '--version']);
  const nsPath = `/run/netns/${name}`;
  await readFile(nsPath).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') throw new Error(`test bed: network namespace ${name} does not exist (create it with createNetnsHost first)`);
  });

  const hash = createHash('sha256').update(name).digest('hex');
  const bridge = `skd${hash.slice(0, 8)}`;
  const octet = (parseInt(hash.slice(8, 12), 16) % 254) + 1;
  const subnet = `${BRIDGE_PREFIX}.${octet}.0/24`;
  const cgroup = `skiff-netns-docker-${name}`;
  // Fixed, short path: unix sockets under it (containerd's ttrpc one is the longest) must stay under 108 bytes.
  const dir = join(tmpdir(), `skiff-nsd-${name}`);
  const socket = join(dir, 'docker.sock');
  const execRoot = join(dir, 'exec');
  const pidfile = join(dir, 'dockerd.pid');
  const log = join(dir, 'dockerd.log');

  await sweep(dir, cgroup);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // An empty config: never inherit the machine's /etc/docker/daemon.json.
  await writeFile(join(dir, 'daemon.json'), '{}\n');

  // Our own bridge rather than docker0, so its name in the namespace's rules says whose it is.
  const ipn = (args: string[]) => sh('ip', ['-n', name, ...args]);
  await ipn(['link', 'del', bridge]).catch(() => undefined);
  await ipn(['link', 'add', bridge, 'type', 'bridge']);
  await ipn(['addr', 'add', `${BRIDGE_PREFIX}.${octet}.1/24`, 'dev', bridge]);
  await ipn(['link', 'set', bridge, 'up']);

  // nsenter --net, not `ip netns exec`: the latter also gives the process a private mount namespace
  // with /sys remounted, where the cgroup hierarchies are missing and dockerd refuses to start
  // ("Devices cgroup isn't mounted"). nsenter execs dockerd, so the pid is dockerd's own; so does
  // the shell that first joins the cgroups (moving dockerd later would leave containerd behind).
  const joinCgroups = options.cgroups?.length
    ? ['sh', '-c', 'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; done; shift; exec "$@"', 'sh', ...options.cgroups, '--']
    : [];
  const [file, ...args] = [...joinCgroups, 'nsenter'];
  const pid = spawnDaemon(
    'netns dockerd',
    file,
    [
      ...args,
      `--net=${nsPath}`,
      'dockerd',
      '--config-file',
      join(dir, 'daemon.json'),
      '--data-root',
      join(dir, 'data'),
      '--exec-root',
      execRoot,
      '--pidfile',
      pidfile,
      '--host',
      `unix://${socket}`,
      '--bridge',
      bridge,
      '--iptables=true',
      '--ip6tables=false',
      // Published ports by DNAT only, as on servers that turn the proxy off: no docker-proxy
      // listener that an input-hook rule would see.
      '--userland-proxy=false',
      '--cgroup-parent',
      cgroup,
    ],
    { logPath: log },
  );

  const docker = (args: readonly string[], options: { timeoutMs?: number } = {}) =>
    sh('docker', ['-H', `unix://${socket}`, ...args], { timeoutMs: options.timeoutMs ?? 60_000 });

  const stop = async () => {
    const ids = (await docker(['ps', '-aq'], { timeoutMs: 15_000 }).catch(() => '')).split('\n').filter(Boolean);
    if (ids.length > 0) await docker(['rm', '-f', ...ids], { timeoutMs: 30_000 }).catch(() => undefined);
    const containerd = await pidFrom(join(execRoot, 'containerd', 'containerd.pid'));
    if (alive(pid)) await stopPid(pid, 15_000);
    if (containerd !== undefined && alive(containerd) && (await cmdlineOf(containerd)).includes(`${dir}/`)) await stopPid(containerd, 5_000);
    await sweep(dir, cgroup);
    await ipn(['link', 'del', bridge]).catch(() => undefined);
  };

  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const version = await docker(['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 5_000 }).catch(() => '');
      if (version.trim() !== '') break;
      if (!alive(pid) || Date.now() > deadline) {
        const tail = (await readFile(log, 'utf8').catch(() => '')).trim().split('\n').slice(-15).join('\n');
        const what = alive(pid) ? 'did not answer within 60 s' : 'exited';
        throw new Error(`test bed: dockerd in netns ${name} ${what}; the end of its log:\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }

  return { socket, bridge, subnet, docker, loadImage: (image) => pipeImage(image, socket), stop };
}
