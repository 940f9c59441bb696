/**
 * Rollback deletes documents in grouped statements: each must still prove, on the server and
 * atomically with the delete, that every document it removes is the version read just before. A
 * document changed in between (a field, a field's type at the same value, field order, a field
 * added) is left, whatever else its statement deletes.
 */
import assert from 'node:assert/strict';
import {after, before, describe, it} from 'node:test';

import {BSON, Double, Int32, Long, ObjectId} from 'bson';
import type {Document} from 'bson';
import {MongoClient} from 'mongodb';

import {startMongo} from '../support/mongo-backend.js';
import type {MongoBackend} from '../support/mongo-backend.js';
import {deleteStatements} from '../../src/target/rollback.js';

let backend: MongoBackend;
let client: MongoClient;
let counter = 0;

before(async () => {
  backend = await startMongo({label: 'target-rollback-group'});
  client = await new MongoClient(backend.uri).connect();
});
after(async () => {
  await client?.close();
  await backend?.stop();
});

const M = (entries: Array<[string, unknown]>): Map<string, unknown> => new Map(entries);

describe('grouped compare-and-delete', () => {
  it('deletes only the documents that are still the version read, in groups and alone', async () => {
    const coll = client.db(`gr_group_${process.pid}_${++counter}`).collection<Document>('items');
    const versions = Array.from({length: 10}, (_v, i) =>
      M([['_id', new ObjectId(`6560f00d00000000000000${String(i).padStart(2, '0')}`)], ['n', new Int32(i)], ['name', `item ${i}`], ['tags', M([['b', 1], ['a', 2]])]]),
    );
    await coll.insertMany(versions as unknown as Document[]);
    const read = versions.map((v) => Buffer.from(BSON.serialize(v)));
    // Changed after the read, before the delete: each change keeps `_id`.
    const changed = new Map<number, Map<string, unknown>>([
      [1, M([['_id', versions[1]!.get('_id')], ['n', new Int32(1)], ['name', 'renamed'], ['tags', M([['b', 1], ['a', 2]])]])],
      // Same value, other type and size: equal under aggregation equality, told apart by $bsonSize.
      [3, M([['_id', versions[3]!.get('_id')], ['n', Long.fromNumber(3)], ['name', 'item 3'], ['tags', M([['b', 1], ['a', 2]])]])],
      // Same value, other type, same size (a double for an int64 would be; an int32 to a double is not): here order.
      [5, M([['_id', versions[5]!.get('_id')], ['n', new Int32(5)], ['name', 'item 5'], ['tags', M([['a', 2], ['b', 1]])]])],
      [7, M([['_id', versions[7]!.get('_id')], ['n', new Int32(7)], ['name', 'item 7'], ['tags', M([['b', 1], ['a', 2]])], ['extra', new Double(1)]])],
    ]);
    for (const [i, doc] of changed) await coll.replaceOne({_id: versions[i]!.get('_id') as ObjectId}, doc as unknown as Document);
    for (const groupDocs of [4, 32]) {
      const ops = deleteStatements(read.map((now, i) => ({id: versions[i]!.get('_id'), now})), groupDocs);
      assert.ok(ops.some((op) => 'deleteMany' in op), 'documents are deleted in groups');
      const res = await coll.bulkWrite(ops, {ordered: false});
      assert.equal(res.deletedCount, groupDocs === 4 ? 6 : 0, 'the second pass finds nothing left to delete');
    }
    const left = (await coll.find({}, {raw: true}).toArray()) as unknown as Uint8Array[];
    assert.deepEqual(
      left.map((raw) => Buffer.from(raw).toString('hex')).sort(),
      [...changed.values()].map((doc) => Buffer.from(BSON.serialize(doc)).toString('hex')).sort(),
      'every changed document is left as it is, every unchanged one is gone',
    );
  });
});
