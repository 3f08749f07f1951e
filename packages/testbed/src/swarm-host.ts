import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDockerHost, type DockerHost } from './docker-host';
import type { NetnsHost } from './netns';
import type { NetnsDocker } from './netns-docker';
import { requirePart } from './parts';
import { sh, spawnDaemon, stopPid, tempDir, waitFor } from './proc';
import type { SshdServer } from './sshd';

/**
 * A single-node Docker Swarm "server" of its own, so `docker swarm init` never touches the
 * machine's shared engine (a swarm changes an engine's networking), built on startDockerHost:
 *   - a network namespace joined to this machine by a veth pair (createNetnsHost),
 *   - a second dockerd inside it (startNetnsDocker), made a Swarm manager,
 *   - a registry inside it on 127.0.0.1:5000 (loopback, so the engine allows it without TLS,
 *     the way a server reaches its own registry mirror), without auth unless `registryAuth`,
 *   - an sshd inside it on `address`:22 whose sessions have DOCKER_HOST pointing at that engine
 *     (sshd's SetEnv), so a deploy's `docker …` over SSH drives this swarm and nothing else.
 * Images get there by `docker save | load` into the engine and a push to its registry, so Swarm
 * resolves and pulls them by digest like any registry image.
 * The routing mesh needs IPVS, which this kernel may lack: publish ports in `mode: host`.
 */
export interface SwarmHost {
  /** Where the sshd and host-mode published ports listen (the namespace's veth address). */
  address: string;
  sshd: SshdServer;
  ns: NetnsHost;
  engine: NetnsDocker;
  /** `127.0.0.1:5000`, as the swarm's engine and its sessions see the registry. */
  registry: string;
  /** With `registryAuth`: the only login the registry accepts (pushImage uses it; the engine never keeps it). */
  registryLogin?: { username: string; password: string };
  /** The docker CLI against the swarm's engine; stdout. */
  docker(args: readonly string[], options?: { timeoutMs?: number }): Promise<string>;
  /**
   * Copies a local image in and pushes it as `<registry>/<repository>:<tag>`; returns its repo
   * digest (repo@sha256:…). With `registryAuth` the pushed image is then removed from the engine,
   * so a deploy must pull it through the registry's login.
   */
  pushImage(localImage: string, repositoryTag: string): Promise<string>;
  stop(): Promise<void>;
}

const REGISTRY = '127.0.0.1:5000';

export async function startSwarmHost(name: string, options: { registryAuth?: boolean } = {}): Promise<SwarmHost> {
  await requirePart('docker-registry', ['docker-registry', '--version']);
  const dir = await tempDir(`${name}-swarm`);
  let host: DockerHost | undefined;
  let registryPid: number | undefined;
  const registryLogin = options.registryAuth ? { username: 'skiffswarm', password: randomBytes(12).toString('hex') } : undefined;
  const stop = async () => {
    if (host) {
      await host.sshd.stop().catch(() => undefined);
      // Leaving the swarm removes its services first, so no task is restarted while the engine stops.
      await host.docker(['swarm', 'leave', '--force'], { timeoutMs: 30_000 }).catch(() => undefined);
    }
    if (registryPid !== undefined) await stopPid(registryPid);
    await host?.stop();
    await dir.remove();
  };
  try {
    host = await startDockerHost(name);
    await host.docker(['swarm', 'init', '--advertise-addr', host.address], { timeoutMs: 60_000 });

    const auth: string[] = [];
    if (registryLogin) {
      await writeFile(join(dir.path, 'htpasswd'), await sh('htpasswd', ['-Bbn', registryLogin.username, registryLogin.password]));
      auth.push('auth:', '  htpasswd:', '    realm: skiff-swarm', `    path: ${join(dir.path, 'htpasswd')}`);
    }
    const config = [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir.path, 'registry')}`,
      'http:',
      `  addr: ${REGISTRY}`,
      ...auth,
      '',
    ];
    await writeFile(join(dir.path, 'registry.yml'), config.join('\n'));
    registryPid = spawnDaemon(
      'docker-registry in the swarm namespace',
      'nsenter',
      [`--net=/run/netns/${name}`, 'docker-registry', 'serve', join(dir.path, 'registry.yml')],
      { logPath: join(dir.path, 'registry.log') },
    );
    const ns = host.ns;
    const ready = registryLogin ? '401' : '200';
    await waitFor(
      `registry on ${REGISTRY} in ${name}`,
      async () => (await ns.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${REGISTRY}/v2/`])) === ready,
      15_000,
      200,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const { ns, sshd, engine } = host;
  const own = engine;
  return {
    address: ns.nsAddress,
    sshd,
    ns,
    engine: own,
    registry: REGISTRY,
    ...(registryLogin ? { registryLogin } : {}),
    docker: (args, options) => own.docker(args, options),
    async pushImage(localImage, repositoryTag) {
      const target = `${REGISTRY}/${repositoryTag}`;
      await own.loadImage(localImage);
      await own.docker(['tag', localImage, target]);
      // A login of the test's own, in a config of its own: the server's sessions never see it.
      const pushConfig = registryLogin ? await tempDir(`${name}-push`) : undefined;
      try {
        const withConfig = pushConfig ? ['--config', pushConfig.path] : [];
        if (registryLogin) await own.docker([...withConfig, 'login', '-u', registryLogin.username, '-p', registryLogin.password, REGISTRY]);
        await own.docker([...withConfig, 'push', '--quiet', target], { timeoutMs: 120_000 });
      } finally {
        await pushConfig?.remove();
      }
      const digests = JSON.parse(await own.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', target])) as string[];
      const repository = target.slice(0, target.lastIndexOf(':'));
      const digest = digests.find((d) => d.startsWith(`${repository}@`));
      if (!digest) throw new Error(`test bed: ${target} has no repo digest after the push (${digests.join(', ')})`);
      if (registryLogin) await own.docker(['image', 'rm', target, localImage]);
      return digest;
    },
    stop,
  };
}

/** The machine's own engine's Swarm state (`inactive` unless someone made it a node), for tests that must leave it alone. */
export async function machineEngineSwarmState(): Promise<string> {
  return (await sh('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim();
}
