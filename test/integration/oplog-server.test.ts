/**
 * The test server in replica-set mode writes `local.oplog.rs` in mongod's 6.0+ format, and clients
 * read it as they read a real member's oplog: the Node driver with filters on ts, ns, op and
 * o.applyOps, and pymongo (an independent client and BSON implementation). Each expected shape cites
 * its source in ../shared/OPLOG.md (which cites mongod's source) or the manual.
 */
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {existsSync} from 'node:fs';
import {after, before, describe, test} from 'node:test';

import {BSON, Binary, Int32, Long, MongoClient, Timestamp, type Db, type Document} from 'mongodb';

import {startTestMongoServer, type TestMongoServer} from '../support/mongo-server/index.js';

const DEBIAN_PYTHON = '/usr/bin/python3';
const M = (...e: Array<[string, unknown]>) => new Map(e);
const hex = (d: unknown): string => Buffer.from(BSON.serialize(d as Document)).toString('hex');

/** The raw bytes of an embedded document field, as stored (decoding to objects would reorder integer-like keys). */
function rawHex(raw: Buffer, name: string): string {
  for (const [, nameStart, nameLength, offset, length] of BSON.onDemand.parseToElements(raw)) {
    if (raw.toString('utf8', nameStart, nameStart + nameLength) === name) return raw.toString('hex', offset, offset + length);
  }
  throw new Error(`no field ${name}`);
}

let server: TestMongoServer;
let client: MongoClient;
let db: Db;

before(async () => {
  // No periodic no-ops here: the tests below count every entry a write produced.
  server = await startTestMongoServer({replSet: 'rs-test', periodicNoopIntervalSecs: 0});
  client = await new MongoClient(server.uri, {serverSelectionTimeoutMS: 5000}).connect();
  db = client.db('shop');
});

after(async () => {
  await client.close();
  await server.close();
});

const oplog = () => client.db('local').collection('oplog.rs');

/** Entries written since `since` (exclusive), raw and decoded with types kept. */
async function entriesAfter(since: Timestamp, filter: Document = {}): Promise<Array<{raw: Buffer; doc: Document}>> {
  const raws = (await oplog().find({ts: {$gt: since}, ...filter}, {raw: true}).toArray()) as unknown as Uint8Array[];
  return raws.map((r) => ({raw: Buffer.from(r), doc: BSON.deserialize(r, {promoteValues: false})}));
}

async function lastTs(): Promise<Timestamp> {
  const [last] = await oplog().find({}).sort({$natural: -1}).limit(1).toArray();
  return (last?.ts as Timestamp | undefined) ?? new Timestamp({t: 0, i: 0});
}

describe('test server in replica-set mode', () => {
  test('hello names a one-member replica set whose primary is this server', async () => {
    const hello = await client.db('admin').command({hello: 1});
    assert.equal(hello.setName, 'rs-test');
    assert.equal(hello.isWritablePrimary, true);
    const address = new URL(server.uri).host;
    assert.deepEqual(hello.hosts, [address]);
    assert.equal(hello.me, address);
    assert.equal(hello.primary, address);
  });

  test('insert, update, replacement and delete entries in mongod 6.0+ format', async () => {
    const since = await lastTs();
    const coll = db.collection('orders');
    await coll.insertOne(M(['_id', 1], ['x', 'foo'], ['y', 'bar'], ['z', 'baz'], ['by', M(['10', 8], ['2', -8], ['note', 'kept in place'])], ['arr', [1, 2, 3]]) as unknown as Document);
    await coll.updateOne({_id: 1} as Document, {$set: {y: 999, a: 'foo'}, $push: {arr: 4}} as Document);
    await coll.updateOne({_id: 1} as Document, [{$replaceWith: M(['_id', '$_id'], ['z', '$z'], ['y', '$y'], ['x', '$x'], ['by', '$by'], ['arr', '$arr'], ['a', '$a'])}]);
    await coll.updateOne({_id: 1} as Document, {$pop: {arr: 1}, $set: {'by.2': 7}} as Document);
    await coll.replaceOne({_id: 1} as Document, M(['q', 2]) as unknown as Document);
    await coll.deleteOne({_id: 1} as Document);
    const entries = await entriesAfter(since, {ns: {$in: ['shop.orders', 'shop.$cmd']}});
    assert.deepEqual(entries.map((e) => `${e.doc.op}`), ['c', 'i', 'u', 'u', 'u', 'u', 'd']);
    const [create, insert, , , , , del] = entries.map((e) => e.doc) as [Document, Document, Document, Document, Document, Document, Document];
    const raw = entries.map((e) => e.raw);

    // The driver retries writes by default, so each entry carries its session (OPLOG.md §1, §4):
    // lsid and txnNumber, then op, ns, ui, o, o2, stmtId, ts, t, v, wall, prevOpTime (oplog_entry.idl).
    assert.deepEqual(Object.keys(insert), ['lsid', 'txnNumber', 'op', 'ns', 'ui', 'o', 'o2', 'stmtId', 'ts', 't', 'v', 'wall', 'prevOpTime']);
    assert.deepEqual(Object.keys(del), ['lsid', 'txnNumber', 'op', 'ns', 'ui', 'o', 'stmtId', 'ts', 't', 'v', 'wall', 'prevOpTime']);
    assert.deepEqual(Object.keys(insert.lsid), ['id', 'uid']);
    assert.deepEqual(insert.prevOpTime, {ts: new Timestamp({t: 0, i: 0}), t: Long.fromNumber(-1)}, 'the first write of a txnNumber has a null prevOpTime');
    for (const e of entries) {
      assert.ok(e.doc.t instanceof Long && e.doc.v instanceof Long && e.doc.v.toNumber() === 2, 't and v are Int64, v is 2');
      assert.ok(e.doc.wall instanceof Date);
      assert.ok((e.doc.ui as Binary).sub_type === 4, 'ui is a UUID');
    }
    // A write that creates the collection logs `create` on <db>.$cmd first (OPLOG.md §3.3).
    assert.equal(create.ns, 'shop.$cmd');
    assert.equal(create.o.create, 'orders');
    assert.equal((insert.ui as Binary).toString('hex'), (create.ui as Binary).toString('hex'));
    // Inserts carry o2 {_id} (FCV 5.3+, OPLOG.md §1); the document's bytes are the stored bytes.
    assert.equal(rawHex(raw[1]!, 'o2'), hex({_id: new Int32(1)}));
    assert.equal(rawHex(raw[1]!, 'o'), hex(M(['_id', 1], ['x', 'foo'], ['y', 'bar'], ['z', 'baz'], ['by', M(['10', 8], ['2', -8], ['note', 'kept in place'])], ['arr', [1, 2, 3]])));
    // $v:2 diff from pre- and post-image (OPLOG.md §2.3 worked examples: `u` in place, `i` appended,
    // `s<name>` with `a: true` and `u<index>` for an appended array element).
    assert.equal(rawHex(raw[2]!, 'o'), hex(M(['$v', 2], ['diff', M(['u', M(['y', 999])], ['i', M(['a', 'foo'])], ['sarr', M(['a', true], ['u3', 4])])])));
    assert.equal(rawHex(raw[2]!, 'o2'), hex({_id: new Int32(1)}));
    // Re-ordering is deletes-by-reinsert: fields out of place are written in `i` (OPLOG.md §2.3, CALC).
    assert.equal(rawHex(raw[3]!, 'o'), hex(M(['$v', 2], ['diff', M(['i', M(['y', 999], ['x', 'foo'], ['by', M(['10', 8], ['2', -8], ['note', 'kept in place'])], ['arr', [1, 2, 3, 4]], ['a', 'foo'])])])));
    // An array that shrank: `l` (new length); an integer-like key updated in its sub-document.
    assert.equal(rawHex(raw[4]!, 'o'), hex(M(['$v', 2], ['diff', M(['sby', M(['u', M(['2', 7])])], ['sarr', M(['a', true], ['l', 3])])])));
    // A replacement logs the whole new document, _id first, with o2 {_id} (OPLOG.md §2.1).
    assert.equal(rawHex(raw[5]!, 'o'), hex(M(['_id', 1], ['q', 2])));
    assert.equal(rawHex(raw[5]!, 'o2'), hex({_id: new Int32(1)}));
    assert.equal(rawHex(raw[6]!, 'o'), hex({_id: new Int32(1)}));

    // ts strictly increasing: t seconds, i the counter (OPLOG.md §1).
    const all = await entriesAfter(since);
    for (let k = 1; k < all.length; k++) {
      const a = all[k - 1]!.doc.ts as Timestamp;
      const b = all[k]!.doc.ts as Timestamp;
      assert.ok(a.t < b.t || (a.t === b.t && a.i < b.i), `ts ${a.t},${a.i} then ${b.t},${b.i}`);
    }
  });

  test('without retryable writes an entry is op, ns, ui, o, o2, ts, t, v, wall; insertMany chains stmtId and prevOpTime when retryable', async () => {
    const plain = await new MongoClient(server.uri, {retryWrites: false}).connect();
    try {
      const since = await lastTs();
      await plain.db('shop').collection('plain').insertOne({_id: 1} as Document);
      const [, insert] = (await entriesAfter(since)).map((e) => e.doc);
      // OPLOG.md §1 examples (6.0+ insert).
      assert.deepEqual(Object.keys(insert!), ['op', 'ns', 'ui', 'o', 'o2', 'ts', 't', 'v', 'wall']);
    } finally {
      await plain.close();
    }
    const since = await lastTs();
    await db.collection('chained').insertMany([{_id: 1}, {_id: 2}] as unknown as Document[]);
    const [, first, second] = (await entriesAfter(since)).map((e) => e.doc);
    assert.deepEqual([(first!.stmtId as Int32).value, (second!.stmtId as Int32).value], [0, 1]);
    assert.deepEqual(second!.prevOpTime.ts, first!.ts, 'prevOpTime links the statements of one retryable write');
    assert.equal((second!.txnNumber as Long).toString(), (first!.txnNumber as Long).toString());
  });

  test('insertMany logs one i per document; deleteMany one applyOps of d entries (6.1+ batched deletes)', async () => {
    const since = await lastTs();
    const coll = db.collection('items');
    await coll.insertMany([{_id: 1}, {_id: 2}, {_id: 3}] as unknown as Document[]);
    await coll.deleteMany({_id: {$gte: 2}} as Document);
    const entries = (await entriesAfter(since)).map((e) => e.doc);
    assert.deepEqual(entries.map((e) => e.op), ['c', 'i', 'i', 'i', 'c']);
    const batch = entries[4]!;
    // OPLOG.md §3.1: {op: "c", ns: "admin.$cmd", o: {applyOps: [...]}}, no lsid; inner ops without ts.
    assert.equal(batch.ns, 'admin.$cmd');
    assert.deepEqual(Object.keys(batch.o), ['applyOps']);
    const inner = batch.o.applyOps as Document[];
    assert.deepEqual(inner.map((op) => Object.keys(op)), [['op', 'ns', 'ui', 'o'], ['op', 'ns', 'ui', 'o']]);
    assert.deepEqual(inner.map((op) => [op.op, op.ns, (op.o._id as Int32).value]), [['d', 'shop.items', 2], ['d', 'shop.items', 3]]);
    assert.equal(batch.lsid, undefined);
  });

  test('drop and re-create: drop on <db>.$cmd, and the new collection has a new ui', async () => {
    const since = await lastTs();
    const coll = db.collection('again');
    await coll.insertOne({_id: 1} as Document);
    await coll.drop();
    await coll.insertOne({_id: 1} as Document);
    const entries = (await entriesAfter(since)).map((e) => e.doc);
    assert.deepEqual(entries.map((e) => `${e.op}:${Object.keys(e.o)[0]}`), ['c:create', 'i:_id', 'c:drop', 'c:create', 'i:_id']);
    assert.equal(entries[2]!.ns, 'shop.$cmd');
    assert.equal((entries[2]!.ui as Binary).toString('hex'), (entries[0]!.ui as Binary).toString('hex'));
    assert.notEqual((entries[3]!.ui as Binary).toString('hex'), (entries[0]!.ui as Binary).toString('hex'), 'a re-created collection gets a new UUID (OPLOG.md §1 ui)');
    assert.equal((entries[4]!.ui as Binary).toString('hex'), (entries[3]!.ui as Binary).toString('hex'));
  });

  test('the oplog is read with filters on ts, ns, op and o.applyOps, in batches with getMore', async () => {
    const since = await lastTs();
    const coll = db.collection('many');
    await coll.insertMany(Array.from({length: 150}, (_, i) => ({_id: i, n: i})) as unknown as Document[]);
    await coll.updateMany({n: {$lt: 10}} as Document, {$inc: {n: 1000}} as Document);
    await coll.deleteMany({n: {$gte: 140, $lt: 1000}} as Document);
    const cursor = oplog().find({ts: {$gt: since}, ns: 'shop.many', op: 'i'}, {batchSize: 20});
    let count = 0;
    for await (const e of cursor) {
      assert.equal(e.op, 'i');
      count++;
    }
    assert.equal(count, 150);
    assert.equal(await oplog().countDocuments({ts: {$gt: since}, ns: 'shop.many', op: 'u'}), 10);
    // The filter the product uses for a document hidden inside applyOps (OPLOG.md §8 (d)).
    const hidden = await oplog().find({ts: {$gt: since}, op: 'c', 'o.applyOps': {$elemMatch: {ns: 'shop.many', 'o._id': 145}}}).toArray();
    assert.equal(hidden.length, 1);
    assert.equal((hidden[0]!.o.applyOps as Document[]).length, 10);
    const ranged = await oplog().find({ts: {$gt: since, $lte: (await lastTs())}}).sort({$natural: 1}).toArray();
    assert.equal(ranged.length, 1 + 150 + 10 + 1);
  });

  test("the filter a live oplog read sends ($or of ns/op, applyOps $elemMatch, $exists, o.to) selects what it should", async () => {
    const since = await lastTs();
    const coll = db.collection('live');
    await coll.insertMany([{_id: 1}, {_id: 2}, {_id: 3}] as unknown as Document[]);
    await coll.updateOne({_id: 1} as Document, {$set: {x: 1}} as Document);
    await coll.deleteMany({_id: {$gte: 2}} as Document);
    await db.collection('other').insertOne({_id: 1} as Document);
    await coll.rename('live2');
    // OPLOG.md §8 (d): CRUD of the namespace, commands of its database, writes hidden in applyOps.
    const filter = {
      ts: {$gt: since},
      $or: [
        {ns: {$in: ['shop.live']}, op: {$in: ['i', 'u', 'd']}},
        {op: 'c', ns: {$in: ['shop.$cmd']}},
        {op: 'c', 'o.applyOps': {$elemMatch: {ns: {$in: ['shop.live']}}}},
        {op: 'c', 'o.commitTransaction': {$exists: true}},
        {op: 'c', 'o.to': {$in: ['shop.live']}},
      ],
    };
    const got = await oplog().find(filter, {batchSize: 2}).sort({$natural: 1}).toArray();
    assert.deepEqual(
      got.map((e) => `${e.op}:${e.ns}:${Object.keys(e.o)[0]}`),
      ['c:shop.$cmd:create', 'i:shop.live:_id', 'i:shop.live:_id', 'i:shop.live:_id', 'u:shop.live:$v', 'c:admin.$cmd:applyOps', 'c:shop.$cmd:create', 'c:shop.$cmd:renameCollection'],
    );
    const rename = got[got.length - 1]!;
    assert.deepEqual([rename.o.renameCollection, rename.o.to], ['shop.live', 'shop.live2']);
  });

  test('no-op entries: "initiating set" first, then "periodic noop" when nothing was written for the interval', async () => {
    const quiet = await startTestMongoServer({replSet: 'rs-quiet', periodicNoopIntervalSecs: 1});
    const c = await new MongoClient(quiet.uri).connect();
    try {
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const entries = await c.db('local').collection('oplog.rs').find({}).toArray();
      // mongodb/mongo src/mongo/db/repl/noop_writer.cpp: {op: "n", ns: "", o: {msg: "periodic noop"}}.
      assert.deepEqual(entries[0]!.o, {msg: 'initiating set'});
      assert.ok(entries.length >= 2, `${entries.length} entries after 2.5 s idle`);
      for (const e of entries.slice(1)) assert.deepEqual([e.op, e.ns, e.o], ['n', '', {msg: 'periodic noop'}]);
    } finally {
      await c.close();
      await quiet.close();
    }
  });

  test('pymongo reads the oplog as raw BSON, in ts order, with the same bytes', async (t) => {
    if (!existsSync(DEBIAN_PYTHON)) {
      t.skip(`${DEBIAN_PYTHON} not found: install Debian's python3-pymongo to run this check`);
      return;
    }
    const script = [
      'import sys',
      'try:',
      '    from pymongo import MongoClient',
      '    from bson.raw_bson import RawBSONDocument',
      'except ImportError:',
      '    sys.exit(3)',
      'from bson.codec_options import CodecOptions',
      'c = MongoClient(sys.argv[1], serverSelectionTimeoutMS=5000)',
      "o = c.local.get_collection('oplog.rs', codec_options=CodecOptions(document_class=RawBSONDocument))",
      "docs = list(o.find({'ns': 'shop.orders'}))",
      "ts = [d['ts'] for d in docs]",
      'assert ts == sorted(ts), "ts order"',
      "print(','.join(d.raw.hex() for d in docs))",
    ].join('\n');
    const run = await new Promise<{status: number | null; stdout: string; stderr: string}>((resolve) => {
      execFile(DEBIAN_PYTHON, ['-c', script, server.uri], {encoding: 'utf8', timeout: 30_000}, (err, stdout, stderr) => {
        resolve({status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr});
      });
    });
    if (run.status === 3) {
      t.skip('pymongo is not installed for Debian python3');
      return;
    }
    assert.equal(run.status, 0, run.stderr);
    const viaNode = ((await oplog().find({ns: 'shop.orders'}, {raw: true}).toArray()) as unknown as Uint8Array[]).map((b) => Buffer.from(b).toString('hex'));
    assert.ok(viaNode.length >= 6);
    assert.equal(run.stdout.trim(), viaNode.join(','));
  });

  test('retryable writes are accepted; multi-document transactions are refused, not ignored', async () => {
    const coll = db.collection('retry');
    const r = await coll.insertOne({_id: 1} as Document);
    assert.equal(r.acknowledged, true);
    const session = client.startSession();
    try {
      session.startTransaction();
      await assert.rejects(coll.insertOne({_id: 2} as Document, {session}), (e: unknown) => (e as {code?: number}).code === 115);
    } finally {
      await session.abortTransaction().catch(() => undefined);
      await session.endSession();
    }
  });
});
