import { isIP } from 'node:net';
import { randomBytes } from 'node:crypto';
import * as core from '@actions/core';
import { quote } from '@skiff/shell';
import { parseKnownHosts, type HostKeyPolicy, type JumpHost, type LiveOutput, type SshConnectOptions } from '@skiff/ssh';
import type { InputDefinition } from './definitions';
import { InputError } from './errors';
import { InputCollector, getBoolean, getDuration, getList, getPort, getString, invalidInput, parseDuration } from './inputs';
import { maskSecret } from './secrets';

/** The SSH inputs every SSH action takes, defined once. */
export const SSH_INPUTS = [
  { name: 'host', description: 'Server to connect to: a hostname or IP address.', required: true },
  { name: 'port', description: 'SSH port on the server.', required: false, default: '22' },
  { name: 'username', description: 'User to log in as on the server.', required: true },
  {
    name: 'key',
    description: 'Private key to log in with: the key file contents, e.g. from a secret. Either key or password is required.',
    required: false,
    secret: true,
  },
  { name: 'passphrase', description: 'Passphrase of the private key, if it is encrypted.', required: false, secret: true },
  { name: 'password', description: "The user's password, when logging in without a key.", required: false, secret: true },
  {
    name: 'known-hosts',
    description: 'known_hosts lines for the server, e.g. from ssh-keyscan. Set exactly one of known-hosts, fingerprint or insecure-ignore-host-key.',
    required: false,
  },
  {
    name: 'fingerprint',
    description:
      "The server's SHA256 host key fingerprint (SHA256:…), from `ssh-keyscan -p PORT HOST | ssh-keygen -lf -`. Several may be separated by newlines, commas or spaces.",
    required: false,
  },
  {
    name: 'insecure-ignore-host-key',
    description:
      "Skip checking the server's identity (true or false). Anyone who can intercept the connection could impersonate the server. Only for throwaway test servers.",
    required: false,
    default: 'false',
  },
  {
    name: 'jump-host',
    description: 'Jump host (bastion) to connect through, as user@host:port. The user defaults to username, the port to 22.',
    required: false,
  },
  {
    name: 'jump-key',
    description: 'Private key for the jump host; by default the jump host gets the same credentials as the server.',
    required: false,
    secret: true,
  },
  {
    name: 'connect-timeout',
    description:
      'How long to try connecting in all (TCP connect and SSH handshake; a refused or dropped connection is tried again, up to 3 times, while time is left), e.g. 20s or 1m.',
    required: false,
    default: '20s',
  },
] as const satisfies readonly InputDefinition[];

export type SshInputName = (typeof SSH_INPUTS)[number]['name'];

const HOST_KEY_INPUTS = ['known-hosts', 'fingerprint', 'insecure-ignore-host-key'] as const;

// ssh-keygen prints the unpadded base64 of a SHA-256 digest: always 43 characters.
const SHA256_FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

function definitionDefault(name: SshInputName): string {
  const definition: InputDefinition | undefined = SSH_INPUTS.find((input) => input.name === name);
  if (definition?.default === undefined) throw new Error(`SSH input ${name} has no default`);
  return definition.default;
}

/** The command to print a server's fingerprint, for error messages and warnings. */
export function keyscanCommand(host = 'HOST', port: number | string = 'PORT'): string {
  return `ssh-keyscan -p ${port} ${host === 'HOST' ? host : quote(host)} | ssh-keygen -lf -`;
}

function readHost(name: string): string | undefined {
  const value = getString(name, { required: true });
  const host = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  const expected = 'a hostname or IP address (the user goes in "username", the port in "port")';
  if (/[\s@/]/.test(host) || (host.includes(':') && isIP(host) !== 6)) throw invalidInput(name, expected, value);
  return host;
}

/**
 * Secrets pasted into GitHub's UI sometimes arrive with CRLF line ends or as one line with
 * literal `\n`; the key parser accepts neither, and the error it gives does not say why.
 */
function readPrivateKey(name: string): string | undefined {
  const value = getString(name, { secret: true });
  if (value === undefined) return undefined;
  let key = value.replace(/\r\n?/g, '\n');
  if (!key.includes('\n') && key.includes('\\n')) key = key.replaceAll('\\n', '\n');
  const looksLikeKey = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(key) || key.startsWith('PuTTY-User-Key-File-');
  if (!looksLikeKey) {
    throw invalidInput(name, "the private key's contents (-----BEGIN OPENSSH PRIVATE KEY----- …), not a file path or a public key", value, true);
  }
  maskSecret(key);
  return key.endsWith('\n') ? key : `${key}\n`;
}

function readFingerprints(): readonly string[] | undefined {
  const values = getList('fingerprint', { split: 'any' });
  if (values === undefined) return undefined;
  for (const value of values) {
    if (!SHA256_FINGERPRINT.test(value)) {
      throw invalidInput(
        'fingerprint',
        'one or more SHA256 host key fingerprints like SHA256:+1Ye… (43 characters after the colon), the second field of `ssh-keygen -lf` output',
        value,
      );
    }
  }
  return values.map((value) => value.replace(/=$/, ''));
}

function readKnownHosts(): string | undefined {
  const value = getString('known-hosts');
  if (value === undefined) return undefined;
  if (parseKnownHosts(value).filter((entry) => !entry.marker).length === 0) {
    throw invalidInput(
      'known-hosts',
      'known_hosts lines like "[host]:2222 ssh-ed25519 AAAA…" (hostnames, key type, base64 key), e.g. from ssh-keyscan; none was usable',
      value.length > 200 ? `${value.slice(0, 200)}…` : value,
    );
  }
  return value;
}

interface JumpAddress {
  host: string;
  port: number;
  username?: string;
}

export function parseJumpHost(value: string): JumpAddress | undefined {
  const match = /^(?:([^@\s]+)@)?(\[[0-9a-fA-F:.]+\]|[^:@\s[\]/]+)(?::(\d+))?$/.exec(value);
  if (!match) return undefined;
  const [, username, rawHost = '', rawPort] = match;
  const port = rawPort === undefined ? 22 : Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  if (rawHost.startsWith('[') && isIP(host) !== 6) return undefined;
  return { host, port, ...(username === undefined ? {} : { username }) };
}

function readJumpAddress(): JumpAddress | undefined {
  const value = getString('jump-host');
  if (value === undefined) return undefined;
  const address = parseJumpHost(value);
  if (!address) throw invalidInput('jump-host', 'user@host:port (user and port optional), e.g. deploy@bastion.example.com:2222', value);
  return address;
}

/** Routes the transport's progress and warnings into the job log. */
export function sshLog(level: 'info' | 'warning', message: string): void {
  if (level === 'warning') core.warning(message);
  else core.info(message);
}

/**
 * A remote step's output in the job log as it arrives: a collapsible group per step, or, when
 * several hosts run at once (groups cannot interleave), lines prefixed `[host]`. Within a group,
 * workflow commands are off, so a remote line such as `::add-mask::x` or `::endgroup::` is shown,
 * never obeyed; masks already registered still apply.
 */
export function liveLog(host?: string): LiveOutput {
  if (host !== undefined) {
    return { begin: (description) => core.info(`[${host}] ▶ ${description}`), line: (text) => core.info(`[${host}] ${text}`), end: () => undefined };
  }
  let token = '';
  return {
    begin(description) {
      core.startGroup(description);
      token = randomBytes(16).toString('hex');
      core.info(`::stop-commands::${token}`);
    },
    line: (text) => core.info(text),
    end() {
      core.info(`::${token}::`);
      core.endGroup();
    },
  };
}

/**
 * Reads and checks the shared SSH inputs. `readHostInput` lets multi-host callers (readSshTargets)
 * read `host` as a list while every other rule stays defined once here. All problems, including rules that combine inputs
 * (credentials, exactly one way to check the host key), are reported together.
 */
export function readSshInputs(readHostInput: () => string | undefined = () => readHost('host')): SshConnectOptions {
  const c = new InputCollector();
  const host = c.read(readHostInput);
  const port = c.read(() => getPort('port', { default: Number(definitionDefault('port')) }));
  const username = c.read(() => getString('username', { required: true }));
  const privateKey = c.read(() => readPrivateKey('key'));
  const passphrase = c.read(() => getString('passphrase', { secret: true }));
  const password = c.read(() => getString('password', { secret: true }));
  const knownHosts = c.read(() => readKnownHosts());
  const fingerprints = c.read(() => readFingerprints());
  const insecure = c.read(() => getBoolean('insecure-ignore-host-key', { default: definitionDefault('insecure-ignore-host-key') === 'true' }));
  const jumpAddress = c.read(() => readJumpAddress());
  const jumpKey = c.read(() => readPrivateKey('jump-key'));
  const connectTimeoutSeconds = c.read(() =>
    getDuration('connect-timeout', { default: parseDuration(definitionDefault('connect-timeout'))!, min: 1, max: 3600 }),
  );

  // Combination rules look at whether inputs were given, so they still apply when a value was malformed.
  const given = (name: string) => core.getInput(name) !== '';
  if (!given('key') && !given('password')) {
    c.add(new InputError(['key', 'password'], 'Input "key" or "password" is required: give the private key (recommended) or the password for "username"'));
  }
  if (given('passphrase') && !given('key')) {
    c.add(new InputError('passphrase', 'Input "passphrase" is set but "key" is not; the passphrase unlocks the private key given in "key"'));
  }
  if (given('jump-key') && !given('jump-host')) {
    c.add(new InputError('jump-key', 'Input "jump-key" is set but "jump-host" is not; set "jump-host" to user@host:port of the jump host'));
  }
  const insecureAsked = insecure === true || (insecure === undefined && given('insecure-ignore-host-key'));
  const hostKeyWays = HOST_KEY_INPUTS.filter((name) => (name === 'insecure-ignore-host-key' ? insecureAsked : given(name)));
  if (hostKeyWays.length === 0) {
    c.add(
      new InputError(
        [...HOST_KEY_INPUTS],
        'Set one of "fingerprint", "known-hosts" or "insecure-ignore-host-key: true" so the server\'s identity can be checked. ' +
          `To get the fingerprint, run this from a machine you trust: ${keyscanCommand(host ?? 'HOST', port ?? 'PORT')} ` +
          'and put the SHA256:… value in "fingerprint"',
      ),
    );
  } else if (hostKeyWays.length > 1) {
    c.add(
      new InputError(
        hostKeyWays,
        `Inputs ${hostKeyWays.map((name) => `"${name}"`).join(' and ')} are both set; use exactly one way to check the server's identity`,
      ),
    );
  }
  c.finish();

  let hostKey: HostKeyPolicy;
  if (fingerprints !== undefined) hostKey = { kind: 'fingerprint', fingerprints };
  else if (knownHosts !== undefined) hostKey = { kind: 'known-hosts', knownHosts };
  else {
    hostKey = { kind: 'insecure-ignore' };
    core.warning(
      "insecure-ignore-host-key is true: the server's identity is NOT checked. Anyone who can intercept the connection can " +
        'pose as the server and receive the commands and secrets this step sends. Pin the host key instead with "fingerprint"; ' +
        `get it with: ${keyscanCommand(host, port)}`,
    );
  }

  let jump: JumpHost | undefined;
  if (jumpAddress) {
    jump = {
      host: jumpAddress.host,
      port: jumpAddress.port,
      username: jumpAddress.username ?? username!,
      ...(jumpKey === undefined ? {} : { privateKey: jumpKey }),
    };
  }

  return {
    host: host!,
    port: port!,
    username: username!,
    ...(privateKey === undefined ? {} : { privateKey }),
    ...(passphrase === undefined ? {} : { passphrase }),
    ...(password === undefined ? {} : { password }),
    hostKey,
    ...(jump ? { jump } : {}),
    connectTimeoutSeconds: connectTimeoutSeconds!,
    log: sshLog,
    liveOutput: liveLog(),
  };
}
