import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNetnsHost, type NetnsHost } from './netns';
import { startNetnsDocker, type NetnsDocker } from './netns-docker';
import { requirePart } from './parts';
import { sh, spawnDaemon, stopPid, tempDir, waitFor } from './proc';
import { startSshd, type SshdServer } from './sshd';

/**
 * A single-node Docker Swarm "server" of its own, so `docker swarm init` never touches the
 * machine's shared engine (a swarm changes an engine's networking):
 *   - a network namespace joined to this machine by a veth pair (createNetnsHost),
 *   - a second dockerd inside it (startNetnsDocker), made a Swarm manager,
 *   - a registry inside it on 127.0.0.1:5000 (loopback, so the engine allows it without TLS,
 *     the way a server reaches its own registry mirror), without auth,
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
  /** The docker CLI against the swarm's engine; stdout. */
  docker(args: readonly string[], options?: { timeoutMs?: number }): Promise<string>;
  /** Copies a local image in and pushes it as `<registry>/<repository>:<tag>`; returns its repo digest (repo@sha256:…). */
  pushImage(localImage: string, repositoryTag: string): Promise<string>;
  stop(): Promise<void>;
}

const REGISTRY = '127.0.0.1:5000';

export async function startSwarmHost(name: string): Promise<SwarmHost> {
  await requirePart('docker-registry', ['docker-registry', '--version']);
  const ns = await createNetnsHost(name);
  const dir = await tempDir(`${name}-swarm`);
  let engine: NetnsDocker | undefined;
  let registryPid: number | undefined;
  let sshd: SshdServer | undefined;
  const stop = async () => {
    await sshd?.stop().catch(() => undefined);
    if (engine) {
      // Leaving the swarm removes its services first, so no task is restarted while the engine stops.
      await engine.docker(['swarm', 'leave', '--force'], { timeoutMs: 30_000 }).catch(() => undefined);
      await engine.stop().catch(() => undefined);
    }
    if (registryPid !== undefined) await stopPid(registryPid);
    await ns.remove().catch(() => undefined);
    await dir.remove();
  };
  try {
    engine = await startNetnsDocker(ns);
    await engine.docker(['swarm', 'init', '--advertise-addr', ns.nsAddress], { timeoutMs: 60_000 });

    const config = ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${join(dir.path, 'registry')}`, 'http:', `  addr: ${REGISTRY}`, ''];
    await writeFile(join(dir.path, 'registry.yml'), config.join('\n'));
    registryPid = spawnDaemon('docker-registry in the swarm namespace', 'nsenter', [`--net=/run/netns/${name}`, 'docker-registry', 'serve', join(dir.path, 'registry.yml')], { logPath: join(dir.path, 'registry.log') });
    await waitFor(`registry on ${REGISTRY} in ${name}`, async () => (await ns.exec(['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', `http://${REGISTRY}/v2/`])) === '200', 15_000, 200);

    sshd = await startSshd({ netns: name, listenAddress: ns.nsAddress, extraConfig: [`SetEnv DOCKER_HOST=unix://${engine.socket}`] });
  } catch (error) {
    await stop();
    throw error;
  }
  const own = engine;
  return {
    address: ns.nsAddress,
    sshd,
    ns,
    engine: own,
    registry: REGISTRY,
    docker: (args, options) => own.docker(args, options),
    async pushImage(localImage, repositoryTag) {
      const target = `${REGISTRY}/${repositoryTag}`;
      await own.loadImage(localImage);
      await own.docker(['tag', localImage, target]);
      await own.docker(['push', '--quiet', target], { timeoutMs: 120_000 });
      const digests = JSON.parse(await own.docker(['image', 'inspect', '--format', '{{json .RepoDigests}}', target])) as string[];
      const repository = target.slice(0, target.lastIndexOf(':'));
      const digest = digests.find((d) => d.startsWith(`${repository}@`));
      if (!digest) throw new Error(`test bed: ${target} has no repo digest after the push (${digests.join(', ')})`);
      return digest;
    },
    stop,
  };
}

/** The machine's own engine's Swarm state (`inactive` unless someone made it a node), for tests that must leave it alone. */
export async function machineEngineSwarmState(): Promise<string> {
  return (await sh('docker', ['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim();
}
