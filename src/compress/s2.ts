/**
 * Streaming decoder for S2 streams (klauspost/compress `s2`), which also reads Snappy framed
 * streams: PBM writes `.s2` files with S2's stream writer and `.snappy` files with golang/snappy's
 * framed writer, and before PBM 1.7.0 wrote S2 into files named `.snappy` (OPLOG.md §6.3, §10 trap 4).
 *
 * Rules, each from OPLOG.md §6.4 and the S2 README section "Format Extensions" (which extends
 * Snappy's `framing_format.txt` and `format_description.txt`):
 * - A stream is a sequence of chunks: 1 type byte, 3 bytes little-endian length, the body.
 * - 0xff stream identifier, body `sNaPpY` (Snappy) or `S2sTwO` (S2); it starts the stream and may
 *   appear again (concatenated streams).
 * - 0x00 compressed data: 4 bytes masked CRC-32C of the uncompressed data, then a block.
 * - 0x01 uncompressed data: 4 bytes masked CRC-32C, then the data itself.
 * - 0xfe padding and 0x80–0xfd skippable chunks (S2's seek index is 0x99) are skipped.
 * - 0x02–0x7f are reserved unskippable chunks: an error.
 * - A block holds up to 4 MiB (S2; Snappy's own limit is 64 KiB, which an S2 decoder accepts too).
 * - Block decoding is Snappy's (varint decoded length, then literal / copy-1 / copy-2 / copy-4
 *   elements) plus S2's repeat: a copy-1 element whose 11-bit offset is 0 repeats the last offset
 *   used in the block, its 3-bit length code read as 0–4 → 4–8, 5 → 8 + 1 byte, 6 → 260 + 2 bytes,
 *   7 → 65540 + 3 bytes (little endian). The last offset starts unset in every block: a repeat before
 *   any copy is corrupt.
 *
 * Every failure is a `GravityError` DUMP_CORRUPT naming the byte offset in the compressed stream
 * of the chunk where it happened.
 */
import {GravityError} from '../errors.js';
import {crc32c, maskCrc32c} from './crc32c.js';

export type Chunks = AsyncIterable<Buffer>;

/** S2's largest block (README "Format Extensions": up to 4 MB; `s2.maxBlockSize` = 4 << 20). */
export const MAX_BLOCK = 4 << 20;

const CHUNK_COMPRESSED = 0x00;
const CHUNK_UNCOMPRESSED = 0x01;
const CHUNK_IDENTIFIER = 0xff;
const IDENTIFIER_S2 = 'S2sTwO';
const IDENTIFIER_SNAPPY = 'sNaPpY';

/** Which identifier a stream began with: `.snappy` files written by old PBM say `s2` here. */
export type StreamKind = 's2' | 'snappy';

export interface DecodeOptions {
  /** Names the file in error messages. */
  where: string;
  /** Told once, when the first stream identifier has been read. */
  onIdentifier?: (kind: StreamKind) => void;
}

function corrupt(where: string, offset: number, problem: string): GravityError {
  return new GravityError('DUMP_CORRUPT', `${where}: corrupt S2/Snappy stream at byte ${offset}: ${problem}`, {
    hint: 'The file is damaged or incomplete; fetch the backup again',
    details: {offset},
  });
}

/** Thrown inside block decoding; turned into a GravityError with the chunk's offset by the caller. */
class BlockError extends Error {}

/**
 * Decodes one block (Snappy `format_description.txt` plus S2's repeat offsets) into a new buffer.
 * `src[start, end)` is the block.
 */
function decodeBlock(src: Uint8Array, start = 0, end = src.length): Buffer {
  let s = start;
  // Decoded length: a little-endian base-128 varint. Everything below stays a small integer (V8
  // keeps it out of floating point): blocks are at most 4 MiB, so a varint of more than 4 bytes, or a
  // length or offset needing a fourth byte, is refused before it is computed.
  let dLen = 0;
  for (let shift = 0; ; shift += 7) {
    if (s >= end || shift > 21) throw new BlockError('bad decoded length');
    const b = src[s++]!;
    dLen |= (b & 0x7f) << shift;
    if (b < 0x80) break;
  }
  if (dLen > MAX_BLOCK) throw new BlockError(`block decodes to ${dLen} bytes, more than the ${MAX_BLOCK} allowed`);
  const dst = Buffer.allocUnsafe(dLen);
  let d = 0;
  let lastOffset = 0;
  while (s < end) {
    const tag = src[s++]!;
    let length: number;
    let offset: number;
    switch (tag & 3) {
      case 0: {
        length = tag >>> 2;
        if (length >= 60) {
          const extra = length - 59;
          if (s + extra > end) throw new BlockError('literal length runs past the block');
          length = src[s]!;
          if (extra > 1) length |= src[s + 1]! << 8;
          if (extra > 2) length |= src[s + 2]! << 16;
          if (extra > 3 && src[s + 3] !== 0) throw new BlockError('literal longer than a block');
          s += extra;
        }
        length += 1;
        if (length > end - s) throw new BlockError('literal runs past the block');
        if (length > dLen - d) throw new BlockError('literal runs past the decoded length');
        if (length < 16) {
          for (let i = 0; i < length; i++) dst[d + i] = src[s + i]!;
        } else {
          dst.set(src.subarray(s, s + length), d);
        }
        d += length;
        s += length;
        continue;
      }
      case 1: {
        if (s >= end) throw new BlockError('copy runs past the block');
        offset = ((tag & 0xe0) << 3) | src[s++]!;
        const code = (tag >>> 2) & 7;
        if (offset !== 0) {
          length = code + 4;
        } else {
          // S2 repeat: same offset as the last copy, with longer lengths.
          offset = lastOffset;
          if (code < 5) {
            length = code + 4;
          } else if (code === 5) {
            if (s + 1 > end) throw new BlockError('repeat length runs past the block');
            length = 8 + src[s]!;
            s += 1;
          } else if (code === 6) {
            if (s + 2 > end) throw new BlockError('repeat length runs past the block');
            length = 260 + (src[s]! | (src[s + 1]! << 8));
            s += 2;
          } else {
            if (s + 3 > end) throw new BlockError('repeat length runs past the block');
            length = 65540 + (src[s]! | (src[s + 1]! << 8) | (src[s + 2]! << 16));
            s += 3;
          }
        }
        break;
      }
      case 2: {
        if (s + 2 > end) throw new BlockError('copy runs past the block');
        length = (tag >>> 2) + 1;
        offset = src[s]! | (src[s + 1]! << 8);
        s += 2;
        break;
      }
      default: {
        if (s + 4 > end) throw new BlockError('copy runs past the block');
        length = (tag >>> 2) + 1;
        if (src[s + 3] !== 0) throw new BlockError('copy offset larger than a block');
        offset = src[s]! | (src[s + 1]! << 8) | (src[s + 2]! << 16);
        s += 4;
        break;
      }
    }
    if (offset === 0) throw new BlockError('repeat offset before any copy in the block');
    if (offset > d) throw new BlockError(`copy offset ${offset} points before the start of the block`);
    if (length > dLen - d) throw new BlockError('copy runs past the decoded length');
    lastOffset = offset;
    let from = d - offset;
    if (offset >= length && length >= 32) {
      dst.copyWithin(d, from, from + length);
      d += length;
    } else {
      // Overlapping copies repeat the last `offset` bytes, so they go byte by byte.
      const stop = d + length;
      while (d < stop) dst[d++] = dst[from++]!;
    }
  }
  if (d !== dLen) throw new BlockError(`block decodes to ${d} bytes, its header says ${dLen}`);
  return dst;
}

/** Input buffered across reads: a list of pieces, consumed from the front (also used by lz4.ts). */
export class Input {
  private readonly iterator: AsyncIterator<Buffer>;
  private pieces: Buffer[] = [];
  private head = 0;
  private buffered = 0;
  /** Bytes consumed so far: the stream offset of the next byte. */
  offset = 0;
  ended = false;

  constructor(chunks: Chunks) {
    this.iterator = chunks[Symbol.asyncIterator]();
  }

  /** Buffers at least `n` bytes; false if the input ends first. */
  async fill(n: number): Promise<boolean> {
    while (this.buffered < n) {
      if (this.ended) return false;
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      if (next.value.length === 0) continue;
      this.pieces.push(next.value);
      this.buffered += next.value.length;
    }
    return true;
  }

  get available(): number {
    return this.buffered;
  }

  /** The next `n` buffered bytes as one buffer (a view when they lie in one piece). */
  take(n: number): Buffer {
    const first = this.pieces[0]!;
    let out: Buffer;
    if (first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.pieces.shift();
        this.head = 0;
      }
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const piece = this.pieces[0]!;
        const count = Math.min(piece.length - this.head, n - filled);
        piece.copy(out, filled, this.head, this.head + count);
        filled += count;
        this.head += count;
        if (this.head === piece.length) {
          this.pieces.shift();
          this.head = 0;
        }
      }
    }
    this.buffered -= n;
    this.offset += n;
    return out;
  }

  /** The next `n` bytes; `truncated()` is thrown when the input ends first. */
  async need(n: number, truncated: () => Error): Promise<Buffer> {
    if (!(await this.fill(n))) throw truncated();
    return this.take(n);
  }

  /** Passes over the next `n` bytes without buffering them all; false when the input ends first. */
  async skip(n: number): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) return false;
      left -= this.drop(left);
    }
    return true;
  }

  /** Drops up to `n` buffered bytes; returns how many. */
  drop(n: number): number {
    const count = Math.min(n, this.buffered);
    let left = count;
    while (left > 0) {
      const piece = this.pieces[0]!;
      const step = Math.min(piece.length - this.head, left);
      this.head += step;
      left -= step;
      if (this.head === piece.length) {
        this.pieces.shift();
        this.head = 0;
      }
    }
    this.buffered -= count;
    this.offset += count;
    return count;
  }

  async close(): Promise<void> {
    await this.iterator.return?.();
  }
}

/**
 * Decompresses an S2 or Snappy framed stream, yielding one buffer per data chunk (up to 4 MiB each).
 * Memory stays bounded by one chunk in and one block out, whatever the stream's size.
 */
export async function* decodeS2Stream(chunks: Chunks, options: DecodeOptions): AsyncGenerator<Buffer> {
  const {where} = options;
  const input = new Input(chunks);
  let started = false;
  try {
    for (;;) {
      const at = input.offset;
      if (!(await input.fill(4))) {
        if (input.available === 0) return;
        throw corrupt(where, at, 'the stream ends inside a chunk header (truncated file)');
      }
      const header = input.take(4);
      const type = header[0]!;
      const length = header[1]! | (header[2]! << 8) | (header[3]! << 16);

      if (type === CHUNK_IDENTIFIER) {
        if (length !== 6) throw corrupt(where, at, `stream identifier of ${length} bytes, not 6`);
        if (!(await input.fill(6))) throw corrupt(where, at, 'the stream ends inside the stream identifier (truncated file)');
        const id = input.take(6).toString('latin1');
        if (id !== IDENTIFIER_S2 && id !== IDENTIFIER_SNAPPY) throw corrupt(where, at, `unknown stream identifier ${JSON.stringify(id)}`);
        if (!started) options.onIdentifier?.(id === IDENTIFIER_S2 ? 's2' : 'snappy');
        started = true;
        continue;
      }
      if (!started) throw corrupt(where, at, `the stream does not begin with an S2 or Snappy stream identifier (chunk type 0x${type.toString(16).padStart(2, '0')})`);

      if (type === CHUNK_COMPRESSED || type === CHUNK_UNCOMPRESSED) {
        if (length < 4) throw corrupt(where, at, `data chunk of ${length} bytes has no checksum`);
        // A compressed block of 4 MiB is at most a few bytes longer than 4 MiB plus its header.
        if (length > 4 + MAX_BLOCK + (MAX_BLOCK >>> 5) + 16) throw corrupt(where, at, `data chunk of ${length} bytes is larger than any block`);
        if (!(await input.fill(length))) throw corrupt(where, at, `the stream ends inside a ${length}-byte data chunk (truncated file)`);
        const body = input.take(length);
        const expected = body.readUInt32LE(0);
        let data: Buffer;
        if (type === CHUNK_COMPRESSED) {
          try {
            data = decodeBlock(body, 4, body.length);
          } catch (error) {
            if (error instanceof BlockError) throw corrupt(where, at, `bad compressed block: ${error.message}`);
            throw error;
          }
        } else {
          if (length - 4 > MAX_BLOCK) throw corrupt(where, at, `uncompressed chunk of ${length - 4} bytes is larger than a block`);
          data = body.subarray(4);
        }
        const actual = maskCrc32c(crc32c(data));
        if (actual !== expected) {
          throw corrupt(where, at, `CRC-32C mismatch (stored 0x${expected.toString(16).padStart(8, '0')}, computed 0x${actual.toString(16).padStart(8, '0')})`);
        }
        if (data.length > 0) yield data;
        continue;
      }
      if (type >= 0x02 && type <= 0x7f) throw corrupt(where, at, `reserved unskippable chunk type 0x${type.toString(16).padStart(2, '0')}`);

      // What is left: padding (0xfe) and skippable chunks (0x80–0xfd, S2's index 0x99), skipped without buffering.
      if (!(await input.skip(length))) throw corrupt(where, at, `the stream ends inside a ${length}-byte skippable chunk (truncated file)`);
    }
  } finally {
    await input.close();
  }
}
