/**
 * Which compression a PBM file holds: its name's suffix (PBM `CompressionType.Suffix()`,
 * `pbm/compress/compress.go`; OPLOG.md §6.1) checked against the magic bytes at its start, and a
 * stream that decompresses it.
 *
 * Magic bytes: gzip `1f 8b` (RFC 1952 §2.3.1); Snappy/S2 framed streams begin with the stream
 * identifier chunk `ff 06 00 00` + `sNaPpY` / `S2sTwO` (OPLOG.md §6.4); zstd frames `28 b5 2f fd`
 * (RFC 8878 §3.1.1); LZ4 frames `04 22 4d 18` (LZ4 frame format, "Magic Number").
 */
import {GravityError} from '../errors.js';
import {gunzip, peek} from '../dump/streams.js';
import {decodeLz4Stream} from './lz4.js';
import {decodeS2Stream} from './s2.js';
import {decodeZstdStream} from './zstd.js';
import type {Chunks} from './s2.js';

export type Compression = 'none' | 'gzip' | 's2' | 'snappy' | 'lz4' | 'zstd';

/** Bytes `compressionFromMagic` needs for a sure answer. */
export const MAGIC_BYTES = 10;

/** PBM's suffix per compression; gzip and pgzip share `.gz` (OPLOG.md §6.1 table). */
const SUFFIXES: ReadonlyArray<[string, Compression]> = [
  ['.gz', 'gzip'],
  ['.snappy', 'snappy'],
  ['.lz4', 'lz4'],
  ['.s2', 's2'],
  ['.zst', 'zstd'],
];

/** The compression a file name declares, and the name without its suffix. */
export function compressionFromName(name: string): {compression: Compression; base: string} {
  for (const [suffix, compression] of SUFFIXES) {
    if (name.endsWith(suffix)) return {compression, base: name.slice(0, -suffix.length)};
  }
  return {compression: 'none', base: name};
}

/** The compression the first bytes of a file show, or undefined when they show none of them. */
export function compressionFromMagic(head: Uint8Array): Compression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 4 && head[0] === 0x04 && head[1] === 0x22 && head[2] === 0x4d && head[3] === 0x18) return 'lz4';
  if (head.length >= 10 && head[0] === 0xff && head[1] === 0x06 && head[2] === 0 && head[3] === 0) {
    const id = Buffer.from(head.subarray(4, 10)).toString('latin1');
    if (id === 'S2sTwO') return 's2';
    if (id === 'sNaPpY') return 'snappy';
  }
  return undefined;
}

export interface Detected {
  /** How the file will be read. */
  compression: Compression;
  /** What its name says. */
  declared: Compression;
}

/**
 * The compression to read a file with. A mismatch between name and content is refused, except the
 * cases PBM itself produces or reads:
 * - `.snappy` holding an S2 stream: PBM before 1.7.0 wrote point-in-time chunks that way and retries
 *   with S2 when Snappy fails (`pbm/restore/restore.go`; OPLOG.md §6.3, §10 trap 4) → read as S2;
 * - `.s2` holding a Snappy stream: S2's decoder reads Snappy streams (S2 README) → read as S2;
 * - a file with no suffix whose first bytes look like gzip: `1f 8b 00 00` also starts a valid BSON
 *   document of 35,615 bytes, so an uncompressed file is trusted to be what its name says.
 * An empty file is read as its name says (an empty S2 or uncompressed file holds no documents).
 */
export function detectCompression(name: string, head: Uint8Array): Detected {
  const declared = compressionFromName(name).compression;
  if (head.length === 0) return {compression: declared, declared};
  const seen = compressionFromMagic(head);
  if (declared === 'none') {
    if (seen === undefined || seen === 'gzip') return {compression: 'none', declared};
    throw mismatch(name, declared, seen);
  }
  if (seen === declared) return {compression: declared, declared};
  if ((declared === 'snappy' || declared === 's2') && (seen === 's2' || seen === 'snappy')) return {compression: 's2', declared};
  throw mismatch(name, declared, seen);
}

function mismatch(name: string, declared: Compression, seen: Compression | undefined): GravityError {
  const holds = seen === undefined ? 'data that is none of gzip, snappy, s2, lz4 or zstd' : `${seen} data`;
  const named = declared === 'none' ? 'has no compression suffix' : `is named as ${declared}`;
  return new GravityError('DUMP_CORRUPT', `${name} ${named} but holds ${holds}`, {
    hint: 'The file is damaged or was renamed; fetch the backup again or check the file',
    details: {declared, seen: seen ?? 'unknown'},
  });
}

/**
 * The decompressed content of a file's chunks, read as `detectCompression` decides. gzip covers
 * PBM's pgzip output too (PBM reads both with Go's `compress/gzip`; OPLOG.md §6.4); zstd is read
 * with `fzstd` (zstd.ts), LZ4 frames by lz4.ts.
 */
export async function openDecompressed(chunks: Chunks, name: string): Promise<{compression: Compression; data: AsyncGenerator<Buffer>}> {
  const {head, all, close} = await peek(chunks, MAGIC_BYTES);
  let detected: Detected;
  try {
    detected = detectCompression(name, head.subarray(0, MAGIC_BYTES));
  } catch (error) {
    await close();
    throw error;
  }
  const {compression} = detected;
  if (compression === 'gzip') return {compression, data: gunzip(all, name)};
  if (compression === 's2' || compression === 'snappy') return {compression, data: decodeS2Stream(all, {where: name})};
  if (compression === 'zstd') return {compression, data: decodeZstdStream(all, name)};
  if (compression === 'lz4') return {compression, data: decodeLz4Stream(all, name)};
  return {compression, data: passThrough(all)};
}

async function* passThrough(chunks: Chunks): AsyncGenerator<Buffer> {
  yield* chunks;
}
