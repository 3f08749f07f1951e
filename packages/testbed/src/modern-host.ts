import { readFile, writeFile, mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { registryPort, removeCgroupEverywhere, startRegistryGateways, waitForSshd } from './docker-host';
import { fingerprintOf } from './sshd';
import { createNetnsHost, type NetnsHost } from './netns';
import { requirePart } from './parts';
import { childrenOf, sh, spawnDaemon, stopPid, tempDir, waitFor } from './proc';

/**
 * Today's server, beside the machine's Docker 20.10: Debian sid's Docker 28.5, Compose 2.40,
 * buildx 0.29 and containerd 2.1 (the rootfs scripts/setup-testbed.sh debootstraps once into
 * MODERN_ROOT), booted as a "server" of its own:
 *   - a network namespace joined to this machine by a veth pair (createNetnsHost);
 *   - its own mount and PID namespaces: an overlay over the cached rootfs (so a start takes
 *     seconds and leaves the cache untouched), pivot_root into it, tini as PID 1 running
 *     containerd, dockerd and sshd from the rootfs — the machine's engine is never used;
 *   - the engines' data on the machine's ext4 (overlay on overlay is no storage driver);
 *   - `imageStore: 'containerd'` turns on the containerd image store (Docker 29's default).
 * Its sshd listens on the namespace's veth address, port 22, for root with a throwaway key.
 */
export const MODERN_ROOT = '/var/cache/skiff-testbed/modern-root';

export interface ModernHost {
  name: string;
  imageStore: 'classic' | 'containerd';
  /** The namespace's veth address: sshd (22) and published ports listen here. */
  address: string;
  ns: NetnsHost;
  /** For sshdActionInputs: root's login to this server. */
  host: string;
  port: number;
  username: string;
  privateKey: string;
  privateKeyPath: string;
  hostFingerprint: string;
  knownHostsLine: string;
  /** What the server's own tools say: `docker version`, `docker compose version`, … */
  versions: { docker: string; compose: string; buildx: string; containerd: string; storageDriver: string };
  /** The server engine's API socket, shared out of the server (for DOCKER_HOST=unix://…). */
  socket: string;
  /** The machine's docker CLI against this server's engine (its API socket, shared out of the server); stdout. */
  docker(args: readonly string[], options?: { timeoutMs?: number }): Promise<string>;
  /** Runs a program inside the server (its filesystem, PID and network namespaces); stdout. */
  exec(args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** Copies an image from the machine's engine into this server's (`docker save | docker load`). */
  loadImage(image: string): Promise<void>;
  stop(): Promise<void>;
}

export interface ModernHostOptions {
  imageStore?: 'classic' | 'containerd';
  /** Registries on this machine's loopback (`127.0.0.1:PORT`) the server pulls from under the same name (see startDockerHost). */
  registries?: readonly string[];
  /** A registry on this machine's loopback the engine asks first for Docker Hub images (`registry-mirrors`), so `postgres:15` pulls with no internet. */
  hubMirror?: string;
}

const INIT = `#!/bin/sh
# PID 1's child in the modern server: containerd, then dockerd on it, then sshd in the foreground.
set -e
mkdir -p /run/sshd /run/containerd /var/log/skiff
containerd --config /etc/containerd/config.toml >/var/log/skiff/containerd.log 2>&1 &
i=0; while [ ! -S /run/containerd/containerd.sock ]; do i=$((i+1)); [ $i -lt 300 ] || exit 1; sleep 0.1; done
dockerd --config-file /etc/docker/daemon.json >/var/log/skiff/dockerd.log 2>&1 &
exec /usr/sbin/sshd -D -f /etc/ssh/skiff_sshd_config -E /var/log/skiff/sshd.log
`;

/** Mounts the server's filesystem and becomes it (run by `unshare --mount --pid --fork`, so as PID 1 of the new namespaces). */
const BOOT = `set -e
root=$1 upper=$2 work=$3 merged=$4 docker_data=$5 containerd_data=$6 shared=$7
mount -t overlay overlay -o "lowerdir=$root,upperdir=$upper,workdir=$work" "$merged"
mount --bind "$docker_data" "$merged/var/lib/docker"
mount --bind "$containerd_data" "$merged/var/lib/containerd"
mount --bind "$shared" "$merged/skiff"
mount -t proc proc "$merged/proc"
mount -t sysfs sysfs "$merged/sys"
mount --rbind /sys/fs/cgroup "$merged/sys/fs/cgroup"
mount --rbind /dev "$merged/dev"
mount -t tmpfs tmpfs "$merged/run"
mount -t tmpfs tmpfs "$merged/tmp"
cd "$merged"
pivot_root . .oldroot
cd /
umount -l /.oldroot
exec tini -s -g -- /skiff-init.sh
`;

export async function startModernHost(name: string, options: ModernHostOptions = {}): Promise<ModernHost> {
  const imageStore = options.imageStore ?? 'classic';
  await requirePart('the modern server rootfs (scripts/setup-testbed.sh)', ['test', '-x', join(MODERN_ROOT, 'usr/sbin/dockerd')]);
  const ports = [...(options.registries ?? []), ...(options.hubMirror ? [options.hubMirror] : [])].map(registryPort);
  const cgroupParent = `skiff-modern-${name}`;
  const ns = await createNetnsHost(name);
  const dir = await tempDir(`${name}-modern`);
  const p = (...parts: string[]) => join(dir.path, ...parts);
  const relays: number[] = [];
  let bootPid: number | undefined;
  let initPid: number | undefined;

  const stop = async () => {
    for (const pid of relays) await stopPid(pid).catch(() => undefined);
    // PID 1 of the server's namespace going takes every process in it along: engines, shims, containers, sshd.
    if (initPid !== undefined) await stopPid(initPid, 5_000).catch(() => undefined);
    if (bootPid !== undefined) await stopPid(bootPid, 5_000).catch(() => undefined);
    await removeCgroupEverywhere(cgroupParent);
    await ns.remove().catch(() => undefined);
    // The engines' data belongs to root inside the server; plain rm works from here.
    await dir.remove().catch(() => undefined);
  };

  try {
    for (const sub of ['upper', 'work', 'merged', 'docker', 'containerd', 'shared', 'keys']) await mkdir(p(sub), { recursive: true });
    const upper = (...parts: string[]) => p('upper', ...parts);
    for (const sub of ['var/lib/docker', 'var/lib/containerd', 'skiff', '.oldroot', 'etc/docker', 'etc/containerd', 'etc/ssh', 'root/.ssh'])
      await mkdir(upper(sub), { recursive: true });
    await chmod(upper('root/.ssh'), 0o700);

    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'skiff-modern-host', '-f', p('keys', 'host_ed25519')]);
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'skiff-modern-user', '-f', p('keys', 'user_key')]);
    // Where a distribution keeps it, so commands from a README (ssh-keygen -lf …) work here as on a real server.
    await writeFile(upper('etc/ssh/ssh_host_ed25519_key'), await readFile(p('keys', 'host_ed25519')), { mode: 0o600 });
    await writeFile(upper('etc/ssh/ssh_host_ed25519_key.pub'), await readFile(p('keys', 'host_ed25519.pub')));
    await writeFile(upper('root/.ssh/authorized_keys'), await readFile(p('keys', 'user_key.pub')), { mode: 0o600 });
    await writeFile(
      upper('etc/ssh/skiff_sshd_config'),
      [
        'Port 22',
        `ListenAddress ${ns.nsAddress}`,
        'HostKey /etc/ssh/ssh_host_ed25519_key',
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'AllowTcpForwarding yes',
        'MaxStartups 100:30:200',
        'MaxSessions 50',
        'PidFile /run/sshd.pid',
        'LogLevel VERBOSE',
        'Subsystem sftp internal-sftp',
        '',
      ].join('\n'),
    );
    await writeFile(
      upper('etc/docker/daemon.json'),
      `${JSON.stringify(
        {
          'data-root': '/var/lib/docker',
          'exec-root': '/run/docker',
          hosts: ['unix:///var/run/docker.sock', 'unix:///skiff/docker.sock'],
          containerd: '/run/containerd/containerd.sock',
          'cgroup-parent': cgroupParent,
          'userland-proxy': false,
          ip6tables: false,
          features: { 'containerd-snapshotter': imageStore === 'containerd' },
          ...(options.hubMirror ? { 'registry-mirrors': [`http://${options.hubMirror}`] } : {}),
        },
        null,
        2,
      )}\n`,
    );
    await writeFile(
      upper('etc/containerd/config.toml'),
      [
        'version = 2',
        'root = "/var/lib/containerd"',
        'state = "/run/containerd"',
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        '  address = "/run/containerd/containerd.sock"',
        '',
      ].join('\n'),
    );
    await writeFile(upper('skiff-init.sh'), INIT, { mode: 0o755 });

    bootPid = spawnDaemon(
      `modern server ${name}`,
      'nsenter',
      [
        `--net=/run/netns/${name}`,
        'unshare',
        '--mount',
        '--pid',
        '--fork',
        '--propagation',
        'private',
        '--kill-child',
        'sh',
        '-c',
        BOOT,
        'boot',
        MODERN_ROOT,
        p('upper'),
        p('work'),
        p('merged'),
        p('docker'),
        p('containerd'),
        p('shared'),
      ],
      { logPath: p('boot.log') },
    );
    const socket = p('shared', 'docker.sock');
    const docker = (args: readonly string[], opts: { timeoutMs?: number } = {}) =>
      sh('docker', ['-H', `unix://${socket}`, ...args], { timeoutMs: opts.timeoutMs ?? 60_000 });
    const serverLog = async () => {
      const logs: string[] = [(await readFile(p('boot.log'), 'utf8').catch(() => '')).trim()];
      for (const file of ['containerd.log', 'dockerd.log', 'sshd.log'])
        logs.push(`${file}: ${(await readFile(p('upper', 'var/log/skiff', file), 'utf8').catch(() => '')).trim().split('\n').slice(-8).join('\n')}`);
      return logs.join('\n');
    };
    try {
      await waitFor(
        `the engine of modern server ${name}`,
        async () => (await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 5_000 }).catch(() => '')).trim() !== '',
        60_000,
        250,
      );
      await waitForSshd(`sshd of modern server ${name}`, ns.nsAddress);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${await serverLog()}`);
    }
    // nsenter execs unshare (bootPid), whose one child is the server's PID 1 (tini).
    initPid = (await childrenOf(bootPid))[0];
    if (initPid === undefined) throw new Error(`test bed: modern server ${name} has no PID 1 under ${bootPid}`);

    const pid1 = initPid;
    const exec = (args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}) =>
      sh('nsenter', ['-t', String(pid1), '-m', '-p', '-n', ...args], opts);
    relays.push(...(await startRegistryGateways(name, ns, ports, dir.path)));
    const hostPublicKey = (await readFile(p('keys', 'host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    const versions = {
      docker: (await docker(['version', '--format', '{{.Server.Version}}'])).trim(),
      compose: (await exec(['docker', 'compose', 'version', '--short'])).trim(),
      buildx: (await exec(['docker', 'buildx', 'version'])).trim(),
      containerd: (await exec(['containerd', '--version'])).trim(),
      storageDriver: (await docker(['info', '--format', '{{.Driver}}'])).trim(),
    };
    return {
      name,
      imageStore,
      address: ns.nsAddress,
      ns,
      host: ns.nsAddress,
      port: 22,
      username: 'root',
      privateKey: await readFile(p('keys', 'user_key'), 'utf8'),
      privateKeyPath: p('keys', 'user_key'),
      hostFingerprint: fingerprintOf(hostPublicKey),
      knownHostsLine: `${ns.nsAddress} ${hostPublicKey}`,
      versions,
      socket,
      docker,
      exec,
      async loadImage(image) {
        await sh('sh', ['-c', 'docker save "$1" | docker -H "unix://$2" load -q >/dev/null', 'sh', image, socket], { timeoutMs: 180_000 });
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
