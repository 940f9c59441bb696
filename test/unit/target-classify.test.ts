import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, BSONRegExp, Binary, Decimal128, Double, EJSON, Int32, Long, ObjectId, Timestamp} from 'bson';
import type {Document} from 'bson';

import {docFromJson, docToJson, idFromJson, idKey, idKeyFromJson, idOf, idToJson} from '../../src/target/bson-util.js';
import {exactForm, toBytes} from '../../src/target/exact.js';
import {fieldDiff} from '../../src/target/diff.js';
import {classifyCollection, planHash, valueAtPath} from '../../src/target/plan.js';
import {batchesOf} from '../../src/target/push.js';
import {undoBatches} from '../../src/target/rollback.js';
import type {UndoItem} from '../../src/target/rollback.js';
import type {JournalRecord} from '../../src/restore-set/journal.js';

const raw = (d: Document) => Buffer.from(BSON.serialize(d));
const byId = (docs: Document[]) => new Map(docs.map((d) => [idKey(d._id), raw(d)] as [string, Uint8Array]));

describe('exact BSON round trips (what push writes must be what the backup holds)', () => {
  const doc = {
    _id: new ObjectId('6b012cc5e17df3ab4d41f63d'),
    i: new Int32(5),
    d: new Double(5),
    negZero: new Double(-0),
    big: Long.fromString('9007199254740993'),
    dec: Decimal128.fromString('1.10'),
    bin: new Binary(Buffer.from('ab'), 4),
    ts: new Timestamp({t: 1, i: 2}),
    re: new BSONRegExp('a.c', 'imx'),
    when: new Date('2026-11-18T14:00:00Z'),
    nested: {z: 1, a: [1, {b: 2.5}]},
  };
  it('the exact form serialises back to identical bytes', () => {
    assert.deepEqual(toBytes(exactForm(raw(doc)).doc), raw(doc));
  });
  it('docToJson → docFromJson (journal pre-images) gives identical bytes', () => {
    const withUuid = {...doc, bin: new Binary(Buffer.alloc(16, 7), 4)};
    assert.deepEqual(docFromJson(docToJson(raw(withUuid))), raw(withUuid));
  });
  it('Extended JSON cannot carry a subtype-4 binary that is not 16 bytes (why journals also keep base64 BSON)', () => {
    assert.throws(() => docFromJson(docToJson(raw(doc))), /UUID/);
  });
  it('ids keep their exact type in text form', () => {
    assert.equal(idToJson(idOf(raw({_id: Long.fromString('9007199254740993')}))), '{"$numberLong":"9007199254740993"}');
  });
});

describe('idKey', () => {
  it('matches the server: 5, NumberLong(5) and 5.0 are the same _id', () => {
    const keys = [new Int32(5), Long.fromNumber(5), new Double(5), 5].map(idKey);
    assert.equal(new Set(keys).size, 1);
    assert.notEqual(idKey(new Double(5.5)), idKey(new Int32(5)));
    assert.notEqual(idKey('5'), idKey(5));
  });
  it('distinguishes subdocument _ids by field order, like the server', () => {
    assert.notEqual(idKey({a: 1, b: 2}), idKey({b: 2, a: 1}));
    assert.equal(idKey({a: 1, b: 2}), idKey({a: new Int32(1), b: Long.fromNumber(2)}));
  });
  it('the text form keys the same as the value', () => {
    for (const id of [new ObjectId(), 'abc', 42, {x: [1, 'y']}, new Date(0), Long.fromString('9007199254740993')]) {
      assert.equal(idKeyFromJson(idToJson(id)), idKey(id));
    }
  });
  it('spells an ObjectId as canonical Extended JSON and reads it back, and a string that looks like one stays a string', () => {
    const oid = new ObjectId('5a0000000000000000000007');
    assert.equal(idToJson(oid), EJSON.stringify(oid, {relaxed: false}));
    assert.ok((idFromJson(idToJson(oid)) as ObjectId).equals(oid));
    const lookalike = '{"$oid":"5a0000000000000000000007"}';
    assert.equal(idFromJson(idToJson(lookalike)), lookalike);
    assert.notEqual(idKey(lookalike), idKey(oid));
    assert.ok((idFromJson('{"$oid":"5A0000000000000000000007"}') as ObjectId).equals(oid), 'upper-case hex is read by the general parser');
  });
});

describe('classifyCollection', () => {
  const oid = new ObjectId();
  const setDocs = [
    {_id: oid, title: 'missing'},
    {_id: 'same', title: 'unchanged', n: new Int32(1)},
    {_id: 3, title: 'backup', price: 10},
    {_id: {k: 1}, title: 'order', n: 1},
    {_id: 5, sku: 'A-1', title: 'natural key elsewhere'},
    {_id: 6, n: new Int32(1)},
  ];
  const target = [
    {_id: 'same', title: 'unchanged', n: new Int32(1)},
    {_id: 3, title: 'changed', price: 12, extra: true},
    {_id: {k: 1}, n: 1, title: 'order'},
    {_id: 6, n: new Double(1)},
  ];
  const holders = new Map([[idKey(5), {targetId: 99, key: {sku: 'A-1'}}]]);
  const result = classifyCollection('artworks', setDocs.map(raw), byId(target), holders);

  it('puts each document in exactly one class', () => {
    assert.deepEqual(result.counts, {insert: 1, same: 1, conflict: 3, keyMatch: 1, clash: 0, notExact: 0});
    assert.deepEqual(result.ids.insert, [idToJson(oid)]);
    assert.deepEqual(result.ids.same, ['"same"']);
    assert.deepEqual(result.ids.keyMatch, ['{"$numberInt":"5"}']);
  });

  it('compares bytes: a reordering of fields and a numeric type change are conflicts', () => {
    assert.deepEqual(result.ids.conflict, ['{"$numberInt":"3"}', '{"k":{"$numberInt":"1"}}', '{"$numberInt":"6"}']);
  });

  it('samples conflicts with a field-level diff', () => {
    const [first, second, third] = result.conflicts;
    assert.deepEqual(first?.fields, [
      {path: 'title', backup: 'backup', target: 'changed'},
      {path: 'price', backup: {$numberInt: '10'}, target: {$numberInt: '12'}},
      {path: 'extra', target: true},
    ]);
    assert.equal(second?.fields[0]?.path, '(field order)');
    assert.deepEqual(third?.fields, [{path: 'n', backup: {$numberInt: '1'}, target: {$numberDouble: '1.0'}}]);
  });

  it('keeps the digest of what the target held for each conflict', () => {
    assert.equal(Object.keys(result.digests).length, 3);
    assert.match(result.digests['{"$numberInt":"3"}'] ?? '', /^[0-9a-f]{64}$/);
  });

  it('reports where the natural key lives', () => {
    assert.deepEqual(result.keyMatches, [{collection: 'artworks', _id: {$numberInt: '5'}, targetId: {$numberInt: '99'}, key: {sku: 'A-1'}}]);
  });

  it('limits the conflict sample', () => {
    const few = classifyCollection('artworks', setDocs.map(raw), byId(target), holders, 1);
    assert.equal(few.conflicts.length, 1);
    assert.equal(few.counts.conflict, 3);
  });
});

describe('fieldDiff', () => {
  it('descends into subdocuments and names the dotted path', () => {
    const diff = fieldDiff(raw({_id: 1, a: {b: {c: 1, d: 2}}, arr: [1, 2]}), raw({_id: 1, a: {b: {c: 1, d: 3}}, arr: [2, 1]}));
    assert.deepEqual(diff.map((f) => f.path), ['a.b.d', 'arr']);
  });
  it('is empty for identical documents', () => {
    assert.deepEqual(fieldDiff(raw({_id: 1, a: 1}), raw({_id: 1, a: 1})), []);
  });
});

describe('planHash', () => {
  const base = {target: 'staging (x)', setHash: 'a'.repeat(64), ids: {c: {conflict: ['2'], keyMatch: [], clash: []}}, classes: {c: Buffer.from('ic').toString('base64')}, conflictDigests: {c: {'2': 'd1'}}};
  it('is the same for the same state and changes with it', () => {
    assert.equal(planHash(base), planHash(structuredClone(base)));
    assert.notEqual(planHash(base), planHash({...base, conflictDigests: {c: {'2': 'd2'}}}));
    assert.notEqual(planHash(base), planHash({...base, target: 'production (x)'}));
    assert.notEqual(planHash(base), planHash({...base, classes: {c: Buffer.from('sc').toString('base64')}}), 'an insert that became the same is another plan');
    assert.notEqual(planHash(base), planHash({...base, ids: {c: {conflict: [], keyMatch: ['2'], clash: []}}}));
  });
});

describe('push helpers', () => {
  it('batchesOf splits by count and by bytes', () => {
    const items = Array.from({length: 5}, (_, i) => ({raw: new Uint8Array(10), i}));
    assert.deepEqual(batchesOf(items, 2).map((b) => b.length), [2, 2, 1]);
    assert.deepEqual(batchesOf(items, 100, 25).map((b) => b.length), [2, 2, 1]);
    assert.deepEqual(batchesOf([{raw: new Uint8Array(50)}], 100, 25).map((b) => b.length), [1]);
  });
  it('valueAtPath reads dotted paths', () => {
    assert.equal(valueAtPath({a: {b: {c: 7}}}, 'a.b.c'), 7);
    assert.equal(valueAtPath({a: [1]}, 'a.0'), undefined);
  });
});

describe('undoBatches (what a rollback undoes, from a journal read as a stream)', () => {
  const collect = async (records: JournalRecord[], collection = 'c') => {
    const out: UndoItem[][] = [];
    for await (const batch of undoBatches(records, collection)) out.push(batch);
    return out;
  };
  it('includes confirmed and unconfirmed writes, but not inserts refused as duplicates', async () => {
    const batches = await collect([
      {type: 'intent', collection: 'c', db: 'g', batch: 1, insert: ['1', '2', '3'], insertSha256: ['d1', 'd2', 'd3']},
      {type: 'conflict', collection: 'c', db: 'g', ids: ['2'], reason: 'duplicate key'},
      {type: 'inserted', collection: 'c', db: 'g', batch: 1, ids: ['1']},
      {type: 'intent', collection: 'c', db: 'g', batch: 2, overwrite: [{id: '4', pre: '{}', preBson: '', preSha256: 'p', writtenSha256: 'w'}]},
    ]);
    assert.deepEqual(
      batches.map((b) => b.map((i) => [i.id, i.kind, i.confirmed, i.insertSha256 ?? null])),
      [
        [
          ['1', 'insert', true, 'd1'],
          ['3', 'insert', false, 'd3'],
        ],
        [['4', 'overwrite', false, null]],
      ],
      'batch 1 comes out when its completion record arrives; batch 2, never completed, at the end',
    );
  });
  it('matches completions to intents across batches written in parallel, and keeps to one collection', async () => {
    const batches = await collect([
      {type: 'intent', collection: 'c', db: 'g', batch: 1, insert: ['1']},
      {type: 'intent', collection: 'c', db: 'g', batch: 2, insert: ['2']},
      {type: 'intent', collection: 'other', db: 'g', batch: 3, insert: ['9']},
      {type: 'stored', collection: 'c', db: 'g', batch: 2, items: [{id: '2', sha256: 's'}], reason: 're-encoded', kind: 'inexact'},
      {type: 'inserted', collection: 'c', db: 'g', batch: 2, ids: ['2']},
      {type: 'inserted', collection: 'c', db: 'g', batch: 1, ids: []},
    ]);
    assert.deepEqual(
      batches.map((b) => b.map((i) => [i.id, i.confirmed, i.storedSha256 ?? null])),
      [[['2', true, 's']], [['1', false, null]]],
    );
  });
});
