import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClientChannel, ConnectConfig, ServerHostKeyAlgorithm, SFTPWrapper } from 'ssh2';
import { SshClient } from './client';
import {
  KILL_GRACE_SECONDS,
  RemoteCommandError,
  RemoteTimeoutError,
  isTimeoutExit,
  lineSplitter,
  quote,
  raw,
  remoteCommandLine,
  script,
  type Command,
  type ExecResult,
  type Executor,
  type RunOptions,
  type UploadOptions,
} from '@skiff/shell';
import { HostKeyError, keyTypeOf, knownHostsName, preferredHostKeyAlgorithms, sha256Fingerprint, verifyHostKey } from './host-key';
import type { HostKeyPolicy, LiveOutput, SshConnectOptions } from './options';
import { bufferReclaimer } from './memory';

export interface ExecOptions {
  stdin?: Readable | string | Buffer;
  /** Receives stdout with backpressure; ended when the command's output ends. */
  stdout?: Writable;
  /** Client-side guard; the server-side limit is part of the command line (see remoteCommandLine). */
  clientTimeoutSeconds?: number;
  /** Upper bound on collected stdout when not streaming. */
  maxBufferBytes?: number;
  /** Leave stdin open until the command ends (for supervised command lines; see remoteCommandLine). */
  keepStdinOpen?: boolean;
  /** Sees every chunk of output as it arrives, besides collecting it. */
  onData?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

export interface LocalForward {
  /** Port on 127.0.0.1 of the runner that reaches the remote address. */
  port: number;
  close(): Promise<void>;
}

export class SshConnectionError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'SshConnectionError';
  }
}

const RETRYABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE']);
const STDERR_KEEP_BYTES = 1024 * 1024;

interface Ssh2Error extends Error {
  code?: string;
  level?: string;
}

function describeTarget(username: string, host: string, port: number): string {
  return `${username}@${host}:${port}`;
}

/** Turns ssh2's errors into ones that say what to fix, and whether trying again can help. */
function classifyConnectError(error: Ssh2Error, target: string, hostKeyFailure: HostKeyError | undefined): Error {
  if (hostKeyFailure) return hostKeyFailure;
  if (error instanceof HostKeyError) return error;
  const message = error.message ?? String(error);
  if (/Cannot parse privateKey|privateKey value does not contain/i.test(message)) {
    const encrypted = /encrypted|passphrase|bad decrypt/i.test(message);
    return new SshConnectionError(
      encrypted
        ? `The SSH key could not be decrypted: check the \`passphrase\` input (${message}).`
        : `The \`key\` input is not a private key ssh2 can read (OpenSSH or PEM format expected): ${message}`,
      false,
    );
  }
  if (error.level === 'client-authentication') {
    return new SshConnectionError(
      `SSH authentication to ${target} failed: the server accepted none of the offered credentials. Check \`username\`, and that the public half of \`key\` is in the user's authorized_keys (or that \`password\` is right).`,
      false,
    );
  }
  if (error.level === 'client-timeout' || (error.code && RETRYABLE_CODES.has(error.code)) || error.level === 'client-socket') {
    return new SshConnectionError(`Could not connect to ${target}: ${message}`, true);
  }
  if (/No response from server/i.test(message)) return new SshConnectionError(`Could not connect to ${target}: ${message}`, true);
  return new SshConnectionError(`SSH connection to ${target} failed: ${message}`, false);
}

/**
 * One SSH connection to one host, reused for every step of an action. It is also the real
 * Executor: command builders' output runs here as strict bash scripts.
 */
export class SshConnection implements Executor {
  private sftpSession?: Promise<SFTPWrapper>;

  private constructor(
    private readonly ssh: SshClient,
    private readonly bastion: SshClient | undefined,
    readonly target: string,
    /** The host key the server presented, for logs and summaries. */
    readonly hostKeyFingerprint: string,
    private readonly liveOutput?: LiveOutput,
  ) {}

  /** Why the connection (or the jump host's, which carries it) dropped, if it did. */
  private get lostWith(): Error | undefined {
    return this.ssh.lostWith ?? this.bastion?.lostWith;
  }

  /**
   * Connects within `connectTimeoutSeconds` in all: each attempt gets the time that is left, and a
   * connection-level failure is retried (up to `attempts`) only while a pause and a further second
   * still fit. So `connect-timeout: 5s` gives up after about 5 s, as its description says, not
   * after three full 5 s attempts and the pauses between them.
   */
  static async connect(options: SshConnectOptions): Promise<SshConnection> {
    const attempts = Math.max(1, options.attempts ?? 3);
    const target = describeTarget(options.username, options.host, options.port);
    const budgetSeconds = options.connectTimeoutSeconds ?? 20;
    const deadline = Date.now() + budgetSeconds * 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await SshConnection.connectOnce({ ...options, connectTimeoutSeconds: Math.max(1000, deadline - Date.now()) / 1000 });
      } catch (error) {
        const retryable = error instanceof SshConnectionError && error.retryable;
        if (!retryable) throw error;
        const delayMs = Math.min(8000, 1000 * 2 ** (attempt - 1));
        if (attempt >= attempts || deadline - Date.now() - delayMs < 1000) {
          throw new SshConnectionError(
            `${(error as Error).message} (gave up after ${attempt} attempt${attempt === 1 ? '' : 's'} within connect-timeout ${budgetSeconds}s)`,
            true,
          );
        }
        options.log?.('warning', `${(error as Error).message} (attempt ${attempt} of ${attempts}; retrying ${target} in ${delayMs / 1000}s)`);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  private static async connectOnce(options: SshConnectOptions): Promise<SshConnection> {
    let bastion: SshClient | undefined;
    let sock: ConnectConfig['sock'];
    if (options.jump) {
      const jump = options.jump;
      const viaKey = jump.privateKey !== undefined;
      const jumpClient = await openClient(
        {
          host: jump.host,
          port: jump.port,
          username: jump.username,
          ...(viaKey ? { privateKey: jump.privateKey, passphrase: jump.passphrase } : credentialsOf(options)),
        },
        options,
      ).then((opened) => opened.ssh);
      bastion = jumpClient;
      try {
        sock = await jumpClient.forwardOut('127.0.0.1', 0, options.host, options.port);
      } catch (error) {
        jumpClient.end();
        throw new SshConnectionError(
          `The jump host ${describeTarget(jump.username, jump.host, jump.port)} could not reach ${options.host}:${options.port}: ${(error as Error).message}`,
          true,
        );
      }
    }
    try {
      const { ssh, fingerprint } = await openClient({ host: options.host, port: options.port, ...credentialsOf(options), ...(sock ? { sock } : {}) }, options);
      return new SshConnection(ssh, bastion, describeTarget(options.username, options.host, options.port), fingerprint, options.liveOutput);
    } catch (error) {
      bastion?.end();
      throw error;
    }
  }

  /**
   * Runs a raw command line. Exit code, signal, stdout and stderr come back; nothing is
   * thrown for a non-zero exit (callers decide), only for transport failures.
   */
  exec(commandLine: string, options: ExecOptions = {}): Promise<ExecResult> {
    const client = this.ssh.connection;
    if (this.ssh.closed || this.lostWith) {
      const why = this.lostWith ? `was lost: ${this.lostWith.message}` : 'is closed';
      return Promise.reject(new SshConnectionError(`The SSH connection to ${this.target} ${why}`, false));
    }
    const maxBuffer = options.maxBufferBytes ?? 64 * 1024 * 1024;
    return new Promise<ExecResult>((resolve, reject) => {
      client.exec(commandLine, (error: Error | undefined, channel: ClientChannel) => {
        if (error) return reject(new SshConnectionError(`Could not start a command on ${this.target}: ${error.message}`, false));
        const stdoutChunks: Buffer[] = [];
        let stdoutBytes = 0;
        let stderr = '';
        let exit: { code: number | null; signal?: string } = { code: null };
        let overflow = false;
        let timer: NodeJS.Timeout | undefined;
        let clientTimedOut = false;

        if (options.onData) {
          const onData = options.onData;
          channel.on('data', (chunk: Buffer) => onData('stdout', chunk));
          channel.stderr.on('data', (chunk: Buffer) => onData('stderr', chunk));
        }
        if (options.stdout) {
          const reclaim = bufferReclaimer();
          channel.on('data', (chunk: Buffer) => reclaim(chunk.length));
          channel.pipe(options.stdout);
        } else {
          channel.on('data', (chunk: Buffer) => {
            stdoutBytes += chunk.length;
            if (stdoutBytes > maxBuffer) {
              overflow = true;
              channel.close();
              return;
            }
            stdoutChunks.push(chunk);
          });
        }
        channel.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString('utf8');
          if (stderr.length > STDERR_KEEP_BYTES) stderr = stderr.slice(-STDERR_KEEP_BYTES);
        });
        channel.on('exit', (code: number | null, signal?: string) => {
          exit = { code, ...(signal ? { signal } : {}) };
        });
        if (options.clientTimeoutSeconds !== undefined) {
          timer = setTimeout(() => {
            clientTimedOut = true;
            channel.close();
          }, options.clientTimeoutSeconds * 1000);
        }
        channel.on('close', () => {
          if (timer) clearTimeout(timer);
          const settle = () => {
            if (overflow) return reject(new Error(`Output of a command on ${this.target} exceeded ${maxBuffer} bytes; stream it instead`));
            if (clientTimedOut) return resolve({ code: 124, signal: 'TIMEOUT', stdout: Buffer.concat(stdoutChunks).toString('utf8'), stderr });
            resolve({
              code: exit.code ?? 255,
              ...(exit.signal ? { signal: exit.signal } : {}),
              stdout: Buffer.concat(stdoutChunks).toString('utf8'),
              stderr,
            });
          };
          if (options.stdout) finished(options.stdout).then(settle, reject);
          else settle();
        });

        // Without streamed input the channel's stdin stays open on purpose: the remote supervisor
        // reads it, and its EOF (the channel closing) means this runner is gone.
        if (options.stdin === undefined) {
          if (!options.keepStdinOpen) channel.end();
        } else if (typeof options.stdin === 'string' || Buffer.isBuffer(options.stdin)) channel.end(options.stdin);
        else {
          options.stdin.on('error', (streamError) => {
            channel.close();
            reject(streamError);
          });
          const reclaim = bufferReclaimer();
          options.stdin.on('data', (chunk: Buffer) => reclaim(chunk.length));
          options.stdin.pipe(channel);
        }
      });
    });
  }

  /** Executor: runs commands as one strict bash script; the remote exit code decides success. */
  async run(commands: readonly Command[], options: RunOptions = {}): Promise<ExecResult> {
    const description = options.description ?? 'remote command';
    const timeoutSeconds = options.timeoutSeconds;
    const commandLine = remoteCommandLine(script(commands), {
      ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
      stdin: options.stdin !== undefined,
    });
    const live = options.live && this.liveOutput ? this.liveOutput : undefined;
    // Streamed stdout is data for the caller, never for the log.
    const shown = options.stdout ? 'stderr' : options.live;
    const splitters = live ? { stdout: lineSplitter((line) => live.line(line)), stderr: lineSplitter((line) => live.line(line)) } : undefined;
    live?.begin(description);
    let result: ExecResult;
    try {
      result = await this.exec(commandLine, {
        ...(options.stdin !== undefined ? { stdin: options.stdin } : { keepStdinOpen: true }),
        ...(options.stdout ? { stdout: options.stdout } : {}),
        ...(timeoutSeconds !== undefined ? { clientTimeoutSeconds: timeoutSeconds + KILL_GRACE_SECONDS + 10 } : {}),
        ...(splitters
          ? { onData: (stream: 'stdout' | 'stderr', chunk: Buffer) => (shown === 'all' || stream === 'stderr') && splitters[stream].push(chunk) }
          : {}),
      });
    } finally {
      splitters?.stdout.flush();
      splitters?.stderr.flush();
      live?.end();
    }
    if (timeoutSeconds !== undefined && isTimeoutExit(result.code)) throw new RemoteTimeoutError(description, timeoutSeconds);
    if (result.code !== 0 && !options.allowFailure) throw new RemoteCommandError(description, result);
    return result;
  }

  /**
   * Writes a file atomically with its final mode from the first byte: it is created under a
   * temporary name with `mode`, then renamed over the target, so readers never see a partial
   * file and secrets never sit in a world-readable one.
   */
  async upload(remotePath: string, content: string | Buffer, options: UploadOptions): Promise<void> {
    const sftp = await this.sftp().catch((error: Error) => {
      // Hardened sshd configs remove the SFTP subsystem; the exec channel does the same job.
      if (/subsystem/i.test(error.message)) return undefined;
      throw error;
    });
    if (!sftp) return this.uploadOverExec(remotePath, content, options);
    const temporary = `${remotePath}.skiff-${randomBytes(6).toString('hex')}.tmp`;
    const call = <T>(what: string, fn: (done: (error?: Error | null, value?: T) => void) => void) =>
      new Promise<T>((resolve, reject) =>
        fn((error, value) => (error ? reject(new Error(`Upload to ${this.target}:${remotePath} failed (${what}): ${error.message}`)) : resolve(value as T))),
      );
    try {
      await call('write', (done) => sftp.writeFile(temporary, content, { mode: options.mode }, done));
      // An existing file's mode is not changed by open(); and umask may have narrowed it.
      await call('chmod', (done) => sftp.chmod(temporary, options.mode, done));
      await call('rename', (done) => sftp.ext_openssh_rename(temporary, remotePath, done));
    } catch (error) {
      await call('cleanup', (done) => sftp.unlink(temporary, done)).catch(() => undefined);
      throw error;
    }
  }

  /**
   * The same atomic upload over a plain exec channel, for servers without SFTP: the content is
   * streamed on stdin (never on a command line) into a temporary file created under umask 077,
   * given its mode, then renamed over the target; the trap removes the temporary on any failure.
   */
  private async uploadOverExec(remotePath: string, content: string | Buffer, options: UploadOptions): Promise<void> {
    const temporary = `${remotePath}.skiff-${randomBytes(6).toString('hex')}.tmp`;
    const result = await this.run(
      [
        ['umask', '077'],
        [raw(`trap ${quote(`rm -f -- ${quote(temporary)}`)} EXIT`)],
        [raw('cat >'), temporary],
        ['chmod', options.mode.toString(8), temporary],
        ['mv', '-f', '--', temporary, remotePath],
      ],
      { stdin: content, description: options.description ?? `upload ${remotePath}`, allowFailure: true },
    );
    if (result.code !== 0)
      throw new Error(
        `Upload to ${this.target}:${remotePath} failed (over exec, the server has no SFTP): ${result.stderr.trim().split('\n').slice(-3).join(' ')}`,
      );
  }

  /** Opens 127.0.0.1:<port> on the runner that reaches `remoteHost:remotePort` as seen from the server. */
  async forwardLocalPort(remoteHost: string, remotePort: number): Promise<LocalForward> {
    const sockets = new Set<Socket>();
    const server: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      this.ssh
        .forwardOut('127.0.0.1', socket.remotePort ?? 0, remoteHost, remotePort)
        .then((channel) => {
          socket.pipe(channel).pipe(socket);
          channel.on('error', () => socket.destroy());
          socket.on('error', () => channel.close());
        })
        .catch(() => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    return {
      port,
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    };
  }

  async close(): Promise<void> {
    this.ssh.end();
    this.bastion?.end();
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= this.ssh.sftp();
    return this.sftpSession;
  }
}

function credentialsOf(options: SshConnectOptions) {
  return {
    username: options.username,
    ...(options.privateKey !== undefined ? { privateKey: options.privateKey } : {}),
    ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}),
    ...(options.password !== undefined ? { password: options.password } : {}),
  };
}

async function openClient(
  endpoint: ConnectConfig & { host: string; port: number; username: string },
  options: SshConnectOptions,
): Promise<{ ssh: SshClient; fingerprint: string }> {
  const policy: HostKeyPolicy = options.hostKey;
  const target = describeTarget(endpoint.username, endpoint.host, endpoint.port);
  let hostKeyFailure: HostKeyError | undefined;
  let presented = '';
  const algorithms = preferredHostKeyAlgorithms(policy, endpoint.host, endpoint.port);
  let ssh: SshClient;
  try {
    ssh = await SshClient.connect({
      ...endpoint,
      readyTimeout: (options.connectTimeoutSeconds ?? 20) * 1000,
      keepaliveInterval: (options.keepaliveSeconds ?? 15) * 1000,
      keepaliveCountMax: 4,
      ...(algorithms ? { algorithms: { serverHostKey: algorithms as ServerHostKeyAlgorithm[] } } : {}),
      hostVerifier: (key: Buffer) => {
        presented = `${keyTypeOf(key)} ${sha256Fingerprint(key)}`;
        try {
          verifyHostKey(policy, endpoint.host, endpoint.port, key);
          return true;
        } catch (error) {
          hostKeyFailure = error as HostKeyError;
          return false;
        }
      },
    });
  } catch (error) {
    throw classifyConnectError(error as Ssh2Error, target, hostKeyFailure);
  }
  if (policy.kind === 'insecure-ignore') {
    options.log?.(
      'warning',
      `Host key of ${knownHostsName(endpoint.host, endpoint.port)} was NOT verified (insecure-ignore-host-key); it presented ${presented}.`,
    );
  }
  options.log?.('info', `Connected to ${target} (host key ${presented})`);
  return { ssh, fingerprint: presented };
}

/** Readable from a string, for callers that want to stream small inputs uniformly. */
export function readableOf(content: string | Buffer): Readable {
  return Readable.from([Buffer.from(content)]);
}
