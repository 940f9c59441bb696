import assert from 'node:assert/strict';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {readDump} from '../../src/dump/read.js';
import type {DumpInput, NamespaceRef} from '../../src/dump/types.js';
import {bufferSource, everyTypeDocuments, metadataJson, tarFolder, tempDir, writeFolder} from '../support/bson-fixtures.js';

/**
 * A tar made by `tar czf` stores members in directory order, which often puts `<coll>.bson` before
 * `<coll>.metadata.json`. Consumers (extract) stop reading at the last 'end' they need, so every
 * wanted namespace's 'metadata' must come before its 'end', whatever the member order.
 */
const artworks = everyTypeDocuments(40, 21);
const sales = everyTypeDocuments(12, 22);
const users = everyTypeDocuments(9, 23);
const filler = everyTypeDocuments(30, 24);
const artworksMeta = metadataJson('artworks', {indexes: [{v: 2, key: {_id: 1}, name: '_id_'}, {v: 2, key: {slug: 1}, name: 'slug_1', unique: true}]});
const salesMeta = metadataJson('sales', {options: {collation: {locale: 'fr', strength: 2}}});

const ORDERS = {
  before: ['artworks.metadata.json', 'artworks.bson', 'sales.metadata.json', 'sales.bson', 'users.bson', 'zfiller.bson'],
  after: ['artworks.bson', 'sales.bson', 'users.bson', 'zfiller.bson', 'artworks.metadata.json', 'sales.metadata.json'],
  // Data first, another collection's members in between, then the metadata.
  between: ['artworks.bson', 'zfiller.bson', 'sales.bson', 'users.bson', 'artworks.metadata.json', 'sales.metadata.json'],
} as const;

interface Seen {
  events: string[];
  docs: Map<string, Buffer[]>;
  raw: Map<string, string>;
  ended: Set<string>;
}

/** Reads as extract does: stops at the moment every wanted namespace has had its 'end'. */
async function readUntilEnds(input: DumpInput, wanted: string[]): Promise<Seen> {
  const seen: Seen = {events: [], docs: new Map(), raw: new Map(), ended: new Set()};
  const want = (ns: NamespaceRef): boolean => wanted.includes(ns.collection);
  for await (const event of readDump(input, {want})) {
    if (event.type === 'oplog') continue;
    seen.events.push(`${event.type}:${event.collection}`);
    if (event.type === 'metadata') seen.raw.set(event.collection, event.raw);
    else if (event.type === 'documents') seen.docs.set(event.collection, [...(seen.docs.get(event.collection) ?? []), ...event.docs]);
    else {
      seen.ended.add(event.collection);
      if (wanted.every((c) => seen.ended.has(c))) break;
    }
  }
  return seen;
}

function assertDocs(seen: Seen, collection: string, expected: Buffer[]): void {
  const got = seen.docs.get(collection) ?? [];
  assert.equal(got.length, expected.length, `${collection}: document count`);
  assert.ok(got.every((d, i) => d.equals(expected[i]!)), `${collection}: documents byte-identical`);
}

let dir: string;
let src: string;

before(async () => {
  dir = await tempDir('dump-meta-order');
  src = path.join(dir, 'src');
  await writeFolder(path.join(src, 'gravity'), [
    {db: 'gravity', collection: 'artworks', docs: artworks, metadata: artworksMeta},
    {db: 'gravity', collection: 'sales', docs: sales, metadata: salesMeta},
    {db: 'gravity', collection: 'users', docs: users},
    {db: 'gravity', collection: 'zfiller', docs: filler},
  ]);
  // writeFolder puts a db's files under <root>/<db>: flatten to src/gravity/*.
  for (const name of await fsp.readdir(path.join(src, 'gravity', 'gravity'))) {
    await fsp.rename(path.join(src, 'gravity', 'gravity', name), path.join(src, 'gravity', name));
  }
  await fsp.rmdir(path.join(src, 'gravity', 'gravity'));
});

after(async () => {
  await fsp.rm(dir, {recursive: true, force: true});
});

describe('readDump: a namespace\'s metadata comes before its end, whatever the tar order', () => {
  for (const format of ['gnu', 'pax', 'ustar'] as const) {
    for (const gzip of [false, true]) {
      for (const [order, members] of Object.entries(ORDERS)) {
        it(`${format} .tar${gzip ? '.gz' : ''}, metadata ${order} the data`, async () => {
          const file = path.join(dir, `${format}-${order}.tar${gzip ? '.gz' : ''}`);
          tarFolder(src, members.map((m) => `gravity/${m}`), file, {format, gzip});
          for (const input of [file, bufferSource(path.basename(file), await fsp.readFile(file), 3001)]) {
            const one = await readUntilEnds(input, ['artworks']);
            assert.equal(one.raw.get('artworks'), artworksMeta);
            assert.ok(one.events.indexOf('metadata:artworks') < one.events.indexOf('end:artworks'), one.events.join(' '));
            assertDocs(one, 'artworks', artworks);

            const two = await readUntilEnds(input, ['artworks', 'sales']);
            assert.equal(two.raw.get('artworks'), artworksMeta);
            assert.equal(two.raw.get('sales'), salesMeta);
            assertDocs(two, 'sales', sales);

            // No metadata anywhere: the 'end' comes at the end of the tar, the documents all there.
            const bare = await readUntilEnds(input, ['users']);
            assert.equal(bare.raw.has('users'), false);
            assert.deepEqual(bare.events.filter((e) => e.endsWith(':users')).at(-1), 'end:users');
            assertDocs(bare, 'users', users);
          }
        });
      }
    }
  }

  it('a tar of a --gzip folder (.bson.gz before .metadata.json.gz)', async () => {
    const gzSrc = path.join(dir, 'gzsrc');
    await writeFolder(gzSrc, [
      {db: 'gravity', collection: 'artworks', docs: artworks, metadata: artworksMeta},
      {db: 'gravity', collection: 'users', docs: users},
    ], {gzip: true});
    const file = path.join(dir, 'gz-after.tar');
    tarFolder(gzSrc, ['gravity/artworks.bson.gz', 'gravity/users.bson.gz', 'gravity/artworks.metadata.json.gz'], file, {format: 'pax'});
    const seen = await readUntilEnds(file, ['artworks']);
    assert.equal(seen.raw.get('artworks'), artworksMeta);
    assert.ok(seen.events.indexOf('metadata:artworks') < seen.events.indexOf('end:artworks'));
    assertDocs(seen, 'artworks', artworks);
  });

  it('reads only as far as the metadata: a damaged tail after it is never reached', async () => {
    const file = path.join(dir, 'cut.tar');
    tarFolder(src, ['gravity/artworks.bson', 'gravity/artworks.metadata.json', 'gravity/zfiller.bson'], file, {format: 'gnu'});
    const whole = await fsp.readFile(file);
    // Cut inside zfiller.bson (the last member): reading to the end of this tar fails.
    const cut = whole.subarray(0, whole.length - 1024 * 10 - Math.floor(Buffer.concat(filler).length / 2));
    const seen = await readUntilEnds(bufferSource('cut.tar', cut, 4096), ['artworks']);
    assert.equal(seen.raw.get('artworks'), artworksMeta);
    assertDocs(seen, 'artworks', artworks);
    await assert.rejects(readUntilEnds(bufferSource('cut.tar', cut, 4096), ['users']), /truncated tar/);
  });

  it('every namespace ends once, with its counts, when the tar is read to the end', async () => {
    const file = path.join(dir, 'full-after.tar.gz');
    tarFolder(src, ORDERS.after.map((m) => `gravity/${m}`), file, {format: 'gnu', gzip: true});
    const ends: Array<[string, number, number]> = [];
    for await (const event of readDump(file)) if (event.type === 'end') ends.push([event.collection, event.documents, event.bytes]);
    const size = (list: Buffer[]) => list.reduce((s, d) => s + d.length, 0);
    assert.deepEqual(ends.sort(), [
      ['artworks', artworks.length, size(artworks)],
      ['sales', sales.length, size(sales)],
      ['users', users.length, size(users)],
      ['zfiller', filler.length, size(filler)],
    ]);
  });
});
