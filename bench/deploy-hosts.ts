import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBaseImages, sh, startDockerHost, startRegistry, tempDir, type DockerHost, type Registry } from '@skiff/testbed';
import { buildApp } from '../action-deploy/test/fixtures';
import { runBundle } from './deploy-compose';
import type { Benchmark } from './harness';

/**
 * Five servers deployed in parallel against one. Each server, on both sides, is a host of its own
 * (startDockerHost): a network namespace with its own dockerd and an sshd on its veth address whose
 * sessions' docker commands reach that engine, so five deploys do not queue behind one engine's
 * locks, networks and iptables as they would on this machine's single engine. Every engine pulls
 * the app from one registry on this machine, across its host's veth link (see DockerHostOptions
 * .registries): one registry like GHCR, five pullers. Both sides run the same bundle with the same
 * gate; the ratio is what parallelism costs.
 * Each server also has its own CPU, as real ones do: a fixed budget of SERVER_CORES (cgroup v1 CFS
 * quota on the host's engine, containers and sshd sessions; DockerHostOptions.cpuQuota), the same for
 * the single host and for each of the five. Without it the five would share this machine's 2 cores:
 * each deploy costs a server about 1.65 CPU-s (its cgroup's count: 0.85 in the SSH sessions' sshd,
 * bash, docker and compose, the rest in the engine and the app's container), so five of them queued
 * behind each other during pull, config and `up` (1.60–1.70× unconstrained).
 * 0.3 cores is a small VPS's fractional vCPU, and 5 × 0.3 = 1.5 cores leaves 0.5 of the test bed's 2
 * for what is not a server: the runner (about 0.4 CPU-s for one host, 0.7 for five) and the registry.
 * The second row, without budgets, is informational: the old, shared-CPU picture.
 */
const HOSTS = 5;
// Short, fixed names: a crashed run's namespaces and engines are found and replaced by name.
const NAMES = Array.from({ length: HOSTS }, (_, index) => `skiffhostsbench-${index + 1}`);
const SINGLE = 'skiffhostsbench-one';
// Each host has its own namespace, so all publish the same port on their own loopback.
const WEB_PORT = '18080';
// Cores per server (see above): the same on both sides of the ratio.
const SERVER_CORES = 0.3;

type HostCpu = NonNullable<DockerHost['cpu']>;
type CpuStats = Awaited<ReturnType<HostCpu['stats']>>;

/** What the servers of one side of one row used, summed over its deploys, to show the budget at work. */
class ServerCpu {
  deploys = 0;
  usage = 0;
  periods = 0;
  throttled = 0;
  constructor(
    readonly label: string,
    readonly servers: number,
  ) {}
  add(before: readonly CpuStats[], after: readonly CpuStats[]) {
    this.deploys++;
    after.forEach((a, i) => {
      const b = before[i]!;
      this.usage += a.usageSeconds - b.usageSeconds;
      this.periods += a.periods - b.periods;
      this.throttled += a.throttledPeriods - b.throttledPeriods;
    });
  }
  toString() {
    if (this.deploys === 0) return `${this.label}: no deploys`;
    const throttling = this.periods
      ? `throttled in ${this.throttled} of ${this.periods} CFS periods (${((100 * this.throttled) / this.periods).toFixed(0)}%)`
      : 'no CFS periods counted (no quota)';
    return `${this.label}: ${(this.usage / this.deploys / this.servers).toFixed(2)} CPU-s per server per deploy over ${this.deploys} deploys, ${throttling}`;
  }
}

export const deployHostsBench: Benchmark = {
  name: 'deploy-hosts',
  description: `a healthy deploy to ${HOSTS} hosts (each its own engine and ${SERVER_CORES} cores) with parallel: true vs the same deploy to one such host`,
  async setup(context) {
    const hosts: DockerHost[] = [];
    let registry: Registry | undefined;
    const dirs: { path: string; remove(): Promise<void> }[] = [];
    const images: string[] = [];
    const usage: ServerCpu[] = [];
    const teardown = async () => {
      for (const line of usage) console.error(`  deploy-hosts servers, ${line.toString()}`);
      // Each host's stop removes its containers, engine, sshd, registry gateways and namespace.
      await Promise.all(hosts.map((host) => host.stop()));
      if (registry) await sh('docker', ['logout', registry.address]).catch(() => '');
      for (const image of images) await sh('docker', ['image', 'rm', '-f', image]).catch(() => '');
      await Promise.all([registry?.stop(), ...dirs.map((dir) => dir.remove())]);
    };
    try {
      await ensureBaseImages();
      registry = await startRegistry();
      const reg = registry;
      await sh('docker', ['login', '-u', reg.username, '--password-stdin', reg.address], { input: reg.password });
      const image = (tag: string) => `${reg.address}/skiffhostsbench-app:${tag}`;
      for (const tag of ['a', 'b']) {
        await buildApp(image(tag), 'ok', tag);
        await sh('docker', ['push', '-q', image(tag)], { timeoutMs: 120_000 });
        images.push(image(tag));
      }
      for (const name of [...NAMES, SINGLE]) {
        const host = await startDockerHost(name, { env: { WEB_PORT }, registries: [reg.address], cpuQuota: SERVER_CORES });
        hosts.push(host);
        // Proves the engine reaches the registry (and pulls the base layers, as the warm-up would).
        await host.docker(['pull', '-q', image('a')], { timeoutMs: 120_000 });
      }
      const remote = await tempDir('skiffhostsbench-remote');
      const workspace = await tempDir('skiffhostsbench-ws');
      dirs.push(remote, workspace);
      await writeFile(
        join(workspace.path, 'compose.yaml'),
        ['services:', '  web:', `    image: ${image('a')}`, '    ports:', '      - "127.0.0.1:${WEB_PORT}:8080"', ''].join('\n'),
      );
      const servers = hosts.map((host) => host.sshd);
      const publicKey = await readFile(`${servers[0]!.privateKeyPath}.pub`, 'utf8');
      for (const server of servers.slice(1)) await appendFile(join(server.dir, 'authorized_keys'), publicKey);
      const inputs = (group: DockerHost[], tag: string) => ({
        host: group.map((host) => `${host.sshd.host}:${host.sshd.port}`).join('\n'),
        username: 'root',
        key: servers[0]!.privateKey,
        'known-hosts': group.map((host) => host.sshd.knownHostsLine).join('\n'),
        'project-dir': join(remote.path, '{host}'),
        'project-name': `skiffhostsbench${process.pid}-{host}`,
        images: `web=${image(tag)}`,
        'health-command': 'wget -q -O /dev/null "http://127.0.0.1:$WEB_PORT/"',
        'health-interval': '1s',
        'health-successes': '2',
        'health-timeout': '60s',
        parallel: 'true',
        'max-parallel': String(HOSTS),
      });
      const many = hosts.slice(0, HOSTS);
      const one = hosts.slice(HOSTS);
      const flip = (tag: string) => (tag === 'a' ? 'b' : 'a');
      let manyTag = 'a';
      let oneTag = 'a';
      const cpuOf = (host: DockerHost): HostCpu => {
        if (!host.cpu) throw new Error(`${host.name} has no CPU budget`);
        return host.cpu;
      };
      // Every host gets the row's budget before each deploy, so the rows cannot leak into each other.
      const deploy = async (group: DockerHost[], tag: string, cores: number | undefined, tally: ServerCpu) => {
        await Promise.all(hosts.map((host) => cpuOf(host).setQuota(cores)));
        const before = await Promise.all(group.map((host) => cpuOf(host).stats()));
        const run = await runBundle(context, workspace.path, inputs(group, tag));
        if (run.code !== 0) throw new Error(`deploy to ${group.length} host(s) failed:\n${run.lines.map((l) => l.text).join('\n')}`);
        tally.add(before, await Promise.all(group.map((host) => cpuOf(host).stats())));
        return run.ms;
      };
      const row = (cores: number | undefined) => {
        const budget = cores === undefined ? 'no budget: all share the 2 cores' : `${cores} cores each`;
        const manyCpu = new ServerCpu(`${HOSTS} hosts, ${budget}`, HOSTS);
        const oneCpu = new ServerCpu(`one host, ${budget}`, 1);
        usage.push(manyCpu, oneCpu);
        return {
          budget,
          ours: async () => deploy(many, (manyTag = flip(manyTag)), cores, manyCpu),
          floor: async () => deploy(one, (oneTag = flip(oneTag)), cores, oneCpu),
        };
      };
      const fair = row(SERVER_CORES);
      const shared = row(undefined);
      const what = `action bundle (Node 24), parallel: true: ${HOSTS} × (connect, lock, upload, pull, digests, up, gate 2× every 1s, audit)`;
      return {
        teardown,
        cases: [
          {
            name: `deploy ${HOSTS} hosts parallel`,
            what: `${what}; every server ${fair.budget}`,
            ours: fair.ours,
            floor: { label: 'one host', what: `the same bundle and deploy to a single host, ${fair.budget}`, measure: fair.floor },
            target: { maxRatio: 1.5 },
          },
          {
            name: `deploy ${HOSTS} hosts, shared CPU`,
            what: `the same, servers without a budget (informational: they share this machine's cores, which real servers do not)`,
            ours: shared.ours,
            floor: { label: 'one host', what: 'the same bundle and deploy to a single host without a budget', measure: shared.floor },
          },
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
