/** Generated benchmark data (never committed): a .tar.gz mongodump of one large collection. */
import {createWriteStream} from 'node:fs';
import {mkdir, mkdtemp, rename, rm, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {once} from 'node:events';
import {createGzip} from 'node:zlib';

import {BSON, Double, Int32, ObjectId} from 'bson';
import tar from 'tar-stream';

export const PARTNERS = 2000;

/** The partner the equality benchmark asks for: about 1/PARTNERS of the documents. */
export function partnerId(i: number): ObjectId {
  const bytes = Buffer.alloc(12);
  bytes.writeUInt32BE(0x5a000000, 0);
  bytes.writeUInt32BE(i, 8);
  return new ObjectId(bytes);
}

/** About 500-byte documents with the shapes real collections have. */
export function benchDocument(i: number): Buffer {
  return Buffer.from(benchBytes(i));
}

const WORDS = 'light field harbor figure garden night study composition portrait echo summer window silence red blue green gold grey white black iron paper canvas bronze ink oil wax glass stone wood river mountain city street room chair table mirror bird horse flower tree sea sky cloud rain snow fire smoke dust'.split(' ');

/** A small deterministic generator per document, so the data is the same on every run. */
function generator(seed: number): () => number {
  let x = (seed * 2654435761) >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function benchBytes(i: number): Uint8Array {
  const r = generator(i + 1);
  const words = (n: number) => Array.from({length: n}, () => WORDS[Math.floor(r() * WORDS.length)]).join(' ');
  const hex = (n: number) => Array.from({length: n}, () => Math.floor(r() * 16).toString(16)).join('');
  const id = Buffer.alloc(12);
  id.writeUInt32BE(0x60000000 + Math.floor(i / 100), 0);
  id.writeUInt32BE(Math.floor(r() * 0xffffffff), 4);
  id.writeUInt32BE(i, 8);
  const title = words(3);
  // Realistic entropy: backups of real collections gzip about 4-6:1, not 20:1.
  return BSON.serialize({
    _id: new ObjectId(id),
    title,
    slug: `${title.replace(/ /g, '-')}-${hex(6)}`,
    partner_id: partnerId(i % PARTNERS),
    artist_ids: [partnerId(100_000 + Math.floor(r() * 5000))],
    published: r() < 0.66,
    created_at: new Date(Date.UTC(2015, 0, 1) + Math.floor(r() * 3650 * 86_400_000)),
    dimensions: {height: new Double(Math.round(r() * 1000) / 10), width: new Double(Math.round(r() * 1000) / 10), unit: r() < 0.5 ? 'in' : 'cm'},
    edition: new Int32(Math.floor(r() * 50)),
    price_cents: Math.floor(r() * 1e9),
    image: {token: hex(32), version: 'large', aspect: new Double(Math.round(r() * 200) / 100)},
    medium: words(2),
    tags: [WORDS[Math.floor(r() * WORDS.length)], WORDS[Math.floor(r() * WORDS.length)]],
    description: `${words(12)}. ${words(8)}.`,
  });
}

export async function ensureBenchTarGz(dir: string, documents: number): Promise<string> {
  const file = path.join(dir, `artworks-v2-${documents}.tar.gz`);
  if (await stat(file).then(() => true, () => false)) return file;
  await mkdir(dir, {recursive: true});
  const tmp = `${file}.tmp`;
  const pack = tar.pack();
  const out = createWriteStream(tmp);
  const done = new Promise<void>((resolve, reject) => {
    out.on('finish', resolve);
    out.on('error', reject);
  });
  pack.pipe(createGzip({level: 6})).pipe(out);
  const meta = Buffer.from(JSON.stringify({indexes: [{v: {$numberInt: '2'}, key: {_id: {$numberInt: '1'}}, name: '_id_'}], collectionName: 'artworks', type: 'collection'}));
  pack.entry({name: 'dump/gravity/artworks.metadata.json', size: meta.length}, meta);
  // The entry size must be known up front: serialise once to measure, then stream.
  let size = 0;
  for (let i = 0; i < documents; i++) size += benchDocument(i).length;
  const entry = pack.entry({name: 'dump/gravity/artworks.bson', size});
  for (let i = 0; i < documents; i++) {
    if (!entry.write(benchDocument(i))) await once(entry, 'drain');
  }
  entry.end(() => undefined);
  pack.finalize();
  await done;
  await rename(tmp, file);
  return file;
}

/**
 * The same documents as `ensureBenchTarGz` as a `mongodump --archive --gzip` file (mgob's default
 * layout), written by the project's archive writer (CRC-64 per namespace, as mongodump writes it).
 */
export async function ensureBenchArchiveGz(dir: string, documents: number): Promise<string> {
  const file = path.join(dir, `artworks-v2-${documents}.archive.gz`);
  if (await stat(file).then(() => true, () => false)) return file;
  await mkdir(dir, {recursive: true});
  const work = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-archive-'));
  try {
    const folder = path.join(work, 'gravity');
    await mkdir(folder);
    const out = createWriteStream(path.join(folder, 'artworks.bson'));
    for (let i = 0; i < documents; i++) if (!out.write(benchDocument(i))) await once(out, 'drain');
    out.end();
    await once(out, 'finish');
    await writeFile(path.join(folder, 'artworks.metadata.json'), JSON.stringify({indexes: [{v: {$numberInt: '2'}, key: {_id: {$numberInt: '1'}}, name: '_id_'}], collectionName: 'artworks', type: 'collection'}));
    const {writeArchive} = await import('../src/dump/write.js');
    await writeArchive(work, `${file}.tmp`, {gzip: true});
    await rename(`${file}.tmp`, file);
  } finally {
    await rm(work, {recursive: true, force: true});
  }
  return file;
}
