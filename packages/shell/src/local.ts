import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Command } from './command';
import { RemoteCommandError, RemoteTimeoutError, type ExecResult, type Executor, type RunOptions, type UploadOptions } from './executor';
import { KILL_GRACE_SECONDS, script } from './script';

/** One step's output shown as it arrives: `begin` once, a `line` per line, `end` when the command ends. */
export interface LiveOutput {
  begin(description: string): void;
  line(text: string): void;
  end(): void;
}

/** Cuts chunks into lines; `\r` ends a line too (progress output), and the last partial line comes at flush. */
export function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer): void; flush(): void } {
  const decoder = new TextDecoder();
  let rest = '';
  return {
    push(chunk) {
      const parts = (rest + decoder.decode(chunk, { stream: true })).split(/\r\n|\n|\r/);
      rest = parts.pop() ?? '';
      for (const line of parts) if (line.trim() !== '') emit(line);
    },
    flush() {
      const last = rest + decoder.decode();
      rest = '';
      if (last.trim() !== '') emit(last);
    },
  };
}

/** Most output a command may leave for collection; a dump streams to `stdout` instead. */
const MAX_COLLECTED_BYTES = 64 * 1024 * 1024;

/**
 * Runs the same strict scripts an SSH connection runs, on the runner itself: for sources the
 * runner reaches over the network (a managed database), so every builder, check and stream of
 * a server-side backup applies unchanged. Each script is a process group of its own, so a
 * timeout stops everything it started.
 */
export class LocalExecutor implements Executor {
  constructor(private readonly options: { liveOutput?: LiveOutput; env?: NodeJS.ProcessEnv } = {}) {}

  async run(commands: readonly Command[], options: RunOptions = {}): Promise<ExecResult> {
    const description = options.description ?? 'command on the runner';
    const live = options.live ? this.options.liveOutput : undefined;
    const shown = options.stdout ? 'stderr' : options.live;
    const splitters = live ? { stdout: lineSplitter((line) => live.line(line)), stderr: lineSplitter((line) => live.line(line)) } : undefined;
    live?.begin(description);
    let result: ExecResult & { timedOut: boolean };
    try {
      result = await this.spawnScript(script(commands), options, (stream, chunk) => {
        if (splitters && (shown === 'all' || stream === 'stderr')) splitters[stream].push(chunk);
      });
    } finally {
      splitters?.stdout.flush();
      splitters?.stderr.flush();
      live?.end();
    }
    if (result.timedOut) throw new RemoteTimeoutError(description, options.timeoutSeconds!);
    const { timedOut: _timedOut, ...outcome } = result;
    if (outcome.code !== 0 && !options.allowFailure) throw new RemoteCommandError(description, outcome);
    return outcome;
  }

  private spawnScript(
    text: string,
    options: RunOptions,
    onData: (stream: 'stdout' | 'stderr', chunk: Buffer) => void,
  ): Promise<ExecResult & { timedOut: boolean }> {
    return new Promise((resolve, reject) => {
      const child = spawn('bash', ['-c', text], {
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
        env: this.options.env ?? process.env,
      });
      const stdoutChunks: Buffer[] = [];
      let collected = 0;
      let stderr = '';
      let timedOut = false;
      const signalGroup = (signal: NodeJS.Signals) => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, signal);
        } catch {
          // The group is gone already.
        }
      };
      const timers: NodeJS.Timeout[] = [];
      if (options.timeoutSeconds !== undefined) {
        timers.push(
          setTimeout(
            () => {
              timedOut = true;
              signalGroup('SIGTERM');
              timers.push(setTimeout(() => signalGroup('SIGKILL'), KILL_GRACE_SECONDS * 1000));
            },
            Math.max(1, options.timeoutSeconds) * 1000,
          ),
        );
      }
      child.on('error', (error) => {
        timers.forEach(clearTimeout);
        reject(new Error(`could not start bash on the runner: ${error.message}`));
      });
      child.stderr.on('data', (chunk: Buffer) => {
        onData('stderr', chunk);
        if (stderr.length < MAX_COLLECTED_BYTES) stderr += chunk.toString('utf8');
      });
      if (options.stdout) {
        const sink = options.stdout;
        child.stdout.on('data', (chunk: Buffer) => {
          onData('stdout', chunk);
          if (!sink.write(chunk)) {
            child.stdout.pause();
            sink.once('drain', () => child.stdout.resume());
          }
        });
      } else {
        child.stdout.on('data', (chunk: Buffer) => {
          onData('stdout', chunk);
          collected += chunk.length;
          if (collected <= MAX_COLLECTED_BYTES) stdoutChunks.push(chunk);
        });
      }
      // A script that stops reading early closes the pipe; its exit status, not EPIPE, decides.
      child.stdin.on('error', () => undefined);
      const input = options.stdin;
      // Without input the script reads an empty stdin, as over SSH it reads /dev/null.
      if (input instanceof Readable) {
        // A feed that fails (a decryption error) never ends stdin: stop the script and report the
        // feed's error, as the SSH executor closes its channel.
        input.on('error', (error) => {
          timers.forEach(clearTimeout);
          signalGroup('SIGKILL');
          reject(error);
        });
        input.pipe(child.stdin);
      } else child.stdin.end(input);
      child.on('close', (code, signal) => {
        timers.forEach(clearTimeout);
        const settle = () =>
          resolve({
            code: code ?? 128,
            ...(signal ? { signal } : {}),
            stdout: Buffer.concat(stdoutChunks).toString('utf8'),
            stderr,
            timedOut,
          });
        // The caller's stream may still hold chunks it has not taken: the run ends when it has
        // taken the last byte, or a caller that ends its own stream next would cut the data short.
        if (options.stdout) {
          if (!options.stdout.writableEnded) options.stdout.end();
          finished(options.stdout).then(settle, reject);
        } else settle();
      });
    });
  }

  /** Atomic, with its final mode from the first byte: written under a temporary name, then renamed. */
  async upload(path: string, content: string | Buffer, options: UploadOptions): Promise<void> {
    const temporary = `${path}.skiff-${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temporary, content, { mode: options.mode, flag: 'wx' });
      await chmod(temporary, options.mode);
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw new Error(`writing ${path} on the runner failed: ${(error as Error).message}`);
    }
  }
}
