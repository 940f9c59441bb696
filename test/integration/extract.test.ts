import assert from 'node:assert/strict';
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON, Int32, Long, ObjectId, type Document} from 'bson';

import {extract, type ExtractOptions} from '../../src/extract/extract.js';
import {inferRelations} from '../../src/extract/infer.js';
import {MongoSelector, openScratch} from '../../src/extract/scratch.js';
import {parseQuery} from '../../src/query/parse.js';
import {readRestoreSet} from '../../src/restore-set/manifest.js';
import {startMongo, type MongoBackend} from '../support/mongo-backend.js';
import {json, runCli} from '../support/cli.js';

const oid = (n: number) => new ObjectId(n.toString(16).padStart(24, '0'));

/**
 * A small graph with the shapes relations meet in real data: a plain foreign key
 * (sale_artworks.artwork_id), an array of keys (shows.artwork_ids), a localField other than
 * _id (artworks.slug → notes.artwork_slug) and a cycle (artworks ↔ related).
 */
function dataset(): Record<string, Document[]> {
  const artworks: Document[] = [];
  for (let i = 0; i < 60; i++) {
    artworks.push({_id: oid(1000 + i), slug: `work-${i}`, partner_id: i % 4 === 0 ? oid(1) : oid(2), n: new Int32(i), big: Long.fromNumber(i * 1e10), tags: i % 2 ? ['x'] : []});
  }
  const sale_artworks = artworks.map((a, i) => ({_id: oid(5000 + i), artwork_id: a._id, lot: i}));
  const shows = [
    {_id: oid(7000), artwork_ids: [oid(1000), oid(1001), oid(1002)]},
    {_id: oid(7001), artwork_ids: [oid(1003)]},
    {_id: oid(7002), artwork_ids: [oid(1004), oid(1008)]},
    // The id as a string is not the ObjectId: must not be followed.
    {_id: oid(7003), artwork_ids: [oid(1000).toHexString()]},
  ];
  const notes = [
    {_id: oid(8000), artwork_slug: 'work-0', text: 'a'},
    {_id: oid(8001), artwork_slug: 'work-1', text: 'b'},
    {_id: oid(8002), artwork_slug: 'work-4', text: 'c'},
  ];
  // related.artwork_id → artworks (a cycle): work-0's related entry points back at work-9.
  const related = [
    {_id: oid(9000), artwork_id: oid(1000), other_id: oid(1009)},
    {_id: oid(9001), artwork_id: oid(1009), other_id: oid(1013)},
  ];
  return {artworks, sale_artworks, shows, notes, related};
}

const RELATIONS = [
  {from: 'artworks', to: 'sale_artworks', foreignField: 'artwork_id'},
  {from: 'artworks', to: 'shows', foreignField: 'artwork_ids'},
  {from: 'artworks', to: 'notes', foreignField: 'artwork_slug', localField: 'slug'},
  {from: 'artworks', to: 'related', foreignField: 'artwork_id'},
  {from: 'related', to: 'artworks', foreignField: '_id', localField: 'other_id'},
];

async function writeDumpFolder(root: string, data: Record<string, Document[]>): Promise<void> {
  const dir = path.join(root, 'db-host_27017', 'gravity');
  await mkdir(dir, {recursive: true});
  for (const [name, docs] of Object.entries(data)) {
    await writeFile(path.join(dir, `${name}.bson`), Buffer.concat(docs.map((d) => BSON.serialize(d))));
    await writeFile(path.join(dir, `${name}.metadata.json`), JSON.stringify({indexes: [{v: {$numberInt: '2'}, key: {_id: {$numberInt: '1'}}, name: '_id_'}], collectionName: name, type: 'collection'}));
  }
}

function ids(buffers: Buffer[]): string[] {
  return buffers.map((b) => String(BSON.deserialize(b)._id));
}

describe('extract', () => {
  let dir: string;
  let backup: string;
  let mongo: MongoBackend;
  const data = dataset();

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gr-extract-'));
    backup = path.join(dir, 'backup');
    await writeDumpFolder(backup, data);
    mongo = await startMongo({label: 'extract scratch'});
    console.log(`# extract: scratch MongoDB backend ${mongo.kind}`);
  });
  after(async () => {
    await mongo.stop();
    await rm(dir, {recursive: true, force: true});
  });

  const base = (out: string, query: string, follow: boolean): ExtractOptions => ({
    source: {input: backup, backup: null, location: backup, takenAt: null, objects: []},
    collection: 'artworks',
    queryText: query,
    filter: parseQuery(query),
    follow,
    relations: RELATIONS,
    out: path.join(dir, out),
    engine: 'stream',
    toolVersion: 'test',
  });

  async function setDocs(setDir: string, collection: string): Promise<Buffer[]> {
    const set = await readRestoreSet(setDir);
    const entry = set.manifest.collections[collection];
    if (!entry) return [];
    const {splitDocuments} = await import('../../src/dump/split.js');
    return splitDocuments(await readFile(path.join(setDir, entry.file)));
  }

  it('without a query, the set is byte-identical to the backup collection', async () => {
    const result = await extract(base('all', '{}', false));
    const original = await readFile(path.join(backup, 'db-host_27017', 'gravity', 'artworks.bson'));
    const written = await readFile(path.join(result.set, 'dump', 'gravity', 'artworks.bson'));
    assert.ok(written.equals(original));
    assert.equal(result.counts.artworks, 60);
  });

  it('--follow selects exactly the dependents: arrays, a localField other than _id, a cycle, strings not ObjectIds', async () => {
    const result = await extract(base('follow', '{"partner_id": ObjectId("000000000000000000000001")}', true));
    // partner 1 owns artworks 0, 4, 8, …, 56; the cycle adds 9 (via related 9000) and 13 (via 9001, from 9).
    const expectedArtworks = [...Array.from({length: 15}, (_v, k) => k * 4), 9, 13].sort((a, b) => a - b).map((i) => String(oid(1000 + i)));
    assert.deepEqual(ids(await setDocs(result.set, 'artworks')), expectedArtworks, 'artworks in backup order');
    assert.deepEqual(ids(await setDocs(result.set, 'sale_artworks')).length, expectedArtworks.length);
    assert.deepEqual(ids(await setDocs(result.set, 'shows')), [String(oid(7000)), String(oid(7002))]);
    assert.deepEqual(ids(await setDocs(result.set, 'notes')), [String(oid(8000)), String(oid(8002))]);
    assert.deepEqual(ids(await setDocs(result.set, 'related')), [String(oid(9000)), String(oid(9001))]);
    const set = await readRestoreSet(result.set);
    assert.equal(set.manifest.order[0], 'artworks', 'parents first');
    assert.deepEqual(set.manifest.collections.sale_artworks!.selectedBy, {relation: RELATIONS[0], level: 1});
    // Dependents are written byte for byte, as in the backup.
    const originalShows = await readFile(path.join(backup, 'db-host_27017', 'gravity', 'shows.bson'));
    for (const doc of await setDocs(result.set, 'shows')) assert.ok(originalShows.includes(doc));
  });

  it('the mongod engine returns the same documents as the stream engine', async () => {
    const queries = [
      '{"partner_id": ObjectId("000000000000000000000001")}',
      '{"n": {"$gte": 10, "$lt": 20}, "tags": "x"}',
      '{"big": NumberLong("100000000000")}',
      '{"tags": {"$size": 0}, "slug": /work-1/}',
    ];
    for (const [i, query] of queries.entries()) {
      for (const follow of [false, true]) {
        const stream = await extract(base(`s-${i}-${follow}`, query, follow));
        const scratch = await openScratch({scratchUri: mongo.uri});
        const viaMongod = await extract({...base(`m-${i}-${follow}`, query, follow), engine: 'mongod', createSelector: (spools, metadata) => MongoSelector.load(scratch, spools, metadata)});
        assert.deepEqual(viaMongod.counts, stream.counts, `${query} follow=${follow}`);
        for (const collection of stream.order) {
          const a = await readFile(path.join(stream.set, 'dump', 'gravity', `${collection}.bson`));
          const b = await readFile(path.join(viaMongod.set, 'dump', 'gravity', `${collection}.bson`));
          assert.ok(a.equals(b), `${collection} differs for ${query}`);
        }
      }
    }
  });

  it('an existing --out is refused unless --force, and a failed extract leaves nothing behind', async () => {
    const first = await extract(base('forced', '{}', false));
    await writeFile(path.join(first.set, 'notes.txt'), 'written by hand');
    await assert.rejects(extract(base('forced', '{"slug": "work-4"}', false)), (error: Error & {code?: string}) => error.code === 'SET_EXISTS' && /already exists/.test(error.message));
    assert.equal((await readRestoreSet(first.set)).hash, first.manifestHash, 'the refused extract left the set alone');
    assert.equal(existsSync(path.join(first.set, 'notes.txt')), true);

    // --force replaces the folder: the new selection only, nothing of the old one left.
    const forced = await extract({...base('forced', '{"slug": "work-4"}', false), force: true});
    assert.equal(forced.set, first.set);
    assert.deepEqual(forced.counts, {artworks: 1});
    const set = await readRestoreSet(forced.set);
    assert.equal(set.hash, forced.manifestHash);
    assert.equal(set.manifest.query.text, '{"slug": "work-4"}');
    assert.equal((await setDocs(forced.set, 'artworks')).length, 1);
    assert.equal(existsSync(path.join(first.set, 'notes.txt')), false, 'the old folder was replaced, not merged into');
    assert.deepEqual((await readdir(dir)).filter((n) => n.includes('forced')), ['forced'], 'no temporary folder left');

    await assert.rejects(extract({...base('broken', '{}', false), collection: 'nope'}), (error: Error & {code?: string}) => {
      assert.equal(error.code, 'UNKNOWN_COLLECTION');
      assert.match(error.message + String((error as {hint?: string}).hint), /artworks, notes, related, sale_artworks, shows/);
      return true;
    });
    const leftovers = (await readdir(dir)).filter((n) => n.includes('broken'));
    assert.deepEqual(leftovers, []);
  });

  it('relations --infer proposes the foreign keys the data holds', async () => {
    const relations = await inferRelations(backup, {sample: 1000});
    const found = relations.map((r) => `${r.from}->${r.to}.${r.foreignField}`);
    assert.ok(found.includes('artworks->sale_artworks.artwork_id'), found.join(' '));
    assert.ok(found.includes('artworks->shows.artwork_ids'), found.join(' '));
    assert.ok(found.includes('artworks->related.artwork_id'), found.join(' '));
  });

  it('through the CLI: --json result, progress off stdout, counts and manifest hash', async () => {
    const config = path.join(dir, 'gravity-restore.config.json');
    await writeFile(config, JSON.stringify({relations: RELATIONS}));
    const out = path.join(dir, 'cli-set');
    const result = await runCli(['extract', '--from', backup, '-c', 'artworks', '-q', '{"slug": "work-4"}', '--follow', '--out', out, '--json', '--config', config]);
    assert.equal(result.code, 0, result.stderr);
    const body = json<{set: string; counts: Record<string, number>; manifestHash: string}>(result);
    assert.deepEqual(body.counts, {artworks: 1, sale_artworks: 1, shows: 1, notes: 1, related: 0});
    assert.equal(body.manifestHash, (await readRestoreSet(out)).hash);
  });
});
