import { chmod, copyFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative } from 'node:path';
import { ensureBaseImages, freePort, sh, startRegistry, tempDir, type Registry, type SshdServer, startSshd } from '@skiff/testbed';
import { sshArgs, timedRun, waitForQuietCpu } from './lib';
import { buildApp, removeProject } from '../action-deploy/test/fixtures';
import { buildProxy, requestLoop, rollingCompose, type LoopResult } from '../action-deploy/test/rolling-fixtures';
import { printTimeline, runBundle } from './deploy-compose';
import type { Benchmark } from './harness';

/** docker-rollout's script (github.com/wowu/docker-rollout), from a checkout outside this repository. */
const ROLLOUT_VARIABLE = 'SKIFF_BENCH_DOCKER_ROLLOUT';
/** Both tools wait this long between "new containers healthy" and stopping the old ones (ours: rolling-drain, docker-rollout: --wait-after-healthy). */
const DRAIN_S = 2;
/** 4 clients, 8 ms apart each (more load slows both tools alike on 2 cores), at most 25,000 requests a run: under the ~28,000 new upstream connections a minute that exhaust nginx's ephemeral ports. */
const LOAD = { workers: 4, pauseMs: 8 };

/** Before each timed deploy, whichever tool it is: what the run before left running is not billed to this one. */
async function settle(who: string): Promise<void> {
  const quiet = await waitForQuietCpu();
  if (process.env.BENCH_TIMELINE)
    console.error(
      `  deploy-rolling: ${who}: waited ${(quiet.waitedMs / 1000).toFixed(1)} s for a quiet machine (CPUs ${(quiet.busy * 100).toFixed(0)} % busy)`,
    );
}

/**
 * Where docker-rollout's script is, or why the side-by-side rows cannot run. None of its code is
 * in this repository: bring it with the search tool's fetch (see DEVELOPERS.md) and point
 * SKIFF_BENCH_DOCKER_ROLLOUT at the `docker-rollout` file of that checkout.
 */
async function dockerRollout(root: string): Promise<{ path: string } | { notRun: string }> {
  const path = process.env[ROLLOUT_VARIABLE];
  if (!path) return { notRun: `${ROLLOUT_VARIABLE} is not set (the path of docker-rollout's script, outside this repository)` };
  const inside = relative(root, path);
  if (!inside.startsWith('..') && !isAbsolute(inside))
    return { notRun: `${ROLLOUT_VARIABLE}=${path} is inside this repository; none of docker-rollout's code may be committed here` };
  const file = await stat(path).catch(() => undefined);
  if (!file?.isFile()) return { notRun: `${ROLLOUT_VARIABLE}=${path} is not a file` };
  return { path };
}

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
    const projects = [project];
    const proxyImage = `rollingskiffbench-proxy:${process.pid}`;
    const teardown = async () => {
      for (const name of projects) await removeProject(name).catch(() => undefined);
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
      for (const [tag, kind] of [
        ['a', 'ok'],
        ['b', 'ok'],
        ['crash', 'crash'],
      ] as const) {
        // Like a real server, the app finishes what it serves on TERM (1 s), as the rolling tests' app does: both tools face the same app.
        await buildApp(image(tag), kind, tag, { finishInFlightSeconds: 1 });
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
        'rolling-drain': `${DRAIN_S}s`,
      });
      const first = await runBundle(context, workspace.path, inputs('a'));
      if (first.code !== 0) throw new Error(`the first deploy failed:\n${first.lines.map((l) => l.text).join('\n')}`);

      // docker-rollout's own copy of the same app (own project, own proxy port), driven over the same SSH.
      const rollout = await dockerRollout(context.root);
      let rolloutRun: ((tag: string, expectCode: number) => Promise<{ ms: number; loop: LoopResult }>) | undefined;
      if ('path' in rollout) {
        const rolloutProject = `rollingrolloutbench${process.pid}`;
        projects.push(rolloutProject);
        const rolloutDir = join(remote.path, 'rollout');
        // Installed as a CLI plugin for this run only: a Docker config directory of its own holding the plugin and the registry login.
        const dockerConfig = await tempDir('rollingrolloutbench-config');
        dirs.push(dockerConfig);
        await mkdir(join(dockerConfig.path, 'cli-plugins'), { recursive: true });
        await copyFile(rollout.path, join(dockerConfig.path, 'cli-plugins', 'docker-rollout'));
        await chmod(join(dockerConfig.path, 'cli-plugins', 'docker-rollout'), 0o755);
        await sh('docker', ['--config', dockerConfig.path, 'login', '-u', reg.username, '--password-stdin', reg.address], { input: reg.password });
        await mkdir(rolloutDir, { recursive: true });
        await writeFile(join(rolloutDir, 'compose.yaml'), rollingCompose('${WEB_IMAGE}', proxyImage, 2));
        const rolloutPort = await freePort();
        const rolloutUrl = `http://127.0.0.1:${rolloutPort}/`;
        const ssh = await sshArgs(server);
        // What a user's workflow step would run: the new image into .env, pull it, roll the service.
        const script = (tag: string, first = false) =>
          [
            'set -eu',
            `cd ${rolloutDir}`,
            `printf 'PROXY_PORT=${rolloutPort}\nWEB_IMAGE=${image(tag)}\n' > .env`,
            `export DOCKER_CONFIG=${dockerConfig.path}`,
            `docker compose -p ${rolloutProject} pull -q web`,
            ...(process.env.BENCH_TIMELINE ? ['echo "==> pulled"'] : []),
            first ? `docker compose -p ${rolloutProject} up -d --wait` : `docker rollout -p ${rolloutProject} --wait-after-healthy ${DRAIN_S} web`,
          ].join('\n');
        const initial = await timedRun('ssh', [...ssh, script('a', true)]);
        if (initial.code !== 0) throw new Error(`docker-rollout's app did not start: ${initial.output}`);
        let serving = 'a';
        rolloutRun = async (tag, expectCode) => {
          await settle(`docker-rollout ${tag}`);
          const run = timedRun('ssh', [...ssh, script(tag)]);
          const [loop, done] = await Promise.all([requestLoop(rolloutUrl, { min: MIN_REQUESTS, max: 25_000, until: run, ...LOAD }), run]);
          if (process.env.BENCH_TIMELINE) for (const line of done.lines) console.error(`    +${(line.atMs / 1000).toFixed(2)}s ${line.text.slice(0, 160)}`);
          const left = (await sh('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${rolloutProject}`, '--filter', 'status=exited']))
            .trim()
            .split('\n')
            .filter(Boolean).length;
          const up = await fetch(rolloutUrl).then(
            (response) => response.ok,
            () => false,
          );
          console.error(
            `  deploy-rolling: docker-rollout ${tag}: exit ${done.code} (expected ${expectCode}), ${loop.failed} of ${loop.total} requests failed (${loop.during} during), ${(done.ms / 1000).toFixed(1)} s, ` +
              `exited containers left: ${left}, site ${up ? 'up' : 'DOWN'} afterwards${loop.failures.length ? ` (${loop.failures.join('; ')})` : ''}`,
          );
          // A good update must work for the comparison to mean anything; a broken one is recorded as it went.
          if (expectCode === 0 && done.code !== 0) throw new Error(`docker rollout of ${tag} exited ${done.code}:\n${done.output}`);
          if (expectCode === 0) serving = tag;
          if (!up || left > 0) {
            // Put its app back on the last good image so the next run starts from a serving site (not timed).
            const again = await timedRun('ssh', [
              ...ssh,
              `${script(serving, true)}\ndocker container prune -f --filter label=com.docker.compose.project=${rolloutProject} >/dev/null`,
            ]);
            if (again.code !== 0) throw new Error(`docker-rollout's app could not be restored: ${again.output}`);
          }
          return { ms: done.ms, loop };
        };
      }

      /** One deploy with the loop running through nginx until it is over (and ≥ MIN_REQUESTS). */
      const underLoad = async (tag: string, expectCode: number): Promise<{ ms: number; loop: LoopResult }> => {
        await settle(tag);
        const deploy = runBundle(context, workspace.path, inputs(tag));
        const [loop, run] = await Promise.all([requestLoop(url, { min: MIN_REQUESTS, max: 25_000, until: deploy, ...LOAD }), deploy]);
        if (run.code !== expectCode)
          throw new Error(`deploy of ${tag} exited ${run.code}, expected ${expectCode}:\n${run.lines.map((l) => l.text).join('\n')}`);
        printTimeline(run);
        console.error(
          `  deploy-rolling: ${tag}: ${loop.failed} of ${loop.total} requests failed (${loop.during} sent during the deploy), deploy ${(run.ms / 1000).toFixed(1)} s${loop.failures.length ? ` (${loop.failures.join('; ')})` : ''}`,
        );
        return { ms: run.ms, loop };
      };
      let tag = 'a';
      let last: { ms: number; loop: LoopResult } | undefined;
      let lastBroken: { ms: number; loop: LoopResult } | undefined;
      let rolloutTag = 'a';
      let lastRollout: { ms: number; loop: LoopResult } | undefined;
      let lastRolloutBroken: { ms: number; loop: LoopResult } | undefined;

      return {
        teardown,
        cases: [
          {
            name: 'rolling deploy (wall)',
            what: `bundle start → exit of a rolling deploy of 2 replicas behind nginx (a ↔ b): pull, new containers beside the old, gate (${HEALTH_INTERVAL_S}s interval, 2 successes), drain ${DRAIN_S}s, old ones retired, release checked, while ≥ ${MIN_REQUESTS} requests go through nginx`,
            ours: async () => {
              tag = tag === 'a' ? 'b' : 'a';
              last = await underLoad(tag, 0);
              return last.ms;
            },
            ...(rolloutRun
              ? {
                  floor: {
                    label: 'docker-rollout',
                    what: `ssh host 'new image into .env; docker compose pull web; docker rollout --wait-after-healthy ${DRAIN_S} web' (its own copy of the same app and proxy, same SSH server, same load)`,
                    measure: async () => {
                      rolloutTag = rolloutTag === 'a' ? 'b' : 'a';
                      lastRollout = await rolloutRun(rolloutTag, 0);
                      return lastRollout.ms;
                    },
                  },
                  target: { maxRatio: 1.0 },
                }
              : {}),
          },
          {
            name: 'rolling deploy: failed requests (count)',
            what: `failed requests (a count, not ms) of the ≥ ${MIN_REQUESTS} sent through nginx during the deploy above; errors, timeouts (5 s) and non-200 answers count`,
            ours: async () => {
              if (!last) throw new Error('the rolling deploy case did not run');
              return last.loop.failed;
            },
            ...(rolloutRun
              ? { floor: { label: 'docker-rollout', what: 'the same count during its update above', measure: async () => lastRollout!.loop.failed } }
              : {}),
            target: { maxMs: 0 },
          },
          {
            name: 'broken release (wall)',
            what: `bundle start → exit while a crashing image is rolled out, fails its gate and is removed (exit 1, old containers keep serving)`,
            ours: async () => {
              lastBroken = await underLoad('crash', 1);
              return lastBroken.ms;
            },
            ...(rolloutRun
              ? {
                  floor: {
                    label: 'docker-rollout',
                    what: 'the same with docker rollout (its default --timeout 60: it waits for a healthy state that never comes)',
                    measure: async () => {
                      lastRolloutBroken = await rolloutRun('crash', 1);
                      return lastRolloutBroken.ms;
                    },
                  },
                }
              : {}),
          },
          {
            name: 'broken release: failed requests (count)',
            what: `failed requests (a count, not ms) of the ≥ ${MIN_REQUESTS} sent through nginx during the broken release above`,
            ours: async () => lastBroken!.loop.failed,
            ...(rolloutRun
              ? {
                  floor: {
                    label: 'docker-rollout',
                    what: 'the same count during its broken release above',
                    measure: async () => lastRolloutBroken!.loop.failed,
                  },
                }
              : {}),
            target: { maxMs: 0 },
          },
          ...('notRun' in rollout
            ? [{ name: 'rolling deploy vs docker-rollout', what: 'docker-rollout side by side', ours: async () => 0, notRun: rollout.notRun }]
            : []),
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};
