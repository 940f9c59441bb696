/**
 * A story of entries of every kind, decoded and replayed per document, against documents built by
 * python3-bson: a diff that re-orders fields, array truncation, integer-like keys, a delete and a
 * re-insert, a batched delete, a transaction across two collections, an aborted prepared
 * transaction, an image no-op, and an entry exactly at TIME (not applied: OPLOG.md §5 rule 7).
 * Then collection operations (OPLOG.md §3.3): drop, rename with and without dropTarget, a command
 * that cannot be followed.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {Decimal128, Long} from 'bson';

import {GravityError} from '../../src/errors.js';
import {decodeOperations, newDecodeStats} from '../../src/oplog/decode.js';
import {replayDocument} from '../../src/oplog/replay.js';
import type {DocumentOperation, Operation} from '../../src/oplog/types.js';
import {rawIdKey} from '../../src/target/bson-util.js';
import {
  D,
  LSID,
  LSID2,
  bytes,
  collect,
  commandEntry,
  inner,
  insertEntry,
  noPython,
  noopEntry,
  prevOpTime,
  pythonDocs,
  session,
  stream,
  updateEntry,
} from '../support/oplog-entries.js';

const ORDERS = 'shop.orders';
const INVOICES = 'shop.invoices';
const keyOf = (id: number) => rawIdKey(bytes(D(['_id', id])));

const py = pythonDocs(String.raw`
out['order1'] = S(('_id', 1), ('qty', 4), ('sub', S(('10', 8), ('2', -8))), ('price', Decimal128('9.90')), ('paidAt', datetime.datetime(2024, 3, 9, 16, 0, 0)))
out['order2'] = S(('_id', 2), ('tags', ['new']), ('by', 'restore'))
out['invoice1'] = S(('_id', 1), ('paid', True), ('total', Int64(990)))
`);

const base: Record<string, Buffer> = {
  [`${ORDERS} 1`]: bytes(D(['_id', 1], ['qty', 2], ['sub', D(['10', 8], ['2', -8])], ['price', Decimal128.fromString('9.90')])),
  [`${ORDERS} 2`]: bytes(D(['_id', 2], ['tags', ['a', 'b']], ['x', 1])),
  [`${ORDERS} 3`]: bytes(D(['_id', 3])),
  [`${INVOICES} 1`]: bytes(D(['_id', 1], ['paid', false], ['total', Long.fromNumber(990)])),
};

function story() {
  const diff = (ns: string, id: number, d: Map<string, unknown>, t: number, i: number) => updateEntry(ns, D(['_id', id]), D(['$v', 2], ['diff', d]), t, i);
  const prepare = commandEntry('admin.$cmd', D(['applyOps', [inner('u', ORDERS, D(['$v', 2], ['diff', D(['d', D(['sub', false])])]), D(['_id', 1]))]], ['prepare', true]), 105, 1, session(LSID2, 4));
  prepare.set(...prevOpTime(0, 0));
  const txn = commandEntry(
    'admin.$cmd',
    D(['applyOps', [inner('u', ORDERS, D(['$v', 2], ['diff', D(['u', D(['qty', 4])])]), D(['_id', 1])), inner('u', INVOICES, D(['$v', 2], ['diff', D(['u', D(['paid', true])])]), D(['_id', 1]))]]),
    104,
    1,
    session(LSID, 1),
  );
  txn.set(...prevOpTime(0, 0));
  return [
    noopEntry(ORDERS, D(['_id', 1], ['qty', 1000]), 100, 1),
    diff(ORDERS, 1, D(['u', D(['qty', 3])], ['i', D(['paidAt', new Date(Date.UTC(2024, 2, 9, 16))])]), 100, 2),
    diff(ORDERS, 2, D(['i', D(['x', 1], ['tags', ['a', 'b']])]), 101, 1),
    commandEntry('admin.$cmd', D(['applyOps', [inner('d', ORDERS, D(['_id', 3])), inner('d', ORDERS, D(['_id', 2]))]]), 102, 1),
    insertEntry(ORDERS, D(['_id', 2], ['tags', ['new', 'old']], ['by', 'restore']), 103, 1),
    txn,
    prepare,
    commandEntry('admin.$cmd', D(['abortTransaction', 1]), 105, 2, session(LSID2, 4)),
    diff(ORDERS, 2, D(['stags', D(['a', true], ['l', 1])]), 106, 1),
    diff(ORDERS, 1, D(['u', D(['qty', 99])]), 107, 0),
  ];
}

describe('replaying a story of entries to exact documents', {skip: noPython}, () => {
  it('each document at TIME = Timestamp(107, 0) is byte-identical to what python3-bson builds', async () => {
    const stats = newDecodeStats();
    const ops = await collect(decodeOperations(stream(story()), {until: {t: 107, i: 0}, stats}));
    const result = (ns: string, id: number) => replayDocument(ns, keyOf(id), base[`${ns} ${id}`] ?? null, ops);
    assert.deepEqual(result(ORDERS, 1).doc, py.order1);
    assert.deepEqual(result(ORDERS, 2).doc, py.order2);
    assert.equal(result(ORDERS, 3).doc, null);
    assert.deepEqual(result(INVOICES, 1).doc, py.invoice1);
    assert.equal(stats.noops, 1);
    assert.equal(stats.abortedTransactions, 1);
    assert.equal(stats.committedTransactions, 1);
  });

  it('history: each event with its time, kind, fields and transaction flag', async () => {
    const ops = await collect(decodeOperations(stream(story()), {until: {t: 107, i: 0}}));
    const {events} = replayDocument(ORDERS, keyOf(2), base[`${ORDERS} 2`]!, ops);
    assert.deepEqual(
      events.map((e) => [`${e.ts.t}:${e.ts.i}`, e.op, e.set, e.unset, e.transaction, e.outcome]),
      [
        ['101:1', 'update', [], [], false, 'applied'], // a pure re-order: no value changed
        ['102:1', 'delete', [], ['x', 'tags'], false, 'applied'], // fields in stored order, after the re-order
        ['103:1', 'insert', ['tags', 'by'], [], false, 'inserted'],
        ['106:1', 'update', ['tags'], [], false, 'applied'],
      ],
    );
    const first = replayDocument(ORDERS, keyOf(1), base[`${ORDERS} 1`]!, ops).events;
    assert.deepEqual(first.map((e) => [`${e.ts.t}:${e.ts.i}`, e.set, e.transaction]), [
      ['100:2', ['qty', 'paidAt'], false],
      ['104:1', ['qty'], true],
    ]);
  });
});

describe('replay across a dump\'s capture window (OPLOG.md §5 rules 1, 2 and 4; trap 5)', () => {
  const entries = [
    updateEntry(ORDERS, D(['_id', 1]), D(['$v', 2], ['diff', D(['sa', D(['u', D(['x', 2])])])]), 200, 1),
    updateEntry(ORDERS, D(['_id', 1]), D(['$v', 2], ['diff', D(['u', D(['a', 5])], ['i', D(['b', 1])])]), 200, 2),
    updateEntry(ORDERS, D(['_id', 2]), D(['$v', 2], ['diff', D(['u', D(['q', 1])])]), 200, 3),
    commandEntry('admin.$cmd', D(['applyOps', [inner('d', ORDERS, D(['_id', 2]))]]), 200, 4),
  ];
  // The dump read document 1 after the second entry (it already holds a: 5, b: 1) and missed
  // document 2, deleted before the dump reached it. Replay starts at the window's start.
  const dumped = bytes(D(['_id', 1], ['a', 5], ['b', 1]));

  it('idempotent mode converges to the state at the window\'s end, as mongod\'s own re-application does', async () => {
    const ops = await collect(decodeOperations(stream(entries)));
    const one = replayDocument(ORDERS, keyOf(1), dumped, ops, {mode: () => 'idempotent'});
    assert.deepEqual(one.doc, bytes(D(['_id', 1], ['a', 5], ['b', 1])));
    assert.deepEqual(one.events.map((e) => e.provisional), [['a'], []]);
    const two = replayDocument(ORDERS, keyOf(2), null, ops, {mode: () => 'idempotent'});
    assert.equal(two.doc, null);
    assert.deepEqual(two.events.map((e) => e.outcome), ['update-on-missing', 'delete-on-missing']);
  });

  it('strict mode refuses the entry that meets the later state, rather than guess', async () => {
    const ops = await collect(decodeOperations(stream(entries)));
    assert.throws(() => replayDocument(ORDERS, keyOf(1), dumped, ops), (e: unknown) => e instanceof GravityError && e.code === 'OPLOG_UNSUPPORTED' && /Timestamp\(200, 1\)/.test(e.message));
  });
});

describe('collection operations in a document\'s replay (OPLOG.md §3.3)', () => {
  const op = (kind: Operation['kind'], ns: string, t: number, extra: Partial<Operation> = {}): Operation =>
    ({kind, ns, ts: {t, i: 1}, wall: null, ui: null, transaction: false, fromMigrate: false, ...extra}) as Operation;
  const doc = bytes(D(['_id', 1], ['a', 1]));

  it('a drop deletes the document; a later insert into the re-created collection brings it back', async () => {
    const [insert] = (await collect(decodeOperations(stream([insertEntry(ORDERS, D(['_id', 1], ['b', 2]), 30, 1)])))) as DocumentOperation[];
    const r = replayDocument(ORDERS, keyOf(1), doc, [op('drop', ORDERS, 10), op('create', ORDERS, 20), insert!]);
    assert.deepEqual(r.doc, bytes(D(['_id', 1], ['b', 2])));
    assert.deepEqual(r.events.map((e) => e.op), ['drop', 'insert']);
  });

  it('dropDatabase deletes documents of every collection of that database only', () => {
    assert.equal(replayDocument(ORDERS, keyOf(1), doc, [op('dropDatabase', 'shop', 10)]).doc, null);
    assert.deepEqual(replayDocument(ORDERS, keyOf(1), doc, [op('dropDatabase', 'sho', 10)]).doc, doc);
  });

  it('a rename moves the document; its later operations are under the new namespace', async () => {
    const entries = [updateEntry('shop.orders_v2', D(['_id', 1]), D(['$v', 2], ['diff', D(['u', D(['a', 2])])]), 30, 1), updateEntry(ORDERS, D(['_id', 1]), D(['$v', 2], ['diff', D(['u', D(['a', 3])])]), 31, 1)];
    const updates = await collect(decodeOperations(stream(entries)));
    const r = replayDocument(ORDERS, keyOf(1), doc, [op('rename', ORDERS, 10, {to: 'shop.orders_v2', dropTarget: false}), ...updates]);
    assert.equal(r.ns, 'shop.orders_v2');
    assert.deepEqual(r.doc, bytes(D(['_id', 1], ['a', 2])));
  });

  it('a rename onto the document\'s collection with dropTarget deletes it (convertToCapped\'s last step)', () => {
    assert.equal(replayDocument(ORDERS, keyOf(1), doc, [op('rename', 'shop.tmp1', 10, {to: ORDERS, dropTarget: true})]).doc, null);
    assert.deepEqual(replayDocument(ORDERS, keyOf(1), doc, [op('rename', 'shop.tmp1', 10, {to: 'shop.other', dropTarget: true})]).doc, doc);
  });

  it('a command that rewrites the collection otherwise is refused, naming it, the namespace and the time', () => {
    assert.throws(
      () => replayDocument(ORDERS, keyOf(1), doc, [op('unsupported', ORDERS, 10, {command: 'emptycapped'})]),
      (e: unknown) => e instanceof GravityError && e.code === 'OPLOG_UNSUPPORTED' && /emptycapped on shop\.orders at Timestamp\(10, 1\)/.test(e.message),
    );
  });
});
