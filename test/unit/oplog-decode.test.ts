/**
 * Oplog entries, hand-written in mongod's format, decoded into operations in apply order. Each test
 * names the OPLOG.md section and trap (§10) it covers and the upstream file cited there:
 * IDL = mongodb/mongo `src/mongo/db/repl/oplog_entry.idl`; MT = mongodb/mongo-tools
 * `common/txn/meta.go`, `mongorestore/oplog.go` and their testdata; PBM = percona-backup-mongodb
 * `pbm/oplog/restore.go`; JS-DOCKEY = the mongod jstest on document keys in oplog entries.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {Binary, Double, Long, ObjectId, UUID} from 'bson';

import {GravityError} from '../../src/errors.js';
import {classifyUpdate, decodeOperationBatches, decodeOperations, newDecodeStats, OplogDecoder, type DecodeStats} from '../../src/oplog/decode.js';
import {rawIdKey} from '../../src/target/bson-util.js';
import type {CollectionOperation, DocumentOperation, Operation} from '../../src/oplog/types.js';
import {
  D,
  LSID,
  LSID2,
  UI,
  UI_HEX,
  bytes,
  collect,
  commandEntry,
  deleteEntry,
  inner,
  insertEntry,
  noopEntry,
  prevOpTime,
  raw,
  session,
  stream,
  ts,
  updateEntry,
  type Doc,
} from '../support/oplog-entries.js';

const NS = 'shop.orders';
const OTHER = 'shop.audit';
const onlyShop = (ns: string) => ns === NS || ns === 'shop.invoices';

async function decode(entries: Doc[], options: {namespaces?: (ns: string) => boolean; until?: {t: number; i: number}} = {}): Promise<{ops: Operation[]; stats: DecodeStats}> {
  const stats = newDecodeStats();
  const ops = await collect(decodeOperations(stream(entries), {...options, stats}));
  return {ops, stats};
}

const docOps = (ops: Operation[]) => ops as DocumentOperation[];
const summary = (ops: Operation[]) => ops.map((o) => [o.kind, o.ns, ...('idKey' in o ? [o.idKey] : []), `@${o.ts.t}:${o.ts.i}`, ...(o.transaction ? ['txn'] : [])].join(' '));
const oid = (n: number) => new ObjectId(`65f0c0ffee0000000000${n.toString(16).padStart(4, '0')}`);
const key = (n: number) => `{"$oid":"${oid(n).toHexString()}"}`;

describe('CRUD entries (OPLOG.md §1)', () => {
  it('an insert: the document, its _id, ui, wall and ts', async () => {
    const doc = D(['_id', oid(1)], ['qty', 2], ['sku', 'A-1']);
    const {ops} = await decode([insertEntry(NS, doc, 1710000000, 3)]);
    assert.equal(ops.length, 1);
    const op = ops[0] as DocumentOperation;
    assert.equal(op.kind, 'insert');
    assert.equal(op.ns, NS);
    assert.deepEqual(op.ts, {t: 1710000000, i: 3});
    assert.deepEqual(op.wall, new Date(1710000000123));
    assert.equal(op.ui, UI_HEX);
    assert.equal(op.transaction, false);
    assert.equal(op.fromMigrate, false);
    assert.deepEqual(op.o, bytes(doc));
    assert.equal(op.id.type, 0x07);
    assert.deepEqual(op.id.bytes, Buffer.from(oid(1).id));
    assert.equal(op.idKey, rawIdKey(bytes(doc)));
  });

  it('trap 9: the _id is taken by name from o2 / the delete key, where shard key fields come first (JS-DOCKEY)', async () => {
    const shardKey = D(['region', 'eu'], ['_id', 5]);
    const {ops} = await decode([
      updateEntry(NS, shardKey, D(['$v', 2], ['diff', D(['u', D(['qty', 3])])]), 1710000001, 1),
      deleteEntry(NS, shardKey, 1710000002, 1),
    ]);
    for (const op of docOps(ops)) {
      assert.equal(op.id.type, 0x10);
      assert.equal(op.id.bytes.readInt32LE(0), 5);
      assert.equal(op.idKey, rawIdKey(bytes(D(['_id', 5]))));
    }
    // The same _id as NumberLong(5) or 5.0 is the same document, as the _id index sees it.
    const asLong = await decode([deleteEntry(NS, D(['_id', Long.fromNumber(5)]), 1710000003, 1), deleteEntry(NS, D(['_id', new Double(5)]), 1710000003, 2)]);
    assert.deepEqual(docOps(asLong.ops).map((o) => o.idKey), [ops[0] && (ops[0] as DocumentOperation).idKey, (ops[0] as DocumentOperation).idKey]);
  });

  it('§2.1: an update is a $v:2 delta, a $v:1 or $-led modifier update, or a replacement ($v compared as a number)', () => {
    assert.equal(classifyUpdate(bytes(D(['$v', 2], ['diff', D()]))), 'update');
    assert.equal(classifyUpdate(bytes(D(['$v', Long.fromNumber(2)], ['diff', D()]))), 'update');
    assert.equal(classifyUpdate(bytes(D(['$v', new Double(2)], ['diff', D()]))), 'update');
    assert.equal(classifyUpdate(bytes(D(['$v', 1], ['$set', D(['a', 1])]))), 'update');
    assert.equal(classifyUpdate(bytes(D(['$set', D(['a', 1])]))), 'update');
    assert.equal(classifyUpdate(bytes(D(['_id', 1], ['a', 1]))), 'replace');
    assert.equal(classifyUpdate(bytes(D(['a', 1]))), 'replace');
    // Newest servers: a document with _id is a replacement even when a field starts with $ (5.0+ allows such names).
    assert.equal(classifyUpdate(bytes(D(['_id', 1], ['$price', 1]))), 'replace');
  });

  it('trap 11: 4.4 entries with h: NumberLong(0) and 8.0 entries without it decode alike; unknown fields are ignored (IDL)', async () => {
    const old = updateEntry(NS, D(['_id', 1]), D(['$v', 1], ['$set', D(['a', 1])]), 1600000000, 1);
    old.set('h', Long.fromNumber(0));
    const newer = updateEntry(NS, D(['_id', 1]), D(['$v', 1], ['$set', D(['a', 1])]), 1600000000, 1);
    newer.set('m', D(['h', Long.fromNumber(12345)], ['size', 10]));
    newer.set('checkExistenceForDiffInsert', true);
    const a = await decode([old]);
    const b = await decode([newer]);
    assert.deepEqual(a.ops, b.ops);
  });

  it('fromMigrate writes are flagged (IDL: hidden from change streams)', async () => {
    const e = insertEntry(NS, D(['_id', 1]), 1710000000, 1);
    e.set('fromMigrate', true);
    const {ops} = await decode([e]);
    assert.equal(ops[0]!.fromMigrate, true);
  });

  it('only namespaces that matter are decoded', async () => {
    const {ops} = await decode([insertEntry(OTHER, D(['_id', 1]), 1, 1), insertEntry(NS, D(['_id', 2]), 1, 2)], {namespaces: onlyShop});
    assert.deepEqual(summary(ops), ['insert shop.orders n:2e0 @1:2']);
  });
});

describe('no-ops (OPLOG.md §4, trap 2)', () => {
  it('findAndModify image no-ops carry the user namespace and a whole document, and are skipped', async () => {
    const image = noopEntry(NS, D(['_id', 1], ['qty', 9]), 1710000000, 1);
    const idle = noopEntry('', D(['msg', 'periodic noop']), 1710000010, 1);
    const update = updateEntry(NS, D(['_id', 1]), D(['$v', 2], ['diff', D(['u', D(['qty', 9])])]), 1710000000, 2);
    update.set('preImageOpTime', D(['ts', ts(1710000000, 1)], ['t', Long.fromNumber(4)]));
    const {ops, stats} = await decode([image, update, idle]);
    assert.deepEqual(summary(ops), ['update shop.orders n:1e0 @1710000000:2']);
    assert.equal(stats.noops, 2);
  });
});

describe('applyOps outside transactions (OPLOG.md §3.1, trap 1)', () => {
  it('6.1+ batched deletes: every inner delete, in order, at the outer ts and wall (MT testdata "applyops not transaction")', async () => {
    const batch = commandEntry('admin.$cmd', D(['applyOps', [inner('d', NS, D(['_id', oid(1)])), inner('d', OTHER, D(['_id', oid(2)])), inner('d', NS, D(['_id', oid(3)]))]]), 1710000100, 4);
    const {ops} = await decode([batch], {namespaces: onlyShop});
    assert.deepEqual(summary(ops), [`delete shop.orders ${key(1)} @1710000100:4`, `delete shop.orders ${key(3)} @1710000100:4`]);
    assert.deepEqual(ops[0]!.wall, new Date(1710000100123));
  });

  it('8.0 vectored inserts (multiOpType: 1) inside a retryable session apply at once, not as a transaction (IDL, MT meta.go, vectored_insert.json)', async () => {
    const e = commandEntry('admin.$cmd', D(['applyOps', [inner('i', NS, D(['_id', 1], ['a', 1]), D(['_id', 1])), inner('i', NS, D(['_id', 2], ['a', 2]), D(['_id', 2]))]]), 1710000200, 1, session(LSID, 3));
    e.set('prevOpTime', D(['ts', ts(0, 0)], ['t', Long.fromNumber(-1)]));
    e.set('multiOpType', 1);
    const {ops, stats} = await decode([e]);
    assert.deepEqual(summary(ops), ['insert shop.orders n:1e0 @1710000200:1', 'insert shop.orders n:2e0 @1710000200:1']);
    assert.equal(stats.committedTransactions, 0);
  });

  it('nested commands inside a plain applyOps are decoded too', async () => {
    const e = commandEntry('admin.$cmd', D(['applyOps', [inner('c', 'shop.$cmd', D(['create', 'orders'])), inner('i', NS, D(['_id', 1]))]]), 5, 1);
    const {ops} = await decode([e]);
    assert.deepEqual(summary(ops), ['create shop.orders @5:1', 'insert shop.orders n:1e0 @5:1']);
  });
});

describe('transactions (OPLOG.md §3.1, trap 10; MT common/txn/meta.go and testdata, PBM restore.go)', () => {
  const txnOps = (n: number) => [inner('i', NS, D(['_id', n]), D(['_id', n])), inner('u', 'shop.invoices', D(['$v', 2], ['diff', D(['u', D(['paid', true])])]), D(['_id', n]))];

  it('an unprepared transaction in one entry applies at that entry, across two collections', async () => {
    const e = commandEntry('admin.$cmd', D(['applyOps', txnOps(1)]), 100, 1, session(LSID, 1));
    e.set(...prevOpTime(0, 0));
    const {ops, stats} = await decode([e]);
    assert.deepEqual(summary(ops), ['insert shop.orders n:1e0 @100:1 txn', 'update shop.invoices n:1e0 @100:1 txn']);
    assert.equal(stats.committedTransactions, 1);
  });

  it('a 4.0 transaction (no prevOpTime) applies at its entry', async () => {
    const e = commandEntry('admin.$cmd', D(['applyOps', txnOps(2)]), 100, 2, session(LSID, 2));
    const {ops} = await decode([e]);
    assert.deepEqual(summary(ops), ['insert shop.orders n:2e0 @100:2 txn', 'update shop.invoices n:2e0 @100:2 txn']);
  });

  it('a large unprepared transaction: partialTxn entries wait for the last one, and all apply at its ts', async () => {
    const first = commandEntry('admin.$cmd', D(['applyOps', [inner('i', NS, D(['_id', 10]), D(['_id', 10]))]], ['partialTxn', true]), 200, 1, session(LSID, 5));
    first.set(...prevOpTime(0, 0));
    const between = insertEntry(NS, D(['_id', 99]), 200, 2);
    const last = commandEntry('admin.$cmd', D(['applyOps', [inner('d', NS, D(['_id', 11]))]], ['count', Long.fromNumber(2)]), 200, 3, session(LSID, 5));
    last.set(...prevOpTime(200, 1));
    const {ops} = await decode([first, between, last]);
    assert.deepEqual(summary(ops), ['insert shop.orders n:99e0 @200:2', 'insert shop.orders n:1e1 @200:3 txn', 'delete shop.orders n:11e0 @200:3 txn']);
  });

  it('a prepared transaction applies at its commitTransaction entry, not at commitTimestamp; others interleave', async () => {
    const prepare = commandEntry('admin.$cmd', D(['applyOps', txnOps(3)], ['prepare', true]), 300, 10, session(LSID, 7));
    prepare.set(...prevOpTime(0, 0));
    const other = commandEntry('admin.$cmd', D(['applyOps', txnOps(4)]), 300, 11, session(LSID2, 1));
    const commit = commandEntry('admin.$cmd', D(['commitTransaction', 1], ['commitTimestamp', ts(300, 11)]), 300, 20, session(LSID, 7));
    commit.set(...prevOpTime(300, 10));
    const {ops} = await decode([prepare, other, commit]);
    assert.deepEqual(summary(ops), [
      'insert shop.orders n:4e0 @300:11 txn',
      'update shop.invoices n:4e0 @300:11 txn',
      'insert shop.orders n:3e0 @300:20 txn',
      'update shop.invoices n:3e0 @300:20 txn',
    ]);
  });

  it('an aborted prepared transaction is dropped', async () => {
    const prepare = commandEntry('admin.$cmd', D(['applyOps', txnOps(5)], ['prepare', true]), 400, 1, session(LSID, 9));
    const abort = commandEntry('admin.$cmd', D(['abortTransaction', 1]), 400, 2, session(LSID, 9));
    const {ops, stats} = await decode([prepare, abort]);
    assert.deepEqual(ops, []);
    assert.equal(stats.abortedTransactions, 1);
  });

  it('a transaction committed at or after `until` is not applied and is counted open', async () => {
    const prepare = commandEntry('admin.$cmd', D(['applyOps', txnOps(6)], ['prepare', true]), 500, 1, session(LSID, 11));
    const commit = commandEntry('admin.$cmd', D(['commitTransaction', 1], ['commitTimestamp', ts(500, 1)]), 500, 5, session(LSID, 11));
    const {ops, stats} = await decode([prepare, commit], {until: {t: 500, i: 5}});
    assert.deepEqual(ops, []);
    assert.equal(stats.openTransactions, 1);
  });

  it('a commit whose operations came before the stream began is reported, not guessed', async () => {
    const commit = commandEntry('admin.$cmd', D(['commitTransaction', 1], ['commitTimestamp', ts(600, 1)]), 600, 2, session(LSID, 12));
    const {ops, stats} = await decode([commit]);
    assert.deepEqual(ops, []);
    assert.deepEqual(stats.commitsWithoutOperations, [{t: 600, i: 2}]);
  });

  it('only operations of namespaces that matter are buffered', async () => {
    const e = commandEntry('admin.$cmd', D(['applyOps', [inner('i', OTHER, D(['_id', 1])), inner('i', NS, D(['_id', 2]))]]), 700, 1, session(LSID, 13));
    const {ops} = await decode([e], {namespaces: onlyShop});
    assert.deepEqual(summary(ops), ['insert shop.orders n:2e0 @700:1 txn']);
  });
});

describe('commands (OPLOG.md §3.2, §3.3, trap 14)', () => {
  const coll = (ops: Operation[]) => ops as CollectionOperation[];

  it('drop, dropDatabase, create: collection operations', async () => {
    const {ops} = await decode([
      commandEntry('shop.$cmd', D(['create', 'orders'], ['idIndex', D(['v', 2], ['key', D(['_id', 1])], ['name', '_id_'])]), 1, 1),
      commandEntry('shop.$cmd', D(['drop', 'orders']), 1, 2),
      commandEntry('shop.$cmd', D(['dropDatabase', 1]), 1, 3),
    ]);
    assert.deepEqual(summary(ops), ['create shop.orders @1:1', 'drop shop.orders @1:2', 'dropDatabase shop @1:3']);
  });

  it('renameCollection names full namespaces; dropTarget is the dropped UUID when one was replaced (jira SERVER-34290, PBM restore.go)', async () => {
    const {ops} = await decode(
      [
        commandEntry('shop.$cmd', D(['renameCollection', 'shop.tmp123'], ['to', NS], ['stayTemp', false], ['dropTarget', new UUID('11111111-2222-4333-8444-555555555555').toBinary()]), 2, 1),
        commandEntry('shop.$cmd', D(['renameCollection', NS], ['to', 'shop.orders_old'], ['stayTemp', false]), 2, 2),
        commandEntry('shop.$cmd', D(['renameCollection', 'shop.x'], ['to', 'shop.y']), 2, 3),
      ],
      {namespaces: onlyShop},
    );
    assert.deepEqual(
      coll(ops).map((o) => [o.kind, o.ns, o.to, o.dropTarget]),
      [
        ['rename', 'shop.tmp123', NS, true],
        ['rename', NS, 'shop.orders_old', false],
      ],
    );
  });

  it('index builds, collMod and dbCheck change no document and are skipped with counts', async () => {
    const {ops, stats} = await decode([
      commandEntry('shop.$cmd', D(['createIndexes', 'orders'], ['v', 2], ['key', D(['a', 1])], ['name', 'a_1']), 3, 1),
      commandEntry('shop.$cmd', D(['startIndexBuild', 'orders'], ['indexBuildUUID', new Binary(Buffer.alloc(16), 4)]), 3, 2),
      commandEntry('shop.$cmd', D(['commitIndexBuild', 'orders']), 3, 3),
      commandEntry('shop.$cmd', D(['collMod', 'orders'], ['validationLevel', 'off']), 3, 4),
      commandEntry('shop.$cmd', D(['dropIndexes', 'orders'], ['index', 'a_1']), 3, 5),
    ]);
    assert.deepEqual(ops, []);
    assert.deepEqual(stats.skippedCommands, {createIndexes: 1, startIndexBuild: 1, commitIndexBuild: 1, collMod: 1, dropIndexes: 1});
  });

  it('convertToCapped, emptycapped, importCollection on a collection that matters are unsupported; elsewhere skipped', async () => {
    const {ops, stats} = await decode(
      [
        commandEntry('shop.$cmd', D(['convertToCapped', 'orders'], ['size', 1e6]), 4, 1),
        commandEntry('shop.$cmd', D(['emptycapped', 'orders']), 4, 2),
        commandEntry('shop.$cmd', D(['importCollection', 'orders']), 4, 3),
        commandEntry('shop.$cmd', D(['cloneCollectionAsCapped', 'audit'], ['toCollection', 'invoices'], ['size', 1e6]), 4, 4),
        commandEntry('shop.$cmd', D(['convertToCapped', 'audit'], ['size', 1e6]), 4, 5),
      ],
      {namespaces: onlyShop},
    );
    assert.deepEqual(
      coll(ops).map((o) => [o.kind, o.ns, o.command]),
      [
        ['unsupported', NS, 'convertToCapped'],
        ['unsupported', NS, 'emptycapped'],
        ['unsupported', NS, 'importCollection'],
        ['unsupported', 'shop.invoices', 'cloneCollectionAsCapped'],
      ],
    );
    assert.equal(stats.skippedCommands.convertToCapped, 1);
  });

  it('an unknown command naming a collection that matters is unsupported', async () => {
    const {ops} = await decode([commandEntry('shop.$cmd', D(['reshapeEverything', 'orders']), 5, 1)], {namespaces: onlyShop});
    assert.deepEqual(coll(ops).map((o) => [o.kind, o.ns, o.command]), [['unsupported', NS, 'reshapeEverything']]);
  });
});

describe('unknown operation types and boundaries', () => {
  it('xi, xd, km and others are skipped and counted (IDL-7x; MT mongorestore/oplog.go ignoredOps)', async () => {
    const odd = (op: string, i: number) => D(['op', op], ['ns', NS], ['o', D(['k', 1])], ['ts', ts(9, i)], ['t', Long.fromNumber(1)], ['v', Long.fromNumber(2)], ['wall', new Date(9000)]);
    const {ops, stats} = await decode([odd('xi', 1), odd('xd', 2), odd('km', 3), odd('km', 4)]);
    assert.deepEqual(ops, []);
    assert.deepEqual(stats.unknownOps, {xi: 1, xd: 1, km: 2});
  });

  it('trap 17: `until` is exclusive — an entry exactly at TIME is not applied, and reading stops there', async () => {
    let read = 0;
    async function* counted() {
      for await (const e of stream([insertEntry(NS, D(['_id', 1]), 10, 1), insertEntry(NS, D(['_id', 2]), 10, 2), insertEntry(NS, D(['_id', 3]), 11, 0)])) {
        read++;
        yield e;
      }
    }
    const ops = await collect(decodeOperations(counted(), {until: {t: 10, i: 2}}));
    assert.deepEqual(summary(ops), ['insert shop.orders n:1e0 @10:1']);
    assert.equal(read, 2);
  });

  it('batches hold the same operations in the same order, and stop at `until` too', async () => {
    const entries = Array.from({length: 10}, (_, n) => insertEntry(NS, D(['_id', n]), 20, n + 1));
    const one = await collect(decodeOperations(stream(entries), {until: {t: 20, i: 8}}));
    const batches = await collect(decodeOperationBatches(stream(entries), {until: {t: 20, i: 8}}, 3));
    assert.deepEqual(batches.map((b) => b.length), [3, 3, 1]);
    assert.deepEqual(batches.flat(), one);
  });

  it('an entry that is not BSON, or an update without o2, is OPLOG_CORRUPT naming its ts', () => {
    const bad = raw(insertEntry(NS, D(['_id', 1]), 12, 3));
    bad.raw.writeInt32LE(bad.raw.length + 10, 0);
    assert.throws(() => new OplogDecoder().decode(bad), (e: unknown) => e instanceof GravityError && e.code === 'OPLOG_CORRUPT' && /Timestamp\(12, 3\)/.test(e.message));
    const noKey = D(['op', 'u'], ['ns', NS], ['ui', UI], ['o', D(['$v', 2], ['diff', D()])], ['ts', ts(12, 4)], ['t', Long.fromNumber(1)], ['v', Long.fromNumber(2)], ['wall', new Date(0)]);
    assert.throws(() => new OplogDecoder().decode(raw(noKey)), /Timestamp\(12, 4\).*document key "o2"/);
  });
});
