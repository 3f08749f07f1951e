import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { script } from '@skiff/shell';
import type { Executor } from '@skiff/shell';
import { withFakeDocker } from './fake-docker';
import { clearerDockerError, detectDockerCli } from '../src/docker-cli';
import {
  compose,
  config,
  detectComposeCommand,
  inspectProjectContainers,
  inspectSeenContainers,
  keepCli,
  logs,
  pull,
  pullWithLogin,
  removeImages,
  repoDigests,
  up,
  type ComposeProject,
  type DockerCli,
} from '../src/compose-commands';
import { parseEarlyLockAttempt, parseLockAttempt, releaseLock, touchLock, tryLock, tryLockWhereDeployed } from '../src/lock-commands';
import {
  appendAudit,
  createRelease,
  imageLockFile,
  isReleaseId,
  linkEnv,
  newReleaseId,
  parseState,
  planPrune,
  afterPassed,
  previousRelease,
  readState,
  releasesDir,
  removeReleases,
  switchCurrent,
} from '../src/release-history';
import { pinImages, repositoryOf, servicesFromConfig } from '../src/digests';
import { redact } from '../src/host-outcome';

const V2: DockerCli = { compose: 'v2', sudo: false };
const V1_SUDO: DockerCli = { compose: 'v1', sudo: true };
const project: ComposeProject = {
  name: 'shop',
  directory: '/opt/my shop',
  files: ['/opt/my shop/releases/r1/compose.yaml', '/opt/my shop/releases/r1/images.lock.json'],
  envFile: '/opt/my shop/releases/r1/.env',
};

describe('compose builders', () => {
  it('runs v2 from the project directory with every file and the release env', () => {
    expect(script(up(V2, project))).toBe(
      [
        'set -euo pipefail',
        "cd '/opt/my shop'",
        "docker compose --project-name shop --project-directory '/opt/my shop' -f '/opt/my shop/releases/r1/compose.yaml' -f '/opt/my shop/releases/r1/images.lock.json' --env-file '/opt/my shop/releases/r1/.env' up -d --remove-orphans",
      ].join('\n'),
    );
  });

  it('uses docker-compose for v1 and sudo -n when asked', () => {
    const noEnv = { ...project, envFile: undefined, files: ['/p/c.yaml'] } as ComposeProject;
    expect(compose(V1_SUDO, noEnv, 'pull')).toEqual([
      'sudo',
      '-n',
      'docker-compose',
      '--project-name',
      'shop',
      '--project-directory',
      '/opt/my shop',
      '-f',
      '/p/c.yaml',
      'pull',
    ]);
    expect(script(pull(V2, noEnv)).split('\n').at(-1)).toBe("docker compose --project-name shop --project-directory '/opt/my shop' -f /p/c.yaml pull");
    expect(script(config(V2, noEnv)).split('\n').at(-1)).toMatch(/ config$/);
    expect(
      script(logs(V2, noEnv, ['web', 'db']))
        .split('\n')
        .at(-1),
    ).toMatch(/ logs --no-color --tail 100 web db$/);
  });

  it('detects v2, then v1, else none, and whether docker reaches the engine, with sudo in every docker call', () => {
    expect(script(detectComposeCommand(true))).toBe(
      [
        'set -euo pipefail',
        `found=$(mktemp) && trap 'rm -f "$found"' EXIT`,
        '{ if sudo -n docker compose version >/dev/null 2>&1 ; then echo v2; elif sudo -n docker-compose version >/dev/null 2>&1 ; then echo v1; else echo none; fi; } >"$found" &',
        "if said=$( sudo -n docker version --format '{{.Server.Version}}' 2>&1 >/dev/null); then engine=engine-ok; else engine=engine-failed; fi",
        `wait && cat "$found" && printf '%s\\n%s\\n' "\${said:0:300}" "$engine"`,
      ].join('\n'),
    );
  });

  it("runs the compose plugin docker would pick itself (one program start), unless the CLI's config adds plugin folders or that plugin fails", async () => {
    // The fake docker logs what it was asked; the plugin in the config folder logs that it ran.
    await withFakeDocker(
      'echo "docker $*" >> "$LOG"\nif [ -n "${ENGINE_DOWN:-}" ] && [ "$1" = version ]; then echo "engine down" >&2; exit 1; fi\n[ "$1" = version ] && exit 0\n[ -n "$DOCKER_COMPOSE_WORKS" ]\n',
      async (run, dir) => {
        const config = join(dir, 'docker-config');
        await mkdir(join(config, 'cli-plugins'), { recursive: true });
        await writeFile(
          join(config, 'cli-plugins', 'docker-compose'),
          '#!/bin/bash\necho "plugin $*" >> "$LOG"\nif [ -n "${CONFIG_LOG:-}" ]; then echo "${DOCKER_CONFIG:-}" >> "$CONFIG_LOG"; fi\necho "${PLUGIN_SAYS:-Docker Compose version v2.99.0}"\nexit "${PLUGIN_EXIT:-0}"\n',
          { mode: 0o755 },
        );
        const log = join(dir, 'log');
        const detect = async (env: Record<string, string> = {}) => {
          await writeFile(log, '');
          const found = run(detectComposeCommand(false), { DOCKER_CONFIG: config, LOG: log, ...env }).stdout.split('\n')[0];
          return { found, ran: (await readFile(log, 'utf8')).trim().split('\n').sort() };
        };
        const plugin = join(config, 'cli-plugins', 'docker-compose');
        expect(await detect()).toEqual({ found: `v2 ${plugin}`, ran: ['docker version --format {{.Server.Version}}', 'plugin version'] });
        // Every compose command of the run then starts that plugin itself, in Compose's standalone form.
        const server: Executor = {
          run: (commands) => {
            const done = run(commands, { DOCKER_CONFIG: config, LOG: log });
            return Promise.resolve({ code: done.status ?? 1, stdout: done.stdout, stderr: done.stderr });
          },
          upload: () => Promise.reject(new Error('no uploads here')),
        };
        const cli = await detectDockerCli(server, false);
        expect(cli).toEqual({ compose: 'v2', sudo: false, composePlugin: plugin });
        await writeFile(log, '');
        const here: ComposeProject = { name: 'shop', directory: dir, files: [`${dir}/compose.yaml`], envFile: `${dir}/.env` };
        expect(run(up(cli, here), { LOG: log }).status).toBe(0);
        expect((await readFile(log, 'utf8')).trim()).toBe(
          `plugin --project-name shop --project-directory ${dir} -f ${dir}/compose.yaml --env-file ${dir}/.env up -d --remove-orphans`,
        );
        // A pull logged in for this pull only: the plugin reads the login's config, as docker compose would.
        const configLog = join(dir, 'config-log');
        await writeFile(log, '');
        const pulled = run(pullWithLogin(cli, here, { registry: 'ghcr.io', username: 'me' }), {
          HOME: dir,
          LOG: log,
          CONFIG_LOG: configLog,
          DOCKER_COMPOSE_WORKS: '1',
        });
        expect(pulled.status, pulled.stderr).toBe(0);
        const loginConfig = (await readFile(log, 'utf8')).match(/^docker --config (\S+) login --username me --password-stdin ghcr\.io$/m)?.[1];
        expect(loginConfig).toMatch(/skiff-docker-config\./);
        expect((await readFile(configLog, 'utf8')).trim()).toBe(loginConfig);
        // The answer a deploy keeps: the next probe of the same project starts no program while docker would still pick that plugin.
        const projectDir = join(dir, 'project');
        await mkdir(projectDir);
        expect(run(keepCli(projectDir, cli), {}).status).toBe(0);
        expect(await readFile(join(projectDir, '.skiff/docker-cli'), 'utf8')).toBe(`v2 ${plugin}\n`);
        await writeFile(log, '');
        const keptProbe = run(detectComposeCommand(false, projectDir), { DOCKER_CONFIG: config, LOG: log });
        expect([keptProbe.status, keptProbe.stdout, await readFile(log, 'utf8')]).toEqual([0, `v2 ${plugin}\nengine-kept\n`, '']);
        const keptCli = await detectDockerCli({ ...server, run: (commands) => server.run(commands) }, false, false, projectDir);
        expect(keptCli).toEqual({ compose: 'v2', sudo: false, composePlugin: plugin, kept: true });
        expect(keepCli(projectDir, keptCli)).toEqual([]);
        // Another plugin first in docker's search (here: none in the config folder, so the machine's or none) is a full probe again.
        expect(run(detectComposeCommand(false, projectDir), { DOCKER_CONFIG: join(dir, 'elsewhere'), LOG: log }).stdout).not.toContain('engine-kept');
        // With sudo nothing kept is read.
        expect(script(detectComposeCommand(true, projectDir))).not.toContain('docker-cli');
        // A failure after a kept answer: the whole probe's error when docker is the problem, else the failure as it was.
        const failure = new Error('pull images failed');
        expect(await clearerDockerError(server, keptCli, failure)).toBe(failure);
        expect(await clearerDockerError(server, { ...keptCli, kept: false }, failure)).toBe(failure);
        const engineDown: Executor = {
          ...server,
          run: (commands) => {
            const done = run(commands, { DOCKER_CONFIG: config, LOG: log, ENGINE_DOWN: '1' });
            return Promise.resolve({ code: done.status ?? 1, stdout: done.stdout, stderr: done.stderr });
          },
        };
        const connectionLost: Executor = { ...server, run: () => Promise.reject(new Error('connection lost')) };
        expect(await clearerDockerError(connectionLost, keptCli, failure)).toBe(failure);
        expect((await clearerDockerError(engineDown, keptCli, failure)).message).toMatch(
          /^docker cannot reach the Docker engine on the server \(docker said: engine down\)/,
        );
        // A plugin that fails is not the last word: docker's own way is asked.
        expect(await detect({ PLUGIN_EXIT: '1', DOCKER_COMPOSE_WORKS: '1' })).toEqual({
          found: 'v2',
          ran: ['docker compose version', 'docker version --format {{.Server.Version}}', 'plugin version'],
        });
        // A Compose v1 someone put where plugins go is not the v2 plugin.
        expect(await detect({ PLUGIN_SAYS: 'docker-compose version 1.29.2, build 5becea4c', DOCKER_COMPOSE_WORKS: '1' })).toEqual({
          found: 'v2',
          ran: ['docker compose version', 'docker version --format {{.Server.Version}}', 'plugin version'],
        });
        await writeFile(join(config, 'config.json'), '{"cliPluginsExtraDirs": ["/opt/plugins"]}\n');
        expect(await detect({ DOCKER_COMPOSE_WORKS: '1' })).toEqual({
          found: 'v2',
          ran: ['docker compose version', 'docker version --format {{.Server.Version}}'],
        });
      },
    );
  });

  it('says engine-ok when docker version warns at length on stderr (no SIGPIPE under pipefail), and keeps the first 300 bytes of a failure', async () => {
    // docker compose works; docker version answers after 200 kB of warnings, or fails with them.
    await withFakeDocker('[ "$1" = compose ] && exit 0\nhead -c 200000 /dev/zero | tr "\\0" W >&2\necho >&2\n[ -z "$FAIL" ]\n', (run) => {
      // The first word: this machine's own plugin, if it has one where plugins go, may follow it.
      const detect = (env: Record<string, string> = {}) =>
        run(detectComposeCommand(false), env)
          .stdout.replace(/^v2 .*/, 'v2')
          .split('\n');
      const ok = detect();
      expect([ok[0], ok.at(-2)]).toEqual(['v2', 'engine-ok']);
      const failed = detect({ FAIL: '1' });
      expect([failed[0], failed[1], failed.at(-2)]).toEqual(['v2', 'W'.repeat(300), 'engine-failed']);
    });
  });

  it('inspects the containers a round saw, and lists the project again when one of them is gone', async () => {
    await withFakeDocker(
      'case "$1" in\n  inspect) for id in "${@:2}"; do [ "$id" = gone ] && exit 1; done; echo "[inspected ${*:2}]" ;;\n  ps) echo fresh ;;\nesac\n',
      (run) => {
        expect(run(inspectSeenContainers(V2, 'shop', ['a', 'b'])).stdout).toBe('[inspected a b]\n');
        expect(run(inspectSeenContainers(V2, 'shop', ['a', 'gone'])).stdout).toBe('[inspected fresh]\n');
      },
    );
  });

  it('resolves digests, inspects project containers and removes images without failing on images still in use', () => {
    expect(script(repoDigests(V2, ['r/app:1', 'db:16']))).toBe("set -euo pipefail\ndocker image inspect --format '{{json .RepoDigests}}' r/app:1 db:16");
    expect(script(inspectProjectContainers(V1_SUDO, 'shop'))).toBe(
      "set -euo pipefail\nsudo -n docker ps -aq --filter 'label=com.docker.compose.project=shop' | xargs -r sudo -n docker inspect",
    );
    expect(script(removeImages(V2, ['r/app@sha256:ab']))).toBe('set -euo pipefail\ndocker image rm r/app@sha256:ab >/dev/null 2>&1 || true');
  });
});

describe('lock builders', () => {
  const owner = { token: 't0k', actor: "o'neil", runUrl: 'https://gh/run/1', release: 'sha', startedAt: '2026-01-01T00:00:00Z' };
  it('takes the lock with mkdir, reports age and owner, and takes over a stale lock by atomic rename', () => {
    const ownerJson = `'{"token":"t0k","actor":"o'\\''neil","runUrl":"https://gh/run/1","release":"sha","startedAt":"2026-01-01T00:00:00Z"}'`;
    expect(script(tryLock('/opt/app', owner, 1800))).toBe(
      [
        'set -euo pipefail',
        'if ! mkdir -p -- /opt/app 2>/dev/null || [ ! -w /opt/app ]; then printf \'project-dir %s cannot be created or written by %s. Create it once, as root or with sudo, owned by that user:\\n  sudo install -d -o %s -g %s %s\\n\' /opt/app "$(id -un)" "$(id -un)" "$(id -gn)" "$(printf %q /opt/app )" >&2; exit 1; fi',
        `if mkdir /opt/app/.skiff-lock 2>/dev/null && printf '%s\\n' ${ownerJson} > /opt/app/.skiff-lock/owner.json && echo acquired ; then exit 0; fi`,
        'age=$(( $(date +%s) - $(stat -c %Y /opt/app/.skiff-lock 2>/dev/null || date +%s) ))',
        `if [ "$age" -gt 1800 ] && mv -T /opt/app/.skiff-lock /opt/app/.skiff-lock.stale-t0k 2>/dev/null ;then rm -rf /opt/app/.skiff-lock.stale-t0k ; mkdir /opt/app/.skiff-lock 2>/dev/null && printf '%s\\n' ${ownerJson} > /opt/app/.skiff-lock/owner.json && echo took-over || echo held 0 ; exit 0; fi`,
        'echo held "$age"',
        'cat /opt/app/.skiff-lock/owner.json 2>/dev/null || true',
      ].join('\n'),
    );
  });

  it('releases and refreshes only its own lock', () => {
    expect(script(releaseLock('/opt/app', 't0k'))).toBe(
      `set -euo pipefail\nif grep -qF '"token":"t0k"' /opt/app/.skiff-lock/owner.json 2>/dev/null; then rm -rf /opt/app/.skiff-lock ; echo released; else echo not-held; fi`,
    );
    expect(script(touchLock('/opt/app', 't0k'))).toContain('then touch /opt/app/.skiff-lock ; fi');
  });

  it('beside the probe, takes the lock only where releases exist, and reads in the same script once it holds it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skiff lock '));
    try {
      const project = join(dir, 'app');
      const run = () => spawnSync('bash', ['-c', script(tryLockWhereDeployed(project, releasesDir(project), owner, readState(project)))], { encoding: 'utf8' });
      // A server Skiff never deployed to is left as it was: not even project-dir is created.
      const fresh = run();
      expect([fresh.status, fresh.stdout, fresh.stderr]).toEqual([0, 'not-deployed\n', '']);
      await expect(readdir(dir)).resolves.toEqual([]);

      const id = '20260101T000000Z-aaaaaaa-0001';
      await mkdir(join(project, 'releases', id), { recursive: true });
      await writeFile(join(project, 'releases', id, 'deployed'), '');
      const taken = run();
      expect(taken.status, taken.stderr).toBe(0);
      const attempt = parseEarlyLockAttempt(taken.stdout);
      expect(attempt.kind).toBe('acquired');
      // readState's own `exit 0` (no releases dir) ends only its subshell; here it lists the release.
      expect(parseState(attempt.kind === 'acquired' ? attempt.after : '')).toMatchObject({ releases: [id], deployed: new Set([id]) });
      expect(JSON.parse(await readFile(join(project, '.skiff-lock', 'owner.json'), 'utf8'))).toEqual(owner);

      // Held (by this run or another): nothing is read, and the owner file is not touched.
      const busy = run();
      expect([busy.status, busy.stdout]).toEqual([0, 'busy\n']);
      expect(JSON.parse(await readFile(join(project, '.skiff-lock', 'owner.json'), 'utf8'))).toEqual(owner);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('parses the answers', () => {
    expect(parseEarlyLockAttempt('not-deployed\n')).toEqual({ kind: 'not-deployed' });
    expect(parseEarlyLockAttempt('busy\n')).toEqual({ kind: 'busy' });
    expect(parseEarlyLockAttempt('acquired\nrelease x\n')).toEqual({ kind: 'acquired', after: 'release x\n' });
    expect(() => parseEarlyLockAttempt('bash: mkdir: not found\n')).toThrow(/Unexpected answer/);
    expect(parseLockAttempt('acquired\n')).toEqual({ kind: 'acquired' });
    expect(parseLockAttempt('took-over\n')).toEqual({ kind: 'took-over' });
    expect(parseLockAttempt('held 12\n{"actor":"a","token":"x"}\n')).toEqual({ kind: 'held', ageSeconds: 12, owner: { actor: 'a', token: 'x' } });
    expect(parseLockAttempt('held 3\n')).toEqual({ kind: 'held', ageSeconds: 3 });
    expect(() => parseLockAttempt('')).toThrow(/Unexpected answer/);
  });
});

describe('release builders', () => {
  it('names releases by time, sha and a random suffix', () => {
    const id = newReleaseId(new Date('2026-11-21T22:24:30.123Z'), '1A2B3C4D5E', 'beef');
    expect(id).toBe('20261121T222430Z-1a2b3c4-beef');
    expect(isReleaseId(id)).toBe(true);
    expect(newReleaseId(new Date('2026-11-21T22:24:30Z'), '', 'x')).toBe('20261121T222430Z-manual-x000');
    expect(isReleaseId('../../etc')).toBe(false);
  });

  it('creates, switches atomically, appends JSON lines and removes', () => {
    expect(script(createRelease('/opt/app', 'r1'))).toBe('set -euo pipefail\nmkdir -p /opt/app/releases\nmkdir -m 700 /opt/app/releases/r1');
    expect(script(switchCurrent('/opt/app', 'r1'))).toBe(
      'set -euo pipefail\nln -sfn releases/r1 /opt/app/.current.tmp\nmv -T /opt/app/.current.tmp /opt/app/current\ntouch /opt/app/releases/r1/deployed',
    );
    const entry = { event: 'deploy', status: 'deployed', from: null, to: 'r1', actor: 'a', runUrl: 'u', at: 't' } as const;
    expect(script(appendAudit('/opt/app', entry))).toBe(
      `set -euo pipefail\nprintf '%s\\n' '{"event":"deploy","status":"deployed","from":null,"to":"r1","actor":"a","runUrl":"u","at":"t"}' >> /opt/app/audit.log`,
    );
    expect(script(removeReleases('/opt/app', ['a', 'b']))).toBe('set -euo pipefail\nrm -rf /opt/app/releases/a /opt/app/releases/b');
    expect(removeReleases('/opt/app', [])).toEqual([]);
    expect(imageLockFile({ web: 'r/app@sha256:1' })).toBe('{"services":{"web":{"image":"r/app@sha256:1"}}}\n');
  });

  it('links the env file, keeping a hand-written one aside', () => {
    expect(script(linkEnv('/opt/app', 'r1', true))).toBe(
      [
        'set -euo pipefail',
        'if [ -f /opt/app/.env ] && [ ! -L /opt/app/.env ]; then mv /opt/app/.env /opt/app/.env.before-skiff ; fi',
        'ln -sfn releases/r1/.env /opt/app/.env.tmp-link',
        'mv -T /opt/app/.env.tmp-link /opt/app/.env',
      ].join('\n'),
    );
    expect(
      script(linkEnv('/opt/app', 'r1', false))
        .split('\n')
        .at(-1),
    ).toBe('if [ -L /opt/app/.env ]; then rm -f /opt/app/.env ; fi');
  });

  it('reads the server state in one script and parses it', () => {
    expect(script(readState('/opt/app').slice(0, 5))).toBe(
      [
        'set -euo pipefail',
        "find /opt/app -maxdepth 1 -name current -type l -printf 'current %l\\n' 2>/dev/null || true",
        '[ -d /opt/app/releases ] || exit 0',
        "find /opt/app/releases -mindepth 1 -maxdepth 1 -type d -printf 'release %f\\n'",
        "find /opt/app/releases -mindepth 2 -maxdepth 2 -name deployed -printf 'deployed %h\\n'",
        `find /opt/app/releases -mindepth 2 -maxdepth 2 -name images.lock.json -exec awk 'FNR == 1 { n = split(FILENAME, part, "/"); id = part[n - 1]; print "lock " id " " $0 }' '{}' +`,
      ].join('\n'),
    );
    const a = '20260101T000000Z-aaaaaaa-0001';
    const b = '20260102T000000Z-bbbbbbb-0002';
    const c = '20260103T000000Z-ccccccc-0003';
    const state = parseState(
      [
        `current releases/${b}`,
        `release ${c}`,
        `release ${a}`,
        `release ${b}`,
        'release .hidden',
        `deployed /opt/app/releases/${a}`,
        `deployed /opt/app/releases/${b}`,
        `lock /opt/app/releases/${a} {"services":{"web":{"image":"r/app@sha256:a"}}}`,
        `lock /opt/app/releases/${c} {"serv`,
      ].join('\n'),
    );
    expect(state.current).toBe(b);
    expect(state.releases).toEqual([a, b, c]);
    expect([...state.deployed]).toEqual([a, b]);
    expect(state.locks.get(a)).toEqual({ web: 'r/app@sha256:a' });
    expect(state.locks.has(c)).toBe(false);
    expect(previousRelease(state)).toBe(a);
    expect(previousRelease(state, a)).toBeUndefined();
  });

  it("reads the state in a real shell: each release's full git SHA from its meta.json, its image lock, under a project directory with a space in its name", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skiffdeploy state '));
    try {
      const a = '20260101T000000Z-aaaaaaa-0001';
      const b = '20260102T000000Z-bbbbbbb-0002';
      const c = '20260103T000000Z-ccccccc-0003';
      for (const id of [a, b, c]) await mkdir(join(dir, 'releases', id), { recursive: true });
      await writeFile(
        join(dir, 'releases', a, 'meta.json'),
        `${JSON.stringify({ id: a, sha: 'AAAAAAA0123456789abcdef0123456789abcdef0', ref: 'main' }, null, 2)}\n`,
      );
      await writeFile(join(dir, 'releases', b, 'meta.json'), '{\n  "id": "x"\n}\n');
      await writeFile(join(dir, 'releases', a, 'images.lock.json'), '{"services":{"web":{"image":"r/app@sha256:a"}}}\n');
      // A lock cut short by a crash: empty, without even a newline.
      await writeFile(join(dir, 'releases', b, 'images.lock.json'), '');
      await writeFile(join(dir, 'releases', c, 'images.lock.json'), '{"services":{"web":{"image":"r/app@sha256:c"}}}\n');
      await writeFile(join(dir, 'releases', a, 'deployed'), '');
      await symlink(`releases/${a}`, join(dir, 'current'));
      // Debian and Ubuntu servers have mawk as awk unless gawk was installed: the script is run with each.
      await mkdir(join(dir, 'bin'));
      await symlink('/usr/bin/mawk', join(dir, 'bin', 'awk'));
      const withMawk = spawnSync('bash', ['-c', script(readState(dir))], {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` },
      });
      const result = spawnSync('bash', ['-c', script(readState(dir))], { encoding: 'utf8' });
      expect(result.status, result.stderr).toBe(0);
      expect([withMawk.status, withMawk.stdout], withMawk.stderr).toEqual([0, result.stdout]);
      const state = parseState(result.stdout);
      expect(state.current).toBe(a);
      expect(state.shas?.get(a)).toBe('aaaaaaa0123456789abcdef0123456789abcdef0');
      expect(state.shas?.has(b)).toBe(false);
      expect(state.releases).toEqual([a, b, c]);
      expect([...state.deployed]).toEqual([a]);
      expect(Object.fromEntries(state.locks)).toEqual({ [a]: { web: 'r/app@sha256:a' }, [c]: { web: 'r/app@sha256:c' } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prunes beyond keep-releases, keeps current and the new release, and only images no kept release uses', () => {
    const ids = ['20260101T000000Z-a-0001', '20260102T000000Z-b-0002', '20260103T000000Z-c-0003', '20260104T000000Z-d-0004', '20260105T000000Z-e-0005'];
    const [a, b, c, d, e] = ids as [string, string, string, string, string];
    const state = {
      current: e,
      releases: ids,
      deployed: new Set([a, b, d, e]),
      locks: new Map<string, Record<string, string>>([
        [a, { web: 'app@sha256:1' }],
        [b, { web: 'app@sha256:2', db: 'db@sha256:9' }],
        [c, { web: 'app@sha256:3' }],
        [d, { web: 'app@sha256:4', db: 'db@sha256:9' }],
        [e, { web: 'app@sha256:5', db: 'db@sha256:9' }],
      ]),
    };
    // c failed and is older than current: it goes; db@9 is still used by d and e.
    expect(planPrune(state, 2, [e])).toEqual({ remove: [a, b, c], images: ['app@sha256:1', 'app@sha256:2', 'app@sha256:3'] });
    // After a rollback to b: b (current) and the newest deployed e stay; c failed after b, so it stays for inspection.
    expect(planPrune({ ...state, current: b }, 1, [])).toEqual({ remove: [a, d], images: ['app@sha256:1', 'app@sha256:4'] });
  });

  it('plans the prune after a deploy from the releases read before it: the new release is current, deployed, kept with its images', () => {
    const [a, b, c] = ['20260101T000000Z-aaaaaaa-0001', '20260102T000000Z-bbbbbbb-0002', '20260103T000000Z-ccccccc-0003'];
    const before = {
      current: b,
      releases: [a, b],
      deployed: new Set([a, b]),
      locks: new Map<string, Record<string, string>>([
        [a, { web: 'app@sha256:1', db: 'db@sha256:9' }],
        [b, { web: 'app@sha256:2', db: 'db@sha256:9' }],
      ]),
    };
    const after = afterPassed(before, c, { web: 'app@sha256:1', db: 'db@sha256:9' });
    expect(after.current).toBe(c);
    expect(after.releases).toEqual([a, b, c]);
    expect([...after.deployed].sort()).toEqual([a, b, c]);
    // c runs a's web image again: pruning a must not delete it.
    expect(planPrune(after, 1, [c])).toEqual({ remove: [a, b], images: ['app@sha256:2'] });
    // What it was given is left as it was (the story may read it again).
    expect(before.current).toBe(b);
    expect(before.deployed.has(c)).toBe(false);
    expect(before.locks.has(c)).toBe(false);
  });

  it('never removes an image by tag: a release that failed before its images were pinned still lists the tags it asked for', () => {
    const [a, b, c] = ['20260101T000000Z-aaaaaaa-0001', '20260102T000000Z-bbbbbbb-0002', '20260103T000000Z-ccccccc-0003'];
    // b failed its pull: its lock holds the requested app:v1, the very image a (kept) runs pinned by digest.
    // Removing app:v1 would delete a's image, and a rollback to a would then need to pull it again.
    const state = {
      current: c,
      releases: [a, b, c],
      deployed: new Set([a, c]),
      locks: new Map<string, Record<string, string>>([
        [a, { web: 'app@sha256:1' }],
        [b, { web: 'app:v1' }],
        [c, { web: 'app@sha256:3' }],
      ]),
    };
    expect(planPrune(state, 5, [c])).toEqual({ remove: [b], images: [] });
  });

  it('removes an image built on the server for a pruned release (tagged with its id), and only that one', () => {
    const [a, b, c] = ['20260101T000000Z-aaaaaaa-0001', '20260102T000000Z-bbbbbbb-0002', '20260103T000000Z-ccccccc-0003'];
    const state = {
      current: c,
      releases: [a, b, c],
      deployed: new Set([a, b, c]),
      locks: new Map<string, Record<string, string>>([
        [a, { backend: `shop-backend:${a}`, proxy: 'proxy:v1' }],
        [b, { backend: `shop-backend:${b}` }],
        [c, { backend: `shop-backend:${c}` }],
      ]),
    };
    expect(planPrune(state, 2, [c])).toEqual({ remove: [a], images: [`shop-backend:${a}`] });
  });
});

describe('digests', () => {
  it('reads services and pins each image to its own repository digest', () => {
    const services = servicesFromConfig(
      'services:\n  web:\n    image: reg:5000/shop/web:v2\n  db:\n    image: postgres:16\n  built:\n    build: .\n  local:\n    image: mytool:dev\n',
    );
    expect(services).toEqual({ web: 'reg:5000/shop/web:v2', db: 'postgres:16', built: undefined, local: 'mytool:dev' });
    expect(repositoryOf('reg:5000/shop/web:v2')).toBe('reg:5000/shop/web');
    expect(repositoryOf('reg:5000/web@sha256:ab')).toBe('reg:5000/web');
    const images = ['reg:5000/shop/web:v2', 'postgres:16', 'mytool:dev'];
    const inspect = ['["other/web@sha256:00","reg:5000/shop/web@sha256:11"]', '["postgres@sha256:22"]', '[]'].join('\n');
    expect(pinImages(services, images, inspect)).toEqual({
      pinned: { web: 'reg:5000/shop/web@sha256:11', db: 'postgres@sha256:22', local: 'mytool:dev' },
      unpinned: ['local'],
    });
  });
});

describe('redact', () => {
  it('blanks every secret, longest first, and leaves short values alone', () => {
    expect(redact('url=postgres://u:pw@db token=abcdef x=1', ['postgres://u:pw@db', 'pw@db', 'abcdef', '1'])).toBe('url=*** token=*** x=1');
  });
});
