import { describe, expect, it } from 'vitest';
import { setInputs } from '@skiff/testbed';
import { script } from '@skiff/shell';
import { dockerInstallHint, knownHostsLines, parseServerFacts, refusalOf, renderPrepareSummary } from '../src/prepare';
import { parsePublicKeys, readPrepareInputs } from '../src/prepare/inputs';
import { asRoot, ensureUser } from '../src/prepare/prepare-commands';
import { APT, dockerPackagesFor, withLogRotation } from '../src/prepare/system-commands';
import { execFileSync } from 'node:child_process';
import { useInputsWorkspace } from './inputs-workspace';

const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDGvbTdxO7bXK0vQ2HlVkqDbXbbZrIvXbAGFZ9EGxZ3i ci@example';
const OS_RELEASE = (id: string, version: string, pretty: string) => `PRETTY_NAME="${pretty}"\nNAME="x"\nVERSION_ID="${version}"\nID=${id}\n`;
const facts = (osRelease: string, uid = '0', sudo = 'no', keys = '') => `${osRelease}--- uid\n${uid}\n--- sudo\n${sudo}\n--- host keys\n${keys}`;

describe('prepare: public keys', () => {
  it('takes authorized_keys lines, matched by type and key whatever the comment', () => {
    expect(parsePublicKeys([ED25519])).toEqual([{ match: ED25519.split(' ').slice(0, 2).join(' '), line: ED25519 }]);
  });

  it('refuses what is not a public key, naming the line, and never echoes a private key', () => {
    expect(() => parsePublicKeys([ED25519, 'ssh-ed25519 not-base64!'])).toThrow(/Input "deploy-user-keys", line 2, is not a public key/);
    // The type named inside the key must be the type written before it.
    expect(() => parsePublicKeys([ED25519.replace('ssh-ed25519', 'ssh-rsa')])).toThrow(/line 1, is not a public key/);
    expect(() => parsePublicKeys(['-----BEGIN OPENSSH PRIVATE KEY-----'])).toThrow(/line 1, is part of a private key/);
    try {
      parsePublicKeys(['b3BlbnNzaC1rZXktdjEAAAAA PRIVATE KEY material']);
    } catch (error) {
      expect((error as Error).message).not.toContain('material');
    }
  });
});

describe('prepare: what the server says of itself', () => {
  const hostKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDGvbTdxO7bXK0vQ2HlVkqDbXbbZrIvXbAGFZ9EGxZ3i root@vps';

  it('reads the distribution, root or sudo, and the host keys with their fingerprints', () => {
    const read = parseServerFacts(facts(OS_RELEASE('ubuntu', '24.04', 'Ubuntu 24.04.1 LTS'), '1000', 'yes', `${hostKey}\n`));
    expect(read.distribution).toEqual({ id: 'ubuntu', version: '24.04', pretty: 'Ubuntu 24.04.1 LTS' });
    expect(read.root).toBe(false);
    expect(read.sudo).toBe(true);
    expect(read.hostKeys).toEqual([{ type: 'ssh-ed25519', base64: hostKey.split(' ')[1], fingerprint: expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/) }]);
    expect(knownHostsLines({ host: '203.0.113.7', port: 22 }, read.hostKeys)).toEqual([`203.0.113.7 ssh-ed25519 ${hostKey.split(' ')[1]}`]);
    expect(knownHostsLines({ host: '203.0.113.7', port: 2222 }, read.hostKeys)[0]).toMatch(/^\[203\.0\.113\.7\]:2222 ssh-ed25519 /);
  });

  it('refuses distributions and versions it does not support, and a user that is neither root nor a passwordless sudoer', () => {
    for (const [id, version] of [
      ['ubuntu', '22.04'],
      ['ubuntu', '24.04'],
      ['debian', '12'],
      ['debian', '13'],
    ] as const)
      expect(refusalOf(parseServerFacts(facts(OS_RELEASE(id, version, `${id} ${version}`))), 'root')).toBeUndefined();
    expect(refusalOf(parseServerFacts(facts(OS_RELEASE('ubuntu', '20.04', 'Ubuntu 20.04.6 LTS'))), 'root')).toBe(
      'prepare supports Ubuntu 22.04 and 24.04 and Debian 12 and 13; this server runs Ubuntu 20.04.6 LTS (ubuntu 20.04)',
    );
    expect(refusalOf(parseServerFacts(facts('PRETTY_NAME="Debian GNU/Linux forky/sid"\nID=debian\n')), 'root')).toMatch(
      /this server runs Debian GNU\/Linux forky\/sid$/,
    );
    expect(refusalOf(parseServerFacts(facts(OS_RELEASE('debian', '12', 'Debian 12'), '1000', 'no')), 'ops')).toBe(
      'ops is neither root nor allowed passwordless sudo (sudo -n true failed); connect as root or as a user with passwordless sudo',
    );
  });

  it('says how to install Docker with Compose v2 where the distribution has it, and where it does not', () => {
    expect(dockerInstallHint({ id: 'ubuntu', version: '22.04', pretty: '' })).toContain('apt-get install docker.io docker-compose-v2');
    expect(dockerInstallHint({ id: 'debian', version: '13', pretty: '' })).toContain('apt-get install docker.io docker-cli docker-compose)');
    expect(dockerInstallHint({ id: 'debian', version: '12', pretty: '' })).toMatch(/^Debian 12 has no Compose v2 package/);
  });
});

describe('prepare: commands', () => {
  it("passes every value as an argument of Skiff's own script; a sudo user runs each step through sudo -n bash -c", () => {
    const hostile = "x'; rm -rf / #";
    const rendered = script(ensureUser(hostile));
    expect(rendered.endsWith(`fi' skiff-prepare 'x'\\''; rm -rf / #'`)).toBe(true);
    const elevated = script(asRoot(true, ensureUser('deploy')));
    expect(elevated.split('\n')[1]).toMatch(/^sudo -n bash -c 'set -euo pipefail/);
    expect(script(asRoot(false, ensureUser('deploy')))).toBe(script(ensureUser('deploy')));
  });
});

describe('prepare: inputs', () => {
  useInputsWorkspace({ repository: 'acme/shop', files: {} });
  const ssh = { host: 'vps.example.com', username: 'root', password: 'pw-123456', 'insecure-ignore-host-key': 'true' };

  it('reads the deploy user, its keys and how it reaches docker', () => {
    setInputs({ ...ssh, prepare: 'true', 'deploy-user-keys': ED25519, sudo: 'true' });
    const read = readPrepareInputs();
    expect(read).toMatchObject({ projectDir: '/opt/shop', deployUser: 'deploy', dockerAccess: 'sudo', dryRun: false });
    expect(read.keys).toHaveLength(1);
  });

  it('refuses root or a malformed name as deploy-user, and a missing key, all at once', () => {
    setInputs({ ...ssh, prepare: 'true', 'deploy-user': 'root' });
    expect(() => readPrepareInputs()).toThrow(/Input "deploy-user" must be a user name[\s\S]*Input "deploy-user-keys" is required with prepare: true/);
  });
});

describe('prepare: the job summary', () => {
  it('shows each step, the error where it stopped, the host keys, and the hosts not started', () => {
    const summary = renderPrepareSummary([
      {
        label: 'root@a:22',
        steps: [{ name: 'deploy user deploy', state: 'changed', detail: 'created user deploy' }],
        hostKeys: [{ type: 'ssh-ed25519', base64: 'AAAA', fingerprint: 'SHA256:abc' }],
        knownHosts: ['a ssh-ed25519 AAAA'],
        error: 'Docker and the Compose v2 plugin: Docker is not installed.',
      },
      { label: 'root@b:22', steps: [], hostKeys: [], knownHosts: [], skipped: true },
    ]);
    expect(summary).toContain('### ❌ Prepare root@a:22 stopped');
    expect(summary).toContain('| deploy user deploy | done | created user deploy |');
    expect(summary).toContain('| ssh-ed25519 | SHA256:abc |');
    expect(summary).toContain('a ssh-ed25519 AAAA');
    expect(summary).toContain('### ⏭️ root@b:22 was not prepared (a host before it failed)');
  });
});

describe('prepare: Docker, its logs, swap and upgrades', () => {
  useInputsWorkspace({ repository: 'acme/shop', files: {} });
  const ssh = { host: 'vps.example.com', username: 'root', password: 'pw-123456', 'insecure-ignore-host-key': 'true' };
  it("names the distribution's Docker packages, and none where the distribution has no Compose v2", () => {
    expect(dockerPackagesFor({ id: 'debian', version: '13' })).toEqual({
      required: ['docker.io', 'docker-compose'],
      optional: ['docker-cli', 'docker-buildx'],
    });
    expect(dockerPackagesFor({ id: 'ubuntu', version: '24.04' })?.required).toEqual(['docker.io', 'docker-compose-v2']);
    expect(dockerPackagesFor({ id: 'debian', version: '12' })).toBeUndefined();
  });

  it('finds a package apt knows even when apt-cache has more to say after the line that matters (no SIGPIPE under pipefail)', () => {
    // apt-cache stands in as a function: its Candidate line first, then far more than a pipe holds.
    const probe = (candidate: string) =>
      execFileSync('bash', [
        '-c',
        `set -euo pipefail\n${APT}\napt-cache() { echo "  Installed: (none)"; echo "  Candidate: ${candidate}"; head -c 2000000 /dev/zero | tr '\\0' x; echo; }\nif apt_has docker-cli; then echo yes; else echo no; fi`,
      ]).toString();
    expect(probe('26.1.5')).toBe('yes\n');
    expect(probe('(none)')).toBe('no\n');
  });

  it('merges log rotation into daemon.json, keeping every other setting, and says when there is nothing to do', () => {
    const rotation = { maxSize: '10m', maxFile: 3 };
    expect(JSON.parse(withLogRotation(undefined, rotation)!.text)).toEqual({ 'log-driver': 'json-file', 'log-opts': { 'max-size': '10m', 'max-file': '3' } });
    const merged = withLogRotation('{"registry-mirrors": ["https://m.example"], "log-opts": {"labels": "app", "max-size": "1g"}}', rotation)!;
    expect(JSON.parse(merged.text)).toEqual({
      'registry-mirrors': ['https://m.example'],
      'log-driver': 'json-file',
      'log-opts': { labels: 'app', 'max-size': '10m', 'max-file': '3' },
    });
    expect(merged.detail).toBe('json-file logs rotate at max-size 10m, max-file 3 (before: max-size "1g", max-file "1")');
    expect(withLogRotation(merged.text, rotation)).toBeUndefined();
    expect(() => withLogRotation('[1]', rotation)).toThrow('/etc/docker/daemon.json is not a JSON object');
    expect(() => withLogRotation('{"log-driver": "local"}', rotation)).toThrow('sends container logs to the "local" log driver');
  });

  it('reads swap-size and the log rotation inputs, refusing what Docker or the kernel would not take, all at once', () => {
    setInputs({
      ...ssh,
      prepare: 'true',
      'deploy-user-keys': ED25519,
      'swap-size': '1.5G',
      'docker-log-max-size': '50m',
      'docker-log-max-file': '5',
    });
    expect(readPrepareInputs()).toMatchObject({
      swapMiB: 1536,
      logRotation: { maxSize: '50m', maxFile: 5 },
      installDocker: { kind: 'distribution' },
      unattendedUpgrades: true,
    });
    setInputs({
      ...ssh,
      prepare: 'true',
      'deploy-user-keys': ED25519,
      'docker-log-max-size': 'off',
      'unattended-upgrades': 'false',
    });
    const off = readPrepareInputs();
    expect(off.logRotation).toBeUndefined();
    expect(off.swapMiB).toBeUndefined();
    expect(off.unattendedUpgrades).toBe(false);
    setInputs({
      ...ssh,
      prepare: 'true',
      'deploy-user-keys': ED25519,
      'swap-size': '16',
      'docker-log-max-size': '10MB',
      'docker-log-max-file': '0',
      'install-docker': 'docker-ce',
    });
    expect(() => readPrepareInputs()).toThrow(
      /Input "install-docker" must be distribution, docker-repository or no[\s\S]*Input "docker-log-max-size" must be a size like 10m[\s\S]*Input "swap-size" must be a size from 64M to 64G/,
    );
    setInputs({
      ...ssh,
      prepare: 'true',
      'deploy-user-keys': ED25519,
      'docker-log-max-size': 'off',
      'docker-log-max-file': '5',
    });
    expect(() => readPrepareInputs()).toThrow('Input "docker-log-max-file" is not used with docker-log-max-size: off');
  });

  it("reads Docker's repository and the fingerprint of its key, which only install-docker: docker-repository uses", () => {
    setInputs({ ...ssh, prepare: 'true', 'deploy-user-keys': ED25519, 'install-docker': 'docker-repository' });
    expect(readPrepareInputs().installDocker).toEqual({
      kind: 'docker-repository',
      url: 'https://download.docker.com/linux',
      fingerprint: '9DC858229FC7DD38854AE2D88D81803C0EBFCD88',
    });
    setInputs({
      ...ssh,
      prepare: 'true',
      'deploy-user-keys': ED25519,
      'install-docker': 'docker-repository',
      'docker-repository': 'http://mirror.example:8080/docker-ce/linux/',
      'docker-repository-fingerprint': '1234 5678 9abc DEF0 1234  5678 9ABC DEF0 1234 5678',
    });
    expect(readPrepareInputs().installDocker).toEqual({
      kind: 'docker-repository',
      url: 'http://mirror.example:8080/docker-ce/linux',
      fingerprint: '123456789ABCDEF0123456789ABCDEF012345678',
    });
    setInputs({
      ...ssh,
      prepare: 'true',
      'deploy-user-keys': ED25519,
      'install-docker': 'docker-repository',
      'docker-repository': "https://mirror.example/linux'; rm -rf /",
      'docker-repository-fingerprint': '0EBFCD88',
    });
    expect(() => readPrepareInputs()).toThrow(
      /Input "docker-repository" must be the http\(s\) URL[\s\S]*Input "docker-repository-fingerprint" must be an OpenPGP key fingerprint, 40 hex digits/,
    );
    setInputs({
      ...ssh,
      prepare: 'true',
      'deploy-user-keys': ED25519,
      'docker-repository': 'https://mirror.example/linux',
      'docker-repository-fingerprint': '0EBFCD88',
    });
    expect(() => readPrepareInputs()).toThrow(
      /Input "docker-repository" is only used with install-docker: docker-repository \(install-docker is distribution\)[\s\S]*Input "docker-repository-fingerprint" is only used/,
    );
  });
});
