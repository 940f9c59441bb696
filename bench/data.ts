/** Generated benchmark data (never committed): a .tar.gz mongodump of one large collection. */
import {createWriteStream} from 'node:fs';
import {mkdir, stat} from 'node:fs/promises';
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

function benchBytes(i: number): Uint8Array {
  const id = Buffer.alloc(12);
  id.writeUInt32BE(0x60000000 + Math.floor(i / 100), 0);
  id.writeUInt32BE(i, 8);
  return BSON.serialize({
    _id: new ObjectId(id),
    title: `Untitled composition number ${i}`,
    slug: `artist-name-untitled-composition-${i}`,
    partner_id: partnerId(i % PARTNERS),
    artist_ids: [partnerId(100_000 + (i % 5000))],
    published: i % 3 !== 0,
    created_at: new Date(Date.UTC(2015, 0, 1) + (i % 3650) * 86_400_000),
    dimensions: {height: new Double(10 + (i % 90)), width: new Double(20 + (i % 40)), unit: 'in'},
    edition: new Int32(i % 50),
    medium: 'Oil on canvas',
    tags: ['painting', 'contemporary', i % 2 ? 'abstract' : 'figurative'],
    description: 'A work of considerable presence, painted in layers over several months. '.repeat(3),
  });
}

export async function ensureBenchTarGz(dir: string, documents: number): Promise<string> {
  const file = path.join(dir, `artworks-${documents}.tar.gz`);
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
  const {rename} = await import('node:fs/promises');
  await rename(tmp, file);
  return file;
}
