import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sh, sshdActionInputs, sshdConnectOptions, startSystemdHost, tempDir, type SystemdHost } from '@skiff/testbed';
import { SshConnection } from '@skiff/ssh';
import { planSteps, runAction, type ActionRun } from './helpers';

/**
 * prepare: true on a real "fresh VPS": Debian 12 with systemd as PID 1 and sshd, reached as root
 * over SSH on a 127.0.0.1 port, nothing else set up. The deploy user's key pair is made here;
 * afterwards that user logs in with it. This host has no Docker (none can run in it), so the run
 * ends at the Docker step with what to install on Debian 12, after the steps before it.
 */

const PROJECT_DIR = '/opt/shop';
let host: SystemdHost;
let workspace: { path: string; remove(): Promise<void> };
let deployKey: { privateKey: string; publicKey: string };
let adminKey: { privateKey: string; publicKey: string };

const prepare = (inputs: Record<string, string> = {}): Promise<ActionRun> =>
  runAction(
    {
      ...sshdActionInputs(host),
      prepare: 'true',
      'project-dir': PROJECT_DIR,
      'deploy-user-keys': deployKey.publicKey,
      ...inputs,
    },
    { workspace: workspace.path },
  ).then((run) => {
    if (process.env.PREPARESKIFF_DEBUG) console.log(run.masked);
    return run;
  });

const passwdEntry = (user: string) => host.exec(['getent', 'passwd', user]).catch(() => '');

async function keyPair(name: string, comment: string): Promise<{ privateKey: string; publicKey: string }> {
  const path = join(workspace.path, name);
  await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', path]);
  return { privateKey: await readFile(path, 'utf8'), publicKey: (await readFile(`${path}.pub`, 'utf8')).trim() };
}

beforeAll(async () => {
  [host, workspace] = await Promise.all([startSystemdHost({ name: `prepareskiff${process.pid}` }), tempDir('prepareskiff-ws')]);
  [deployKey, adminKey] = await Promise.all([keyPair('deploy_key', 'ci@example'), keyPair('admin_key', 'admin@laptop')]);
}, 180_000);

afterAll(async () => {
  await Promise.all([host?.stop(), workspace?.remove()]);
});

describe('prepare: true on a fresh Debian 12 server', () => {
  it('refuses a distribution it does not know before changing anything', async () => {
    await host.exec([
      'bash',
      '-c',
      "cp --remove-destination /usr/lib/os-release /etc/os-release.skiff-saved && printf '%s\\n' 'ID=fedora' 'VERSION_ID=41' 'PRETTY_NAME=\"Fedora Linux 41\"' >/etc/os-release.new && mv /etc/os-release.new /etc/os-release",
    ]);
    try {
      const run = await prepare();
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toContain(
        'prepare supports Ubuntu 22.04 and 24.04 and Debian 12 and 13; this server runs Fedora Linux 41 (fedora 41). Nothing was changed.',
      );
      expect(run.outputs.status).toBe('failed');
      // The host keys were read, so the summary still says what to pin.
      expect(run.outputs['known-hosts']).toBe(host.knownHostsLine);
      expect(await passwdEntry('deploy')).toBe('');
      await expect(host.exec(['test', '-e', PROJECT_DIR])).rejects.toThrow();
    } finally {
      await host.exec(['bash', '-c', 'ln -sf ../usr/lib/os-release /etc/os-release && rm -f /etc/os-release.skiff-saved']);
    }
  });

  let first: ActionRun;
  it('creates the deploy user with its key and the project directory, then stops at Docker saying what Debian 12 needs; host keys in log, summary and output', async () => {
    first = await prepare();
    expect(first.code).toBe(1);
    expect(first.stdout).toContain('deploy user deploy: done: created user deploy (home /home/deploy, shell /bin/bash, no password)');
    expect(first.stdout).toContain(
      'authorized keys of deploy: done: added 1 key(s) to /home/deploy/.ssh/authorized_keys (0 already there); created /home/deploy/.ssh',
    );
    expect(first.stdout).toContain(`project directory ${PROJECT_DIR}: done: created ${PROJECT_DIR}, owned by deploy`);
    expect(first.errors.join('\n')).toMatch(
      /Docker and the Compose v2 plugin: Docker is not installed\. Debian 12 has no Compose v2 package: let prepare install Docker from Docker's apt repository \(install-docker: docker-repository\)/,
    );
    expect(first.outputs.status).toBe('failed');
    expect(first.outputs['known-hosts']).toBe(host.knownHostsLine);
    expect(first.stdout).toContain(host.hostFingerprint);
    expect(first.summary).toContain(host.hostFingerprint);
    expect(first.summary).toContain(host.knownHostsLine);
    expect(first.summary).toMatch(/\| deploy user deploy \| done \| created user deploy/);

    expect((await passwdEntry('deploy')).trim()).toMatch(/^deploy:x:\d+:\d+::\/home\/deploy:\/bin\/bash$/);
    expect(await host.exec(['stat', '-c', '%a %U', '/home/deploy/.ssh', '/home/deploy/.ssh/authorized_keys', PROJECT_DIR])).toBe(
      '700 deploy\n600 deploy\n755 deploy\n',
    );
    expect((await host.exec(['cat', '/home/deploy/.ssh/authorized_keys'])).trim()).toBe(deployKey.publicKey);
  });

  it('the deploy user logs in with its key and writes the project directory', async () => {
    const server = await SshConnection.connect(sshdConnectOptions(host, { username: 'deploy', privateKey: deployKey.privateKey }));
    try {
      const result = await server.run(
        [
          ['id', '-un'],
          ['touch', `${PROJECT_DIR}/written-by-deploy`],
          ['stat', '-c', '%U', `${PROJECT_DIR}/written-by-deploy`],
        ],
        {
          description: 'as deploy',
          timeoutSeconds: 30,
        },
      );
      expect(result.stdout).toBe('deploy\ndeploy\n');
    } finally {
      await server.close();
    }
  });

  it('a second run changes nothing and says so, step by step', async () => {
    const second = await prepare();
    expect(second.code).toBe(1);
    expect(second.stdout).toContain('deploy user deploy: already done: user deploy exists (home /home/deploy, shell /bin/bash)');
    expect(second.stdout).toContain('authorized keys of deploy: already done: all 1 key(s) in /home/deploy/.ssh/authorized_keys');
    expect(second.stdout).toContain(`project directory ${PROJECT_DIR}: already done: ${PROJECT_DIR} exists, owned by deploy`);
    expect(second.stdout).not.toMatch(/: done: /);
    expect((await host.exec(['cat', '/home/deploy/.ssh/authorized_keys'])).trim()).toBe(deployKey.publicKey);
  });

  it('a second key is added beside the first; a key with another comment counts as the same key', async () => {
    const secondKeyPath = join(workspace.path, 'second_key');
    await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'laptop', '-f', secondKeyPath]);
    const second = (await readFile(`${secondKeyPath}.pub`, 'utf8')).trim();
    const renamed = deployKey.publicKey.replace(/ci@example$/, 'renamed-comment');
    const run = await prepare({ 'deploy-user-keys': `${renamed}\n${second}` });
    expect(run.stdout).toContain('authorized keys of deploy: done: added 1 key(s) to /home/deploy/.ssh/authorized_keys (1 already there)');
    expect((await host.exec(['cat', '/home/deploy/.ssh/authorized_keys'])).trim().split('\n')).toEqual([deployKey.publicKey, second]);
  });

  it('an existing user with another home or shell is refused, not changed; so is a project directory of someone else with files in it', async () => {
    await host.exec(['useradd', '--create-home', '--shell', '/bin/sh', 'appuser']);
    const before = await passwdEntry('appuser');
    const run = await prepare({ 'deploy-user': 'appuser' });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toContain(
      'deploy user appuser: user appuser already exists with home /home/appuser and shell /bin/sh, where prepare expects /home/appuser and /bin/bash',
    );
    expect(await passwdEntry('appuser')).toBe(before);
    await expect(host.exec(['test', '-e', '/home/appuser/.ssh/authorized_keys'])).rejects.toThrow();

    await host.exec(['bash', '-c', 'install -d -o root /srv/taken && echo data >/srv/taken/file']);
    const taken = await prepare({ 'project-dir': '/srv/taken' });
    expect(taken.errors.join('\n')).toContain('project directory /srv/taken: /srv/taken exists, owned by root, and is not empty');
    expect(await host.exec(['stat', '-c', '%U', '/srv/taken'])).toBe('root\n');
  });

  it('a user that is neither root nor a passwordless sudoer is refused before any change (here the deploy user itself)', async () => {
    const run = await prepare({ username: 'deploy', key: deployKey.privateKey, 'deploy-user': 'deploy2' });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toContain(
      'deploy is neither root nor allowed passwordless sudo (sudo -n true failed); connect as root or as a user with passwordless sudo. Nothing was changed.',
    );
    expect(await passwdEntry('deploy2')).toBe('');
  });

  it('as a passwordless sudoer, each step runs through sudo -n, to the same result as root', async () => {
    await host.exec(
      [
        'bash',
        '-c',
        [
          'command -v sudo', // the test bed's image has Debian's sudo package
          'useradd --create-home --shell /bin/bash admin',
          'install -d -m 0700 -o admin -g admin /home/admin/.ssh',
          'cat >/home/admin/.ssh/authorized_keys',
          'chown admin: /home/admin/.ssh/authorized_keys',
          "echo 'admin ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/admin",
          'chmod 0440 /etc/sudoers.d/admin',
        ].join(' && '),
      ],
      { input: `${adminKey.publicKey}\n` },
    );
    const run = await prepare({ username: 'admin', key: adminKey.privateKey, 'deploy-user': 'ops', 'project-dir': '/srv/ops' });
    expect(run.stdout).toContain('connected as admin (sudo -n)');
    expect(run.stdout).toContain('deploy user ops: done: created user ops (home /home/ops, shell /bin/bash, no password)');
    expect(run.stdout).toContain('project directory /srv/ops: done: created /srv/ops, owned by ops');
    expect(run.errors.join('\n')).toContain('Docker and the Compose v2 plugin: Docker is not installed.');
    expect(await host.exec(['stat', '-c', '%a %U', '/home/ops/.ssh/authorized_keys', '/srv/ops'])).toBe('600 ops\n755 ops\n');
  });

  it("the dry run's plan is the same steps, run against nothing", async () => {
    const plan = await prepare({ 'dry-run': 'true', 'swap-size': '1G' });
    expect(plan.code).toBe(0);
    expect(planSteps(plan.outputs.plan!)).toEqual([
      'look at the server (distribution, root or sudo, host keys)',
      'deploy user deploy',
      'authorized keys of deploy',
      `project directory ${PROJECT_DIR}`,
      'Docker and the Compose v2 plugin',
      'Docker log rotation: read /etc/docker/daemon.json',
      'Docker log rotation',
      'deploy in the docker group',
      'swap file /swapfile (1024 MiB)',
      'unattended security upgrades',
    ]);
    expect(plan.outputs.plan).toContain(deployKey.publicKey);
  });

  it('deploy inputs are refused under prepare, and prepare inputs under a deploy, each by name, before connecting', async () => {
    const run = await prepare({ images: 'web=nginx:1', 'health-url': 'http://127.0.0.1/' });
    expect(run.code).toBe(1);
    expect(run.errors.join('\n')).toContain('Inputs "images", "health-url" are not used with prepare: true');
    const deploy = await runAction({ ...sshdActionInputs(host), 'project-dir': PROJECT_DIR, 'deploy-user': 'ops' }, { workspace: workspace.path });
    expect(deploy.code).toBe(1);
    expect(deploy.errors.join('\n')).toContain('"deploy-user" only apply with prepare: true');
    const badKey = await prepare({ 'deploy-user-keys': deployKey.privateKey });
    expect(badKey.errors.join('\n')).toContain('Input "deploy-user-keys", line 1, is part of a private key');
    // Lines 3 and 4 hold this key's own material (the first lines of every unencrypted OpenSSH key are alike).
    for (const line of deployKey.privateKey.split('\n').slice(2, 4)) expect(badKey.stdout).not.toContain(line);
  });
});

describe('prepare: true with harden-ssh, under the lockout guard (last: afterwards root cannot log in)', () => {
  const sshdSays = async () =>
    (await host.exec(['bash', '-c', 'sshd -T | grep -Ei "^(permitrootlogin|passwordauthentication|kbdinteractiveauthentication) " | sort'])).trim();
  const rootLogin = () => SshConnection.connect({ ...sshdConnectOptions(host), attempts: 1 }).then(async (server) => server.close());

  it('refuses harden-ssh without the deploy private key, or with one that is not among deploy-user-keys, before connecting', async () => {
    const without = await prepare({ 'harden-ssh': 'true' });
    expect(without.errors.join('\n')).toContain('harden-ssh: true needs "deploy-user-key"');
    const other = await prepare({ 'harden-ssh': 'true', 'deploy-user-key': adminKey.privateKey });
    expect(other.errors.join('\n')).toContain('Input "deploy-user-key" is not the private half of any key in deploy-user-keys');
  });

  it('an sshd change someone left unloaded that shuts the deploy user out: the new login fails after the reload, the change is undone, root logs in again', async () => {
    // Written but never loaded, as an operator might leave it: sshd -t accepts it, the running sshd does not know it yet.
    await host.exec(['bash', '-c', "printf 'AllowUsers root admin\\n' >/etc/ssh/sshd_config.d/10-ops.conf"]);
    const before = await sshdSays();
    try {
      const run = await prepare({ 'harden-ssh': 'true', 'deploy-user-key': deployKey.privateKey });
      expect(run.code).toBe(1);
      expect(run.errors.join('\n')).toMatch(
        /sshd: key logins only, no root login: after sshd reloaded, a new key login as deploy failed \(.+\); the change was undone \(\/etc\/ssh\/sshd_config\.d\/00-skiff-hardening\.conf removed, sshd reloaded\)/,
      );
      await expect(host.exec(['test', '-e', '/etc/ssh/sshd_config.d/00-skiff-hardening.conf'])).rejects.toThrow();
      expect(await sshdSays()).toBe(before);
      await rootLogin();
      // The armed timer was not left to fire later.
      expect(await host.exec(['bash', '-c', 'systemctl list-timers --all --no-legend | grep -c skiff-prepare-sshd-revert || true'])).toBe('0\n');
    } finally {
      await host.exec(['bash', '-c', 'rm -f /etc/ssh/sshd_config.d/10-ops.conf && systemctl reload ssh']);
    }
  });

  it('after a proven key login: root and password logins are refused, the deploy user still logs in; a second run (as the sudo user) says already done', async () => {
    const run = await prepare({ 'harden-ssh': 'true', 'deploy-user-key': deployKey.privateKey });
    expect(run.stdout).toContain(
      'sshd: key logins only, no root login: done: wrote /etc/ssh/sshd_config.d/00-skiff-hardening.conf and reloaded sshd; a new key login as deploy worked after it',
    );
    expect(await sshdSays()).toBe('kbdinteractiveauthentication no\npasswordauthentication no\npermitrootlogin no');
    await expect(rootLogin()).rejects.toThrow(/authentication|denied|All configured authentication methods failed/i);
    const deploy = await SshConnection.connect(sshdConnectOptions(host, { username: 'deploy', privateKey: deployKey.privateKey }));
    await deploy.close();
    expect(await host.exec(['bash', '-c', 'systemctl list-timers --all --no-legend | grep -c skiff-prepare-sshd-revert || true'])).toBe('0\n');

    const again = await prepare({ username: 'admin', key: adminKey.privateKey, 'harden-ssh': 'true', 'deploy-user-key': deployKey.privateKey });
    expect(again.stdout).toContain('sshd: key logins only, no root login: already done: sshd already applies');
    expect(again.stdout).not.toMatch(/: done: /);
  });
});
