import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNumeric, TarError, TarWalker } from '../src/tar-walker';

/** Real archives written by GNU tar, walked in deterministic pseudo-random chunk sizes. */
let dir: string;
const tars: Record<string, Buffer> = {};

function walk(data: Buffer, seed = 7): { entries: number; archiveBytes: number } {
  const walker = new TarWalker();
  let state = seed;
  for (let i = 0; i < data.length;) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (state % 1500);
    walker.push(data.subarray(i, i + n));
    i += n;
  }
  return walker.end();
}

function gnuTar(args: string[]): Buffer {
  return execFileSync('tar', ['--create', '--file=-', '--numeric-owner', `--directory=${dir}`, ...args], { maxBuffer: 64 * 1024 * 1024 });
}

function listed(data: Buffer): number {
  return execFileSync('tar', ['--list', '--file=-'], { input: data }).toString().split('\n').filter(Boolean).length;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'skiffbk-tarwalk-'));
  const long = join(dir, 'tree', 'a-directory-name-that-is-rather-long-'.repeat(3), 'and-a-file-name-that-pushes-the-path-past-one-hundred-characters.txt');
  mkdirSync(join(long, '..'), { recursive: true });
  writeFileSync(long, 'long name\n');
  writeFileSync(join(dir, 'tree', 'empty'), '');
  writeFileSync(join(dir, 'tree', 'exactly-512'), Buffer.alloc(512, 1));
  writeFileSync(join(dir, 'tree', 'odd-size'), Buffer.alloc(70_001, 2));
  writeFileSync(join(dir, 'tree', 'ünïcödé name.txt'), 'pax needs a header for this in posix format\n');
  symlinkSync('empty', join(dir, 'tree', 'link-to-empty'));
  symlinkSync(`${'x'.repeat(150)}`, join(dir, 'tree', 'long-link-target'));
  // A sparse file with many data regions: old GNU sparse headers need extension blocks for it.
  const sparse = openSync(join(dir, 'tree', 'sparse'), 'w');
  for (let i = 0; i < 40; i++) writeSync(sparse, Buffer.alloc(100, 3), 0, 100, i * 64 * 1024);
  closeSync(sparse);
  // The sparse file reads as 2.5 MiB without --sparse: only the sparse archives carry it.
  tars.gnu = gnuTar(['--exclude=tree/sparse', 'tree']);
  tars.pax = gnuTar(['--format=posix', '--exclude=tree/sparse', 'tree']);
  tars.sparseGnu = gnuTar(['--format=gnu', '--sparse', 'tree/sparse']);
  tars.sparsePax = gnuTar(['--format=posix', '--sparse', 'tree/sparse']);
  tars.ustar = gnuTar(['--format=ustar', 'tree/empty', 'tree/odd-size']);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('TarWalker on archives written by GNU tar', () => {
  it('walks GNU (long names, long link targets), pax (unicode names), ustar and sparse archives: the same members tar --list sees', () => {
    for (const [name, data] of Object.entries(tars)) {
      const summary = walk(data);
      expect(summary.entries, name).toBe(listed(data));
      expect(summary.archiveBytes, name).toBe(data.length);
    }
    expect(walk(tars.gnu!).entries).toBe(9);
    // The archives really use the extensions this test is about.
    expect(tars.gnu!.includes('././@LongLink')).toBe(true);
    expect(tars.pax!.includes(' path=tree/ünïcödé name.txt\n')).toBe(true);
    expect(tars.sparseGnu![156]).toBe('S'.charCodeAt(0));
    expect(tars.sparseGnu![482]).toBe(1);
  });

  it('the same archive fed one byte at a time or in one piece gives the same answer', () => {
    const one = new TarWalker();
    one.push(tars.pax!);
    const bytes = new TarWalker();
    for (let i = 0; i < Math.min(tars.pax!.length, 40_000); i++) bytes.push(tars.pax!.subarray(i, i + 1));
    bytes.push(tars.pax!.subarray(40_000));
    expect(bytes.end()).toEqual(one.end());
  });

  it('every truncation is caught: at each block boundary and inside blocks', () => {
    for (const data of [tars.gnu!, tars.pax!, tars.sparseGnu!]) {
      // Everything after the end-of-archive blocks is record padding: cutting there loses nothing.
      const end = data.length - data.reverse().findIndex((byte) => byte !== 0);
      data.reverse();
      const endOfArchive = Math.ceil(end / 512) * 512 + 1024;
      for (let cut = 0; cut < endOfArchive; cut += 512) {
        expect(() => walk(data.subarray(0, cut)), `cut at ${cut}`).toThrow(TarError);
      }
      for (const cut of [1, 100, 511, 513, 1000, endOfArchive - 1]) expect(() => walk(data.subarray(0, cut)), `cut at ${cut}`).toThrow(/truncated/);
      expect(walk(data.subarray(0, endOfArchive)).archiveBytes).toBe(endOfArchive);
    }
  });

  it('a corrupted header (a flipped byte in a name, a size or the checksum) fails the checksum; garbage is not a tar', () => {
    const offsets = [0, 100, 124 + 5, 150];
    // The second member's header: the first is tree/empty (no data blocks).
    for (const delta of offsets) {
      const data = Buffer.from(tars.ustar!);
      data[512 + delta] = data[512 + delta]! ^ 0x04;
      expect(() => walk(data), `byte ${delta}`).toThrow(/checksum mismatch at offset 512/);
    }
    expect(() => walk(Buffer.alloc(4096, 0x41))).toThrow(/checksum mismatch at offset 0|invalid checksum/);
    // A size that points past the real data makes the walker expect more than is there.
    const grown = Buffer.from(tars.ustar!);
    const header = grown.subarray(512, 1024);
    header.write('00000777777\0', 124, 'latin1');
    header.fill(0x20, 148, 156);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect(() => walk(grown)).toThrow(/truncated: \d+ bytes of the member at offset 512 are missing/);
  });

  it('a lone zero block between members is corruption, not the end', () => {
    const data = Buffer.from(tars.ustar!);
    const lone = Buffer.concat([data.subarray(0, 512), Buffer.alloc(512), data.subarray(512)]);
    expect(() => walk(lone)).toThrow(/lone zero block/);
  });

  it('numeric fields: octal with NUL or space, and GNU base-256 for sizes of 8 GiB and more', () => {
    expect(parseNumeric(Buffer.from('00000001750\0', 'latin1'), 'size', 0)).toBe(1000);
    expect(parseNumeric(Buffer.from('   1750 \0\0\0\0', 'latin1'), 'size', 0)).toBe(1000);
    expect(parseNumeric(Buffer.from([0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0]), 'size', 0)).toBe(2 * 2 ** 32);
    expect(() => parseNumeric(Buffer.from('0000001x\0', 'latin1'), 'size', 7)).toThrow(/invalid size field "0000001x" in the tar header at offset 7/);
  });
});
