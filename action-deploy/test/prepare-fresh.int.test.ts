import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureBaseImages,
  pushWithOwnLogin,
  serveDockerRepositoryStandin,
  sh,
  sshdActionInputs,
  sshdConnectOptions,
  startFreshHost,
  startRegistry,
  tempDir,
  type DockerRepositoryStandin,
  type FreshHost,
  type Registry,
} from '@skiff/testbed';
import { SshConnection } from '@skiff/ssh';
import { buildApp, httpGet, runAction, type ActionRun } from './helpers';

/**
 * prepare: true on new Debian 13, Ubuntu 22.04 and Ubuntu 24.04 VPSs with nothing on them — systemd as
 * PID 1, sshd, root with a key, no Docker (@skiff/testbed's fresh servers; their apt reads a local
 * copy of the distribution's packages). Prepare installs Docker and Compose from those packages, rotates Docker's logs, gives the
 * deploy user the docker group, adds swap and turns on unattended upgrades; then a real deploy
 * logs in as the deploy user, pinned to the host key prepare reported, and runs a compose app
 * with a healthcheck, an env file and a private image. On Debian 12, which has no Compose v2
 * package, Docker comes from Docker's apt repository — a local stand-in with Docker's layout,
 * package names and a signing key of its own (download.docker.com is out of reach here).
 */

const PROJECT = 'shop';
const PROJECT_DIR = `/opt/${PROJECT}`;
const WEB_PORT = 8080;
const SWAP = '64M';
let host: FreshHost;
let registry: Registry;
let workspace: { path: string; remove(): Promise<void> };
let deployKey: { privateKey: string; publicKey: string };
const image = () => `${registry.address}/skiffprepare/web:v1`;

const prepare = (inputs: Record<string, string> = {}): Promise<ActionRun> =>
  runAction(
    {
      ...sshdActionInputs(host),
      prepare: 'true',
      'project-dir': PROJECT_DIR,
      'deploy-user-keys': deployKey.publicKey,
      'swap-size': SWAP,
      ...inputs,
    },
    { workspace: workspace.path },
  ).then(async (run) => {
    if (process.env.SKIFF_DEBUG_LOG) await writeFile(`${process.env.SKIFF_DEBUG_LOG}.${Date.now()}`, run.stdout);
    return run;
  });

async function keyPair(name: string, comment: string): Promise<{ privateKey: string; publicKey: string }> {
  const path = join(workspace.path, name);
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return { privateKey: await readFile(path, 'utf8'), publicKey: (await readFile(`${path}.pub`, 'utf8')).trim() };
}

const inServer = (script: string) => host.exec(['bash', '-c', script]);
const daemonJson = async () => JSON.parse(await inServer('cat /etc/docker/daemon.json')) as Record<string, unknown>;
/** The server's /swapfile as the kernel has it on (the kernel is this machine's, so no other server may run one). */
const swapMiB = async () => Number(await inServer(`awk '$1 == "/swapfile" { kib = $3 } END { print int((kib + 4) / 1024) }' /proc/swaps`));

/** A real deploy as the deploy user, logged in with its key and pinned to the host key prepare's `known-hosts` output gave. */
async function deploysAsDeployUser(prepared: ActionRun): Promise<void> {
  const run = await runAction(
    {
      host: host.host,
      port: String(host.port),
      username: 'deploy',
      key: deployKey.privateKey,
      'known-hosts': prepared.outputs['known-hosts']!,
      'project-dir': PROJECT_DIR,
      'project-name': PROJECT,
      'env-file': 'GREETING=hello\n',
      registry: registry.address,
      'registry-username': registry.username,
      'registry-password': registry.password,
      'health-url': `http://${host.address}:${WEB_PORT}/`,
      'health-interval': '1s',
      'health-timeout': '60s',
    },
    { workspace: workspace.path },
  );
  expect(run.errors).toEqual([]);
  expect(run.outputs.status).toBe('deployed');
  expect((await httpGet(`http://${host.address}:${WEB_PORT}/`)).body.trim()).toBe('version=v1');
  // As the deploy user, through the docker group, with logs rotating as prepare set.
  expect(await inServer(`su - deploy -c "docker ps --format '{{.Names}} {{.Status}}'"`)).toMatch(/web.*Up/);
  expect(await inServer(`docker inspect --format '{{json .HostConfig.LogConfig}}' $(docker ps -q)`)).toBe(
    '{"Type":"json-file","Config":{"max-file":"3","max-size":"10m"}}\n',
  );
  expect(await inServer(`stat -c %U ${PROJECT_DIR}/.env`)).toBe('deploy\n');
}

beforeAll(async () => {
  await ensureBaseImages();
  [registry, workspace] = await Promise.all([startRegistry(), tempDir('skiffprepare-fresh-ws')]);
  deployKey = await keyPair('deploy_key', 'ci@example');
  await buildApp(image(), 'ok', 'v1');
  await pushWithOwnLogin(registry, image());
  await sh('docker', ['image', 'rm', image()]);
  await writeFile(
    join(workspace.path, 'compose.yaml'),
    ['services:', '  web:', `    image: ${image()}`, '    env_file: .env', '    restart: unless-stopped', '    ports:', `      - "${WEB_PORT}:8080"`, ''].join(
      '\n',
    ),
  );
}, 300_000);

afterAll(async () => {
  await Promise.all([registry?.stop(), workspace?.remove()]);
});

const SERVERS = [
  {
    distribution: 'debian-13',
    name: 'Debian 13',
    // Debian 13's docker.io only recommends the CLI, so it is named; its package turns unattended upgrades on itself.
    installed: 'docker.io docker-compose docker-cli docker-buildx',
    upgrades: 'installed unattended-upgrades',
  },
  {
    distribution: 'ubuntu-22.04',
    name: 'Ubuntu 22.04',
    installed: 'docker.io docker-compose-v2 docker-buildx',
    upgrades: 'installed unattended-upgrades',
  },
  {
    distribution: 'ubuntu-24.04',
    name: 'Ubuntu 24.04',
    // Ubuntu's docker.io holds the CLI; there is no docker-cli package to add.
    installed: 'docker.io docker-compose-v2 docker-buildx',
    upgrades: 'installed unattended-upgrades',
  },
] as const;

describe.each(SERVERS)('prepare: true on a fresh $name server, then a deploy as the deploy user', (server) => {
  beforeAll(async () => {
    host = await startFreshHost(`skfprep-${server.distribution.replace('.', '')}`, { distribution: server.distribution, registries: [registry.address] });
  }, 300_000);
  afterAll(async () => {
    await host?.stop();
  });

  it('refuses a Docker it cannot place (here a script standing where a static install puts docker) and installs nothing beside it', async () => {
    await inServer(`printf '#!/bin/sh\\necho "Docker version 27.0.0, build static"\\n' >/usr/local/bin/docker && chmod +x /usr/local/bin/docker`);
    try {
      const run = await prepare();
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toContain(
        'Docker and the Compose v2 plugin: /usr/local/bin/docker is not from any package (installed by hand or by a script?); prepare does not change a Docker it cannot update',
      );
      expect(await inServer("dpkg-query -W -f='${Status}' docker.io 2>/dev/null || echo not installed")).toBe('not installed\n');
    } finally {
      await inServer('rm /usr/local/bin/docker');
    }
  }, 300_000);

  let first: ActionRun;
  it("installs Docker and Compose from the distribution's packages, rotates its logs, gives the deploy user the docker group, adds swap and unattended upgrades", async () => {
    expect(await inServer('command -v docker || echo none')).toBe('none\n');
    first = await prepare();
    expect(first.errors).toEqual([]);
    expect(first.code).toBe(0);
    expect(first.outputs.status).toBe('prepared');
    expect(first.outputs['known-hosts']).toContain(host.knownHostsLine);
    // Steps in order, each saying what it did.
    expect(first.stdout).toMatch(
      new RegExp(
        `Docker and the Compose v2 plugin: done: installed ${server.installed}: Docker \\d+\\.\\d+\\.\\d+\\S* with Compose \\d+\\.\\d+\\.\\d+\\S*, running and enabled at boot`,
      ),
    );
    expect(first.stdout).toContain('Setting up docker.io'); // apt's own output, live
    expect(first.stdout).toContain(
      'Docker log rotation: done: json-file logs rotate at max-size 10m, max-file 3 (before: no rotation); wrote /etc/docker/daemon.json and restarted Docker',
    );
    expect(first.stdout).toContain('deploy in the docker group: done: added deploy to the docker group');
    expect(first.stdout).toContain('swap file /swapfile (64 MiB): done: created and switched on /swapfile (64 MiB); added it to /etc/fstab');
    expect(first.stdout.split('\n')).toContain(`unattended security upgrades: done: ${server.upgrades}`);
    expect(first.summary).toMatch(/\| Docker and the Compose v2 plugin \| done \| installed docker\.io/);

    // What is really on the server now.
    expect(await inServer('systemctl is-active docker; systemctl is-enabled docker')).toBe('active\nenabled\n');
    expect(await inServer('docker compose version --short')).toMatch(/^\d+\.\d+\.\d+/);
    expect(await daemonJson()).toEqual({ 'log-driver': 'json-file', 'log-opts': { 'max-size': '10m', 'max-file': '3' } });
    expect(await inServer("docker info --format '{{.LoggingDriver}}'")).toBe('json-file\n');
    expect(await inServer('id -nG deploy')).toMatch(/\bdocker\b/);
    expect(await swapMiB()).toBe(64);
    expect(await inServer('grep swapfile /etc/fstab')).toBe('/swapfile none swap sw 0 0\n');
    expect(await inServer('stat -c %a /swapfile')).toBe('600\n');
    expect(await inServer('eval "$(apt-config shell u APT::Periodic::Unattended-Upgrade l APT::Periodic::Update-Package-Lists)"; echo $u $l')).toBe('1 1\n');
    expect(await inServer('systemctl is-active apt-daily-upgrade.timer apt-daily.timer')).toBe('active\nactive\n');
    // unattended-upgrades really runs with the configuration it was given (no packages to upgrade here).
    await inServer('unattended-upgrade --dry-run');
  }, 600_000);

  it('a deploy logs in as the deploy user, pinned to the host key prepare reported, and runs a compose app with a private image', async () => {
    await deploysAsDeployUser(first);
  }, 300_000);

  it('a second run changes nothing and says so', async () => {
    const again = await prepare();
    expect(again.errors).toEqual([]);
    expect(again.outputs.status).toBe('prepared');
    const results = [...again.summary.matchAll(/^\| ([^|]+) \| (already done|done) \|/gm)].map((match) => [match[1]!.trim(), match[2]]);
    expect(results).toEqual([
      ['deploy user deploy', 'already done'],
      ['authorized keys of deploy', 'already done'],
      [`project directory ${PROJECT_DIR}`, 'already done'],
      ['Docker and the Compose v2 plugin', 'already done'],
      ['Docker log rotation', 'already done'],
      ['deploy in the docker group', 'already done'],
      ['swap file /swapfile (64 MiB)', 'already done'],
      ['unattended security upgrades', 'already done'],
    ]);
    expect(again.stdout).toMatch(
      /Docker and the Compose v2 plugin: already done: Docker \S+ with Compose \S+, from the distribution's packages, running and enabled/,
    );
    expect(again.stdout).not.toContain('Setting up');
  }, 300_000);

  it("merges log rotation into an admin's daemon.json, keeping their settings, and does not restart Docker under running containers", async () => {
    const started = await inServer(`docker inspect --format '{{.State.StartedAt}}' $(docker ps -q)`);
    await inServer(`printf '%s' '{"debug": true, "log-opts": {"max-size": "50m", "labels": "app"}}' >/etc/docker/daemon.json`);
    const run = await prepare({ 'docker-log-max-file': '5' });
    expect(run.errors).toEqual([]);
    expect(run.stdout).toContain(
      'Docker log rotation: done: json-file logs rotate at max-size 10m, max-file 5 (before: max-size "50m", max-file "1"); wrote /etc/docker/daemon.json; Docker was not restarted, because 1 container(s) run',
    );
    expect(await daemonJson()).toEqual({ debug: true, 'log-driver': 'json-file', 'log-opts': { 'max-size': '10m', labels: 'app', 'max-file': '5' } });
    expect(await inServer(`docker inspect --format '{{.State.StartedAt}}' $(docker ps -q)`)).toBe(started);
    expect((await httpGet(`http://${host.address}:${WEB_PORT}/`)).body.trim()).toBe('version=v1');
  }, 300_000);

  it('refuses a daemon.json it cannot read, another log driver, and a swap size unlike the swap that is on — each naming what to do, nothing changed', async () => {
    await inServer(`printf '%s' '{"debug": true,' >/etc/docker/daemon.json`);
    const broken = await prepare();
    expect(broken.code).toBe(1);
    expect(broken.errors.join('\n')).toMatch(/Docker log rotation: \/etc\/docker\/daemon\.json is not valid JSON \(.+\); fix it, then run prepare again/);
    expect(await inServer('cat /etc/docker/daemon.json')).toBe('{"debug": true,');

    await inServer(`printf '%s' '{"log-driver": "journald"}' >/etc/docker/daemon.json`);
    const journald = await prepare();
    expect(journald.errors.join('\n')).toContain(
      'sends container logs to the "journald" log driver, which docker-log-max-size does not apply to; keep yours with docker-log-max-size: off',
    );
    const kept = await prepare({ 'docker-log-max-size': 'off', 'swap-size': '128M' });
    expect(kept.code).toBe(1);
    expect(kept.stdout).not.toContain('Docker log rotation');
    expect(kept.errors.join('\n')).toContain(
      'swap file /swapfile (128 MiB): /swapfile is on with 64 MiB, not the 128 MiB of swap-size; prepare does not resize swap in use',
    );
    expect(await swapMiB()).toBe(64);
    expect(await inServer('cat /etc/docker/daemon.json')).toBe('{"log-driver": "journald"}');
  }, 300_000);

  it('turns unattended upgrades back on where they were turned off, and refuses where a later apt setting turns them off again', async () => {
    await inServer(`sed -i 's/"1"/"0"/' /etc/apt/apt.conf.d/20auto-upgrades && systemctl disable --now apt-daily-upgrade.timer`);
    const run = await prepare({ 'docker-log-max-size': 'off' });
    expect(run.errors).toEqual([]);
    expect(run.stdout).toContain('unattended security upgrades: done: turned them on in /etc/apt/apt.conf.d/20auto-upgrades; started apt-daily-upgrade.timer');
    expect(await inServer('systemctl is-active apt-daily-upgrade.timer')).toBe('active\n');
    await inServer(`echo 'APT::Periodic::Unattended-Upgrade "0";' >/etc/apt/apt.conf.d/99-someone-else`);
    try {
      const refused = await prepare({ 'docker-log-max-size': 'off' });
      expect(refused.errors.join('\n')).toContain(
        'a later file in /etc/apt/apt.conf.d still turns APT::Periodic::Unattended-Upgrade or Update-Package-Lists off',
      );
    } finally {
      await inServer('rm /etc/apt/apt.conf.d/99-someone-else');
    }
  }, 300_000);

  it('with sudo: true, a second deploy user gets the one sudoers rule instead of the group, and docker works through sudo -n', async () => {
    const run = await prepare({ 'deploy-user': 'ops', sudo: 'true', 'docker-log-max-size': 'off', 'project-dir': '/opt/ops' });
    expect(run.errors).toEqual([]);
    expect(run.stdout).toContain('sudo -n docker for ops: done: wrote /etc/sudoers.d/skiff-ops-docker: ops ALL=(root) NOPASSWD: /usr/bin/docker');
    expect(await inServer('id -nG ops')).not.toMatch(/\bdocker\b/);
    const server = await SshConnection.connect(sshdConnectOptions({ ...host, username: 'ops', privateKey: deployKey.privateKey }));
    try {
      const result = await server.run([['sudo', '-n', 'docker', 'ps', '--format', '{{.Names}}']], { description: 'as ops', timeoutSeconds: 30 });
      expect(result.stdout.trim()).toBe(`${PROJECT}-web-1`);
      const other = await server.run([['sudo', '-n', 'true']], { description: 'as ops', allowFailure: true, timeoutSeconds: 30 });
      expect(other.code).not.toBe(0);
    } finally {
      await server.close();
    }
  }, 300_000);

  it('last, with harden-ssh: sshd takes key logins only after the deploy login was proven; root is shut out, the deploy user is not', async () => {
    const run = await prepare({ 'harden-ssh': 'true', 'deploy-user-key': deployKey.privateKey, 'docker-log-max-size': 'off' });
    expect(run.errors).toEqual([]);
    expect(run.stdout).toContain('sshd: key logins only, no root login: done: wrote /etc/ssh/sshd_config.d/00-skiff-hardening.conf and reloaded sshd');
    expect(await inServer('sshd -T | grep -Ei "^(permitrootlogin|passwordauthentication) " | sort')).toBe('passwordauthentication no\npermitrootlogin no\n');
    await expect(SshConnection.connect(sshdConnectOptions(host, { attempts: 1 }))).rejects.toThrow(/authentication/i);
    const server = await SshConnection.connect(sshdConnectOptions({ ...host, username: 'deploy', privateKey: deployKey.privateKey }));
    try {
      expect((await server.run([['docker', 'ps', '--format', '{{.Names}}']], { description: 'as deploy', timeoutSeconds: 30 })).stdout.trim()).toBe(
        `${PROJECT}-web-1`,
      );
    } finally {
      await server.close();
    }
    expect(await inServer('systemctl list-timers --all --no-legend | grep -c skiff || true')).toBe('0\n');
  }, 300_000);
});

const REPOSITORY_SERVERS = [
  // Debian 12 has no Compose v2 package: Docker's repository is its only way. The failure paths run here.
  { distribution: 'debian-12', name: 'Debian 12', id: 'debian', codename: 'bookworm', engine: '20\\.10', failurePaths: true },
  { distribution: 'ubuntu-24.04', name: 'Ubuntu 24.04', id: 'ubuntu', codename: 'noble', engine: '29\\.1', failurePaths: false },
] as const;

describe.each(REPOSITORY_SERVERS)("prepare: true on a fresh $name server, Docker from Docker's apt repository", (server) => {
  let standin: DockerRepositoryStandin;
  const fromStandin = (inputs: Record<string, string> = {}) =>
    prepare({
      'install-docker': 'docker-repository',
      'docker-repository': standin.url,
      'docker-repository-fingerprint': standin.fingerprint,
      'swap-size': '',
      ...inputs,
    });
  const aptFiles = () => inServer('ls /etc/apt/keyrings /etc/apt/sources.list.d 2>/dev/null | grep -c docker || true');
  beforeAll(async () => {
    host = await startFreshHost(`skfprep-repo-${server.id}`, { distribution: server.distribution, registries: [registry.address] });
    standin = await serveDockerRepositoryStandin(host);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([host?.stop(), standin?.stop()]);
  });

  if (server.failurePaths) {
    it("refuses a key whose fingerprint is not the one given (Docker's own, by default) and writes nothing", async () => {
      const run = await prepare({ 'install-docker': 'docker-repository', 'docker-repository': standin.url });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toContain(
        `Docker and the Compose v2 plugin: ${standin.url}/${server.id}/gpg is not the key docker-repository-fingerprint names (9DC858229FC7DD38854AE2D88D81803C0EBFCD88): it holds ${standin.fingerprint}; nothing was written`,
      );
      expect(standin.requests).toEqual([`/linux/${server.id}/gpg`]);
      // gpg, to read the key's fingerprint, came from the distribution's packages (a minimal Debian has none).
      expect(run.stdout).toContain('Setting up gpg');
      expect(await aptFiles()).toBe('0\n');
    }, 300_000);

    it('removes the source and key again when apt cannot read the repository, so apt-get update still works', async () => {
      standin.missing = /\/dists\//;
      try {
        const run = await fromStandin();
        expect(run.code).toBe(1);
        expect(run.errors.join('\n')).toMatch(
          new RegExp(
            `Docker and the Compose v2 plugin: apt could not read Docker's apt repository at ${standin.url.replace(/\./g, '\\.')}/${server.id}, so its source and key are removed again: .*Release`,
          ),
        );
        expect(run.stdout).toContain('removed /etc/apt/sources.list.d/docker.sources and /etc/apt/keyrings/docker.asc again: nothing was installed from them');
      } finally {
        delete standin.missing;
      }
      expect(await aptFiles()).toBe('0\n');
      expect(await inServer('apt-get update -q 2>&1 | grep -c "^[WE]:" || true')).toBe('0\n');
    }, 300_000);
  }

  let first: ActionRun;
  it("adds Docker's repository with the checked key and installs docker-ce, docker-ce-cli, containerd.io and both plugins from it", async () => {
    standin.requests.length = 0;
    first = await fromStandin();
    expect(first.errors).toEqual([]);
    expect(first.outputs.status).toBe('prepared');
    expect(first.stdout).toMatch(
      new RegExp(
        `Docker and the Compose v2 plugin: done: (installed [^;]+; )?added Docker's apt repository ${standin.url.replace(/\./g, '\\.')}/${server.id} \\(${server.codename} stable, key ${standin.fingerprint}\\) in /etc/apt/sources\\.list\\.d/docker\\.sources; installed docker-ce docker-ce-cli containerd\\.io docker-buildx-plugin docker-compose-plugin: Docker ${server.engine}\\.\\d+\\S* with Compose 2\\.\\d+\\.\\d+\\S*, running and enabled at boot`,
      ),
    );
    expect(await inServer('cat /etc/apt/sources.list.d/docker.sources')).toBe(
      `Types: deb\nURIs: ${standin.url}/${server.id}\nSuites: ${server.codename}\nComponents: stable\nArchitectures: amd64\nSigned-By: /etc/apt/keyrings/docker.asc\n`,
    );
    expect(await inServer('stat -c %a /etc/apt/keyrings/docker.asc')).toBe('644\n');
    // apt checked the signature and took the packages from the repository, not from Debian's.
    expect(standin.requests).toEqual(expect.arrayContaining([`/linux/${server.id}/dists/${server.codename}/InRelease`]));
    expect(standin.requests.filter((path) => path.endsWith('.deb')).length).toBe(5);
    expect(await inServer("dpkg-query -W -f='${Package} ${Version}\\n' docker-ce")).toMatch(
      new RegExp(`^docker-ce 5:${server.engine}\\.\\d+-1~${server.id}\\.[0-9.]+~${server.codename}~standin\\n$`),
    );
    expect(await inServer("(dpkg-query -W -f='${db:Status-Status}' docker.io 2>/dev/null || printf not-installed); echo")).toBe('not-installed\n');
    expect(await inServer('systemctl is-active docker; systemctl is-enabled docker')).toBe('active\nenabled\n');
    expect(await inServer('id -nG deploy')).toMatch(/\bdocker\b/);
    expect(await daemonJson()).toEqual({ 'log-driver': 'json-file', 'log-opts': { 'max-size': '10m', 'max-file': '3' } });
  }, 600_000);

  it('a deploy as the deploy user runs the compose app on that Docker', async () => {
    await deploysAsDeployUser(first);
  }, 300_000);

  it("a second run finds Docker from Docker's apt repository and changes nothing, without asking the repository", async () => {
    standin.requests.length = 0;
    const again = await fromStandin();
    expect(again.errors).toEqual([]);
    expect(again.stdout).toMatch(
      new RegExp(
        `Docker and the Compose v2 plugin: already done: Docker ${server.engine}\\.\\S+ with Compose \\S+, from Docker's apt repository, running and enabled`,
      ),
    );
    expect(again.summary).not.toMatch(/\| done \|/);
    expect(standin.requests).toEqual([]);
  }, 300_000);

  if (server.failurePaths) {
    it('removes a swap file it could not switch on, so the next run starts clean', async () => {
      // swapon refusing, as on a kernel or filesystem without swap file support.
      await inServer(
        `printf '#!/bin/sh\\necho "swapon: /swapfile: swapon failed: Invalid argument" >&2\\nexit 255\\n' >/usr/local/sbin/swapon && chmod +x /usr/local/sbin/swapon`,
      );
      try {
        const run = await fromStandin({ 'swap-size': SWAP });
        expect(run.code).toBe(1);
        expect(run.errors.join('\n')).toMatch(/swap file \/swapfile \(64 MiB\) failed with exit code 255:[\s\S]*swapon failed: Invalid argument/);
        expect(run.stdout).toContain('removed /swapfile again');
        expect(await inServer('ls /swapfile 2>&1 || true; grep -c swapfile /etc/fstab || true')).toBe(
          "ls: cannot access '/swapfile': No such file or directory\n0\n",
        );
      } finally {
        await inServer('rm /usr/local/sbin/swapon');
      }
      const again = await fromStandin({ 'swap-size': SWAP });
      expect(again.errors).toEqual([]);
      expect(again.stdout).toContain('swap file /swapfile (64 MiB): done: created and switched on /swapfile (64 MiB); added it to /etc/fstab');
      expect(await swapMiB()).toBe(64);
    }, 300_000);

    it("puts an admin's daemon.json back when Docker does not start with the merged one, and says why", async () => {
      // A classic: hosts in daemon.json clashes with the unit's -H fd://. Docker 20.10 has no
      // --validate, and Docker still runs because nobody restarted it since the file was edited.
      await inServer('docker ps -q | xargs -r docker stop >/dev/null');
      const admins = '{"debug": true, "hosts": ["unix:///var/run/docker.sock"]}\n';
      await inServer(`printf '%s' '${admins}' >/etc/docker/daemon.json`);
      try {
        const run = await fromStandin({ 'docker-log-max-file': '5' });
        expect(run.code).toBe(1);
        expect(run.errors.join('\n')).toMatch(
          /Docker log rotation: Docker did not start with the new \/etc\/docker\/daemon\.json \(.*specified both as a flag and in the configuration file: hosts.*\); Docker does not start with \/etc\/docker\/daemon\.json as it was either: fix \/etc\/docker\/daemon\.json \(it is as you left it\)/,
        );
        expect(await inServer('cat /etc/docker/daemon.json; ls /etc/docker | grep -c skiff || true')).toBe(`${admins}0\n`);
      } finally {
        await inServer('rm /etc/docker/daemon.json; systemctl reset-failed docker.service docker.socket; systemctl restart docker');
      }
      expect(await inServer('systemctl is-active docker')).toBe('active\n');
    }, 300_000);
  }
});
