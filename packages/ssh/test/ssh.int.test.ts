import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, appendFileSync, writeFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteCommandError, RemoteTimeoutError, raw } from '@skiff/shell';
import { freePort, randomPassword, startSshd, type SshdServer } from '@skiff/testbed';
import { HostKeyError, SshConnection, SshConnectionError, type SshConnectOptions } from '../src';
import { HOSTILE_VALUES } from '../../shell/test/hostile';
import { bundleFixture, connectOptions, fixture, processesMatching } from './helpers';

const execFileAsync = promisify(execFile);
let server: SshdServer;
let other: SshdServer;
let work: string;
const serverPassword = randomPassword();

beforeAll(async () => {
  [server, other] = await Promise.all([startSshd({ passwordUser: { username: 'skiffpw', password: serverPassword } }), startSshd()]);
  work = mkdtempSync(join(tmpdir(), 'skiff-ssh-int-'));
});
afterAll(async () => {
  await Promise.all([server?.stop(), other?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

const acceptedLogins = (s: SshdServer) => (readFileSync(s.logPath, 'utf8').match(/Accepted (publickey|password|keyboard-interactive)/g) ?? []).length;

describe('host key verification', () => {
  it('accepts a pinned known_hosts line, a hashed one, an RSA-only pin, and a fingerprint', async () => {
    const hashedFile = join(work, 'known_hosts_hashed');
    writeFileSync(hashedFile, `${server.knownHostsLine}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', hashedFile], { stdio: 'ignore' });
    const hashed = readFileSync(hashedFile, 'utf8');
    expect(hashed).toMatch(/^\|1\|/);
    const policies = [
      { kind: 'known-hosts' as const, knownHosts: `${other.knownHostsLine}\n${server.knownHostsLine}\n` },
      { kind: 'known-hosts' as const, knownHosts: hashed },
      { kind: 'known-hosts' as const, knownHosts: `${server.rsaKnownHostsLine}\n` },
      { kind: 'fingerprint' as const, fingerprints: [other.hostFingerprint, server.hostFingerprint] },
    ];
    for (const hostKey of policies) {
      const ssh = await SshConnection.connect(connectOptions(server, { hostKey }));
      const result = await ssh.run([['echo', 'verified']]);
      expect(result.stdout).toBe('verified\n');
      await ssh.close();
    }
  });

  it('refuses a wrong host key before any command runs, showing the fingerprint and how to check it', async () => {
    const marker = join(work, 'must-not-exist');
    const loginsBefore = acceptedLogins(server);
    const attempt = async (hostKey: SshConnectOptions['hostKey']) => {
      const ssh = await SshConnection.connect(connectOptions(server, { hostKey }));
      await ssh.run([['touch', marker]]);
    };
    for (const hostKey of [
      { kind: 'known-hosts' as const, knownHosts: `${other.knownHostsLine.replace(`:${other.port}`, `:${server.port}`)}\n` },
      { kind: 'fingerprint' as const, fingerprints: [other.hostFingerprint] },
    ]) {
      const error = await attempt(hostKey).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(HostKeyError);
      expect((error as Error).message).toContain(server.hostFingerprint);
      expect((error as Error).message).toContain(`ssh-keyscan -p ${server.port} ${server.host} | ssh-keygen -lf -`);
    }
    expect(existsSync(marker)).toBe(false);
    // The key exchange failed, so the server never even authenticated us.
    expect(acceptedLogins(server)).toBe(loginsBefore);
  });

  it('refuses when known-hosts has no entry for this port', async () => {
    const hostKey = { kind: 'known-hosts' as const, knownHosts: `${server.host} ${server.hostPublicKey}\n` };
    await expect(SshConnection.connect(connectOptions(server, { hostKey }))).rejects.toThrow(/no entry for \[127\.0\.0\.1\]:\d+/);
  });

  it('connects without verification only when asked, and warns', async () => {
    const logs: string[] = [];
    const ssh = await SshConnection.connect(
      connectOptions(server, { hostKey: { kind: 'insecure-ignore' }, log: (level, message) => logs.push(`${level}: ${message}`) }),
    );
    expect((await ssh.run([['echo', 'ok']])).stdout).toBe('ok\n');
    await ssh.close();
    expect(logs.some((line) => line.startsWith('warning:') && line.includes('NOT verified') && line.includes(server.hostFingerprint))).toBe(true);
  });
});

describe('commands', () => {
  let ssh: SshConnection;
  beforeAll(async () => {
    ssh = await SshConnection.connect(connectOptions(server));
  });
  afterAll(() => ssh?.close());

  it('reuses one connection for many commands', async () => {
    const before = acceptedLogins(server);
    const fresh = await SshConnection.connect(connectOptions(server));
    for (let i = 0; i < 5; i++) expect((await fresh.run([['echo', String(i)]])).stdout).toBe(`${i}\n`);
    await fresh.close();
    expect(acceptedLogins(server) - before).toBe(1);
  });

  it('delivers hostile values as literal arguments and runs none of them', async () => {
    const result = await ssh.run([['printf', '%s\\0', ...HOSTILE_VALUES]]);
    expect(result.stdout.split('\0').slice(0, -1)).toEqual(HOSTILE_VALUES);
    for (const marker of ['/tmp/skiff-pwned-subst', '/tmp/skiff-pwned-backtick', '/tmp/skiff-pwned-redirect']) {
      expect(existsSync(marker)).toBe(false);
    }
  });

  it('hostile values survive as file names on the server', async () => {
    const dir = join(work, 'names');
    const names = HOSTILE_VALUES.filter((value) => value && !value.includes('/') && value.length < 200 && value !== '.' && value !== '..');
    await ssh.run([['mkdir', '-p', dir], ...names.map((name) => ['touch', '--', join(dir, name)])]);
    const listed = await ssh.run([['find', dir, '-mindepth', '1', '-printf', '%f\\0']]);
    expect(listed.stdout.split('\0').slice(0, -1).sort()).toEqual([...new Set(names)].sort());
  });

  it('returns stdout, stderr and the exit code; a non-zero exit throws unless allowed', async () => {
    const commands = [
      ['echo', 'out'],
      ['sh', '-c', 'echo err >&2; exit 3'],
    ];
    const allowed = await ssh.run(commands, { allowFailure: true });
    expect(allowed).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    const error = await ssh.run(commands, { description: 'the failing step' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect((error as RemoteCommandError).result.code).toBe(3);
    expect((error as Error).message).toMatch(/^the failing step failed with exit code 3:\nerr/);
  });

  it('runs in strict mode: a failing pipe stage and an unset variable stop the script', async () => {
    const pipeline = await ssh.run(
      [
        ['false', raw('|'), 'cat'],
        ['echo', 'not reached'],
      ],
      { allowFailure: true },
    );
    expect(pipeline.code).not.toBe(0);
    expect(pipeline.stdout).not.toContain('not reached');
    const unset = await ssh.run(
      [
        ['echo', raw('"$SKIFF_UNSET_VARIABLE"')],
        ['echo', 'not reached'],
      ],
      { allowFailure: true },
    );
    expect(unset.code).not.toBe(0);
    expect(unset.stderr).toContain('SKIFF_UNSET_VARIABLE');
  });

  it('gives scripts /dev/null as stdin, or exactly the data streamed in', async () => {
    expect((await ssh.run([['cat']], { timeoutSeconds: 10 })).stdout).toBe('');
    expect((await ssh.run([['wc', '-c']], { stdin: 'x'.repeat(12345) })).stdout.trim()).toBe('12345');
  });

  it('kills the whole remote process group when a command outruns its timeout', async () => {
    const marker = `77${Date.now() % 100000}.5`;
    const started = Date.now();
    const error = await ssh
      .run([['sh', '-c', `sleep ${marker} & sleep ${marker} & wait`]], { timeoutSeconds: 2, description: 'slow step' })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RemoteTimeoutError);
    expect((error as Error).message).toContain('slow step did not finish within 2s');
    expect(Date.now() - started).toBeLessThan(9000);
    // Give the kernel a moment to reap, then nothing with the marker may remain on the server.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(processesMatching(`sleep ${marker}`)).toEqual([]);
  });

  it('ends everything a command started when the runner dies mid-command', async () => {
    const bundle = await bundleFixture(fixture('hold-child.ts'), join(work, 'hold-child.mjs'));
    const marker = `99${Date.now() % 100000}.75`;
    const child = spawn(join(import.meta.dirname, '../../../node_modules/.bin/node'), [bundle], {
      env: { ...process.env, SKIFF_HOLD_CHILD: JSON.stringify({ connect: connectOptions(server), marker }) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((resolve) => child.on('close', resolve));
    const sleeps = () => processesMatching(`sleep ${marker}`).filter((line) => /\ssleep /.test(line) && !line.includes('sh -c'));
    for (let i = 0; i < 100 && sleeps().length < 2; i++) await new Promise((r) => setTimeout(r, 100));
    expect(sleeps()).toHaveLength(2);
    child.kill('SIGKILL');
    await exited;
    // sshd notices the closed connection, the supervisor sees its stdin end and stops the session.
    for (let i = 0; i < 100 && processesMatching(`sleep ${marker}`).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(processesMatching(`sleep ${marker}`)).toEqual([]);
  });

  it('uploads a file atomically with mode 0600, replacing a wider existing file, and logs no value', async () => {
    const logs: string[] = [];
    const logged = await SshConnection.connect(connectOptions(server, { log: (_level, message) => logs.push(message) }));
    const path = join(work, 'app.env');
    writeFileSync(path, 'OLD=1\n', { mode: 0o644 });
    const secretValue = `s3cr3t-${randomPassword()}`;
    await logged.upload(path, `DATABASE_PASSWORD=${secretValue}\n`, { mode: 0o600, secret: true });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8')).toBe(`DATABASE_PASSWORD=${secretValue}\n`);
    const remoteView = await logged.run([['stat', '-c', '%a', path]]);
    expect(remoteView.stdout.trim()).toBe('600');
    await logged.close();
    expect(logs.join('\n')).not.toContain(secretValue);
    expect(readFileSync(server.logPath, 'utf8')).not.toContain(secretValue);
    // No temporary file is left next to the target.
    expect(execFileSync('ls', ['-a', work], { encoding: 'utf8' })).not.toMatch(/skiff-.*\.tmp/);
  });

  it('streams 500 MB of stdout with the process staying under 150 MB RSS', async () => {
    const bundle = await bundleFixture(fixture('stream-child.ts'), join(work, 'stream-child.mjs'));
    const bytes = 500 * 1024 * 1024;
    // Node 24 is what the runner runs actions with.
    const { stdout } = await execFileAsync(join(import.meta.dirname, '../../../node_modules/.bin/node'), [bundle], {
      env: { ...process.env, SKIFF_STREAM_CHILD: JSON.stringify({ connect: connectOptions(server), bytes }) },
      maxBuffer: 1024 * 1024,
      timeout: 170_000,
    });
    const report = JSON.parse(stdout) as { code: number; received: number; sha256: string; peakRssMb: number };
    const expectedSha = execFileSync('sh', ['-c', `head -c ${bytes} /dev/zero | sha256sum`], { encoding: 'utf8' }).split(' ')[0];
    expect(report.code).toBe(0);
    expect(report.received).toBe(bytes);
    expect(report.sha256).toBe(expectedSha);
    expect(report.peakRssMb).toBeLessThan(150);
    console.info(`500 MB stream: peak RSS ${report.peakRssMb.toFixed(1)} MB`);
  });
});

describe('live output', () => {
  type Seen = { at: number; what: string };
  const recorder = () => {
    const seen: Seen[] = [];
    const at = () => performance.now();
    return {
      seen,
      liveOutput: {
        begin: (d: string) => seen.push({ at: at(), what: `begin ${d}` }),
        line: (t: string) => seen.push({ at: at(), what: t }),
        end: () => seen.push({ at: at(), what: 'end' }),
      },
    };
  };

  it('shows each line as the command prints it, stdout and stderr, not when it ends', async () => {
    const { seen, liveOutput } = recorder();
    const ssh = await SshConnection.connect(connectOptions(server, { liveOutput }));
    try {
      const started = performance.now();
      const result = await ssh.run([[raw('echo "step one"; sleep 2; echo "step two" >&2; printf "no newline at the end"')]], {
        description: 'migrate',
        live: 'all',
      });
      const ended = performance.now();
      expect(seen.map((s) => s.what)).toEqual(['begin migrate', 'step one', 'step two', 'no newline at the end', 'end']);
      // The first line was shown while the command still ran (it then slept 2 s).
      expect(ended - seen[1]!.at).toBeGreaterThan(1500);
      expect(seen[1]!.at - started).toBeLessThan(ended - started - 1500);
      // Collected output is unchanged.
      expect(result.stdout).toBe('step one\nno newline at the end');
      expect(result.stderr).toBe('step two\n');
    } finally {
      await ssh.close();
    }
  });

  it('live: stderr leaves stdout (data) out of the log; no live option shows nothing', async () => {
    const { seen, liveOutput } = recorder();
    const ssh = await SshConnection.connect(connectOptions(server, { liveOutput }));
    try {
      await ssh.run([[raw('echo "secret-ish data"; echo "progress 50%" >&2')]], { description: 'dump', live: 'stderr' });
      await ssh.run([['echo', 'quiet']], { description: 'read state' });
      expect(seen.map((s) => s.what)).toEqual(['begin dump', 'progress 50%', 'end']);
    } finally {
      await ssh.close();
    }
  });
});

describe('authentication', () => {
  const keyWith = (name: string, args: string[]) => {
    const path = join(work, name);
    execFileSync('ssh-keygen', ['-q', ...args, '-f', path, '-C', name]);
    appendFileSync(join(server.dir, 'authorized_keys'), readFileSync(`${path}.pub`));
    return readFileSync(path, 'utf8');
  };

  it('accepts an OpenSSH key with a passphrase and an RSA PEM key with a passphrase', async () => {
    const openssh = keyWith('openssh_pp', ['-t', 'ed25519', '-N', 'correct horse']);
    const pem = keyWith('pem_pp', ['-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', 'pem pass']);
    expect(openssh).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(pem).toContain('BEGIN RSA PRIVATE KEY');
    for (const [privateKey, passphrase] of [
      [openssh, 'correct horse'],
      [pem, 'pem pass'],
    ] as const) {
      const ssh = await SshConnection.connect(connectOptions(server, { privateKey, passphrase }));
      expect((await ssh.run([['id', '-un']])).stdout.trim()).toBe('root');
      await ssh.close();
    }
  });

  it('names the passphrase input when the key cannot be decrypted, without retrying', async () => {
    const locked = keyWith('locked', ['-t', 'ed25519', '-N', 'right']);
    const logs: string[] = [];
    const error = await SshConnection.connect(
      connectOptions(server, { privateKey: locked, passphrase: 'wrong', attempts: 3, log: (_l, m) => logs.push(m) }),
    ).catch((c: unknown) => c);
    expect(error).toBeInstanceOf(SshConnectionError);
    expect((error as Error).message).toContain('`passphrase`');
    expect(logs.filter((line) => line.includes('retrying'))).toEqual([]);
  });

  it('logs in with a password', async () => {
    const { privateKey: _unused, ...withoutKey } = connectOptions(server);
    const ssh = await SshConnection.connect({ ...withoutKey, username: 'skiffpw', password: serverPassword });
    expect((await ssh.run([['id', '-un']])).stdout.trim()).toBe('skiffpw');
    await ssh.close();
    const wrong = await SshConnection.connect({ ...withoutKey, username: 'skiffpw', password: `${serverPassword}x` }).catch((c: unknown) => c);
    expect((wrong as Error).message).toMatch(/authentication to skiffpw@127\.0\.0\.1:\d+ failed/);
  });

  it('fails authentication clearly and without retrying', async () => {
    const logs: string[] = [];
    const stranger = keyWith('stranger', ['-t', 'ed25519', '-N', '']);
    // Remove the stranger from authorized_keys again so the server refuses it.
    const authorized = readFileSync(join(server.dir, 'authorized_keys'), 'utf8')
      .split('\n')
      .filter((line) => !line.endsWith(' stranger'));
    writeFileSync(join(server.dir, 'authorized_keys'), authorized.join('\n'));
    const error = await SshConnection.connect(connectOptions(server, { privateKey: stranger, attempts: 3, log: (_l, m) => logs.push(m) })).catch(
      (c: unknown) => c,
    );
    expect((error as Error).message).toMatch(/authentication to root@127\.0\.0\.1:\d+ failed/);
    expect(logs.filter((line) => line.includes('retrying'))).toEqual([]);
  });
});

describe('a server without the SFTP subsystem (hardened sshd_config)', () => {
  let bare: SshdServer;
  beforeAll(async () => {
    bare = await startSshd({ sftp: false });
  });
  afterAll(() => bare?.stop());

  it('uploads over the exec channel instead: same content, same mode, atomic replace, nothing left beside it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'skiff-nosftp-'));
    const ssh = await SshConnection.connect(connectOptions(bare));
    try {
      const path = join(dir, "it's a .env");
      const secret = `TOKEN=${randomPassword()}\n${HOSTILE_VALUES.join('\n')}\n`;
      await ssh.upload(path, secret, { mode: 0o600, secret: true, description: 'env file' });
      expect(readFileSync(path, 'utf8')).toBe(secret);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7919) % 256));
      await ssh.upload(path, binary, { mode: 0o644 });
      expect(readFileSync(path).equals(binary)).toBe(true);
      expect(statSync(path).mode & 0o777).toBe(0o644);
      expect(execFileSync('ls', ['-A', dir], { encoding: 'utf8' })).toBe("it's a .env\n");
      await expect(ssh.upload(join(dir, 'no/such/dir/file'), 'x', { mode: 0o600 })).rejects.toThrow(/over exec, the server has no SFTP/);
    } finally {
      await ssh.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('connection failures', () => {
  it('retries a refused connection, then says what failed', async () => {
    const logs: string[] = [];
    const port = await freePort();
    const error = await SshConnection.connect(connectOptions(server, { port, attempts: 2, log: (_l, m) => logs.push(m) })).catch((c: unknown) => c);
    expect(error).toBeInstanceOf(SshConnectionError);
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
    expect(logs.filter((line) => line.includes('retrying'))).toHaveLength(1);
  });

  it('connect-timeout is the whole wait: a server that accepts but never answers gets one attempt of that length, not three', async () => {
    const connections: Socket[] = [];
    const silent: Server = createServer((socket) => {
      connections.push(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as { port: number }).port;
      const logs: string[] = [];
      const error = await SshConnection.connect(connectOptions(server, { port, connectTimeoutSeconds: 3, attempts: 3, log: (_l, m) => logs.push(m) })).catch(
        (c: unknown) => c,
      );
      expect(error).toBeInstanceOf(SshConnectionError);
      expect((error as Error).message).toMatch(/gave up after 1 attempt within connect-timeout 3s/);
      // Before, each of 3 attempts waited the full 3 s, with pauses between (~12 s in all).
      expect(connections).toHaveLength(1);
      expect(logs.filter((line) => line.includes('retrying'))).toEqual([]);
    } finally {
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('connects once the server comes up during the retries', async () => {
    // The port refuses at first; a little later a TCP relay to the real server opens on it.
    const port = await freePort();
    const sockets = new Set<Socket>();
    const relay: Server = createServer((client) => {
      const upstream = connect(server.port, server.host);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    const opened = new Promise<void>((resolve) => setTimeout(() => relay.listen(port, '127.0.0.1', resolve), 700));
    const logs: string[] = [];
    try {
      const knownHosts = `${server.knownHostsLine.replace(`:${server.port}`, `:${port}`)}\n`;
      const ssh = await SshConnection.connect(
        connectOptions(server, { port, hostKey: { kind: 'known-hosts', knownHosts }, attempts: 4, log: (_l, m) => logs.push(m) }),
      );
      expect((await ssh.run([['echo', 'up']])).stdout).toBe('up\n');
      expect(logs.filter((line) => line.includes('retrying')).length).toBeGreaterThanOrEqual(1);
      // Cut the TCP path under the live connection: the next command says so instead of crashing the process.
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await expect(ssh.run([['echo', 'again']])).rejects.toThrow(/SSH connection to root@127\.0\.0\.1:\d+ (was lost|is closed)/);
      await ssh.close();
    } finally {
      await opened;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => relay.close(resolve));
    }
  });

  it('gives up on a server that never completes the handshake within connect-timeout', async () => {
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const started = Date.now();
    const error = await SshConnection.connect(connectOptions(server, { port, connectTimeoutSeconds: 1, attempts: 1 })).catch((c: unknown) => c);
    silent.close();
    expect((error as Error).message).toMatch(/Could not connect to root@127\.0\.0\.1:\d+: Timed out while waiting for handshake/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
