/**
 * The frame layer LZ4 and zstd share: a stream is frames back to back, each opened by a 4-byte
 * little-endian magic number, and both formats define the same skippable frames (magic
 * 0x184D2A50–0x184D2A5F, a 4-byte size, that many bytes to pass over: RFC 8878 §3.1.2; the LZ4
 * frame format's "Skippable frames").
 */
import type {Input} from './s2.js';

/**
 * The magic number of the next frame that is not a skippable one, and where it starts; null at a
 * clean end of the stream. `fail(at, what)` builds the error for a stream that ends inside `what`.
 */
export async function nextFrame(input: Input, fail: (at: number, what: string) => Error): Promise<{magic: number; at: number} | null> {
  for (;;) {
    const at = input.offset;
    if (!(await input.fill(4))) {
      if (input.available === 0) return null;
      throw fail(at, 'a frame magic number');
    }
    const magic = input.take(4).readUInt32LE(0);
    if ((magic & 0xfffffff0) >>> 0 !== 0x184d2a50) return {magic, at};
    const size = (await input.need(4, () => fail(at, 'a skippable frame'))).readUInt32LE(0);
    if (!(await input.skip(size))) throw fail(at, 'a skippable frame');
  }
}
