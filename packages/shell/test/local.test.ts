import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LocalExecutor, RemoteCommandError, RemoteTimeoutError, raw } from '../src';

describe('LocalExecutor: the strict scripts of a server, run on the runner', () => {
  const local = new LocalExecutor();

  it('runs in strict mode: a failing pipe stage fails the script, and the exit code decides', async () => {
    await expect(local.run([[raw('false | cat')], ['echo', 'not reached']], { description: 'pipe' })).rejects.toThrow(RemoteCommandError);
    const result = await local.run([[raw('echo out; echo err >&2; exit 3')]], { allowFailure: true });
    expect(result).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('reads an empty stdin without input, and streams input and output with backpressure', async () => {
    expect((await local.run([['cat']])).stdout).toBe('');
    const size = 24 * 1024 * 1024;
    const input = Readable.from(
      (function* () {
        for (let sent = 0; sent < size; sent += 64 * 1024) yield Buffer.alloc(64 * 1024, sent % 251);
      })(),
    );
    const expected = createHash('sha256');
    for (let sent = 0; sent < size; sent += 64 * 1024) expected.update(Buffer.alloc(64 * 1024, sent % 251));
    const received = createHash('sha256');
    let bytes = 0;
    // A slow consumer with a deep buffer: the script must wait for it, and the run must not end
    // before the consumer has taken the last byte (a caller ends its own stream right after).
    const sink = new Writable({
      highWaterMark: 4 * 1024 * 1024,
      write(chunk: Buffer, _encoding, callback) {
        received.update(chunk);
        bytes += chunk.length;
        setTimeout(callback, 1);
      },
    });
    const result = await local.run([['cat']], { stdin: input, stdout: sink });
    expect(result.code).toBe(0);
    expect(bytes).toBe(size);
    expect(sink.writableFinished).toBe(true);
    expect(received.digest('hex')).toBe(expected.digest('hex'));
  });

  it('an input stream that fails midway (a decryption error) ends the run with its error instead of leaving the script waiting', async () => {
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(64 * 1024));
        this.destroy(new Error('ciphertext chunk failed its MAC'));
      },
    });
    const started = Date.now();
    await expect(local.run([['cat']], { stdin: failing, stdout: new Writable({ write: (_c, _e, done) => done() }) })).rejects.toThrow(
      'ciphertext chunk failed its MAC',
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('a timeout stops the whole process group', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-local-'));
    try {
      const marker = join(dir, 'survivor');
      const started = Date.now();
      await expect(local.run([[raw(`(sleep 3; touch ${marker}) & sleep 30`)]], { timeoutSeconds: 1, description: 'slow' })).rejects.toThrow(RemoteTimeoutError);
      expect(Date.now() - started).toBeLessThan(10_000);
      await new Promise((resolve) => setTimeout(resolve, 3_500));
      await expect(stat(marker)).rejects.toThrow();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('uploads atomically with the mode asked for, and shows live lines', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-local-'));
    try {
      const path = join(dir, 'secret');
      await local.upload(path, 'pw\n', { mode: 0o600 });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(await readFile(path, 'utf8')).toBe('pw\n');
      const lines: string[] = [];
      const shown = new LocalExecutor({ liveOutput: { begin: (d) => lines.push(`[${d}]`), line: (l) => lines.push(l), end: () => lines.push('[end]') } });
      await shown.run([[raw('echo one; echo two >&2')]], { live: 'all', description: 'say' });
      expect(lines).toEqual(['[say]', 'one', 'two', '[end]']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
