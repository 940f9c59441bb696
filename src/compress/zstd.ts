/**
 * zstd streams (PBM `.zst`, written by klauspost/compress/zstd; OPLOG.md §6.1) decoded with `fzstd`, a
 * pure-JavaScript streaming decoder: Node 20 has no zstd in zlib (it arrived in 22.15), and the
 * native packages need an install step per platform. Corrupt and truncated input become one
 * DUMP_CORRUPT line naming the file and the compressed offset reached.
 */
import {Decompress} from 'fzstd';

import {GravityError} from '../errors.js';
import type {Chunks} from './s2.js';

function corrupt(where: string, offset: number, problem: string, cause?: unknown): GravityError {
  return new GravityError('DUMP_CORRUPT', `${where}: corrupt zstd stream near byte ${offset}: ${problem}`, {
    hint: 'The file is damaged or incomplete; fetch the backup again',
    details: {offset},
    cause,
  });
}

export async function* decodeZstdStream(chunks: Chunks, where: string): AsyncGenerator<Buffer> {
  let out: Buffer[] = [];
  let ended = false;
  // fzstd may hand out views of its own window, which later input overwrites: each piece is copied.
  const decoder = new Decompress((data, final) => {
    if (data.length > 0) out.push(Buffer.from(data));
    if (final) ended = true;
  });
  let offset = 0;
  let seen = false;
  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    seen = true;
    try {
      decoder.push(chunk);
    } catch (error) {
      throw corrupt(where, offset, (error as Error).message, error);
    }
    offset += chunk.length;
    if (out.length > 0) {
      yield* out;
      out = [];
    }
  }
  if (!seen) return;
  try {
    decoder.push(new Uint8Array(0), true);
  } catch (error) {
    throw corrupt(where, offset, `${(error as Error).message} (truncated file?)`, error);
  }
  yield* out;
  if (!ended) throw corrupt(where, offset, 'the stream ends inside a frame (truncated file)');
}
