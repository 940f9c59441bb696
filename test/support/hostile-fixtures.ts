/**
 * Hostile and broken backups, generated (never committed): decompression bombs, members named
 * outside the dump, documents nested far deeper than MongoDB stores.
 */
import {createWriteStream} from 'node:fs';
import {once} from 'node:events';
import zlib from 'node:zlib';

import {BSON, type Document} from 'bson';
import tar from 'tar-stream';

/** A ustar header for one member of `size` bytes (written by hand: a bomb's member is streamed, not buffered). */
function ustarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/**
 * A .tar.gz whose one member `member` holds `doc` repeated until about `bytes` of BSON: it
 * compresses some 200:1 (tiny documents 1000:1), as a decompression bomb does. Returns the
 * documents and bytes inside.
 */
export async function writeBombTarGz(file: string, member: string, doc: Document, bytes: number): Promise<{documents: number; bytes: number}> {
  const one = Buffer.from(BSON.serialize(doc));
  const perBlock = Math.max(1, Math.floor((4 * 1024 * 1024) / one.length));
  const block = Buffer.concat(Array.from({length: perBlock}, () => one));
  const blocks = Math.max(1, Math.floor(bytes / block.length));
  const size = blocks * block.length;
  const gz = zlib.createGzip({level: 1});
  const out = createWriteStream(file);
  gz.pipe(out);
  const write = async (chunk: Buffer) => {
    if (!gz.write(chunk)) await once(gz, 'drain');
  };
  await write(ustarHeader(member, size));
  for (let i = 0; i < blocks; i++) await write(block);
  await write(Buffer.alloc(((512 - (size % 512)) % 512) + 1024));
  gz.end();
  await once(out, 'finish');
  return {documents: blocks * perBlock, bytes: size};
}

/** A .tar.gz (tar-stream, so any member name, `..` included) of the given members. */
export async function tarGzOf(members: Array<{name: string; data: Buffer}>): Promise<Buffer> {
  const pack = tar.pack();
  for (const m of members) pack.entry({name: m.name, size: m.data.length}, m.data);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return zlib.gzipSync(Buffer.concat(chunks));
}

/**
 * `{_id, a: {a: … {a: 1}}}` with `levels` documents, the top one included (without `id`: no
 * `_id`). Written into one buffer: each level is int32 length, 0x03 'a' NUL, the next level, NUL,
 * so the headers go in front and the NULs (a zero-filled buffer's own) at the back.
 */
export function nestedDocument(levels: number, id?: number): Buffer {
  const idBytes = id === undefined ? Buffer.alloc(0) : Buffer.from(BSON.serialize({_id: id})).subarray(4, -1);
  const core = Buffer.from(BSON.serialize({a: 1}));
  if (levels <= 1) return Buffer.from(BSON.serialize(id === undefined ? {a: 1} : {_id: id, a: 1}));
  const below = levels - 1; // documents under the top one, the innermost being `core`
  const chain = core.length + 8 * (below - 1);
  const doc = Buffer.alloc(4 + idBytes.length + 3 + chain + 1);
  doc.writeInt32LE(doc.length, 0);
  idBytes.copy(doc, 4);
  let at = 4 + idBytes.length;
  let size = chain;
  for (let level = 0; level < below; level++) {
    doc[at] = 0x03;
    doc[at + 1] = 0x61;
    at += 3;
    if (level === below - 1) {
      core.copy(doc, at);
      break;
    }
    doc.writeInt32LE(size, at);
    at += 4;
    size -= 8;
  }
  return doc;
}

/** A filter of `levels` nested `$and`s around one condition, as text. */
export function nestedAnd(levels: number): string {
  return `${'{"$and": ['.repeat(levels)}{"x": 1}${']}'.repeat(levels)}`;
}
