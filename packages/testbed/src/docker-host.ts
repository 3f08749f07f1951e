import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNetnsHost, type NetnsHost } from './netns';
import { startNetnsDocker, type NetnsDocker } from './netns-docker';
import { spawnDaemon, stopPid, tempDir, waitFor } from './proc';
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
  /** Stops the sshd, the registry gateways, the engine (and its containers) and removes the namespace. */
  stop(): Promise<void>;
}

export interface DockerHostOptions {
  /** More variables for every SSH session, set with DOCKER_HOST on one SetEnv line (sshd keeps only its first SetEnv). */
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

async function startRelay(what: string, prefix: readonly string[], listen: [string, number], target: [string, number], dir: string, log: string): Promise<number> {
  const [file, ...args] = [...prefix, process.execPath, '-e', RELAY, listen[0], String(listen[1]), target[0], String(target[1])];
  const pid = spawnDaemon(what, file!, args, { logPath: join(dir, log) });
  try {
    await waitFor(`${what} on ${listen[0]}:${listen[1]}`, async () => (await readFile(join(dir, log), 'utf8')).includes('relay listening'), 15_000, 50);
  } catch (error) {
    await stopPid(pid);
    const tail = await readFile(join(dir, log), 'utf8').catch(() => '');
    throw new Error(`${(error as Error).message}\n${tail}`);
  }
  return pid;
}

function registryPort(registry: string): number {
  const match = /^127\.0\.0\.1:(\d{1,5})$/.exec(registry);
  if (!match) throw new Error(`test bed: a docker host reaches registries on 127.0.0.1:PORT only, not ${JSON.stringify(registry)}`);
  return Number(match[1]);
}

/** Starts a namespace host with its own engine and sshd; `name` names the namespace (≤ 40 characters; reruns replace a crashed run's leftovers). */
export async function startDockerHost(name: string, options: DockerHostOptions = {}): Promise<DockerHost> {
  const ports = (options.registries ?? []).map(registryPort);
  const ns = await createNetnsHost(name);
  let dir: { path: string; remove(): Promise<void> } | undefined;
  let engine: NetnsDocker | undefined;
  let sshd: SshdServer | undefined;
  const relays: number[] = [];
  const stop = async () => {
    await sshd?.stop().catch(() => undefined);
    await engine?.stop().catch(() => undefined);
    for (const pid of relays) await stopPid(pid).catch(() => undefined);
    await ns.remove().catch(() => undefined);
    await dir?.remove();
  };
  try {
    dir = await tempDir(`${name}-host`);
    engine = await startNetnsDocker(ns);
    for (const port of ports) {
      relays.push(await startRelay(`registry gateway for ${name}`, [], [ns.hostAddress, port], ['127.0.0.1', port], dir.path, `relay-host-${port}.log`));
      relays.push(await startRelay(`registry gateway in ${name}`, ['nsenter', `--net=/run/netns/${name}`], ['127.0.0.1', port], [ns.hostAddress, port], dir.path, `relay-ns-${port}.log`));
    }
    const env = { DOCKER_HOST: `unix://${engine.socket}`, ...options.env };
    for (const [key, value] of Object.entries(env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || /[\s"\\]/.test(value)) throw new Error(`test bed: SetEnv cannot carry ${key}=${JSON.stringify(value)}`);
    }
    const setEnv = `SetEnv ${Object.entries(env).map(([key, value]) => `${key}=${value}`).join(' ')}`;
    sshd = await startSshd({ netns: name, listenAddress: ns.nsAddress, extraConfig: [setEnv] });
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
    stop,
  };
}
