import { spawn } from 'node:child_process';
import { access, chmod, cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBaseImages, runnerEnv, sh, startRegistry, tempDir, type Registry } from '@skiff/testbed';
import type { Benchmark } from './harness';
import { timedOk, timedRun } from './lib';

const BUNDLE = 'action-build-push/dist/index.js';
const CONTEXT = 'action-build-push/test/fixtures/contexts/healthy';
const SHA = '8f3c2a1b9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a';
const TAGS = ['main', 'latest', 'sha-8f3c2a1'];

/** Wall-clock milliseconds, comparable with `date +%s%N`. */
function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The action against `docker buildx build --push` of the same context with the same tags. Each
 * sample changes one file in the context first, so both sides really build and push a new layer
 * (an unchanged context would only time two no-op pushes). The floor is logged in once up front;
 * the action pays for its own login, builder detection and Node start every time.
 */
export const buildPush: Benchmark = {
  name: 'build-push',
  description: "action-build-push bundle vs plain docker buildx build --push, and the bundle's cold start",
  async setup({ root, node24 }) {
    const bundle = join(root, BUNDLE);
    await access(bundle).catch(() => {
      throw new Error(`${BUNDLE} is missing; run node scripts/build.mjs`);
    });
    await ensureBaseImages();
    const work = await tempDir('bench-build-push');
    let registry: Registry | undefined;
    const images = new Set<string>();
    const teardown = async () => {
      // By ID: every sample leaves the previous build behind untagged (<none>).
      for (const image of images) {
        const ids = (await sh('docker', ['images', '--quiet', '--filter', `reference=${image}`])).split('\n').filter(Boolean);
        if (ids.length > 0) await sh('docker', ['rmi', '--force', ...new Set(ids)]).catch(() => undefined);
      }
      await registry?.stop();
      await work.remove();
    };
    try {
      registry = await startRegistry();
      const reg = registry;
      const context = join(work.path, 'context');
      await cp(join(root, CONTEXT), context, { recursive: true });
      // An app-sized image: a 32 MiB layer rebuilt and pushed on every sample.
      const appContext = join(work.path, 'app-context');
      await cp(join(root, CONTEXT), appContext, { recursive: true });
      await writeFile(join(appContext, 'Dockerfile'), APP_DOCKERFILE);
      const dockerConfig = join(work.path, 'docker-config');
      const event = {
        name: 'push',
        ref: 'refs/heads/main',
        sha: SHA,
        payload: JSON.parse(await readFile(join(root, 'action-build-push/test/fixtures/events/push-main.json'), 'utf8')) as unknown,
      };
      await sh('docker', ['--config', dockerConfig, 'login', reg.address, '--username', reg.username, '--password-stdin'], { input: reg.password });

      // A docker on PATH that stamps the time it is first called, then runs the real one.
      const shim = join(work.path, 'shim');
      const stamps = join(work.path, 'stamps');
      const realDocker = (await sh('sh', ['-c', 'command -v docker'])).trim();
      await sh('mkdir', ['-p', shim]);
      await writeFile(join(shim, 'docker'), `#!/bin/sh\ndate +%s%N >> '${stamps}'\nexec '${realDocker}' "$@"\n`);
      await chmod(join(shim, 'docker'), 0o755);

      let sample = 0;
      // Changing a file under COPY invalidates that layer and the ones after it: a real build and push.
      const touchContext = (dir = context) => writeFile(join(dir, 'start.sh'), `# sample ${++sample} ${Date.now()}\n${CONTEXT_SCRIPT}`);
      const env = async (image: string, extra: Record<string, string> = {}, dir = context): Promise<Record<string, string>> =>
        (
          await runnerEnv(work.path, {
            event,
            inputs: {
              image,
              context: dir,
              username: reg.username,
              password: reg.password,
              push: 'true',
              cache: 'none',
              'smoke-test': 'false',
              'smoke-timeout': '60s',
            },
            env: { DOCKER_CONFIG: dockerConfig, ...extra },
          })
        ).env;
      const oursImage = `${reg.address}/acme/skiffbp-bench-action`;
      const floorImage = `${reg.address}/acme/skiffbp-bench-plain`;
      images.add(oursImage).add(floorImage);
      const oursApp = `${reg.address}/acme/skiffbp-bench-action-app`;
      const floorApp = `${reg.address}/acme/skiffbp-bench-plain-app`;
      images.add(oursApp).add(floorApp);
      const plainBuild = (image: string, dir: string) =>
        timedOk('docker', [
          '--config',
          dockerConfig,
          'buildx',
          'build',
          '--progress',
          'plain',
          '--push',
          ...TAGS.flatMap((tag) => ['--tag', `${image}:${tag}`]),
          dir,
        ]);

      return {
        teardown,
        cases: [
          {
            name: 'build-push (app image)',
            what: `node24 ${BUNDLE}: login, detect builder, buildx build --push of a context whose change rebuilds a 32 MiB layer, 3 tags`,
            ours: async () => {
              await touchContext(appContext);
              return timedOk(node24, [bundle], { cwd: work.path, env: await env(oursApp, {}, appContext) });
            },
            floor: {
              label: 'docker buildx build --push',
              what: 'docker buildx build --push of the same context and change, same 3 tags, already logged in',
              measure: async () => {
                await touchContext(appContext);
                return plainBuild(floorApp, appContext);
              },
            },
            target: { maxRatio: 1.15 },
          },
          {
            name: 'build-push (tiny image)',
            what: `as above with a ~2 MB busybox image whose build takes under a second: the action's fixed cost (Node start, builder detection, login) laid bare`,
            ours: async () => {
              await touchContext();
              return timedOk(node24, [bundle], { cwd: work.path, env: await env(oursImage) });
            },
            floor: {
              label: 'docker buildx build --push',
              what: 'docker buildx build --push of the same context and change, same 3 tags, already logged in (informational)',
              measure: async () => {
                await touchContext();
                return plainBuild(floorImage, context);
              },
            },
          },
          {
            name: 'build-push cold start',
            what: `spawn(node24 ${BUNDLE}) until it runs its first docker command (timestamped by a docker shim on PATH)`,
            ours: async () => {
              await writeFile(stamps, '');
              const shimmed = await env(oursImage, { PATH: `${shim}:${process.env.PATH ?? '/usr/bin:/bin'}` });
              const start = epochMs();
              const child = spawn(node24, [bundle], { cwd: work.path, env: shimmed, stdio: 'ignore' });
              // Only the start matters: wait for the first stamp, then stop the run.
              const deadline = Date.now() + 15_000;
              let first: string | undefined;
              while (Date.now() < deadline && !(first = (await readFile(stamps, 'utf8')).split('\n')[0]?.trim())) await new Promise((r) => setTimeout(r, 2));
              child.kill('SIGKILL');
              if (!first) throw new Error('the bundle ran no docker command within 15 s');
              return Number(BigInt(first) / 1000n) / 1000 - start;
            },
            floor: {
              label: 'node -e 0',
              what: 'spawn(node24 -e 0) until it exits (informational)',
              measure: async () => (await timedRun(node24, ['-e', '0'])).ms,
            },
            target: { maxMs: 300 },
          },
        ],
      };
    } catch (error) {
      await teardown();
      throw error;
    }
  },
};

const APP_DOCKERFILE = [
  'FROM skiff-testbed/busybox:1',
  'COPY start.sh /app/start.sh',
  'RUN head -c 33554432 /dev/urandom > /app/blob',
  'CMD ["sh", "/app/start.sh"]',
  '',
].join('\n');
const CONTEXT_SCRIPT = 'echo "starting"\nsleep 1\ntouch /tmp/ready\necho "ready"\nexec sleep 3600\n';
