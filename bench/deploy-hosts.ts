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
 * What they still share is this machine's CPU, unlike real hosts: each deploy's remote side (sshd,
 * bash, docker and compose CLIs) costs about 0.85 CPU-s, so five of them, their engines and the
 * runner queue on the test bed's 2 cores during pull, config and `up`; the gate's fixed waits do not.
 */

const HOSTS = 5;
// Short, fixed names: a crashed run's namespaces and engines are found and replaced by name.
const NAMES = Array.from({ length: HOSTS }, (_, index) => `skiffhostsbench-${index + 1}`);
const SINGLE = 'skiffhostsbench-one';
// Each host has its own namespace, so all publish the same port on their own loopback.
const WEB_PORT = '18080';

export const deployHostsBench: Benchmark = {
  name: 'deploy-hosts',
  description: `a healthy deploy to ${HOSTS} hosts (each its own engine) with parallel: true vs the same deploy to one such host`,
  async setup(context) {
    const hosts: DockerHost[] = [];
    let registry: Registry | undefined;
    const dirs: { path: string; remove(): Promise<void> }[] = [];
    const images: string[] = [];
    const teardown = async () => {
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
        // SHLVL=1 as in startBenchSshd: the login user's ~/.bashrc must not dominate every command.
        const host = await startDockerHost(name, { env: { SHLVL: '1', WEB_PORT }, registries: [reg.address] });
        hosts.push(host);
        // Proves the engine reaches the registry (and pulls the base layers, as the warm-up would).
        await host.docker(['pull', '-q', image('a')], { timeoutMs: 120_000 });
      }
      const remote = await tempDir('skiffhostsbench-remote');
      const workspace = await tempDir('skiffhostsbench-ws');
      dirs.push(remote, workspace);
      await writeFile(join(workspace.path, 'compose.yaml'), ['services:', '  web:', `    image: ${image('a')}`, '    ports:', '      - "127.0.0.1:${WEB_PORT}:8080"', ''].join('\n'));
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
      const deploy = async (group: DockerHost[], tag: string) => {
        const run = await runBundle(context, workspace.path, inputs(group, tag));
        if (run.code !== 0) throw new Error(`deploy to ${group.length} host(s) failed:\n${run.lines.map((l) => l.text).join('\n')}`);
        return run.ms;
      };
      return {
        teardown,
        cases: [
          {
            name: `deploy ${HOSTS} hosts parallel`,
            what: `action bundle (Node 24), parallel: true: ${HOSTS} × (connect, lock, upload, pull, digests, up, gate 2× every 1s, audit)`,
            ours: async () => deploy(many, (manyTag = flip(manyTag))),
            floor: { label: 'one host', what: 'the same bundle and deploy to a single host', measure: async () => deploy(one, (oneTag = flip(oneTag))) },
            target: { maxRatio: 1.5 },
          },
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
