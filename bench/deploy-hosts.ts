import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBaseImages, freePort, sh, startRegistry, startSshd, tempDir, type Registry, type SshdServer } from '@skiff/testbed';
import { buildApp, removeProject } from '../action-deploy/test/fixtures';
import { runBundle } from './deploy-compose';
import type { Benchmark } from './harness';

/**
 * Five servers deployed in parallel against one. Each "server" is a real sshd on its own loopback
 * address (127.0.0.21-25, 127.0.0.26 for the single host) with its own WEB_PORT in its sessions'
 * environment; they share this machine's engine, so project-dir and project-name carry {host}.
 * Both sides run the same bundle with the same gate; the ratio is what parallelism costs.
 */

const HOSTS = 5;
const ADDRESSES = Array.from({ length: HOSTS }, (_, index) => `127.0.0.${21 + index}`);
const SINGLE = '127.0.0.26';

export const deployHostsBench: Benchmark = {
  name: 'deploy-hosts',
  description: `a healthy deploy to ${HOSTS} hosts with parallel: true vs the same deploy to one host`,
  async setup(context) {
    const servers: SshdServer[] = [];
    let registry: Registry | undefined;
    const dirs: { path: string; remove(): Promise<void> }[] = [];
    const images: string[] = [];
    const projectName = (address: string) => `skiffhostsbench${process.pid}-${address.replaceAll('.', '-')}`;
    const teardown = async () => {
      for (const address of [...ADDRESSES, SINGLE]) await removeProject(projectName(address)).catch(() => undefined);
      if (registry) await sh('docker', ['logout', registry.address]).catch(() => '');
      for (const image of images) await sh('docker', ['image', 'rm', '-f', image]).catch(() => '');
      await Promise.all([...servers.map((server) => server.stop()), registry?.stop(), ...dirs.map((dir) => dir.remove())]);
    };
    try {
      await ensureBaseImages();
      registry = await startRegistry();
      const reg = registry;
      for (const address of [...ADDRESSES, SINGLE]) {
        // One SetEnv line: sshd keeps the first value of most keywords. SHLVL=1 as in startBenchSshd.
        servers.push(await startSshd({ listenAddress: address, extraConfig: [`SetEnv SHLVL=1 WEB_PORT=${await freePort()}`] }));
      }
      const remote = await tempDir('skiffhostsbench-remote');
      const workspace = await tempDir('skiffhostsbench-ws');
      dirs.push(remote, workspace);
      await sh('docker', ['login', '-u', reg.username, '--password-stdin', reg.address], { input: reg.password });
      const image = (tag: string) => `${reg.address}/skiffhostsbench-app:${tag}`;
      for (const tag of ['a', 'b']) {
        await buildApp(image(tag), 'ok', tag);
        await sh('docker', ['push', '-q', image(tag)], { timeoutMs: 120_000 });
        images.push(image(tag));
      }
      await writeFile(join(workspace.path, 'compose.yaml'), ['services:', '  web:', `    image: ${image('a')}`, '    ports:', '      - "127.0.0.1:${WEB_PORT}:8080"', ''].join('\n'));
      const publicKey = await readFile(`${servers[0]!.privateKeyPath}.pub`, 'utf8');
      for (const server of servers.slice(1)) await appendFile(join(server.dir, 'authorized_keys'), publicKey);
      const inputs = (group: SshdServer[], tag: string) => ({
        host: group.map((server) => `${server.host}:${server.port}`).join('\n'),
        username: 'root',
        key: servers[0]!.privateKey,
        'known-hosts': group.map((server) => server.knownHostsLine).join('\n'),
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
      const many = servers.slice(0, HOSTS);
      const one = servers.slice(HOSTS);
      const flip = (tag: string) => (tag === 'a' ? 'b' : 'a');
      let manyTag = 'a';
      let oneTag = 'a';
      const deploy = async (group: SshdServer[], tag: string) => {
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
