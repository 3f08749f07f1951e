import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, chmod } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { sh, stopPid, tempDir, waitFor } from './proc';
import { requirePart } from './parts';
import type { SshConnectOptions } from '@skiff/ssh';

export interface SshdOptions {
  /** Run inside this network namespace (created by the caller) and listen on `listenAddress`. */
  netns?: string;
  listenAddress?: string;
  port?: number;
  /** Also accept password logins for `passwordUser`. */
  passwordUser?: { username: string; password: string };
  /** Variables for every session (sshd's SetEnv; sshd keeps only its first SetEnv line, so this is the one way to set them). */
  env?: Readonly<Record<string, string>>;
  /** Extra sshd_config lines (no SetEnv: use `env`). */
  extraConfig?: readonly string[];
  /** false: no SFTP subsystem, as hardened configs have it. */
  sftp?: boolean;
  /**
   * Folders the server's sessions must not see: sshd runs in a mount namespace of its own with an
   * empty tmpfs over each (e.g. the machine's Compose plugin folder, for a server without one).
   */
  hide?: readonly string[];
}

export interface SshdServer {
  host: string;
  port: number;
  username: string;
  /** The authorised user key (OpenSSH format, no passphrase). */
  privateKey: string;
  privateKeyPath: string;
  /** `ssh-ed25519 AAAA…` of the server's ed25519 host key. */
  hostPublicKey: string;
  hostFingerprint: string;
  /** A known_hosts line for this server (`[127.0.0.1]:PORT ssh-ed25519 …`). */
  knownHostsLine: string;
  /** Server's RSA host key as a known_hosts line (the server offers both). */
  rsaKnownHostsLine: string;
  dir: string;
  logPath: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A free port below the kernel's ephemeral range (32768–60999 here), for a port a test holds for
 * minutes and binds again and again (a stand-in's app port): one from freePort() is in that range,
 * and between two binds any outgoing connection on the machine may take it as its source port
 * ("address already in use", seen once under a full test run).
 */
export async function freePortOutsideEphemeralRange(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('test bed: no free port between 20000 and 32000 after 200 tries');
}

/** `SHA256:…` as `ssh-keygen -lf` prints it, from an OpenSSH public key line. */
export function fingerprintOf(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

async function keygen(path: string, type: 'ed25519' | 'rsa', passphrase = ''): Promise<void> {
  await sh('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', passphrase, '-C', 'skiff-testbed', '-f', path]);
}

/**
 * The one SetEnv line. SHLVL=1 because bash sources ~/.bashrc when sshd starts it (SSH_CLIENT
 * set, SHLVL below 2), so every test command would first run the machine's root dotfiles: here a
 * pyenv init in /root/.bashrc waits 60 s on a lock a killed shell left behind, which hung a whole
 * CI run. The test bed's logins depend on sshd and on us, not on whoever set up root's home.
 */
function sessionEnvLine(options: SshdOptions): string {
  const stray = (options.extraConfig ?? []).find((line) => /^\s*SetEnv\b/i.test(line));
  if (stray) throw new Error(`test bed: "${stray}" in extraConfig would be ignored (sshd keeps only its first SetEnv); pass it as env`);
  const env = { SHLVL: '1', ...options.env };
  for (const [key, value] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key) || /[\s"\\]/.test(value)) throw new Error(`test bed: SetEnv cannot carry ${key}=${JSON.stringify(value)}`);
  }
  return `SetEnv ${Object.entries(env)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ')}`;
}

/** Starts a real OpenSSH server on loopback (or in a namespace) with throwaway host and user keys. */
export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  await requirePart('sshd', ['/usr/sbin/sshd', '-V']);
  const dir = await tempDir('sshd');
  const p = (name: string) => join(dir.path, name);
  await Promise.all([keygen(p('host_ed25519'), 'ed25519'), keygen(p('host_rsa'), 'rsa'), keygen(p('user_key'), 'ed25519')]);
  await writeFile(p('authorized_keys'), await readFile(p('user_key.pub')));
  await chmod(p('authorized_keys'), 0o600);
  await sh('mkdir', ['-p', '/run/sshd']);

  const host = options.listenAddress ?? '127.0.0.1';
  const port = options.port ?? (options.netns ? 22 : await freePort());
  const logPath = p('sshd.log');
  const config = [
    `Port ${port}`,
    `ListenAddress ${host}`,
    `HostKey ${p('host_ed25519')}`,
    `HostKey ${p('host_rsa')}`,
    `AuthorizedKeysFile ${p('authorized_keys')}`,
    `PidFile ${p('sshd.pid')}`,
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin yes',
    `PasswordAuthentication ${options.passwordUser ? 'yes' : 'no'}`,
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    'MaxStartups 100:30:200',
    'MaxSessions 50',
    'LogLevel VERBOSE',
    sessionEnvLine(options),
    ...(options.sftp === false ? [] : ['Subsystem sftp internal-sftp']),
    ...(options.extraConfig ?? []),
  ];
  await writeFile(p('sshd_config'), `${config.join('\n')}\n`);
  if (options.passwordUser) await ensurePasswordUser(options.passwordUser.username, options.passwordUser.password);

  const sshdArgs = ['-D', '-f', p('sshd_config'), '-E', logPath];
  if (options.hide?.length && options.netns) throw new Error('test bed: hide is not supported inside a network namespace');
  // unshare and sh exec in place, so the pid is sshd's. The folders, then sshd's arguments, are sh's own arguments.
  const hiding = options.hide?.length
    ? [
        'unshare',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-c',
        'n=$1; shift; while [ "$n" -gt 0 ]; do mount -t tmpfs -o ro,size=1m skiff-hidden "$1" || exit 1; shift; n=$((n - 1)); done; exec /usr/sbin/sshd "$@"',
        'hide',
        String(options.hide.length),
        ...options.hide,
        ...sshdArgs,
      ]
    : undefined;
  const child = options.netns
    ? spawn('ip', ['netns', 'exec', options.netns, '/usr/sbin/sshd', ...sshdArgs], { stdio: 'ignore', detached: true })
    : hiding
      ? spawn(hiding[0]!, hiding.slice(1), { stdio: 'ignore', detached: true })
      : spawn('/usr/sbin/sshd', sshdArgs, { stdio: 'ignore', detached: true });
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new Error('test bed: sshd did not start');

  const inNs = (args: string[]) => (options.netns ? sh('ip', ['netns', 'exec', options.netns, ...args]) : sh(args[0]!, args.slice(1)));
  await waitFor(
    `sshd on ${host}:${port}`,
    async () => {
      const out = await inNs(['ssh-keyscan', '-T', '1', '-t', 'ed25519', '-p', String(port), host]).catch(() => '');
      return out.includes('ssh-ed25519');
    },
    15_000,
  );

  const hostPublicKey = (await readFile(p('host_ed25519.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const rsaPublicKey = (await readFile(p('host_rsa.pub'), 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
  const hostPattern = port === 22 ? host : `[${host}]:${port}`;
  return {
    host,
    port,
    username: 'root',
    privateKey: await readFile(p('user_key'), 'utf8'),
    privateKeyPath: p('user_key'),
    hostPublicKey,
    hostFingerprint: fingerprintOf(hostPublicKey),
    knownHostsLine: `${hostPattern} ${hostPublicKey}`,
    rsaKnownHostsLine: `${hostPattern} ${rsaPublicKey}`,
    dir: dir.path,
    logPath,
    async stop() {
      // sshd -D runs in its own group (detached); session children die with their connections.
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await stopPid(pid);
      await dir.remove();
    },
  };
}

/** A local account that logs in with a password (re-set on every call, so it is fresh per run). */
export async function ensurePasswordUser(username: string, password: string): Promise<void> {
  const exists = await sh('id', ['-u', username]).then(
    () => true,
    () => false,
  );
  if (!exists) await sh('useradd', ['-m', '-s', '/bin/bash', username]);
  await sh('chpasswd', [], { input: `${username}:${password}\n` });
}

export function randomPassword(): string {
  return randomBytes(18).toString('base64url');
}

/** The shared SSH inputs of an action (as INPUT_* strings) that log in to a test sshd with its host key pinned. */
export function sshdActionInputs(
  server: Pick<SshdServer, 'host' | 'port' | 'username' | 'privateKey' | 'hostFingerprint'>,
): Record<'host' | 'port' | 'username' | 'key' | 'fingerprint', string> {
  return { host: server.host, port: String(server.port), username: server.username, key: server.privateKey, fingerprint: server.hostFingerprint };
}

/** Options for @skiff/ssh that log in to a test sshd with its user key and its host key pinned. */
export function sshdConnectOptions(
  server: Pick<SshdServer, 'host' | 'port' | 'username' | 'privateKey' | 'knownHostsLine'>,
  overrides: Partial<SshConnectOptions> = {},
): SshConnectOptions {
  return {
    host: server.host,
    port: server.port,
    username: server.username,
    privateKey: server.privateKey,
    hostKey: { kind: 'known-hosts', knownHosts: `${server.knownHostsLine}\n` },
    connectTimeoutSeconds: 10,
    attempts: 1,
    ...overrides,
  };
}
