import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBaseImages, freePort, sh, startRegistry, tempDir, type Registry, type SshdServer, startSshd } from '@skiff/testbed';
import { buildApp, removeProject } from '../action-deploy/test/fixtures';
import { buildProxy, requestLoop, rollingCompose, type LoopResult } from '../action-deploy/test/rolling-fixtures';
import { runBundle } from './deploy-compose';
import type { Benchmark } from './harness';

/**
 * strategy: rolling under load: nginx in front of two replicas of the app in one Compose project
 * (the integration test's setup), a request loop through nginx (two clients, each sequential)
 * for the whole deploy and at least MIN_REQUESTS requests. Each run deploys the other image (a ↔ b), then a crashing
 * image that must fail and leave the old containers serving. The "failed" rows are counts of
 * failed requests, not milliseconds: the harness's columns are in ms, the target is 0.
 */

const MIN_REQUESTS = 2000;
const HEALTH_INTERVAL_S = 1;

export const deployRollingBench: Benchmark = {
  name: 'deploy-rolling',
  description: `failed requests through nginx during a rolling deploy (of ≥ ${MIN_REQUESTS}) and its wall time`,
  async setup(context) {
    let server: SshdServer | undefined;
    let registry: Registry | undefined;
    const dirs: { remove(): Promise<void> }[] = [];
    const images: string[] = [];
    const project = `rollingskiffbench${process.pid}`;
    const proxyImage = `rollingskiffbench-proxy:${process.pid}`;
    const teardown = async () => {
      await removeProject(project).catch(() => undefined);
      if (registry) await sh('docker', ['logout', registry.address]).catch(() => '');
      for (const image of [...images, proxyImage]) await sh('docker', ['image', 'rm', '-f', image]).catch(() => '');
      await Promise.all([server?.stop(), registry?.stop(), ...dirs.map((dir) => dir.remove())]);
    };
    try {
      await ensureBaseImages();
      server = await startSshd();
      registry = await startRegistry();
      const reg = registry;
      const remote = await tempDir('rollingskiffbench-remote');
      const workspace = await tempDir('rollingskiffbench-ws');
      dirs.push(remote, workspace);
      await sh('docker', ['login', '-u', reg.username, '--password-stdin', reg.address], { input: reg.password });
      const image = (tag: string) => `${reg.address}/rollingskiffbench-app:${tag}`;
      await buildProxy(proxyImage);
      for (const [tag, kind] of [['a', 'ok'], ['b', 'ok'], ['crash', 'crash']] as const) {
        await buildApp(image(tag), kind, tag);
        await sh('docker', ['push', '-q', image(tag)], { timeoutMs: 120_000 });
        images.push(image(tag));
      }
      await writeFile(join(workspace.path, 'compose.yaml'), rollingCompose(image('a'), proxyImage, 2));
      const proxyPort = await freePort();
      const url = `http://127.0.0.1:${proxyPort}/`;
      const inputs = (tag: string) => ({
        host: server!.host,
        port: String(server!.port),
        username: server!.username,
        key: server!.privateKey,
        fingerprint: server!.hostFingerprint,
        strategy: 'rolling',
        'project-dir': join(remote.path, 'app'),
        'project-name': project,
        'env-file': `PROXY_PORT=${proxyPort}\n`,
        images: `web=${image(tag)}`,
        'health-url': url,
        'health-interval': `${HEALTH_INTERVAL_S}s`,
        'health-timeout': '60s',
        'rolling-drain': '1s',
      });
      const first = await runBundle(context, workspace.path, inputs('a'));
      if (first.code !== 0) throw new Error(`the first deploy failed:\n${first.lines.map((l) => l.text).join('\n')}`);

      /** One deploy with the loop running through nginx until it is over (and ≥ MIN_REQUESTS). */
      const underLoad = async (tag: string, expectCode: number): Promise<{ ms: number; loop: LoopResult }> => {
        const deploy = runBundle(context, workspace.path, inputs(tag));
        const [loop, run] = await Promise.all([requestLoop(url, { min: MIN_REQUESTS, max: 200_000, until: deploy, workers: 2 }), deploy]);
        if (run.code !== expectCode) throw new Error(`deploy of ${tag} exited ${run.code}, expected ${expectCode}:\n${run.lines.map((l) => l.text).join('\n')}`);
        if (process.env.BENCH_TIMELINE) {
          const start = run.end - run.ms;
          for (const line of run.lines) if (!line.text.startsWith('::')) console.error(`    +${((line.at - start) / 1000).toFixed(2)}s ${line.text.slice(0, 160)}`);
        }
        console.error(`  deploy-rolling: ${tag}: ${loop.failed} of ${loop.total} requests failed (${loop.during} sent during the deploy), deploy ${(run.ms / 1000).toFixed(1)} s${loop.failures.length ? ` (${loop.failures.join('; ')})` : ''}`);
        return { ms: run.ms, loop };
      };
      let tag = 'a';
      let last: { ms: number; loop: LoopResult } | undefined;

      return {
        teardown,
        cases: [
          {
            name: 'rolling deploy (wall)',
            what: `bundle start → exit of a rolling deploy of 2 replicas behind nginx (a ↔ b), gate ${HEALTH_INTERVAL_S}s × 2 on the new containers and on the release, drain 1s, while ≥ ${MIN_REQUESTS} requests go through nginx`,
            ours: async () => {
              tag = tag === 'a' ? 'b' : 'a';
              last = await underLoad(tag, 0);
              return last.ms;
            },
          },
          {
            name: 'rolling deploy: failed requests (count)',
            what: `failed requests (a count, not ms) of the ≥ ${MIN_REQUESTS} sent through nginx during the deploy above; errors, timeouts (5 s) and non-200 answers count`,
            ours: async () => {
              if (!last) throw new Error('the rolling deploy case did not run');
              return last.loop.failed;
            },
            target: { maxMs: 0 },
          },
          {
            name: 'broken image: failed requests (count)',
            what: `failed requests (a count, not ms) of the ≥ ${MIN_REQUESTS} sent through nginx while a crashing image is rolled out, fails its gate and is removed (exit 1, old containers keep serving)`,
            ours: async () => (await underLoad('crash', 1)).loop.failed,
            target: { maxMs: 0 },
          },
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
