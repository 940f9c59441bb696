/**
 * The scratch engine answers a query the way the backed-up collection would: with its default
 * collation. A collection created with `{locale: "en", strength: 2}` compares strings without
 * case, so `{name: "ada"}` also matches "ADA" there.
 * https://www.mongodb.com/docs/manual/reference/collation/#collation-document (strength 2: base
 * characters and diacritics, not case) and
 * https://www.mongodb.com/docs/manual/reference/method/db.createCollection/ (a collection's default
 * collation applies to its queries).
 */
import assert from 'node:assert/strict';
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON} from 'bson';

import {extract} from '../../src/extract/extract.js';
import {MongoSelector, openScratch} from '../../src/extract/scratch.js';
import {splitDocuments} from '../../src/dump/split.js';
import {parseQuery} from '../../src/query/parse.js';
import {startMongo, type MongoBackend} from '../support/mongo-backend.js';

const M = (entries: Array<[string, unknown]>): Map<string, unknown> => new Map(entries);

describe('scratch engine and the collection collation', () => {
  let dir: string;
  let mongo: MongoBackend;
  const docs = [
    M([['_id', 1], ['name', 'ADA']]),
    M([['_id', 2], ['name', 'ada']]),
    M([['_id', 3], ['name', 'Bob']]),
    M([['_id', M([['b', 1], ['1', 2]])], ['name', 'Ada'], ['by_year', M([['2021', 5], ['10', 1]])]]),
  ].map((d) => Buffer.from(BSON.serialize(d)));

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'gr-collation-'));
    const folder = path.join(dir, 'backup', 'gravity');
    await mkdir(folder, {recursive: true});
    await writeFile(path.join(folder, 'people.bson'), Buffer.concat(docs));
    await writeFile(
      path.join(folder, 'people.metadata.json'),
      JSON.stringify({
        options: {collation: {locale: 'en', strength: {$numberInt: '2'}}},
        indexes: [{v: {$numberInt: '2'}, key: {_id: {$numberInt: '1'}}, name: '_id_'}],
        collectionName: 'people',
        type: 'collection',
      }),
    );
    mongo = await startMongo({label: 'extract collation'});
  });
  after(async () => {
    await mongo.stop();
    await rm(dir, {recursive: true, force: true});
  });

  it('matches case-insensitively as the collection does, and writes the matches byte for byte', async () => {
    const scratch = await openScratch({scratchUri: mongo.uri});
    const query = '{"name": "ada"}';
    const result = await extract({
      source: {input: path.join(dir, 'backup'), backup: null, location: path.join(dir, 'backup'), takenAt: null, objects: []},
      collection: 'people',
      queryText: query,
      filter: parseQuery(query),
      follow: false,
      relations: [],
      out: path.join(dir, 'set'),
      engine: 'mongod',
      toolVersion: 'test',
      createSelector: (spools, metadata) => MongoSelector.load(scratch, spools, metadata),
    });
    assert.equal(result.counts.people, 3, 'ADA, ada and Ada; not Bob');
    const written = splitDocuments(await readFile(path.join(result.set, 'dump', 'gravity', 'people.bson')));
    assert.deepEqual(written.map((d) => d.toString('hex')), [docs[0], docs[1], docs[3]].map((d) => d!.toString('hex')), 'backup order, exact bytes (the embedded _id kept its field order)');
  });
});
