/**
 * A generated, gravity-like database: partners, artists, sales, artworks and the collections
 * that depend on artworks. Deterministic (seeded), so every demo run tells the same story.
 */
import {createWriteStream} from 'node:fs';
import {pipeline} from 'node:stream/promises';
import {createGzip} from 'node:zlib';

import {BSON, Decimal128, Double, Int32, Long, ObjectId, type Document} from 'bson';
import tar from 'tar-stream';

export const DB = 'gravity';
export const COLLECTIONS = ['partners', 'artists', 'sales', 'artworks', 'sale_artworks', 'partner_artist_artworks'] as const;
export type CollectionName = (typeof COLLECTIONS)[number];

export const RELATIONS = [
  {from: 'artworks', to: 'sale_artworks', foreignField: 'artwork_id'},
  {from: 'artworks', to: 'partner_artist_artworks', foreignField: 'artwork_id'},
];

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Doc {
  doc: Document;
  createdAt: Date;
}

export interface GravityData {
  collections: Record<CollectionName, Doc[]>;
  /** The partner whose artworks the incident deletes. */
  partnerId: ObjectId;
}

const WORDS = ['Untitled', 'Blue', 'Composition', 'Study', 'Harbor', 'Night', 'Figure', 'Garden', 'Light', 'Red', 'Portrait', 'Field', 'Summer', 'Window', 'Silence', 'Echo'];
const MEDIUMS = ['Oil on canvas', 'Acrylic on panel', 'Gelatin silver print', 'Bronze', 'Watercolor on paper', 'Screenprint', 'Mixed media'];
const CITIES = ['New York', 'London', 'Berlin', 'Paris', 'Los Angeles', 'Hong Kong', 'Mexico City'];

export function generateGravity(options: {artworks?: number; seed?: number} = {}): GravityData {
  const random = rng(options.seed ?? 20261118);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  let idCounter = 0;
  const oid = (at: Date) => {
    // ObjectIds carry their creation time, like real ones.
    const bytes = Buffer.alloc(12);
    bytes.writeUInt32BE(Math.floor(at.getTime() / 1000), 0);
    bytes.writeUInt32BE(Math.floor(random() * 0xffffffff), 4);
    bytes.writeUInt32BE(++idCounter, 8);
    return new ObjectId(bytes);
  };
  const start = Date.UTC(2026, 10, 1);
  const end = Date.UTC(2026, 10, 18, 22, 0);
  const when = (from = start) => new Date(from + Math.floor(random() * (end - from)));
  const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-');

  const partners: Doc[] = [];
  for (let i = 0; i < 40; i++) {
    const createdAt = new Date(start - (i + 1) * 86_400_000 * 30);
    const name = `${pick(WORDS)} ${pick(['Gallery', 'Projects', 'Fine Art', 'Contemporary'])} ${i}`;
    partners.push({
      createdAt,
      doc: {_id: oid(createdAt), name, slug: slug(name), type: pick(['Gallery', 'Auction', 'Institution']), city: pick(CITIES), created_at: createdAt, subscription: {tier: new Int32(1 + (i % 3)), active: i % 7 !== 0}},
    });
  }
  const partnerId = partners[3]!.doc._id as ObjectId;
  const artists: Doc[] = [];
  for (let i = 0; i < 200; i++) {
    const createdAt = new Date(start - (i + 1) * 86_400_000);
    const name = `Artist ${pick(WORDS)} ${i}`;
    artists.push({createdAt, doc: {_id: oid(createdAt), name, slug: slug(name), birthday: new Date(Date.UTC(1900 + Math.floor(random() * 100), 0, 1)), nationality: pick(['American', 'British', 'German', 'Mexican', 'Japanese'])}});
  }
  const sales: Doc[] = [];
  for (let i = 0; i < 20; i++) {
    const createdAt = when();
    sales.push({createdAt, doc: {_id: oid(createdAt), name: `${pick(CITIES)} Sale ${i}`, start_at: createdAt, end_at: new Date(createdAt.getTime() + 7 * 86_400_000), is_auction: i % 2 === 0, currency: 'USD'}});
  }
  const artworks: Doc[] = [];
  const saleArtworks: Doc[] = [];
  const paa: Doc[] = [];
  const count = options.artworks ?? 6000;
  for (let i = 0; i < count; i++) {
    // The incident's partner owns a good share, spread over the whole period.
    const partner = i % 12 === 0 ? partners[3]! : pick(partners);
    const artist = pick(artists);
    const createdAt = when();
    const title = `${pick(WORDS)} ${pick(WORDS)} ${i}`;
    const artwork: Document = {
      _id: oid(createdAt),
      title,
      slug: `${slug(title)}-${i}`,
      partner_id: partner.doc._id,
      artist_ids: [artist.doc._id, ...(random() < 0.1 ? [pick(artists).doc._id] : [])],
      medium: pick(MEDIUMS),
      date: String(1950 + Math.floor(random() * 75)),
      dimensions: {in: {height: new Double(10 + Math.floor(random() * 60)), width: new Double(10 + Math.floor(random() * 60))}, cm: {height: new Double(25.4), width: new Double(30.5)}},
      price_listed: Decimal128.fromString((1000 + Math.floor(random() * 500_000)).toString() + '.00'),
      price_currency: 'USD',
      published: random() < 0.8,
      availability: pick(['for sale', 'sold', 'on hold', 'not for sale']),
      edition_sets: random() < 0.2 ? [{_id: oid(createdAt), edition_size: new Int32(10), available_editions: [new Int32(1), new Int32(3)]}] : [],
      images: [{image_url: `https://d32dm0rphc51dk.cloudfront.net/${i}/:version.jpg`, aspect_ratio: new Double(1.333), is_default: true}],
      inventory_id: new Long(BigInt(100000 + i)),
      tags: [pick(WORDS).toLowerCase(), pick(WORDS).toLowerCase()],
      created_at: createdAt,
      updated_at: createdAt,
      description: `A ${pick(MEDIUMS).toLowerCase()} work from ${pick(CITIES)}. `.repeat(4),
    };
    artworks.push({createdAt, doc: artwork});
    if (random() < 0.5) {
      const sale = pick(sales);
      const at = new Date(Math.max(createdAt.getTime(), sale.createdAt.getTime()) + 60_000);
      saleArtworks.push({createdAt: at, doc: {_id: oid(at), sale_id: sale.doc._id, artwork_id: artwork._id, lot_number: String(i), estimate_cents: new Long(BigInt(Math.floor(random() * 1e8))), created_at: at}});
    }
    const at = new Date(createdAt.getTime() + 1000);
    paa.push({createdAt: at, doc: {_id: oid(at), partner_id: partner.doc._id, artist_id: artist.doc._id, artwork_id: artwork._id, created_at: at}});
  }
  const byTime = (a: Doc, b: Doc) => a.createdAt.getTime() - b.createdAt.getTime();
  return {
    collections: {
      partners,
      artists,
      sales: sales.sort(byTime),
      artworks: artworks.sort(byTime),
      sale_artworks: saleArtworks.sort(byTime),
      partner_artist_artworks: paa.sort(byTime),
    },
    partnerId,
  };
}

/** mongodump's metadata file for a collection, canonical Extended JSON. */
export function metadataFor(collection: string): string {
  const indexes: Document[] = [{v: {$numberInt: '2'}, key: {_id: {$numberInt: '1'}}, name: '_id_'}];
  if (collection === 'artworks') indexes.push({v: {$numberInt: '2'}, key: {partner_id: {$numberInt: '1'}}, name: 'partner_id_1'}, {v: {$numberInt: '2'}, key: {slug: {$numberInt: '1'}}, name: 'slug_1', unique: true});
  if (collection === 'sale_artworks' || collection === 'partner_artist_artworks') indexes.push({v: {$numberInt: '2'}, key: {artwork_id: {$numberInt: '1'}}, name: 'artwork_id_1'});
  return JSON.stringify({indexes, uuid: Buffer.from(collection.padEnd(16, '_')).subarray(0, 16).toString('hex'), collectionName: collection, type: 'collection'});
}

/** The documents of a collection as they stood at `at`. */
export function snapshot(docs: Doc[], at: Date): Document[] {
  return docs.filter((d) => d.createdAt.getTime() <= at.getTime()).map((d) => d.doc);
}

/**
 * A backup tarball as a cron job would make it: `mongodump --out dump/<host>_27017` then
 * `tar czf`, so the dump tree sits under a host folder.
 */
export async function writeBackupTarGz(file: string, collections: Record<string, Document[]>): Promise<void> {
  await writeRawBackupTarGz(file, Object.fromEntries(Object.entries(collections).map(([c, docs]) => [c, docs.map((d) => Buffer.from(BSON.serialize(d)))])));
}

/** A mongodump-like .tar.gz of documents exactly as a server returned them (raw bytes). */
export async function writeRawBackupTarGz(file: string, collections: Record<string, Buffer[]>): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, createGzip({level: 6}), createWriteStream(file));
  for (const [collection, docs] of Object.entries(collections)) {
    const data = Buffer.concat(docs);
    await new Promise<void>((resolve, reject) => pack.entry({name: `dump/db-primary_27017/${DB}/${collection}.bson`, size: data.length}, data, (e) => (e ? reject(e) : resolve())));
    const meta = Buffer.from(metadataFor(collection));
    await new Promise<void>((resolve, reject) => pack.entry({name: `dump/db-primary_27017/${DB}/${collection}.metadata.json`, size: meta.length}, meta, (e) => (e ? reject(e) : resolve())));
  }
  pack.finalize();
  await done;
}
