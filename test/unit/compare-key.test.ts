import assert from 'node:assert/strict';
import {it} from 'node:test';

import {BSON, Decimal128, Double, Int32, Long, ObjectId} from 'bson';

import {docKey} from '../../src/extract/compare.js';
import {idKey} from '../../src/target/bson-util.js';
import {exactId} from '../../src/target/exact.js';

const raw = (doc: Map<string, unknown>) => Buffer.from(BSON.serialize(doc));

it('docKey of two documents is equal exactly when the idKeys of their exact _ids are (ObjectIds read from the bytes)', () => {
  const ids: unknown[] = [
    new ObjectId('57d1e4a2cd530e65f6000001'),
    new ObjectId('57d1e4a2cd530e65f6000002'),
    new ObjectId('ffffffffffffffffffffffff'),
    '57d1e4a2cd530e65f6000001',
    'a string',
    new Int32(5),
    new Double(5),
    Long.fromNumber(5),
    Decimal128.fromString('5.00'),
    new Int32(6),
    new Map<string, unknown>([['b', 1], ['1', 2]]),
    new Map<string, unknown>([['1', 2], ['b', 1]]),
    [new ObjectId('57d1e4a2cd530e65f6000001')],
  ];
  // Each _id first (the mongodump layout, byte shortcut) and not first (the exact form).
  const docs = ids.flatMap((id) => [raw(new Map<string, unknown>([['_id', id], ['x', 1]])), raw(new Map<string, unknown>([['x', 1], ['_id', id]]))]);
  for (const a of docs) {
    for (const b of docs) {
      assert.equal(docKey(a) === docKey(b), idKey(exactId(a)) === idKey(exactId(b)), `${String(exactId(a))} vs ${String(exactId(b))}`);
    }
  }
  // A field named _idx holding an ObjectId is not the _id.
  const tricky = raw(new Map<string, unknown>([['_idx', new ObjectId('57d1e4a2cd530e65f6000001')], ['_id', 'real']]));
  assert.equal(docKey(tricky), docKey(raw(new Map<string, unknown>([['_id', 'real']]))));
  assert.notEqual(docKey(tricky), docKey(docs[0]!));
});
