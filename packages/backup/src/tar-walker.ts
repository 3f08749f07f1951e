/**
 * The runner-side `tar --list`: walks a tar stream's headers as the bytes pass, without keeping
 * them. Every header's checksum is checked and every member's data is skipped by its size, so
 * a stream that was cut short (inside a member or between members) or corrupted (a header that
 * is not where the sizes say one must be) is caught before a backup of it is stored.
 *
 * The format (POSIX ustar/pax and the GNU extensions GNU tar writes): 512-byte blocks; a header
 * block, then ceil(size / 512) data blocks; the archive ends with two zero blocks (GNU tar then
 * pads with zeros to its record size). Members of type 1, 2, 3, 4 and 6 have no data blocks.
 * `x` (pax) headers may override the next member's size (files of 8 GiB and more); `L`/`K`
 * (GNU long names) and `g` carry data of their own; an old-style GNU sparse member (`S`) may be
 * followed by extension blocks (no checksum; byte 504 says whether another one follows).
 */

const BLOCK = 512;
/** pax headers are read (for `size`); anything bigger than this is not a pax header a tar writes. */
const MAX_PAX_BYTES = 1024 * 1024;
const NO_DATA = new Set(['1', '2', '3', '4', '6']);
const META = new Set(['x', 'g', 'L', 'K']);

export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

export interface TarSummary {
  /** Members (files, directories, links, …), not counting pax/long-name headers. */
  entries: number;
  /** Bytes up to and including the end-of-archive blocks. */
  archiveBytes: number;
}

function roundUp(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** An octal field (NUL/space terminated, maybe space padded) or GNU base-256 (high bit of the first byte). */
export function parseNumeric(field: Buffer, what: string, at: number): number {
  if (field[0]! & 0x80) {
    if (field[0] === 0xff) throw new TarError(`negative ${what} in the tar header at offset ${at}`);
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) {
      value = value * 256 + field[i]!;
      if (value > Number.MAX_SAFE_INTEGER) throw new TarError(`${what} too large in the tar header at offset ${at}`);
    }
    return value;
  }
  const text = field
    .toString('latin1')
    .replace(/^ +/, '')
    .replace(/[\0 ].*$/s, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarError(`invalid ${what} field ${JSON.stringify(text)} in the tar header at offset ${at}`);
  return parseInt(text, 8);
}

function checksumMatches(block: Buffer, at: number): boolean {
  const stored = parseNumeric(block.subarray(148, 156), 'checksum', at);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  // Some old tars summed signed chars; GNU tar accepts both.
  return stored === unsigned || stored === signed;
}

/** pax extended header records: "<length> <key>=<value>\n", the length counting the whole record. */
export function parsePax(data: Buffer, at: number): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break;
    const space = data.indexOf(0x20, pos);
    const length = space > pos ? Number(data.toString('latin1', pos, space)) : NaN;
    if (!Number.isInteger(length) || length <= space - pos || pos + length > data.length || data[pos + length - 1] !== 0x0a) {
      throw new TarError(`malformed pax extended header at offset ${at}`);
    }
    const record = data.toString('utf8', space + 1, pos + length - 1);
    const equals = record.indexOf('=');
    if (equals <= 0) throw new TarError(`malformed pax record ${JSON.stringify(record.slice(0, 40))} at offset ${at}`);
    records.set(record.slice(0, equals), record.slice(equals + 1));
    pos += length;
  }
  return records;
}

export class TarWalker {
  private readonly header = Buffer.alloc(BLOCK);
  private filled = 0;
  /** Data bytes (including padding) of the current member still to pass. */
  private skip = 0;
  private offset = 0;
  /** Offset of the header whose data is passing (for messages). */
  private headerAt = 0;
  private zeroBlocks = 0;
  private ended = false;
  private nextSize: number | undefined;
  /** A pax header's data, collected to read `size`. */
  private pax: { chunks: Buffer[]; size: number } | undefined;
  /** An old GNU sparse member: extension blocks follow before its data. */
  private sparseData: number | undefined;
  private entries = 0;

  /** Feeds the next bytes of the archive; throws TarError at the first sign of damage. */
  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.ended) {
        // After the end-of-archive blocks only the record padding follows; tar ignores it too.
        this.offset += chunk.length - i;
        return;
      }
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        if (this.pax) this.pax.chunks.push(Buffer.from(chunk.subarray(i, i + n)));
        this.skip -= n;
        this.offset += n;
        i += n;
        if (this.skip === 0 && this.pax) this.finishPax();
        continue;
      }
      const n = Math.min(BLOCK - this.filled, chunk.length - i);
      chunk.copy(this.header, this.filled, i, i + n);
      this.filled += n;
      this.offset += n;
      i += n;
      if (this.filled === BLOCK) {
        this.filled = 0;
        this.block(this.offset - BLOCK);
      }
    }
  }

  private finishPax(): void {
    const { chunks, size } = this.pax!;
    this.pax = undefined;
    const records = parsePax(Buffer.concat(chunks).subarray(0, size), this.headerAt);
    const override = records.get('size');
    if (override !== undefined) {
      if (!/^\d+$/.test(override) || Number(override) > Number.MAX_SAFE_INTEGER)
        throw new TarError(`invalid pax size ${JSON.stringify(override)} at offset ${this.headerAt}`);
      this.nextSize = Number(override);
    }
  }

  private block(at: number): void {
    const block = this.header;
    if (this.sparseData !== undefined) {
      // GNU sparse extension block: 21 map entries, then isextended at 504. No checksum.
      if (block[504] === 0) {
        this.skip = roundUp(this.sparseData);
        this.sparseData = undefined;
      }
      return;
    }
    if (block.every((byte) => byte === 0)) {
      this.zeroBlocks++;
      if (this.zeroBlocks === 2) this.ended = true;
      return;
    }
    if (this.zeroBlocks > 0) throw new TarError(`a lone zero block before offset ${at}: the archive is corrupted`);
    if (!checksumMatches(block, at)) throw new TarError(`tar header checksum mismatch at offset ${at}: the archive is corrupted or not a tar`);
    const type = String.fromCharCode(block[156]!);
    let size = parseNumeric(block.subarray(124, 136), 'size', at);
    if (!META.has(type) && this.nextSize !== undefined) {
      size = this.nextSize;
      this.nextSize = undefined;
    }
    this.headerAt = at;
    if (!META.has(type)) this.entries++;
    if (type === 'x') {
      if (size > MAX_PAX_BYTES) throw new TarError(`pax header of ${size} bytes at offset ${at}: the archive is corrupted`);
      if (size > 0) this.pax = { chunks: [], size };
    }
    const data = NO_DATA.has(type) ? 0 : size;
    if (type === 'S' && block[482] !== 0) {
      this.sparseData = data;
      return;
    }
    this.skip = roundUp(data);
  }

  /** The stream ended: it must have ended with the end-of-archive blocks, not inside a member. */
  end(): TarSummary {
    if (!this.ended) {
      if (this.skip > 0 || this.filled > 0 || this.sparseData !== undefined) {
        const missing = this.skip > 0 ? `${this.skip} bytes of the member at offset ${this.headerAt} are missing` : 'it ends inside a header block';
        throw new TarError(`the tar archive is truncated: ${missing}`);
      }
      throw new TarError(`the tar archive is truncated: no end-of-archive blocks after ${this.offset} bytes`);
    }
    return { entries: this.entries, archiveBytes: this.offset };
  }
}
