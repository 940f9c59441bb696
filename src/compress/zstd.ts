/**
 * zstd streams (PBM `.zst`, written by klauspost/compress/zstd; OPLOG.md §6.1) decoded with `fzstd`, a
 * pure-JavaScript streaming decoder: Node 20 has no zstd in zlib (it arrived in 22.15), and the
 * native packages need an install step per platform.
 *
 * `fzstd` does not check the frames' content checksums; measured here, 178 of 200 single flipped
 * bytes in a `.zst` file then decoded silently to wrong data. So the frames are walked here (RFC 8878
 * §3.1.1: magic, frame header, blocks with 3-byte headers, optional 4-byte checksum = low 32 bits
 * of XXH64 of the frame's content; skippable frames `5X 2a 4d 18`), each frame is given to its own
 * `fzstd` decoder, and its output is checked against the stored checksum at the frame's end. Data
 * of a frame is yielded before its checksum is reached (frames can be gigabytes): a mismatch fails
 * the stream at its end, as a truncated one does. Every failure is one DUMP_CORRUPT line naming the
 * file and the offset of the frame or block.
 */
import {Decompress} from 'fzstd';

import {GravityError} from '../errors.js';
import {nextFrame} from './frames.js';
import {Input} from './s2.js';
import type {Chunks} from './s2.js';
import {Xxh64} from './xxh64.js';

/** RFC 8878 §3.1.1.2: Block_Maximum_Size is at most 128 KiB. */
const MAX_BLOCK = 128 * 1024;
const DICT_ID_BYTES = [0, 1, 2, 4];
const FCS_BYTES = [0, 2, 4, 8];

function corrupt(where: string, offset: number, problem: string, cause?: unknown): GravityError {
  return new GravityError('DUMP_CORRUPT', `${where}: corrupt zstd stream at byte ${offset}: ${problem}`, {
    hint: 'The file is damaged or incomplete; fetch the backup again',
    details: {offset},
    cause,
  });
}

/** The frame's magic number as it stood in the stream (little-endian), for the decoder that reads the frame whole. */
function magicBytesOf(magic: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(magic >>> 0, 0);
  return bytes;
}

export async function* decodeZstdStream(chunks: Chunks, where: string): AsyncGenerator<Buffer> {
  const input = new Input(chunks);
  const truncated = (at: number, what: string) => corrupt(where, at, `the stream ends inside ${what} (truncated file)`);
  const need = (n: number, at: number, what: string): Promise<Buffer> => input.need(n, () => truncated(at, what));
  try {
    for (;;) {
      const frame = await nextFrame(input, truncated);
      if (frame === null) return;
      const {magic, at: frameAt} = frame;
      if (magic !== 0xfd2fb528) throw corrupt(where, frameAt, `not a zstd frame (magic 0x${magic.toString(16).padStart(8, '0')})`);
      const descriptor = await need(1, frameAt, 'a frame header');
      const fhd = descriptor[0]!;
      if (fhd & 0x08) throw corrupt(where, frameAt, 'reserved bit set in the frame header');
      const single = (fhd & 0x20) !== 0;
      const hasChecksum = (fhd & 0x04) !== 0;
      const fcsFlag = fhd >>> 6;
      const dictBytes = DICT_ID_BYTES[fhd & 3]!;
      const rest = await need((single ? 0 : 1) + dictBytes + (fcsFlag === 0 ? (single ? 1 : 0) : FCS_BYTES[fcsFlag]!), frameAt, 'a frame header');
      if (dictBytes > 0 && rest.readUIntLE(single ? 0 : 1, dictBytes) !== 0) {
        throw corrupt(where, frameAt, 'the frame needs a dictionary, which PBM never uses');
      }

      const out: Buffer[] = [];
      // fzstd may hand out views of its own window, which later input overwrites: each piece is copied.
      const decoder = new Decompress((data) => {
        if (data.length > 0) out.push(Buffer.from(data));
      });
      const hash = hasChecksum ? new Xxh64() : undefined;
      const push = (bytes: Buffer, at: number, final = false): void => {
        try {
          decoder.push(bytes, final);
        } catch (error) {
          throw corrupt(where, at, (error as Error).message, error);
        }
      };
      push(Buffer.concat([magicBytesOf(magic), descriptor, rest]), frameAt);
      for (;;) {
        const blockAt = input.offset;
        const header = await need(3, blockAt, 'a block header');
        const value = header[0]! | (header[1]! << 8) | (header[2]! << 16);
        const type = (value >>> 1) & 3;
        const size = value >>> 3;
        if (type === 3) throw corrupt(where, blockAt, 'reserved block type');
        if (type !== 1 && size > MAX_BLOCK) throw corrupt(where, blockAt, `block of ${size} bytes is larger than 128 KiB`);
        push(header, blockAt);
        push(await need(type === 1 ? 1 : size, blockAt, `a ${size}-byte block`), blockAt);
        for (const piece of out) {
          hash?.update(piece);
          yield piece;
        }
        out.length = 0;
        if (value & 1) break;
      }
      const endAt = input.offset;
      const stored = hasChecksum ? await need(4, endAt, 'the frame checksum') : Buffer.alloc(0);
      push(stored, endAt, true);
      for (const piece of out) {
        hash?.update(piece);
        yield piece;
      }
      if (hash && hash.digestLow32() !== stored.readUInt32LE(0)) {
        throw corrupt(where, frameAt, 'content checksum mismatch (XXH64) in the frame starting here');
      }
    }
  } finally {
    await input.close();
  }
}
