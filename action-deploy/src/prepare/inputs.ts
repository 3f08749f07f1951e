import {
  DRY_RUN_INPUT,
  InputCollector,
  InputError,
  MULTI_HOST_INPUTS,
  getBoolean,
  getList,
  getString,
  readDryRun,
  readRunMode,
  readSshTargets,
  type RunMode,
} from '@skiff/action-kit';
import { publicKeyOf, type SshConnectOptions } from '@skiff/ssh';
import { ACTION_INPUTS, readProjectDir, setToOtherThanDefault } from '../inputs';
import { PREPARE_INPUTS } from './prepare-input-definitions';
import type { DockerInstall, LogRotation } from './system-commands';

export interface PublicKey {
  /** `type base64`: how the key is found in authorized_keys whatever its comment or options. */
  match: string;
  /** The line as given, comment included. */
  line: string;
}

export interface PrepareInputs {
  targets: SshConnectOptions[];
  mode: RunMode;
  projectDir: string;
  deployUser: string;
  keys: PublicKey[];
  dockerAccess: 'group' | 'sudo';
  /** Where Docker comes from when it is missing; `no`: only checked. */
  installDocker: DockerInstall;
  /** Undefined: logging left as it is (docker-log-max-size: off). */
  logRotation?: LogRotation;
  /** MiB of /swapfile; undefined: no swap file. */
  swapMiB?: number;
  unattendedUpgrades: boolean;
  /** With harden-ssh: the deploy user's private key, to prove its login before and after. */
  hardenSsh?: { deployUserKey: string };
  dryRun: boolean;
}

/** The inputs prepare reads besides its own: where to connect (as root or a sudo user), project-dir, sudo, dry-run. */
export const READ_BY_PREPARE: ReadonlySet<string> = new Set<string>([
  ...MULTI_HOST_INPUTS.map((input) => input.name),
  ...PREPARE_INPUTS.map((input) => input.name),
  'project-dir',
  'sudo',
  DRY_RUN_INPUT.name,
]);

const KEY_TYPES = new Set([
  'ssh-ed25519',
  'ssh-rsa',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

// Useradd's own rule, without the characters a sudoers file name or a home path would trip on.
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export function parsePublicKeys(lines: readonly string[]): PublicKey[] {
  const expected = 'one public key per line as in authorized_keys, e.g. "ssh-ed25519 AAAAC3Nz… ci@example"';
  return lines.map((line, index) => {
    // A private key pasted here must not be echoed into the log.
    if (/PRIVATE KEY|^-----BEGIN/.test(line))
      throw new InputError(
        'deploy-user-keys',
        `Input "deploy-user-keys", line ${index + 1}, is part of a private key; give the public key (the .pub file), ${expected}`,
      );
    const [type = '', body = ''] = line.split(/\s+/);
    const blob = /^[A-Za-z0-9+/]+={0,2}$/.test(body) ? Buffer.from(body, 'base64') : Buffer.alloc(0);
    const named = blob.length > 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1') : '';
    if (!KEY_TYPES.has(type) || named !== type || [...line].some((char) => char.charCodeAt(0) < 0x20))
      throw new InputError('deploy-user-keys', `Input "deploy-user-keys", line ${index + 1}, is not a public key: expected ${expected}`);
    return { match: `${type} ${body}`, line };
  });
}

function strayForPrepare(): InputError | undefined {
  const stray = ACTION_INPUTS.map((input) => input.name).filter((name) => !READ_BY_PREPARE.has(name) && setToOtherThanDefault(name));
  if (stray.length === 0) return undefined;
  return new InputError(
    stray,
    `Input${stray.length === 1 ? '' : 's'} ${stray.map((name) => `"${name}"`).join(', ')} ${stray.length === 1 ? 'is' : 'are'} not used with prepare: true (it prepares the server; deploys come after), so ${stray.length === 1 ? 'it' : 'they'} would be ignored; remove ${stray.length === 1 ? 'it' : 'them'} from this step`,
  );
}

/** Every prepare input, validated together before anything connects. */
export function readPrepareInputs(): PrepareInputs {
  const c = new InputCollector();
  const stray = strayForPrepare();
  if (stray) c.add(stray);
  const targets = c.take(readSshTargets);
  const mode = c.take(readRunMode);
  const projectDir = c.take(readProjectDir);
  const deployUser = c.take(() => {
    const user = getString('deploy-user', { default: 'deploy' });
    if (!USER_NAME.test(user) || user === 'root')
      throw new InputError(
        'deploy-user',
        `Input "deploy-user" must be a user name like deploy (lower-case letters, digits, _ and -, at most 32, not root); got ${JSON.stringify(user)}`,
      );
    return user;
  });
  const keys = c.take(() => {
    const lines = getList('deploy-user-keys');
    if (lines === undefined || lines.length === 0)
      throw new InputError(
        'deploy-user-keys',
        'Input "deploy-user-keys" is required with prepare: true: the public key(s) the deploy user will log in with, one per line',
      );
    return parsePublicKeys(lines);
  });
  const sudo = c.take(() => getBoolean('sudo', { default: false }));
  const hardenSsh = c.take(() => readHardening(c.known(keys) ?? []));
  const installDocker = c.take(readInstallDocker);
  const logRotation = c.take(readLogRotation);
  const swapMiB = c.take(readSwapSize);
  const unattendedUpgrades = c.take(() => getBoolean('unattended-upgrades', { default: true }));
  const dryRun = c.take(readDryRun);
  const read = c.result({ targets, mode, projectDir, deployUser, keys, sudo, hardenSsh, installDocker, logRotation, swapMiB, unattendedUpgrades, dryRun });
  const { sudo: viaSudo, hardenSsh: hardening, logRotation: rotation, swapMiB: swap, ...rest } = read;
  return {
    ...rest,
    dockerAccess: viaSudo ? 'sudo' : 'group',
    ...(hardening ? { hardenSsh: hardening } : {}),
    ...(rotation ? { logRotation: rotation } : {}),
    ...(swap !== undefined ? { swapMiB: swap } : {}),
  };
}

/** Docker's published fingerprint of the key that signs download.docker.com. */
export const DOCKER_REPOSITORY_FINGERPRINT = '9DC858229FC7DD38854AE2D88D81803C0EBFCD88';

function readInstallDocker(): DockerInstall {
  const kind = getString('install-docker', { default: 'distribution' });
  const c = new InputCollector();
  if (kind !== 'distribution' && kind !== 'docker-repository' && kind !== 'no')
    c.add(new InputError('install-docker', `Input "install-docker" must be distribution, docker-repository or no; got ${JSON.stringify(kind)}`));
  if (kind !== 'docker-repository') {
    const stray = ['docker-repository', 'docker-repository-fingerprint'].filter((name) => setToOtherThanDefault(name));
    for (const name of stray)
      c.add(
        new InputError(
          name,
          `Input "${name}" is only used with install-docker: docker-repository (install-docker is ${kind}); remove it, or set install-docker: docker-repository`,
        ),
      );
    return c.result({ kind: kind as 'distribution' | 'no' });
  }
  const url = c.take(() => {
    const text = getString('docker-repository', { default: 'https://download.docker.com/linux' }).replace(/\/+$/, '');
    let parsed: URL | undefined;
    try {
      parsed = new URL(text);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !/^https?:$/.test(parsed.protocol) || parsed.search || parsed.hash || parsed.username || !/^[A-Za-z0-9._~:/%@+-]+$/.test(text))
      throw new InputError(
        'docker-repository',
        `Input "docker-repository" must be the http(s) URL of Docker's apt repository without the distribution, like https://download.docker.com/linux; got ${JSON.stringify(text)}`,
      );
    return text;
  });
  const fingerprint = c.take(() => {
    const text = getString('docker-repository-fingerprint', { default: DOCKER_REPOSITORY_FINGERPRINT });
    const hex = text.replace(/\s+/g, '').toUpperCase();
    if (!/^[0-9A-F]{40}$/.test(hex))
      throw new InputError(
        'docker-repository-fingerprint',
        `Input "docker-repository-fingerprint" must be an OpenPGP key fingerprint, 40 hex digits (spaces allowed), like ${DOCKER_REPOSITORY_FINGERPRINT}; got ${JSON.stringify(text)}`,
      );
    return hex;
  });
  return c.result({ kind, url, fingerprint });
}

/** Docker's own forms: max-size a number with k, m or g; max-file a count. `off` leaves logging to the admin. */
function readLogRotation(): LogRotation | undefined {
  const maxSize = getString('docker-log-max-size', { default: '10m' });
  const maxFileText = getString('docker-log-max-file', { default: '3' });
  if (maxSize === 'off') {
    if (setToOtherThanDefault('docker-log-max-file'))
      throw new InputError('docker-log-max-file', 'Input "docker-log-max-file" is not used with docker-log-max-size: off; remove it, or give a max size');
    return undefined;
  }
  if (!/^[1-9][0-9]{0,5}[kmg]$/.test(maxSize))
    throw new InputError(
      'docker-log-max-size',
      `Input "docker-log-max-size" must be a size like 10m (a number and k, m or g, as Docker's max-size), or off; got ${JSON.stringify(maxSize)}`,
    );
  const maxFile = Number(maxFileText);
  if (!/^[0-9]{1,3}$/.test(maxFileText) || maxFile < 1 || maxFile > 100)
    throw new InputError('docker-log-max-file', `Input "docker-log-max-file" must be a whole number from 1 to 100; got ${JSON.stringify(maxFileText)}`);
  return { maxSize, maxFile };
}

/** `512M`, `1G`, `1.5G`: a swap file from 64 MiB to 64 GiB, in whole MiB. */
function readSwapSize(): number | undefined {
  const text = getString('swap-size');
  if (text === undefined) return undefined;
  const match = /^([0-9]+(?:\.[0-9]+)?)\s*([MG])(?:i?B)?$/i.exec(text);
  const mebibytes = match ? Math.round(Number(match[1]) * (match[2]!.toUpperCase() === 'G' ? 1024 : 1)) : NaN;
  if (!(mebibytes >= 64 && mebibytes <= 65536))
    throw new InputError('swap-size', `Input "swap-size" must be a size from 64M to 64G, like 1G or 512M; got ${JSON.stringify(text)}`);
  return mebibytes;
}

/** harden-ssh needs the deploy user's private key, one whose public half is among deploy-user-keys, to prove the login it must not break. */
function readHardening(keys: readonly PublicKey[]): { deployUserKey: string } | undefined {
  const privateKey = getString('deploy-user-key', { secret: true });
  const harden = getBoolean('harden-ssh', { default: false });
  if (!harden) {
    if (privateKey !== undefined)
      throw new InputError(
        'deploy-user-key',
        'Input "deploy-user-key" is only used with harden-ssh: true (to prove the deploy login around the sshd change); remove it, or set harden-ssh: true',
      );
    return undefined;
  }
  if (privateKey === undefined)
    throw new InputError(
      ['harden-ssh', 'deploy-user-key'],
      'harden-ssh: true needs "deploy-user-key", the deploy user\'s private key: sshd is changed only after a key login as the deploy user worked, and kept only if one still works after it',
    );
  const publicKey = publicKeyOf(privateKey);
  if (publicKey === undefined)
    throw new InputError(
      'deploy-user-key',
      'Input "deploy-user-key" is not an unencrypted private key (OpenSSH or PEM); give the private half of one of deploy-user-keys',
    );
  if (keys.length > 0 && !keys.some((key) => key.match === publicKey))
    throw new InputError(
      'deploy-user-key',
      'Input "deploy-user-key" is not the private half of any key in deploy-user-keys, so it could not prove the deploy login',
    );
  return { deployUserKey: privateKey };
}
