import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDocker } from './docker';
import { requirePart } from './parts';
import { sh, tempDir, waitFor } from './proc';
import { fingerprintOf, type SshdServer } from './sshd';

// Built by scripts/setup-testbed.sh (debootstrap: systemd, systemd-sysv, dbus, openssh-server,
// nftables, iproute2, python3, curl, sudo; CMD /sbin/init). Must match the script.
export const SYSTEMD_IMAGE = 'skiff-testbed/systemd:bookworm';

export interface SystemdHostOptions {
  /** Suffix of the container name (`skiffsys-NAME`); a leftover container of that name is replaced. */
  name: string;
  /** More container ports to publish on 127.0.0.1 (e.g. 80 for a web app); see `ports`. */
  publish?: readonly number[];
  /** Seconds to wait for systemd to finish booting (default 60). */
  bootTimeoutSeconds?: number;
  /** Install git (the image has none): this machine's own Debian git package files, copied in (see copyGit). */
  git?: boolean;
  /**
   * Point the host's apt at the local repository scripts/setup-testbed.sh downloads once
   * (APT_REPOSITORY: python3-venv, sqlite3), and at nothing else: `apt-get install` of those runs
   * for real, with no traffic beyond this machine.
   */
  localApt?: boolean;
}

export const APT_REPOSITORY = '/var/cache/skiff-testbed/apt-bookworm';

/**
 * A separate "VPS" running real systemd (PID 1) and sshd, reached over a 127.0.0.1 port.
 * An SshdServer where it matters, so `sshdConnectOptions(host)` logs in to it.
 */
export interface SystemdHost extends Pick<
  SshdServer,
  'host' | 'port' | 'username' | 'privateKey' | 'privateKeyPath' | 'hostPublicKey' | 'hostFingerprint' | 'knownHostsLine'
> {
  containerId: string;
  containerName: string;
  /** The container's own address on Docker's bridge. */
  containerAddress: string;
  /**
   * The source address the container sees for connections from this machine: the bridge
   * gateway. A published port on 127.0.0.1 is served by docker-proxy, which connects to the
   * container from the gateway; firewall rules inside the container see that address and port 22.
   */
  runnerAddress: string;
  /** `systemctl is-system-running` once booted: `running`, or `degraded` (some unit failed; see `failedUnits`). */
  systemState: 'running' | 'degraded';
  failedUnits: string[];
  /** 127.0.0.1 ports of the container ports asked for in `publish`. */
  ports: Record<number, number>;
  /** Runs a program in the container (`docker exec`); stdout. Throws on a non-zero exit. */
  exec(args: readonly string[], options?: { input?: string }): Promise<string>;
  stop(): Promise<void>;
}

const docker = (args: readonly string[], options: { input?: string; timeoutMs?: number } = {}) => sh('docker', args, { timeoutMs: 60_000, ...options });

async function publishedPort(container: string, port: number): Promise<number> {
  // `docker port` prints one line per host binding, e.g. `127.0.0.1:32775`.
  const out = await docker(['port', container, `${port}/tcp`]);
  const match = /:(\d+)\s*$/m.exec(out.trim().split('\n')[0] ?? '');
  if (!match) throw new Error(`test bed: no 127.0.0.1 port published for ${container}:${port} (docker port said ${JSON.stringify(out)})`);
  return Number(match[1]);
}

/**
 * The image is built without git, and nothing can be fetched here. This machine runs the same
 * Debian release as the image (bookworm) and has git from its package, so the package's files
 * run in the container as they are (git needs only libc, zlib and pcre2, which the image has).
 */
async function copyGit(container: string): Promise<void> {
  const keep = "grep -v -e '^/\\.$' -e '^/usr/share/doc' -e '^/usr/share/man' -e '^/usr/share/locale' -e '^/usr/share/bash-completion'";
  await sh(
    'bash',
    ['-c', `set -o pipefail; dpkg -L git | ${keep} | tar -c --no-recursion -T - -f - 2>/dev/null | docker exec -i "$1" tar -x -C /`, 'copy-git', container],
    { timeoutMs: 120_000 },
  );
  await docker(['exec', container, 'git', '--version']);
}

async function useLocalApt(container: string): Promise<void> {
  await requirePart('the local apt repository (scripts/setup-testbed.sh)', ['test', '-s', join(APT_REPOSITORY, 'Packages')]);
  await docker(['cp', APT_REPOSITORY, `${container}:/var/cache/skiff-apt`]);
  const script = [
    'set -e',
    'rm -f /etc/apt/sources.list.d/*',
    "echo 'deb [trusted=yes] file:/var/cache/skiff-apt ./' > /etc/apt/sources.list",
    'apt-get update -qq',
  ].join('\n');
  await docker(['exec', container, 'sh', '-c', script], { timeoutMs: 120_000 });
}

async function keygen(path: string): Promise<void> {
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'skiff-testbed', '-f', path]);
}

/**
 * Starts `skiff-testbed/systemd:bookworm` as in ../shared/TESTBED.md (host cgroups mounted, /run
 * and /run/lock on tmpfs, no --privileged) plus NET_ADMIN so nftables works inside, waits for
 * systemd, and replaces the image's baked-in SSH host keys with a throwaway one (every container
 * of the image would share them otherwise) and a throwaway root login key.
 */
export async function startSystemdHost(options: SystemdHostOptions): Promise<SystemdHost> {
  if (!/^[a-z0-9][a-z0-9_.-]{0,40}$/.test(options.name)) throw new Error(`test bed: bad systemd host name ${JSON.stringify(options.name)}`);
  await ensureDocker();
  const image = await docker(['image', 'inspect', '--format', '{{.Id}}', SYSTEMD_IMAGE]).catch(() => undefined);
  if (!image) throw new Error(`test bed: image ${SYSTEMD_IMAGE} is missing. Run \`bash scripts/setup-testbed.sh\` as root.`);

  const containerName = `skiffsys-${options.name}`;
  await docker(['rm', '-f', '-v', containerName]).catch(() => undefined);
  const dir = await tempDir('systemd-host');
  const p = (file: string) => join(dir.path, file);
  const publish = [22, ...(options.publish ?? []).filter((port) => port !== 22)];

  let containerId: string | undefined;
  const stop = async () => {
    if (containerId) await docker(['rm', '-f', '-v', containerId]).catch(() => undefined);
    await dir.remove();
  };
  try {
    await Promise.all([keygen(p('host_ed25519')), keygen(p('user_key'))]);
    containerId = (
      await docker([
        'run',
        '-d',
        '--name',
        containerName,
        '--hostname',
        containerName,
        '--cap-add',
        'NET_ADMIN',
        '-v',
        '/sys/fs/cgroup:/sys/fs/cgroup:rw',
        '--tmpfs',
        '/run',
        '--tmpfs',
        '/run/lock',
        '-e',
        'container=docker',
        ...publish.flatMap((port) => ['-p', `127.0.0.1:0:${port}`]),
        SYSTEMD_IMAGE,
        '/sbin/init',
      ])
    ).trim();
    const id = containerId;
    const exec = (args: readonly string[], execOptions: { input?: string } = {}) =>
      docker(['exec', ...(execOptions.input !== undefined ? ['-i'] : []), id, ...args], execOptions);

    // `degraded` still means booted: units run and timers fire; some unit that does not suit a
    // container failed. Anything else (starting, initializing) is still booting.
    let systemState: SystemdHost['systemState'] = 'running';
    await waitFor(
      `systemd in ${containerName}`,
      async () => {
        const state = (await exec(['systemctl', 'is-system-running']).catch((e: Error & { stdout?: string }) => e.stdout ?? '')).trim();
        if (state === 'running' || state === 'degraded') systemState = state;
        return state === 'running' || state === 'degraded';
      },
      (options.bootTimeoutSeconds ?? 60) * 1000,
      250,
    );
    const failedUnits = (await exec(['systemctl', 'list-units', '--failed', '--plain', '--no-legend']))
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter(Boolean);

    await exec(['sh', '-c', 'rm -f /etc/ssh/ssh_host_* && install -d -m 0700 /root/.ssh']);
    await docker(['cp', p('host_ed25519'), `${id}:/etc/ssh/ssh_host_ed25519_key`]);
    await docker(['cp', p('host_ed25519.pub'), `${id}:/etc/ssh/ssh_host_ed25519_key.pub`]);
    await docker(['cp', p('user_key.pub'), `${id}:/root/.ssh/authorized_keys`]);
    await writeFile(
      p('skiff.conf'),
      [
        'HostKey /etc/ssh/ssh_host_ed25519_key',
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'MaxStartups 100:30:200',
        'MaxSessions 50',
        '',
      ].join('\n'),
    );
    await docker(['cp', p('skiff.conf'), `${id}:/etc/ssh/sshd_config.d/skiff.conf`]);
    await exec(['sh', '-c', 'chown -R root:root /etc/ssh /root/.ssh && chmod 0600 /etc/ssh/ssh_host_ed25519_key /root/.ssh/authorized_keys && sshd -t']);
    await exec(['systemctl', 'enable', '--now', 'ssh.service']);
    await exec(['systemctl', 'restart', 'ssh.service']);
    if (options.git) await copyGit(id);
    if (options.localApt) await useLocalApt(id);

    const port = await publishedPort(id, 22);
    const ports: Record<number, number> = {};
    for (const containerPort of publish) ports[containerPort] = await publishedPort(id, containerPort);
    const hostPublicKey = (await readFile(p('host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    // docker-proxy accepts as soon as the port is published; only a host key in the answer means sshd answered.
    await waitFor(
      `sshd in ${containerName} on 127.0.0.1:${port}`,
      async () => {
        const out = await sh('ssh-keyscan', ['-T', '2', '-t', 'ed25519', '-p', String(port), '127.0.0.1']).catch(() => '');
        return out.includes(hostPublicKey.split(' ')[1]!);
      },
      20_000,
      250,
    );

    const network = (await docker(['inspect', '--format', '{{.NetworkSettings.Gateway}} {{.NetworkSettings.IPAddress}}', id])).trim().split(/\s+/);
    const [runnerAddress, containerAddress] = network;
    if (!runnerAddress || !containerAddress)
      throw new Error(`test bed: ${containerName} has no bridge address (docker inspect said ${JSON.stringify(network)})`);

    return {
      host: '127.0.0.1',
      port,
      username: 'root',
      privateKey: await readFile(p('user_key'), 'utf8'),
      privateKeyPath: p('user_key'),
      hostPublicKey,
      hostFingerprint: fingerprintOf(hostPublicKey),
      knownHostsLine: `[127.0.0.1]:${port} ${hostPublicKey}`,
      containerId: id,
      containerName,
      containerAddress,
      runnerAddress,
      systemState,
      failedUnits,
      ports,
      exec,
      stop,
    };
  } catch (error) {
    const logs = containerId ? await docker(['logs', '--tail', '30', containerId]).catch(() => '') : '';
    await stop();
    if (logs) (error as Error).message += `\n--- last container output ---\n${logs}`;
    throw error;
  }
}
