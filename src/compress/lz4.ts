/**
 * Streaming decoder for LZ4 frames (PBM `.lz4`, written by pierrec/lz4's frame writer; OPLOG.md §6.1),
 * from the LZ4 Frame Format Description (lz4 `doc/lz4_Frame_format.md`) and the LZ4 Block Format
 * Description (`doc/lz4_Block_format.md`). The npm decoders are whole-buffer (`lz4js`) or native;
 * a frame is a short header and a run of blocks, so it is read here block by block in bounded memory.
 *
 * - Frame: magic `04 22 4d 18`, FLG (version 01, block independence, block checksum, content size,
 *   content checksum, dictionary id), BD (maximum block size 64 KiB–4 MiB), optional 8-byte content
 *   size and 4-byte dictionary id, header checksum = second byte of XXH32 of the descriptor.
 * - Blocks: 4-byte little-endian size, high bit set = stored uncompressed, 0 = end mark; an optional
 *   XXH32 of each block's stored bytes; after the end mark an optional XXH32 of the whole content.
 * - Skippable frames (magic `5X 2a 4d 18`) are skipped; frames may follow one another.
 * - Linked blocks (block independence off) may copy from the previous 64 KiB of output.
 */
import {GravityError} from '../errors.js';
import {nextFrame} from './frames.js';
import {Input} from './s2.js';
import type {Chunks} from './s2.js';

const P1 = 2654435761;
const P2 = 2246822519;
const P3 = 3266489917;
const P4 = 668265263;
const P5 = 374761393;
const WINDOW = 64 * 1024;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}
function word(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/** XXH32 (xxHash spec, 32-bit variant), fed in pieces. */
export class Xxh32 {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private total = 0;
  private readonly tail = new Uint8Array(16);
  private tailLength = 0;

  constructor(private readonly seed = 0) {
    this.v1 = (seed + P1 + P2) | 0;
    this.v2 = (seed + P2) | 0;
    this.v3 = seed | 0;
    this.v4 = (seed - P1) | 0;
  }

  private stripe(b: Uint8Array, i: number): void {
    this.v1 = Math.imul(rotl((this.v1 + Math.imul(word(b, i), P2)) | 0, 13), P1);
    this.v2 = Math.imul(rotl((this.v2 + Math.imul(word(b, i + 4), P2)) | 0, 13), P1);
    this.v3 = Math.imul(rotl((this.v3 + Math.imul(word(b, i + 8), P2)) | 0, 13), P1);
    this.v4 = Math.imul(rotl((this.v4 + Math.imul(word(b, i + 12), P2)) | 0, 13), P1);
  }

  update(data: Uint8Array): this {
    this.total += data.length;
    let i = 0;
    if (this.tailLength > 0) {
      const take = Math.min(16 - this.tailLength, data.length);
      this.tail.set(data.subarray(0, take), this.tailLength);
      this.tailLength += take;
      i = take;
      if (this.tailLength < 16) return this;
      this.stripe(this.tail, 0);
      this.tailLength = 0;
    }
    for (; i + 16 <= data.length; i += 16) this.stripe(data, i);
    this.tail.set(data.subarray(i), 0);
    this.tailLength = data.length - i;
    return this;
  }

  digest(): number {
    let h =
      this.total >= 16
        ? (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0
        : (this.seed + P5) | 0;
    h = (h + (this.total >>> 0)) | 0;
    let i = 0;
    for (; i + 4 <= this.tailLength; i += 4) h = Math.imul(rotl((h + Math.imul(word(this.tail, i), P3)) | 0, 17), P4);
    for (; i < this.tailLength; i++) h = Math.imul(rotl((h + Math.imul(this.tail[i]!, P5)) | 0, 11), P1);
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    return h >>> 0;
  }
}

export function xxh32(data: Uint8Array, seed = 0): number {
  return new Xxh32(seed).update(data).digest();
}

class BlockError extends Error {}

/**
 * Decodes one LZ4 block into `dst` from `at`; bytes before `at` (up to 64 KiB) are the history a
 * linked block may copy from. Returns the end of the output.
 */
function decodeLz4Block(src: Uint8Array, dst: Uint8Array, at: number, limit: number): number {
  let s = 0;
  let d = at;
  const end = src.length;
  for (;;) {
    if (s >= end) throw new BlockError('block ends without its last literals');
    const token = src[s++]!;
    let length = token >>> 4;
    if (length === 15) {
      let b: number;
      do {
        if (s >= end) throw new BlockError('literal length runs past the block');
        b = src[s++]!;
        length += b;
      } while (b === 255);
    }
    if (length > end - s) throw new BlockError('literals run past the block');
    if (length > limit - d) throw new BlockError('block decodes to more than its maximum size');
    if (length < 16) {
      for (let i = 0; i < length; i++) dst[d + i] = src[s + i]!;
    } else {
      dst.set(src.subarray(s, s + length), d);
    }
    d += length;
    s += length;
    if (s === end) return d;
    if (s + 2 > end) throw new BlockError('match offset runs past the block');
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0) throw new BlockError('match offset 0');
    if (offset > d) throw new BlockError(`match offset ${offset} points before the available history`);
    length = token & 15;
    if (length === 15) {
      let b: number;
      do {
        if (s >= end) throw new BlockError('match length runs past the block');
        b = src[s++]!;
        length += b;
      } while (b === 255);
    }
    length += 4;
    if (length > limit - d) throw new BlockError('block decodes to more than its maximum size');
    let from = d - offset;
    const stop = d + length;
    while (d < stop) dst[d++] = dst[from++]!;
  }
}

const BLOCK_SIZES: Record<number, number> = {4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20};

function corrupt(where: string, offset: number, problem: string): GravityError {
  return new GravityError('DUMP_CORRUPT', `${where}: corrupt LZ4 stream at byte ${offset}: ${problem}`, {
    hint: 'The file is damaged or incomplete; fetch the backup again',
    details: {offset},
  });
}

/** Decompresses LZ4 frames, yielding each block's output (up to 4 MiB). */
export async function* decodeLz4Stream(chunks: Chunks, where: string): AsyncGenerator<Buffer> {
  const input = new Input(chunks);
  const truncated = (at: number, what: string) => corrupt(where, at, `the stream ends inside ${what} (truncated file)`);
  const need = (n: number, at: number, what: string): Promise<Buffer> => input.need(n, () => truncated(at, what));
  try {
    for (;;) {
      const frame = await nextFrame(input, truncated);
      if (frame === null) return;
      const {magic, at: frameAt} = frame;
      if (magic !== 0x184d2204) throw corrupt(where, frameAt, `not an LZ4 frame (magic 0x${magic.toString(16).padStart(8, '0')})`);
      const fb = await need(2, frameAt, 'the frame descriptor');
      const flg = fb[0]!;
      const bd = fb[1]!;
      if (flg >>> 6 !== 1) throw corrupt(where, frameAt, `unsupported frame version ${flg >>> 6}`);
      if (flg & 0x02 || bd & 0x8f) throw corrupt(where, frameAt, 'reserved bits set in the frame descriptor');
      const independent = (flg & 0x20) !== 0;
      const blockChecksum = (flg & 0x10) !== 0;
      const hasSize = (flg & 0x08) !== 0;
      const contentChecksum = (flg & 0x04) !== 0;
      const hasDict = (flg & 0x01) !== 0;
      const maxBlock = BLOCK_SIZES[(bd >>> 4) & 7];
      if (maxBlock === undefined) throw corrupt(where, frameAt, `unknown maximum block size code ${(bd >>> 4) & 7}`);
      const rest = await need((hasSize ? 8 : 0) + (hasDict ? 4 : 0) + 1, frameAt, 'the frame descriptor');
      const descriptor = Buffer.concat([fb, rest.subarray(0, rest.length - 1)]);
      if (((xxh32(descriptor) >>> 8) & 0xff) !== rest[rest.length - 1]) throw corrupt(where, frameAt, 'frame descriptor checksum mismatch');
      if (hasDict) throw corrupt(where, frameAt, 'the frame needs a dictionary, which PBM never writes');
      const expectedSize = hasSize ? Number(rest.readBigUInt64LE(0)) : undefined;
      const content = contentChecksum ? new Xxh32() : undefined;
      // Output of a block goes after up to 64 KiB kept from the one before, for linked blocks.
      let history = Buffer.alloc(0);
      let produced = 0;
      for (;;) {
        const blockAt = input.offset;
        const header = (await need(4, blockAt, 'a block header')).readUInt32LE(0);
        if (header === 0) break;
        const stored = (header & 0x80000000) !== 0;
        const size = header & 0x7fffffff;
        if (size > maxBlock) throw corrupt(where, blockAt, `block of ${size} bytes is larger than the frame's ${maxBlock}`);
        const body = await need(size, blockAt, `a ${size}-byte block`);
        if (blockChecksum) {
          const sum = (await need(4, blockAt, 'a block checksum')).readUInt32LE(0);
          if (xxh32(body) !== sum) throw corrupt(where, blockAt, 'block checksum mismatch');
        }
        let data: Buffer;
        if (stored) {
          data = Buffer.from(body);
        } else {
          const keep = independent ? 0 : history.length;
          const out = Buffer.allocUnsafe(keep + maxBlock);
          history.copy(out, 0, history.length - keep);
          let endAt: number;
          try {
            endAt = decodeLz4Block(body, out, keep, out.length);
          } catch (error) {
            if (error instanceof BlockError) throw corrupt(where, blockAt, `bad compressed block: ${error.message}`);
            throw error;
          }
          data = out.subarray(keep, endAt);
        }
        if (!independent) {
          if (data.length >= WINDOW) {
            history = Buffer.from(data.subarray(data.length - WINDOW));
          } else {
            const tail = Buffer.concat([history, data]);
            history = tail.subarray(Math.max(0, tail.length - WINDOW));
          }
        }
        content?.update(data);
        produced += data.length;
        if (data.length > 0) yield data;
      }
      if (content) {
        const at = input.offset;
        const sum = (await need(4, at, 'the content checksum')).readUInt32LE(0);
        if (content.digest() !== sum) throw corrupt(where, at, 'content checksum mismatch');
      }
      if (expectedSize !== undefined && expectedSize !== produced) {
        throw corrupt(where, frameAt, `frame holds ${produced} bytes, its header says ${expectedSize}`);
      }
    }
  } finally {
    await input.close();
  }
}
