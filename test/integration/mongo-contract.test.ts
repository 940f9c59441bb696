/**
 * One set of assertions about MongoDB behaviour this project relies on, run against every
 * backend available: always the in-repo test server, plus real mongod (or MONGODB_TEST_URI) when
 * startMongo() finds one. The test server is held to what mongod does, not the other way round.
 */
import {after, before, describe, test} from 'node:test';
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import net from 'node:net';
import {chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {
  BSON,
  BSONRegExp,
  BSONSymbol,
  Binary,
  Code,
  Decimal128,
  Double,
  Int32,
  Long,
  MaxKey,
  MinKey,
  MongoClient,
  ObjectId,
  Timestamp,
  UUID,
  type Db,
  type Document,
  type UpdateFilter,
  MongoServerError,
  MongoBulkWriteError,
} from 'mongodb';
import {describeBackend, findLocalMongod, startMongo, type MongoBackend} from '../support/mongo-backend.js';
import {startTestMongoServer} from '../support/mongo-server/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PYMONGO_SMOKE = path.join(HERE, '..', 'support', 'pymongo-smoke.py');
const DEBIAN_PYTHON = '/usr/bin/python3';

/** Test documents use numbers and strings as _id; without this the driver pins _id to ObjectId. */
type Loose = {_id?: number | string | ObjectId | Double; [key: string]: unknown};

/** Update documents on fields the loose schema cannot name (numeric $inc, arrays). */
function ops(update: Document): UpdateFilter<Loose> {
  return update as UpdateFilter<Loose>;
}

interface Backend {
  name: string;
  uri: string;
  stop(): Promise<void>;
}

async function availableBackends(): Promise<Backend[]> {
  const server = await startTestMongoServer();
  const list: Backend[] = [{name: describeBackend('test-server'), uri: server.uri, stop: () => server.close()}];
  const other: MongoBackend = await startMongo({label: 'mongo-contract'});
  if (other.kind === 'test-server') {
    console.log(`mongo-contract: real MongoDB not available (${other.detail})`);
    await other.stop();
  } else {
    list.push({name: `${describeBackend(other.kind)} [${other.detail}]`, uri: other.uri, stop: () => other.stop()});
  }
  console.log(`mongo-contract: backends: ${list.map((b) => b.name).join('; ')}`);
  return list;
}

const backends = await availableBackends();

/** Types of a stored document's fields, read from its raw bytes. */
function bsonTypes(raw: Uint8Array): Record<string, string> {
  const doc = BSON.deserialize(raw, {promoteValues: false});
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc)) {
    const t = (v as {_bsontype?: string} | null)?._bsontype;
    out[k] = t ?? (v === null ? 'null' : typeof v);
  }
  return out;
}

function everyType(): Document {
  return {
    _id: new ObjectId(),
    double: new Double(1.5),
    doubleWhole: new Double(2),
    negZero: new Double(-0),
    nan: Number.NaN,
    inf: Number.POSITIVE_INFINITY,
    string: 'Guernica – ゲルニカ',
    object: {z: 1, a: {deep: [1, {x: null}]}},
    emptyObject: {},
    array: [1, 'two', new Int32(3), [4]],
    emptyArray: [],
    binGeneric: new Binary(Buffer.from([0, 1, 2, 255]), 0),
    uuid: new UUID(),
    binUser: new Binary(Buffer.from('user-defined'), 0x80),
    objectId: new ObjectId(),
    boolTrue: true,
    boolFalse: false,
    datePre1970: new Date(Date.UTC(1937, 3, 26, 16, 30)),
    dateNow: new Date(),
    null: null,
    regex: new BSONRegExp('^gu.*a$', 'imsx'),
    code: new Code('function () { return 1; }'),
    symbol: new BSONSymbol('sym'),
    int32: new Int32(-42),
    int32Max: new Int32(2147483647),
    timestamp: new Timestamp({t: 1700000000, i: 7}),
    int64: Long.fromString('9007199254740993'),
    int64Small: Long.fromNumber(5),
    decimal: Decimal128.fromString('1234567890.123456789012345678901234'),
    decimalNeg: Decimal128.fromString('-0.00'),
    minKey: new MinKey(),
    maxKey: new MaxKey(),
    'key.with.dots': 1,
    'ключ': 'unicode key',
  };
}

/** A MongoDB server's reply to one raw OP_MSG, or `closed` when it dropped the connection instead. */
interface RawExchange {
  reply?: Document;
  closed: boolean;
}

/**
 * OP_MSG bytes (https://www.mongodb.com/docs/manual/reference/mongodb-wire-protocol/#op_msg) with a
 * body and optionally one document sequence: sizes the driver would refuse before sending.
 */
function opMsg(body: Document, sequence?: {id: string; docs: Buffer[]}): Buffer {
  const parts: Buffer[] = [Buffer.alloc(4), Buffer.of(0), Buffer.from(BSON.serialize(body))];
  if (sequence) {
    const id = Buffer.from(`${sequence.id}\0`, 'utf8');
    const size = Buffer.alloc(4);
    size.writeInt32LE(4 + id.length + sequence.docs.reduce((n, d) => n + d.length, 0), 0);
    parts.push(Buffer.of(1), size, id, ...sequence.docs);
  }
  return withHeader(Buffer.concat(parts));
}

function withHeader(payload: Buffer, claimedLength = 16 + payload.length): Buffer {
  const header = Buffer.alloc(16);
  header.writeInt32LE(claimedLength, 0);
  header.writeInt32LE(7, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(2013, 12);
  return Buffer.concat([header, payload]);
}

/** Host and port of a single-host URI without credentials; undefined when raw sockets cannot use it. */
function rawTarget(uri: string): {host: string; port: number} | undefined {
  try {
    const u = new URL(uri);
    if (u.username || u.protocol !== 'mongodb:' || u.search.includes('tls=true') || u.search.includes('ssl=true')) return undefined;
    return {host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 27017)};
  } catch {
    return undefined;
  }
}

function exchange(target: {host: string; port: number}, message: Buffer): Promise<RawExchange> {
  return new Promise((resolve) => {
    const socket = net.connect(target);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (r: RawExchange): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({closed: false}), 20_000);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      const all = Buffer.concat(chunks);
      if (all.length >= 4 && all.length >= all.readInt32LE(0)) {
        finish({reply: BSON.deserialize(all.subarray(21, all.readInt32LE(0))), closed: false});
      }
    });
    socket.on('close', () => finish({closed: true}));
    socket.on('error', () => finish({closed: true}));
    socket.write(message);
  });
}

/** A document `{_id, pad: 'xxx…'}` of exactly `size` bytes. */
function docOfSize(id: string, size: number): Buffer {
  const overhead = BSON.calculateObjectSize({_id: id, pad: ''});
  return Buffer.from(BSON.serialize({_id: id, pad: 'x'.repeat(size - overhead)}));
}

/** The command error a promise fails with: code, codeName and message as the server sent them. */
async function serverError(p: Promise<unknown>): Promise<{code: unknown; codeName: unknown; message: string; errInfo?: Document; keyValue?: Document; keyPattern?: Document}> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof MongoServerError, `expected a server error, got ${String(e)}`);
    return {code: e.code, codeName: e.codeName, message: e.message, errInfo: e.errInfo as Document | undefined, keyValue: e.keyValue as Document | undefined, keyPattern: e.keyPattern as Document | undefined};
  }
  assert.fail('expected the server to refuse');
}

function ordered(entries: Array<[string, unknown]>): Map<string, unknown> {
  return new Map(entries);
}

for (const backend of backends) {
  describe(`MongoDB contract on ${backend.name}`, () => {
    let client: MongoClient;
    let db: Db;
    const dbName = `gr_contract_${process.pid}_${Math.floor(Math.random() * 1e6)}`;

    before(async () => {
      client = new MongoClient(backend.uri, {serverSelectionTimeoutMS: 5000, monitorCommands: true});
      await client.connect();
      db = client.db(dbName);
    });

    after(async () => {
      await db.dropDatabase().catch(() => undefined);
      await client.close();
      await backend.stop();
    });

    test('handshake: a writable standalone the driver accepts', async () => {
      const hello = await db.admin().command({hello: 1});
      assert.equal(hello.isWritablePrimary, true);
      assert.ok(hello.maxWireVersion >= 9, `maxWireVersion ${hello.maxWireVersion}`);
      assert.equal(hello.setName, undefined);
      assert.equal((await db.command({ping: 1})).ok, 1);
      const info = await db.admin().command({buildInfo: 1});
      assert.match(String(info.version), /^\d+\.\d+/);
    });

    test('insert/find round trip is byte-identical for every BSON type', async () => {
      const coll = db.collection<Loose>('types');
      const doc = everyType();
      await coll.insertOne(doc);
      const [raw] = (await coll.find({_id: doc._id}, {raw: true}).toArray()) as unknown as Buffer[];
      assert.ok(raw, 'document not found');
      assert.deepEqual(Buffer.from(raw), Buffer.from(BSON.serialize(doc)));
      // The same through documents inline in the command body rather than a document sequence.
      const inline = {...everyType(), _id: 'inline'};
      const res = await db.command({insert: 'types', documents: [inline]});
      assert.equal(res.n, 1);
      const [rawInline] = (await coll.find({_id: 'inline'}, {raw: true}).toArray()) as unknown as Buffer[];
      assert.deepEqual(Buffer.from(rawInline!), Buffer.from(BSON.serialize(inline)));
    });

    test('$set replaces a field where it stands and appends a new one; $unset removes; other fields keep their bytes', async () => {
      // https://www.mongodb.com/docs/manual/reference/operator/update/set/ ("If the field does not exist,
      // $set will add a new field"; documents keep their field order on update:
      // https://www.mongodb.com/docs/manual/core/document/#document-field-order)
      // https://www.mongodb.com/docs/manual/reference/operator/update/unset/
      const M = (e: Array<[string, unknown]>) => new Map(e);
      const coll = db.collection('set_in_place');
      await coll.insertOne(M([['_id', 1], ['a', null], ['by_year', M([['2021', new Int32(5)], ['10', new Int32(1)]])], ['z', 'last']]) as unknown as Document);
      await coll.updateOne({_id: 1} as Document, {$set: {a: 'repaired', 'sub.x': M([['2', 'b'], ['1', 'a']])}, $unset: {z: ''}} as Document);
      const raw = Buffer.from((await coll.find({_id: 1} as Document, {raw: true}).toArray())[0] as unknown as Uint8Array);
      const expected = Buffer.from(BSON.serialize(M([['_id', 1], ['a', 'repaired'], ['by_year', M([['2021', new Int32(5)], ['10', new Int32(1)]])], ['sub', M([['x', M([['2', 'b'], ['1', 'a']])]])]])));
      assert.equal(raw.toString('hex'), expected.toString('hex'));
    });

    test('_id is stored first: moved when sent later, generated when missing', async () => {
      const coll = db.collection<Loose>('idfirst');
      const id = new ObjectId();
      await coll.insertOne({b: 1, a: 2, _id: id});
      const [moved] = (await coll.find({_id: id}, {raw: true}).toArray()) as unknown as Buffer[];
      assert.deepEqual(Buffer.from(moved!), Buffer.from(BSON.serialize({_id: id, b: 1, a: 2})));
      await coll.insertOne({marker: 'server-id', z: 1}, {forceServerObjectId: true});
      const [generated] = (await coll.find({marker: 'server-id'}, {raw: true}).toArray()) as unknown as Buffer[];
      const parsed = BSON.deserialize(generated!);
      assert.deepEqual(Object.keys(parsed), ['_id', 'marker', 'z']);
      assert.ok(parsed._id instanceof ObjectId);
    });

    test('duplicate _id: ordered insert stops, unordered goes on; mongod error shape', async () => {
      const coll = db.collection<Loose>('dups');
      await assert.rejects(coll.insertMany([{_id: 1}, {_id: 2}, {_id: 1}, {_id: 3}]), (e: unknown) => {
        assert.ok(e instanceof MongoBulkWriteError);
        assert.equal(e.code, 11000);
        assert.equal(e.insertedCount, 2);
        const errs = e.writeErrors as unknown as Array<{index: number; code: number; errmsg: string}>;
        const list = Array.isArray(errs) ? errs : [errs];
        assert.equal(list.length, 1);
        assert.equal(list[0]!.index, 2);
        assert.equal(list[0]!.code, 11000);
        assert.match(list[0]!.errmsg, new RegExp(`^E11000 duplicate key error collection: ${dbName}\\.dups index: _id_ dup key: \\{ _id: 1 \\}`));
        return true;
      });
      assert.equal(await coll.countDocuments(), 2);
      await assert.rejects(coll.insertMany([{_id: 3}, {_id: 1}, {_id: 4}, {_id: 2}], {ordered: false}), (e: unknown) => {
        assert.ok(e instanceof MongoBulkWriteError);
        assert.equal(e.insertedCount, 2);
        const errs = e.writeErrors as unknown as Array<{index: number}>;
        assert.deepEqual(errs.map((w) => w.index), [1, 3]);
        return true;
      });
      assert.deepEqual((await coll.find().sort({_id: 1}).toArray()).map((d) => d._id), [1, 2, 3, 4]);
      await assert.rejects(coll.insertOne({_id: new Double(3)}), (e: unknown) => e instanceof MongoServerError && e.code === 11000);
    });

    test('unique indexes are enforced on insert, update and index build', async () => {
      const coll = db.collection<Loose>('people');
      assert.equal(await coll.createIndex({email: 1}, {unique: true}), 'email_1');
      await coll.insertMany([{_id: 1, email: 'a@x'}, {_id: 2, email: 'b@x'}]);
      await assert.rejects(coll.insertOne({_id: 3, email: 'a@x'}), (e: unknown) => {
        assert.ok(e instanceof MongoServerError);
        assert.equal(e.code, 11000);
        assert.match(e.message, /index: email_1 dup key: \{ email: "a@x" \}/);
        assert.deepEqual(e.keyValue, {email: 'a@x'});
        return true;
      });
      await assert.rejects(coll.updateOne({_id: 2}, {$set: {email: 'a@x'}}), (e: unknown) => e instanceof MongoServerError && e.code === 11000);
      await coll.updateOne({_id: 2}, {$set: {email: 'c@x'}});
      await coll.insertOne({_id: 3, email: 'b@x'});
      await coll.createIndex({a: 1, b: 1}, {unique: true, sparse: true, name: 'a_b'});
      await coll.updateOne({_id: 1}, {$set: {a: 1, b: 1}});
      await coll.updateOne({_id: 2}, {$set: {a: 1, b: 2}});
      await assert.rejects(coll.updateOne({_id: 3}, {$set: {a: 1, b: 1}}), (e: unknown) => e instanceof MongoServerError && e.code === 11000);
      await coll.insertMany([{_id: 10, n: 1, email: 'n10'}, {_id: 11, n: 1, email: 'n11'}]);
      await assert.rejects(coll.createIndex({n: 1}, {unique: true}), (e: unknown) => e instanceof MongoServerError && e.code === 11000);
      await coll.deleteOne({_id: 1});
      await coll.insertOne({_id: 12, email: 'a@x'});
    });

    test('update operators keep field order and BSON types; upsert builds from the filter', async () => {
      const coll = db.collection<Loose>('upd');
      await coll.insertOne({_id: 1, a: 1, long: Long.fromNumber(10), dbl: new Double(2), i: new Int32(2147483647), keep: Decimal128.fromString('1.10'), arr: [{k: 1, v: 1}, {k: 2, v: 2}], z: 'last'});
      const r = await coll.updateOne({_id: 1}, ops({$set: {a: 'changed', added: true}, $inc: {long: 5, dbl: 1, i: 1}, $unset: {z: ''}, $push: {tags: 'x'}}));
      assert.equal(r.matchedCount, 1);
      assert.equal(r.modifiedCount, 1);
      await coll.updateOne({_id: 1, 'arr.k': 2}, {$set: {'arr.$.v': 20}});
      await coll.updateOne({_id: 1}, {$set: {'arr.$[e].w': true}}, {arrayFilters: [{'e.k': 1}]});
      await coll.updateOne({_id: 1}, ops({$max: {a2: 5}, $min: {a3: 1}, $addToSet: {tags: {$each: ['x', 'y']}}, $rename: {added: 'renamed'}}));
      const [raw] = (await coll.find({_id: 1}, {raw: true}).toArray()) as unknown as Buffer[];
      const doc = BSON.deserialize(raw!);
      assert.deepEqual(Object.keys(doc).slice(0, 7), ['_id', 'a', 'long', 'dbl', 'i', 'keep', 'arr']);
      assert.equal(doc.a, 'changed');
      assert.deepEqual(doc.arr, [{k: 1, v: 1, w: true}, {k: 2, v: 20}]);
      assert.deepEqual(doc.tags, ['x', 'y']);
      assert.equal(doc.renamed, true);
      assert.equal(doc.added, undefined);
      assert.equal(doc.z, undefined);
      const types = bsonTypes(raw!);
      assert.equal(types.long, 'Long');
      assert.equal(types.dbl, 'Double');
      assert.equal(types.i, 'Long', 'int32 overflow on $inc widens to int64');
      assert.equal(types.keep, 'Decimal128');
      assert.equal(BSON.deserialize(raw!, {promoteValues: false}).keep.toString(), '1.10');

      const noop = await coll.updateOne({_id: 1}, {$set: {a: 'changed'}});
      assert.equal(noop.matchedCount, 1);
      assert.equal(noop.modifiedCount, 0);

      const up = await coll.updateOne({code: 'u1', n: {$gt: 3}}, {$set: {v: 1}, $setOnInsert: {created: true}}, {upsert: true});
      assert.equal(up.upsertedCount, 1);
      const created = await coll.findOne({_id: up.upsertedId!});
      // One update creates its new fields in field-name order, whatever operator names them
      // (https://www.mongodb.com/docs/manual/reference/operator/update/#behavior: "update operators
      // process document fields with string-based names in lexicographic order").
      assert.deepEqual(Object.keys(created!), ['_id', 'code', 'created', 'v']);
      const again = await coll.updateOne({code: 'u1'}, {$set: {v: 2}, $setOnInsert: {created: false}}, {upsert: true});
      assert.equal(again.upsertedCount, 0);
      assert.equal((await coll.findOne({code: 'u1'}))!.created, true);
      const upId = await coll.updateOne({_id: 'given'}, {$set: {v: 3}}, {upsert: true});
      assert.equal(upId.upsertedId, 'given');

      await coll.insertMany([{_id: 'm1', g: 1}, {_id: 'm2', g: 1}, {_id: 'm3', g: 2}]);
      const many = await coll.updateMany({g: 1}, ops({$inc: {n: 1}}));
      assert.deepEqual([many.matchedCount, many.modifiedCount], [2, 2]);
      const piped = await coll.updateOne({_id: 'm3'}, [{$set: {double: {$multiply: ['$g', 2]}}}]);
      assert.equal(piped.modifiedCount, 1);
      assert.equal((await coll.findOne({_id: 'm3'}))!.double, 4);
    });

    test('update operators refuse what mongod refuses, with its error codes', async () => {
      // Codes: https://www.mongodb.com/docs/manual/reference/error-codes/ (2 BadValue, 14 TypeMismatch,
      // 28 PathNotViable, 40 ConflictingUpdateOperators).
      const coll = db.collection<Loose>('upd_errors');
      await coll.insertOne({_id: 1, nul: null, str: 'x', n: 1, scalar: 5, arr: [1, 2], doc: {k: 1}});
      const refused = async (update: Document | Document[]) => (await serverError(coll.updateOne({_id: 1}, update as UpdateFilter<Loose>))).code;
      // https://www.mongodb.com/docs/manual/reference/operator/update/inc/: "Use of the $inc operator
      // on a field with a null value will generate an error"; a string is not a number either.
      assert.equal(await refused({$inc: {nul: 1}}), 14);
      assert.equal(await refused({$inc: {str: 1}}), 14);
      assert.equal(await refused({$inc: {n: 'one'}}), 14);
      // https://www.mongodb.com/docs/manual/reference/operator/update/mul/: numbers only.
      assert.equal(await refused({$mul: {str: 2}}), 14);
      // https://www.mongodb.com/docs/manual/reference/operator/update/push/: "If the field is not an
      // array, the operation will fail."
      assert.equal(await refused({$push: {scalar: 1}}), 2);
      assert.equal(await refused({$push: {doc: {$each: [1]}}}), 2);
      // https://www.mongodb.com/docs/manual/reference/operator/update/addToSet/: "If you use $addToSet
      // on a field that is not an array, the operation will fail."
      assert.equal(await refused({$addToSet: {scalar: 1}}), 2);
      // https://www.mongodb.com/docs/manual/reference/operator/update/pop/: "The $pop operation fails
      // if the <field> is not an array."
      assert.equal(await refused({$pop: {scalar: 1}}), 14);
      // A dotted path through a scalar cannot be created (https://www.mongodb.com/docs/manual/reference/operator/update/set/
      // creates missing embedded documents only).
      assert.equal(await refused({$set: {'scalar.b': 1}}), 28);
      assert.equal(await refused({$inc: {'str.b': 1}}), 28);
      // One update may not touch a path twice, or a path and its parent
      // (https://www.mongodb.com/docs/manual/reference/operator/update/#behavior: each field is processed once).
      assert.equal(await refused({$set: {n: 2}, $inc: {n: 1}}), 40);
      assert.equal(await refused({$set: {doc: {}, 'doc.k': 2}}), 40);
      assert.equal(await refused({$rename: {n: 'm'}, $set: {m: 1}}), 40);
      // $pop through a scalar is refused as well (mongodb/mongo src/mongo/db/update/pop_node.cpp: PathNotViable).
      assert.equal(await refused({$pop: {'scalar.b': 1}}), 28);
      // $unset through a scalar, and $pull or $pop of a missing field, change nothing and are not errors
      // (https://www.mongodb.com/docs/manual/reference/operator/update/unset/: "If the field does not exist, then $unset does nothing").
      assert.equal((await coll.updateOne({_id: 1}, {$unset: {'scalar.b': ''}})).modifiedCount, 0);
      assert.equal((await coll.updateOne({_id: 1}, ops({$pull: {missing: 1}, $pop: {missing2: 1}}))).modifiedCount, 0);
      const [raw] = (await coll.find({_id: 1}, {raw: true}).toArray()) as unknown as Buffer[];
      assert.deepEqual(Buffer.from(raw!), Buffer.from(BSON.serialize({_id: 1, nul: null, str: 'x', n: 1, scalar: 5, arr: [1, 2], doc: {k: 1}})), 'refused updates change nothing');
    });

    test('update operators keep every field in place, integer-like keys included, and append new fields in name order', async () => {
      // Field order: https://www.mongodb.com/docs/manual/core/document/#document-field-order; new
      // fields of one update: https://www.mongodb.com/docs/manual/reference/operator/update/#behavior
      // ("string-based names in lexicographic order. Fields with numeric names are processed in numeric order").
      const M = (e: Array<[string, unknown]>) => new Map(e);
      const coll = db.collection('upd_order');
      const rawOf = async (id: number): Promise<string> => Buffer.from(((await coll.find({_id: id} as Document, {raw: true}).toArray())[0] as unknown as Uint8Array)).toString('hex');
      const hex = (doc: unknown): string => Buffer.from(BSON.serialize(doc as Document)).toString('hex');
      const by = M([['10', new Int32(8)], ['2', new Int32(-8)]]);
      await coll.insertOne(M([['_id', 1], ['sub', by], ['n', new Int32(1)], ['arr', [new Int32(1), new Int32(2), new Int32(3), new Int32(4)]]]) as unknown as Document);
      // https://www.mongodb.com/docs/manual/reference/operator/update/inc/ on a top-level field: the sub-document is untouched.
      await coll.updateOne({_id: 1} as Document, {$inc: {n: 1}} as Document);
      assert.equal(await rawOf(1), hex(M([['_id', 1], ['sub', by], ['n', new Int32(2)], ['arr', [1, 2, 3, 4].map((x) => new Int32(x))]])));
      // A dotted $set into the sub-document replaces "2" where it stands.
      await coll.updateOne({_id: 1} as Document, {$set: {'sub.2': new Int32(7)}} as Document);
      assert.equal(await rawOf(1), hex(M([['_id', 1], ['sub', M([['10', new Int32(8)], ['2', new Int32(7)]])], ['n', new Int32(2)], ['arr', [1, 2, 3, 4].map((x) => new Int32(x))]])));
      // https://www.mongodb.com/docs/manual/reference/operator/update/pull/ and .../pop/ (-1: first element).
      await coll.updateOne({_id: 1} as Document, {$pull: {arr: {$gte: 3}}, $pop: {missing: 1}} as Document);
      await coll.updateOne({_id: 1} as Document, {$pop: {arr: -1}} as Document);
      // New fields of one update, whatever the order sent and the operator: z, a, 10 and 2 are appended as 2, 10, a, z.
      await coll.updateOne({_id: 1} as Document, {$set: M([['z', 1], ['a', 2]]), $inc: M([['10', new Int32(1)], ['2', new Int32(1)]])} as Document);
      assert.equal(
        await rawOf(1),
        hex(M([['_id', 1], ['sub', M([['10', new Int32(8)], ['2', new Int32(7)]])], ['n', new Int32(2)], ['arr', [new Int32(2)]], ['2', new Int32(1)], ['10', new Int32(1)], ['a', 2], ['z', 1]])),
      );

      // https://www.mongodb.com/docs/manual/reference/operator/update/push/ with $each, $position, $slice.
      await coll.insertOne(M([['_id', 2], ['tags', ['a', 'b', 'c']], ['set', [M([['b', 2], ['a', 1]])]]]) as unknown as Document);
      await coll.updateOne({_id: 2} as Document, {$push: {tags: {$each: ['x'], $position: 1, $slice: 3}}} as Document);
      // https://www.mongodb.com/docs/manual/reference/operator/update/addToSet/: a document is a
      // duplicate only with "the exact same fields and values and the fields are in the same order".
      await coll.updateOne({_id: 2} as Document, {$addToSet: {set: M([['a', 1], ['b', 2]])}} as Document);
      await coll.updateOne({_id: 2} as Document, {$addToSet: {set: M([['b', 2], ['a', 1]])}} as Document);
      // Setting an array index past the end pads with null (https://www.mongodb.com/docs/manual/reference/operator/update/set/#set-elements-in-arrays).
      await coll.updateOne({_id: 2} as Document, {$set: {'tags.4': 'e'}} as Document);
      assert.equal(await rawOf(2), hex(M([['_id', 2], ['tags', ['a', 'x', 'b', null, 'e']], ['set', [M([['b', 2], ['a', 1]]), M([['a', 1], ['b', 2]])]]])));

      // https://www.mongodb.com/docs/manual/reference/operator/update/rename/: the value moves, the old name goes.
      await coll.insertOne(M([['_id', 3], ['a', 1], ['b', M([['c', 2]])]]) as unknown as Document);
      await coll.updateOne({_id: 3} as Document, {$rename: {a: 'b.d'}} as Document);
      assert.equal(await rawOf(3), hex(M([['_id', 3], ['b', M([['c', 2], ['d', 1]])]])));

      // Pipeline updates (https://www.mongodb.com/docs/manual/tutorial/update-with-aggregation-pipeline/):
      // $set keeps an existing field in place and appends a new one; $replaceWith sets the order.
      await coll.insertOne(M([['_id', 4], ['x', 'foo'], ['y', 'bar'], ['z', 'baz']]) as unknown as Document);
      await coll.updateOne({_id: 4} as Document, [{$set: {y: 'BAR', w: {$literal: 1}}}, {$unset: 'z'}]);
      assert.equal(await rawOf(4), hex(M([['_id', 4], ['x', 'foo'], ['y', 'BAR'], ['w', 1]])));
      await coll.updateOne({_id: 4} as Document, [{$replaceWith: M([['w', '$w'], ['y', '$y'], ['x', '$x']])}]);
      assert.equal(await rawOf(4), hex(M([['_id', 4], ['w', 1], ['y', 'BAR'], ['x', 'foo']])));
    });

    test('replacement keeps the exact bytes sent and refuses to change _id', async () => {
      const coll = db.collection<Loose>('repl');
      await coll.insertOne({_id: 7, old: true});
      const replacement = {name: 'new', when: new Date(-1), n: Long.fromNumber(3), d: Decimal128.fromString('0.10')};
      const r = await coll.replaceOne({_id: 7}, replacement);
      assert.equal(r.modifiedCount, 1);
      const [raw] = (await coll.find({_id: 7}, {raw: true}).toArray()) as unknown as Buffer[];
      assert.deepEqual(Buffer.from(raw!), Buffer.from(BSON.serialize({_id: 7, ...replacement})));
      await assert.rejects(coll.replaceOne({_id: 7}, {_id: 8, x: 1}), (e: unknown) => e instanceof MongoServerError && e.code === 66);
      await assert.rejects(coll.updateOne({_id: 7}, {$set: {_id: 9}}), (e: unknown) => e instanceof MongoServerError && e.code === 66);
      const up = await coll.replaceOne({_id: 'r-up'}, {x: 1}, {upsert: true});
      assert.equal(up.upsertedId, 'r-up');
      assert.deepEqual(await coll.findOne({_id: 'r-up'}), {_id: 'r-up', x: 1});
      const before = await coll.findOneAndReplace({_id: 7}, {name: 'newer'}, {returnDocument: 'before'});
      assert.equal(before!.name, 'new');
      const gone = await coll.findOneAndDelete({_id: 7});
      assert.equal(gone!.name, 'newer');
      const afterUpd = await coll.findOneAndUpdate({_id: 'r-up'}, ops({$inc: {x: 1}}), {returnDocument: 'after'});
      assert.equal(afterUpd!.x, 2);
    });

    test('queries match ObjectId, Long, Date ranges, Decimal128 and numbers across types', async () => {
      const coll = db.collection<Loose>('q');
      const oid = new ObjectId();
      await coll.insertMany([
        {_id: 1, ref: oid, big: Long.fromString('9007199254740993'), at: new Date(Date.UTC(1937, 3, 26)), price: Decimal128.fromString('12.50'), n: new Double(1), tags: ['a', 'b'], sub: {k: 'x'}},
        {_id: 2, ref: new ObjectId(), big: Long.fromNumber(10), at: new Date(Date.UTC(2020, 0, 1)), price: Decimal128.fromString('9.99'), n: new Int32(2), tags: ['c'], name: 'Guernica'},
        {_id: 3, n: Long.fromNumber(3), nothing: null},
      ]);
      const ids = async (filter: Document): Promise<unknown[]> => (await coll.find(filter).sort({_id: 1}).toArray()).map((d) => d._id);
      assert.deepEqual(await ids({ref: new ObjectId(oid.toHexString())}), [1]);
      assert.deepEqual(await ids({big: Long.fromString('9007199254740993')}), [1]);
      assert.deepEqual(await ids({big: {$gt: Long.fromNumber(9), $lt: Long.fromNumber(100)}}), [2]);
      assert.deepEqual(await ids({at: {$gte: new Date(Date.UTC(1900, 0, 1)), $lt: new Date(0)}}), [1]);
      assert.deepEqual(await ids({price: {$gt: Decimal128.fromString('10')}}), [1]);
      assert.deepEqual(await ids({price: {$lt: 10}}), [2]);
      assert.deepEqual(await ids({n: 1}), [1]);
      assert.deepEqual(await ids({n: {$gte: new Double(2)}}), [2, 3]);
      assert.deepEqual(await ids({n: {$in: [Long.fromNumber(2), 3]}}), [2, 3]);
      assert.deepEqual(await ids({tags: 'b'}), [1]);
      assert.deepEqual(await ids({'sub.k': 'x'}), [1]);
      assert.deepEqual(await ids({name: /^guer/i}), [2]);
      assert.deepEqual(await ids({nothing: null}), [1, 2, 3]);
      assert.deepEqual(await ids({nothing: {$exists: true}}), [3]);
      assert.deepEqual(await ids({$or: [{_id: 1}, {tags: {$size: 1}}]}), [1, 2]);
      await assert.rejects(coll.find({n: {$bogus: 1}}).toArray(), (e: unknown) => e instanceof MongoServerError && e.code === 2);
    });

    test('delete: deleteOne takes the first match, deleteMany all', async () => {
      const coll = db.collection<Loose>('del');
      await coll.insertMany([{_id: 1, g: 'a'}, {_id: 2, g: 'a'}, {_id: 3, g: 'b'}]);
      assert.equal((await coll.deleteOne({g: 'a'})).deletedCount, 1);
      assert.deepEqual((await coll.find().toArray()).map((d) => d._id), [2, 3]);
      assert.equal((await coll.deleteMany({})).deletedCount, 2);
      assert.equal((await coll.deleteMany({g: 'zzz'})).deletedCount, 0);
    });

    test('cursors: batchSize and getMore over 260 documents, limit, early close', async () => {
      const coll = db.collection<Loose>('many');
      await coll.insertMany(Array.from({length: 260}, (_, i) => ({_id: i, k: i % 7, pad: 'x'.repeat(100)})));
      const getMores: number[] = [];
      const onStart = (ev: {commandName: string; command: Document}): void => {
        if (ev.commandName === 'getMore') getMores.push(Number(ev.command.batchSize ?? 0));
      };
      client.on('commandStarted', onStart);
      try {
        const all = await coll.find({}, {batchSize: 50}).toArray();
        assert.equal(all.length, 260);
        assert.deepEqual(all.map((d) => d._id), Array.from({length: 260}, (_, i) => i));
        assert.equal(getMores.length, 5);
        const limited = await coll.find({}, {batchSize: 50, limit: 120}).toArray();
        assert.equal(limited.length, 120);
        const defaults = await coll.find({}).toArray();
        assert.equal(defaults.length, 260);
      } finally {
        client.off('commandStarted', onStart);
      }
      const cursor = coll.find({}, {batchSize: 10});
      assert.equal((await cursor.next())!._id, 0);
      await cursor.close();
      const single = await db.command({find: 'many', batchSize: 5, singleBatch: true});
      assert.equal(single.cursor.firstBatch.length, 5);
      assert.equal(Number(single.cursor.id), 0);
      await assert.rejects(db.command({getMore: Long.fromNumber(123456789), collection: 'many'}), (e: unknown) => e instanceof MongoServerError && e.code === 43);
    });

    test('sort, skip, limit and projection', async () => {
      const coll = db.collection<Loose>('many');
      const page = await coll.find({k: {$lt: 3}}).sort({k: -1, _id: 1}).skip(5).limit(4).project({k: 1}).toArray();
      assert.deepEqual(page, [{_id: 37, k: 2}, {_id: 44, k: 2}, {_id: 51, k: 2}, {_id: 58, k: 2}]);
      const excl = await coll.findOne({_id: 3}, {projection: {pad: 0}});
      assert.deepEqual(excl, {_id: 3, k: 3});
      const noId = await coll.findOne({_id: 3}, {projection: {_id: 0, k: 1}});
      assert.deepEqual(noId, {k: 3});
      const computed = await coll.findOne({_id: 3}, {projection: {k: 1, twice: {$multiply: ['$k', 2]}}});
      assert.deepEqual(computed, {_id: 3, k: 3, twice: 6});
    });

    test('count, estimatedDocumentCount and distinct', async () => {
      const coll = db.collection<Loose>('many');
      assert.equal(await coll.countDocuments({k: 0}), 38);
      assert.equal(await coll.countDocuments({}, {skip: 250, limit: 100}), 10);
      assert.equal(await coll.estimatedDocumentCount(), 260);
      assert.equal((await db.command({count: 'many', query: {k: 1}})).n, 37);
      assert.deepEqual((await coll.distinct('k')).sort(), [0, 1, 2, 3, 4, 5, 6]);
      assert.equal(await db.collection<Loose>('nope').countDocuments({}), 0);
    });

    test('aggregate: $match $project $sort $skip $limit $group $count $unwind $lookup', async () => {
      const coll = db.collection<Loose>('many');
      const grouped = await coll
        .aggregate([{$match: {_id: {$lt: 70}}}, {$group: {_id: '$k', n: {$sum: 1}, max: {$max: '$_id'}}}, {$sort: {_id: 1}}, {$skip: 1}, {$limit: 2}])
        .toArray();
      assert.deepEqual(grouped, [{_id: 1, n: 10, max: 64}, {_id: 2, n: 10, max: 65}]);
      const projected = await coll.aggregate([{$match: {_id: 8}}, {$project: {_id: 0, k: 1, big: {$gt: ['$k', 0]}}}]).toArray();
      assert.deepEqual(projected, [{k: 1, big: true}]);
      const [counted] = await coll.aggregate([{$match: {k: 6}}, {$count: 'total'}]).toArray();
      assert.deepEqual(counted, {total: 37});
      const orders = db.collection<Loose>('orders');
      await orders.insertMany([{_id: 'o1', items: ['a', 'b'], artwork: 3}, {_id: 'o2', items: ['c'], artwork: 4}]);
      const unwound = await orders.aggregate([{$unwind: '$items'}, {$project: {items: 1}}]).toArray();
      assert.deepEqual(unwound.map((d) => d.items), ['a', 'b', 'c']);
      const joined = await orders.aggregate([{$match: {_id: 'o1'}}, {$lookup: {from: 'many', localField: 'artwork', foreignField: '_id', as: 'art'}}, {$project: {'art.k': 1}}]).toArray();
      assert.deepEqual(joined, [{_id: 'o1', art: [{k: 3}]}]);
      const passthrough = (await coll.aggregate([{$match: {_id: 5}}], {raw: true}).toArray()) as unknown as Buffer[];
      const [stored] = (await coll.find({_id: 5}, {raw: true}).toArray()) as unknown as Buffer[];
      assert.deepEqual(Buffer.from(passthrough[0]!), Buffer.from(stored!));
    });

    test('create with options, listCollections, listIndexes, dropIndexes, drop', async () => {
      await db.createCollection('capped_log', {capped: true, size: 4096, max: 10});
      await assert.rejects(db.createCollection('capped_log'), (e: unknown) => e instanceof MongoServerError && e.code === 48);
      const [info] = await db.listCollections({name: 'capped_log'}).toArray();
      assert.ok(info && 'options' in info);
      assert.equal(info.type, 'collection');
      assert.deepEqual(info.options, {capped: true, size: 4096, max: 10});
      const names = (await db.listCollections({}, {nameOnly: true}).toArray()).map((c) => c.name);
      assert.ok(names.includes('capped_log') && names.includes('many'), names.join(','));
      const people = db.collection<Loose>('people');
      const indexes = await people.listIndexes().toArray();
      assert.deepEqual(indexes.map((i) => i.name).sort(), ['_id_', 'a_b', 'email_1']);
      const email = indexes.find((i) => i.name === 'email_1')!;
      assert.deepEqual(email.key, {email: 1});
      assert.equal(email.unique, true);
      await people.dropIndex('a_b');
      await assert.rejects(people.dropIndex('a_b'), (e: unknown) => e instanceof MongoServerError && e.code === 27);
      await assert.rejects(people.dropIndex('_id_'), (e: unknown) => e instanceof MongoServerError && e.code === 72);
      await people.dropIndexes();
      assert.deepEqual((await people.listIndexes().toArray()).map((i) => i.name), ['_id_']);
      await assert.rejects(db.collection<Loose>('never_made').listIndexes().toArray(), (e: unknown) => e instanceof MongoServerError && e.code === 26);
      assert.equal(await db.collection<Loose>('capped_log').drop(), true);
      assert.equal((await db.listCollections({name: 'capped_log'}).toArray()).length, 0);
      const dbs = await client.db('admin').admin().listDatabases();
      assert.ok(dbs.databases.some((d) => d.name === dbName));
    });

    test('unknown commands fail as mongod does', async () => {
      await assert.rejects(db.command({noSuchCommand: 1}), (e: unknown) => e instanceof MongoServerError && e.code === 59 && e.codeName === 'CommandNotFound');
    });

    test('10,000 inserts in batches of 1000 read back whole and in insertion order', async () => {
      // Timing belongs in the benchmarks; this checks that nothing is lost or reordered in bulk.
      const coll = db.collection<Loose>('bulk');
      const started = performance.now();
      for (let b = 0; b < 10; b++) {
        await coll.insertMany(Array.from({length: 1000}, (_, i) => ({n: b * 1000 + i, name: `artwork ${i}`, tags: ['a', 'b'], at: new Date()})));
      }
      const all = await coll.find().toArray();
      console.log(`mongo-contract: ${backend.name}: 10k inserts + full read in ${(performance.now() - started).toFixed(0)} ms`);
      assert.deepEqual(all.map((d) => d.n), Array.from({length: 10_000}, (_, i) => i));
      assert.equal(await coll.countDocuments({n: {$gte: 5000}}), 5000);
    });

    // ---- strict query semantics -------------------------------------------------------------

    test('comparison/sort order across BSON types, and type bracketing of $gt/$lt', async () => {
      // https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/ : MinKey < Null <
      // Numbers < String < Object < Array < BinData < ObjectId < Boolean < Date < Timestamp < RegEx < MaxKey.
      // https://www.mongodb.com/docs/manual/reference/method/db.collection.find/#type-bracketing :
      // comparison operators only match values of the field's BSON type bracket.
      const coll = db.collection<Loose>('order');
      await coll.insertMany([
        {_id: 1, v: new MaxKey()},
        {_id: 2, v: new BSONRegExp('a', '')},
        {_id: 3, v: new Timestamp({t: 1, i: 1})},
        {_id: 4, v: new Date(0)},
        {_id: 5, v: true},
        {_id: 6, v: new ObjectId('000000000000000000000001')},
        {_id: 7, v: new Binary(Buffer.from([1]), 0)},
        {_id: 8, v: {a: 1}},
        {_id: 9, v: 'str'},
        {_id: 10, v: new Int32(5)},
        {_id: 11, v: null},
        {_id: 12, v: new MinKey()},
      ]);
      const ids = async (filter: Document, sort: Document = {_id: 1}): Promise<unknown[]> => (await coll.find(filter).sort(sort).toArray()).map((d) => d._id);
      assert.deepEqual(await ids({}, {v: 1}), [12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
      assert.deepEqual(await ids({}, {v: -1}), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      assert.deepEqual(await ids({v: {$gt: 3}}), [10]);
      assert.deepEqual(await ids({v: {$lt: 'zzz'}}), [9]);
      assert.deepEqual(await ids({v: {$gte: {}}}), [8]);
      assert.deepEqual(await ids({v: {$lt: new Date(1)}}), [4]);
      assert.deepEqual(await ids({v: {$gt: false}}), [5]);
    });

    test('numbers of every type compare by exact value: Long above 2^53, double vs Decimal128, NaN, -0', async () => {
      // https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/#numeric-types :
      // numeric types compare by value "as if they were the same type"; conversion never loses
      // precision, so 2^53 + 1 is not 2^53, and the double nearest 0.1 is not Decimal128 0.1.
      // https://www.mongodb.com/docs/manual/reference/bson-types/#decimal128-bson-data-type
      const coll = db.collection<Loose>('exact');
      await coll.insertMany([
        {_id: 1, n: Long.fromString('9007199254740993')},
        {_id: 2, n: Long.fromString('9007199254740992')},
        {_id: 3, n: new Double(9007199254740992)},
        {_id: 4, n: Decimal128.fromString('9007199254740993')},
        {_id: 5, n: new Double(0.1)},
        {_id: 6, n: Decimal128.fromString('0.1')},
        {_id: 7, n: new Int32(1)},
        {_id: 8, n: Long.fromNumber(1)},
        {_id: 9, n: new Double(1)},
        {_id: 10, n: Decimal128.fromString('1.0')},
        {_id: 11, n: new Double(Number.NaN)},
        {_id: 12, n: Decimal128.fromString('NaN')},
        {_id: 13, n: new Double(-0)},
        {_id: 14, n: new Int32(0)},
      ]);
      const ids = async (filter: Document): Promise<unknown[]> => (await coll.find(filter).sort({_id: 1}).toArray()).map((d) => d._id);
      assert.deepEqual(await ids({n: Long.fromString('9007199254740993')}), [1, 4]);
      assert.deepEqual(await ids({n: Long.fromString('9007199254740992')}), [2, 3]);
      assert.deepEqual(await ids({n: {$gt: Long.fromString('9007199254740992')}}), [1, 4]);
      assert.deepEqual(await ids({n: new Double(0.1)}), [5]);
      assert.deepEqual(await ids({n: Decimal128.fromString('0.1')}), [6]);
      assert.deepEqual(await ids({n: {$gt: 0.1}}), [1, 2, 3, 4, 7, 8, 9, 10]);
      assert.deepEqual(await ids({n: {$lt: 0.1}}), [6, 13, 14]);
      assert.deepEqual(await ids({n: {$gt: 0.09, $lt: 0.2}}), [5, 6]);
      assert.deepEqual(await ids({n: 1}), [7, 8, 9, 10]);
      assert.deepEqual(await ids({n: {$in: [Decimal128.fromString('1'), 0]}}), [7, 8, 9, 10, 13, 14]);
      assert.deepEqual(await ids({n: new Double(-0)}), [13, 14]);
      assert.deepEqual(await ids({n: Number.NaN}), [11, 12]);
      assert.deepEqual(await ids({n: {$gt: Number.NaN}}), []);
      assert.deepEqual(await ids({n: {$gte: Number.NaN}}), [11, 12]);
      assert.deepEqual(await ids({n: {$lt: Number.NEGATIVE_INFINITY}}), []);
      // Sorting puts NaN below every other number.
      assert.deepEqual((await coll.find({_id: {$in: [5, 11, 13]}}).sort({n: 1}).toArray()).map((d) => d._id), [11, 13, 5]);
    });

    test('embedded documents match by field order and exact values; _id lookups too', async () => {
      // https://www.mongodb.com/docs/manual/tutorial/query-embedded-documents/#match-an-embedded-nested-document :
      // "Equality matches on the whole embedded document require an exact match of the specified
      // document, including the field order."
      const coll = db.collection<Loose>('embedded');
      await coll.insertMany([
        {_id: 1, sub: {a: 1, b: 2}},
        {_id: 2, sub: {b: 2, a: 1}},
        {_id: 3, sub: {a: Long.fromNumber(1), b: new Double(2)}},
        {_id: 4, sub: {a: 1, b: 2, c: 3}},
      ]);
      const ids = async (filter: Document): Promise<unknown[]> => (await coll.find(filter).sort({_id: 1}).toArray()).map((d) => d._id);
      assert.deepEqual(await ids({sub: {a: 1, b: 2}}), [1, 3]);
      assert.deepEqual(await ids({sub: {b: 2, a: 1}}), [2]);
      assert.deepEqual(await ids({'sub.a': 1}), [1, 2, 3, 4]);
      assert.deepEqual(await ids({sub: {$in: [{b: 2, a: 1}]}}), [2]);
      assert.deepEqual(await ids({sub: {$ne: {a: 1, b: 2}}}), [2, 4]);
      assert.deepEqual(await ids({sub: {$nin: [{a: 1, b: 2}, {a: 1, b: 2, c: 3}]}}), [2]);
      // Integer-like field names keep their stored position ("b" before "1"); JavaScript objects
      // would reorder them, so these documents go as Maps, in the order written.
      await db.command({
        insert: 'embedded',
        documents: [
          ordered([['_id', ordered([['b', 1], ['1', 2]])], ['sub', ordered([['b', 1], ['1', 2]])]]),
          ordered([['_id', ordered([['1', 2], ['b', 1]])], ['sub', ordered([['1', 2], ['b', 1]])]]),
        ],
      });
      const bIds = await coll.find({sub: ordered([['b', 1], ['1', 2]])}, {raw: true}).toArray() as unknown as Buffer[];
      assert.equal(bIds.length, 1);
      assert.deepEqual(Buffer.from(bIds[0]!), Buffer.from(BSON.serialize(ordered([['_id', ordered([['b', 1], ['1', 2]])], ['sub', ordered([['b', 1], ['1', 2]])]]))));
      // Two _ids differing only in field order are two documents, each found by its own _id.
      assert.equal((await coll.find({_id: ordered([['1', 2], ['b', 1]])} as Document).toArray()).length, 1);
      assert.equal((await coll.find({_id: {$in: [ordered([['b', 1], ['1', 2]]), ordered([['1', 2], ['b', 1]])]}} as Document).toArray()).length, 2);
      // Numeric _ids are one key across types: 1, NumberLong(1), 1.0 and Decimal128("1") find the same document.
      // https://www.mongodb.com/docs/manual/core/document/#the-_id-field
      for (const id of [new Int32(1), Long.fromNumber(1), new Double(1), Decimal128.fromString('1')]) {
        assert.deepEqual(await ids({_id: id}), [1]);
      }
      const dup = await serverError(coll.insertOne({_id: Decimal128.fromString('1.00') as unknown as number}));
      assert.equal(dup.code, 11000);
    });

    test('arrays: whole-array and element matches, $all, $size, $elemMatch, indexes and paths through arrays', async () => {
      // https://www.mongodb.com/docs/manual/tutorial/query-arrays/ and
      // https://www.mongodb.com/docs/manual/tutorial/query-array-of-documents/
      const coll = db.collection<Loose>('arrays');
      await coll.insertMany([
        {_id: 1, tags: ['a', 'b'], pts: [{x: 1, y: 2}, {x: 3, y: 4}], m: [[1, 2], [3]]},
        {_id: 2, tags: ['b', 'a'], pts: [{x: 1, y: 4}]},
        {_id: 3, tags: 'a'},
        {_id: 4, tags: [['a', 'b']]},
        {_id: 5, tags: []},
      ]);
      const ids = async (filter: Document): Promise<unknown[]> => (await coll.find(filter).sort({_id: 1}).toArray()).map((d) => d._id);
      assert.deepEqual(await ids({tags: ['a', 'b']}), [1, 4]);
      assert.deepEqual(await ids({tags: 'a'}), [1, 2, 3]);
      assert.deepEqual(await ids({tags: {$all: ['a', 'b']}}), [1, 2]);
      assert.deepEqual(await ids({tags: {$size: 2}}), [1, 2]);
      assert.deepEqual(await ids({tags: {$size: 0}}), [5]);
      assert.deepEqual(await ids({tags: {$in: [['a', 'b']]}}), [1, 4]);
      assert.deepEqual(await ids({tags: {$ne: 'a'}}), [4, 5]);
      assert.deepEqual(await ids({tags: {$elemMatch: {$gte: 'b'}}}), [1, 2]);
      assert.deepEqual(await ids({'tags.1': 'b'}), [1]);
      assert.deepEqual(await ids({pts: {$elemMatch: {x: 1, y: 4}}}), [2]);
      assert.deepEqual(await ids({'pts.x': 1, 'pts.y': 4}), [1, 2]);
      assert.deepEqual(await ids({'pts.1.x': 3}), [1]);
      assert.deepEqual(await ids({'pts.0.x': 3}), []);
      assert.deepEqual(await ids({pts: {x: 1, y: 2}}), [1]);
      assert.deepEqual(await ids({pts: {y: 2, x: 1}}), []);
      assert.deepEqual(await ids({m: [3]}), [1]);
      assert.deepEqual(await ids({m: 3}), []);
    });

    test('null and missing fields: {f: null}, $ne, $exists, $type null, $in [null]', async () => {
      // https://www.mongodb.com/docs/manual/tutorial/query-for-null-fields/
      const coll = db.collection<Loose>('nulls');
      await coll.insertMany([{_id: 1, f: null}, {_id: 2}, {_id: 3, f: 0}, {_id: 4, f: [null, 1]}, {_id: 5, f: []}, {_id: 6, f: ''}]);
      const ids = async (filter: Document): Promise<unknown[]> => (await coll.find(filter).sort({_id: 1}).toArray()).map((d) => d._id);
      assert.deepEqual(await ids({f: null}), [1, 2, 4]);
      assert.deepEqual(await ids({f: {$eq: null}}), [1, 2, 4]);
      assert.deepEqual(await ids({f: {$ne: null}}), [3, 5, 6]);
      assert.deepEqual(await ids({f: {$in: [null]}}), [1, 2, 4]);
      assert.deepEqual(await ids({f: {$nin: [null, 0]}}), [5, 6]);
      assert.deepEqual(await ids({f: {$exists: false}}), [2]);
      assert.deepEqual(await ids({f: {$exists: true}}), [1, 3, 4, 5, 6]);
      assert.deepEqual(await ids({f: {$type: 'null'}}), [1, 4]);
      assert.deepEqual(await ids({f: {$type: 10}}), [1, 4]);
    });

    test('BSON undefined matches {f: null} before MongoDB 8.0 and not from 8.0 on', async (t) => {
      // https://www.mongodb.com/docs/manual/reference/bson-types/migrate-undefined/ : "Starting in
      // MongoDB 8.0, comparisons to null in equality match expressions don't match undefined values."
      // Drivers write undefined as null, so the document goes as raw bytes.
      const target = rawTarget(backend.uri);
      if (!target) {
        t.skip('needs a single host without credentials for a raw socket');
        return;
      }
      const undefinedDoc = Buffer.concat([Buffer.from(BSON.serialize({_id: 'u'})).subarray(0, -1), Buffer.from([0x06, 0x66, 0x00, 0x00])]);
      undefinedDoc.writeInt32LE(undefinedDoc.length, 0);
      const res = await exchange(target, opMsg({insert: 'undef', $db: dbName}, {id: 'documents', docs: [undefinedDoc]}));
      assert.equal(res.reply?.n, 1);
      await db.collection<Loose>('undef').insertMany([{_id: 'null', f: null}, {_id: 'missing'}]);
      const version = String((await db.admin().command({buildInfo: 1})).version);
      const major = Number(version.split('.')[0]);
      const found = (await db.collection<Loose>('undef').find({f: null}).sort({_id: 1}).toArray()).map((d) => d._id);
      assert.deepEqual(found, major >= 8 ? ['missing', 'null'] : ['missing', 'null', 'u']);
      assert.deepEqual((await db.collection<Loose>('undef').find({f: {$type: 'undefined'}}).toArray()).map((d) => d._id), ['u']);
    });

    test('logical operators, $not, $regex and regex literals, $mod, $type aliases', async () => {
      // https://www.mongodb.com/docs/manual/reference/operator/query/ (each operator's page:
      // .../query/regex/, .../query/not/, .../query/mod/, .../query/type/#available-types)
      const coll = db.collection<Loose>('ops');
      await coll.insertMany([
        {_id: 1, s: 'Guernica', n: new Int32(10)},
        {_id: 2, s: 'guitar', n: Long.fromNumber(7)},
        {_id: 3, s: 'bass', n: new Double(2.5)},
        {_id: 4, s: ['GUERNICA', 'x'], n: Decimal128.fromString('12')},
      ]);
      const ids = async (filter: Document): Promise<unknown[]> => (await coll.find(filter).sort({_id: 1}).toArray()).map((d) => d._id);
      assert.deepEqual(await ids({s: /^gu/}), [2]);
      assert.deepEqual(await ids({s: /^gu/i}), [1, 2, 4]);
      assert.deepEqual(await ids({s: {$regex: '^gu', $options: 'i'}}), [1, 2, 4]);
      assert.deepEqual(await ids({s: {$not: /^gu/i}}), [3]);
      assert.deepEqual(await ids({s: {$in: [/^b/, 'x']}}), [3, 4]);
      assert.deepEqual(await ids({n: {$mod: [5, 0]}}), [1]);
      assert.deepEqual(await ids({n: {$mod: [5, 2]}}), [2, 3, 4]);
      assert.deepEqual(await ids({n: {$type: 'number'}}), [1, 2, 3, 4]);
      assert.deepEqual(await ids({n: {$type: 'long'}}), [2]);
      assert.deepEqual(await ids({n: {$type: 18}}), [2]);
      assert.deepEqual(await ids({n: {$type: ['double', 'decimal']}}), [3, 4]);
      assert.deepEqual(await ids({s: {$type: 'array'}}), [4]);
      assert.deepEqual(await ids({$or: [{n: 10}, {s: 'bass'}]}), [1, 3]);
      assert.deepEqual(await ids({$nor: [{n: 10}, {s: 'bass'}]}), [2, 4]);
      assert.deepEqual(await ids({$and: [{n: {$gt: 5}}, {n: {$lt: 11}}]}), [1, 2]);
      assert.deepEqual(await ids({n: {$not: {$gt: 5}}}), [3]);
    });

    test('operators mongod does not know fail with its error codes, never match silently', async () => {
      // https://www.mongodb.com/docs/manual/reference/error-codes/ : 2 BadValue, 168 InvalidPipelineOperator.
      const coll = db.collection<Loose>('ops');
      const cases: Array<[Document, number, string]> = [
        [{n: {$foo: 1}}, 2, 'BadValue'],
        [{$foo: 1}, 2, 'BadValue'],
        [{$or: []}, 2, 'BadValue'],
        [{n: {$in: 5}}, 2, 'BadValue'],
        [{n: {$type: 'nope'}}, 2, 'BadValue'],
        [{n: {$mod: [0, 1]}}, 2, 'BadValue'],
        [{n: {$not: {}}}, 2, 'BadValue'],
        [{$expr: {$foo: [1, 2]}}, 168, 'InvalidPipelineOperator'],
      ];
      for (const [filter, code, codeName] of cases) {
        const e = await serverError(coll.find(filter).toArray());
        assert.deepEqual([e.code, e.codeName], [code, codeName], JSON.stringify(filter));
      }
      // A bad filter is refused even where no collection exists.
      const e = await serverError(db.collection<Loose>('no_such_coll').find({n: {$foo: 1}}).toArray());
      assert.deepEqual([e.code, e.codeName], [2, 'BadValue']);
    });

    test('$expr with $$ROOT and $literal: whole-document equality, field order and exact values', async () => {
      // https://www.mongodb.com/docs/manual/reference/operator/query/expr/ ,
      // https://www.mongodb.com/docs/manual/reference/aggregation-variables/#mongodb-variable-variable.ROOT ,
      // https://www.mongodb.com/docs/manual/reference/operator/aggregation/literal/ and
      // https://www.mongodb.com/docs/manual/reference/operator/aggregation/eq/ (compares value and type
      // with the BSON comparison order; no type bracketing in aggregation).
      const coll = db.collection<Loose>('whole');
      await coll.insertMany([
        {_id: 1, a: 1, b: 'x'},
        {_id: 2, b: 'x', a: 1},
        {_id: 3, a: Long.fromNumber(1), b: 'x'},
        {_id: 4, a: '$notAPath'},
      ]);
      await db.command({insert: 'whole', documents: [ordered([['_id', 5], ['2020', 1], ['10', 2]])]});
      const ids = async (filter: Document): Promise<unknown[]> => (await coll.find(filter).sort({_id: 1}).toArray()).map((d) => d._id);
      const root = (doc: unknown): Document => ({$expr: {$eq: ['$$ROOT', {$literal: doc}]}});
      assert.deepEqual(await ids(root({_id: 1, a: 1, b: 'x'})), [1]);
      assert.deepEqual(await ids(root({_id: 2, a: 1, b: 'x'})), []);
      assert.deepEqual(await ids({_id: 3, ...root({_id: 3, a: new Double(1), b: 'x'})}), [3]);
      assert.deepEqual(await ids(root({_id: 4, a: '$notAPath'})), [4]);
      // Without $literal, '$notAPath' is a field path that evaluates to missing, and the field is dropped.
      assert.deepEqual(await ids({$expr: {$eq: ['$$ROOT', {_id: 4, a: '$notAPath'}]}}), []);
      assert.deepEqual(await ids(root(ordered([['_id', 5], ['2020', 1], ['10', 2]])) as Document), [5]);
      assert.deepEqual(await ids(root(ordered([['_id', 5], ['10', 2], ['2020', 1]])) as Document), []);
      assert.deepEqual(await ids({$expr: {$gt: ['$a', 0]}}), [1, 2, 3, 4]);
      assert.deepEqual(await ids({$expr: {$eq: ['$a', {$literal: 1}]}}), [1, 2, 3]);
      const e = await serverError(coll.find({$expr: {$eq: ['$a']}}).toArray());
      assert.equal(e.code, 16020);
      // https://www.mongodb.com/docs/manual/reference/operator/aggregation/bsonSize/ : the size in bytes
      // of the document as stored; the product pairs it with the $$ROOT comparison.
      const size = BSON.calculateObjectSize({_id: 1, a: 1, b: 'x'});
      assert.deepEqual(await ids({$expr: {$eq: [{$bsonSize: '$$ROOT'}, size]}}), [1, 2]);
      assert.deepEqual(await ids({_id: 1, $expr: {$and: [{$eq: [{$bsonSize: '$$ROOT'}, size]}, {$eq: ['$$ROOT', {$literal: {_id: 1, a: 1, b: 'x'}}]}]}}), [1]);
      assert.deepEqual(await ids({$expr: {$eq: [{$bsonSize: '$nothing'}, null]}}), [1, 2, 3, 4, 5]);
    });

    // ---- writes -------------------------------------------------------------------------------

    test('unique indexes: numeric keys by value, embedded keys by field order, compound, sparse, partial', async () => {
      // https://www.mongodb.com/docs/manual/core/index-unique/ (missing fields index as null; unique
      // compound and partial indexes), https://www.mongodb.com/docs/manual/core/index-sparse/ ,
      // https://www.mongodb.com/docs/manual/core/index-partial/ . Write errors carry code,
      // errmsg, keyPattern and keyValue but no codeName; command errors carry codeName.
      const coll = db.collection<Loose>('uniq');
      assert.equal(await coll.createIndex({k: 1}, {unique: true}), 'k_1');
      await coll.insertOne({_id: 1, k: 1});
      for (const [id, k] of [[2, Long.fromNumber(1)], [3, Decimal128.fromString('1')], [4, new Double(1)]] as const) {
        const e = await serverError(coll.insertOne({_id: id, k}));
        assert.equal(e.code, 11000);
        assert.deepEqual(e.keyPattern, {k: 1});
        assert.match(e.message, new RegExp(`^E11000 duplicate key error collection: ${dbName}\\.uniq index: k_1 dup key: \\{ k: `));
      }
      await coll.insertMany([{_id: 5, k: 1.5}, {_id: 6, k: 0.1}, {_id: 7, k: Decimal128.fromString('0.1')}]);
      assert.equal((await serverError(coll.insertOne({_id: 8, k: Decimal128.fromString('1.50')}))).code, 11000);
      await coll.insertMany([{_id: 9, k: {a: 1, b: 2}}, {_id: 10, k: {b: 2, a: 1}}]);
      const embedded = await serverError(coll.insertOne({_id: 11, k: {a: Long.fromNumber(1), b: 2}}));
      assert.equal(embedded.code, 11000);
      assert.deepEqual(embedded.keyValue, {k: {a: 1, b: 2}});
      await coll.insertOne({_id: 12});
      const missing = await serverError(coll.insertOne({_id: 13}));
      assert.equal(missing.code, 11000);
      assert.deepEqual(missing.keyValue, {k: null});
      assert.match(missing.message, /dup key: \{ k: null \}/);
      // Updates and replacements are held to the index as well.
      assert.equal((await serverError(coll.updateOne({_id: 5}, {$set: {k: 1}}))).code, 11000);
      assert.equal((await serverError(coll.replaceOne({_id: 5}, {k: new Int32(1)}))).code, 11000);
      assert.equal((await coll.replaceOne({_id: 5}, {k: 2})).modifiedCount, 1);

      const compound = db.collection<Loose>('uniq_compound');
      await compound.createIndex({a: 1, b: 1}, {unique: true});
      await compound.insertMany([{_id: 1, a: 1, b: 1}, {_id: 2, a: 1, b: 2}]);
      const c = await serverError(compound.insertOne({_id: 3, a: 1, b: 1}));
      assert.equal(c.code, 11000);
      assert.match(c.message, /index: a_1_b_1 dup key: \{ a: 1, b: 1 \}/);
      assert.deepEqual(c.keyValue, {a: 1, b: 1});

      const sparse = db.collection<Loose>('uniq_sparse');
      await sparse.createIndex({s: 1}, {unique: true, sparse: true});
      await sparse.insertMany([{_id: 1}, {_id: 2}, {_id: 3, s: null}]);
      assert.equal((await serverError(sparse.insertOne({_id: 4, s: null}))).code, 11000);

      const partial = db.collection<Loose>('uniq_partial');
      await partial.createIndex({email: 1}, {unique: true, partialFilterExpression: {active: true}});
      await partial.insertMany([{_id: 1, email: 'x', active: false}, {_id: 2, email: 'x', active: false}, {_id: 3, email: 'x', active: true}]);
      assert.equal((await serverError(partial.insertOne({_id: 4, email: 'x', active: true}))).code, 11000);
      assert.equal((await serverError(partial.updateOne({_id: 1}, {$set: {active: true}}))).code, 11000);
      const [, partialIndex] = await partial.listIndexes().toArray();
      assert.deepEqual(partialIndex, {v: 2, key: {email: 1}, name: 'email_1', unique: true, partialFilterExpression: {active: true}});

      // Building a unique index over duplicates fails with a command error.
      const build = await serverError(db.collection<Loose>('uniq_partial').createIndex({email: -1}, {unique: true, name: 'email_all'}));
      assert.deepEqual([build.code, build.codeName], [11000, 'DuplicateKey']);
      assert.match(build.message, new RegExp(`E11000 duplicate key error collection: ${dbName}\\.uniq_partial index: email_all dup key: \\{ email: "x" \\}`));
    });

    test('$jsonSchema validators: levels, actions, bypassDocumentValidation, collMod, listCollections', async () => {
      // https://www.mongodb.com/docs/manual/core/schema-validation/specify-json-schema/ ,
      // https://www.mongodb.com/docs/manual/reference/operator/query/jsonSchema/ ,
      // https://www.mongodb.com/docs/manual/core/schema-validation/specify-validation-level/ ,
      // https://www.mongodb.com/docs/manual/core/schema-validation/handle-invalid-documents/ ,
      // https://www.mongodb.com/docs/manual/core/schema-validation/bypass-document-validation/ :
      // a refused write is error 121 "Document failed validation" with errInfo naming the document
      // and the rules it broke.
      const validator = {
        $jsonSchema: {
          bsonType: 'object',
          required: ['name', 'year'],
          properties: {
            name: {bsonType: 'string', minLength: 2, maxLength: 20, pattern: '^[A-Z]'},
            year: {bsonType: ['int', 'long'], minimum: 1900, maximum: 2100},
            tags: {bsonType: 'array', items: {bsonType: 'string', enum: ['a', 'b']}},
            score: {bsonType: 'number'},
            addr: {bsonType: 'object', required: ['city'], properties: {city: {bsonType: 'string'}}, additionalProperties: false},
          },
        },
      };
      await db.createCollection('validated', {validator, validationLevel: 'strict', validationAction: 'error'});
      const [info] = await db.listCollections({name: 'validated'}).toArray();
      assert.deepEqual((info as {options: Document}).options, {validator, validationLevel: 'strict', validationAction: 'error'});
      const coll = db.collection<Loose>('validated');
      await coll.insertOne({_id: 1, name: 'Ann', year: new Int32(1990), tags: ['a'], score: 1.5, addr: {city: 'X'}}, {writeConcern: {w: 'majority', wtimeout: 5000}});
      const invalid: Document[] = [
        {_id: 2, name: 'Bob'},
        {_id: 3, name: 'Bob', year: new Double(1990)},
        {_id: 4, name: 'b', year: new Int32(1990)},
        {_id: 5, name: 'Bob', year: new Int32(1800)},
        {_id: 6, name: 'Bob', year: new Int32(1990), tags: ['c']},
        {_id: 7, name: 'Bob', year: new Int32(1990), addr: {city: 'X', zip: 1}},
        {_id: 8, name: 'Bob', year: new Int32(1990), score: 'high'},
      ];
      for (const doc of invalid) {
        const e = await serverError(coll.insertOne(doc));
        assert.equal(e.code, 121, JSON.stringify(doc));
        assert.equal(e.message, 'Document failed validation');
        assert.equal(e.errInfo?.failingDocumentId, doc._id);
        assert.equal((e.errInfo?.details as Document).operatorName, '$jsonSchema');
      }
      const missingYear = await serverError(coll.insertOne({_id: 9, name: 'Bob'}));
      const [rule] = (missingYear.errInfo?.details as {schemaRulesNotSatisfied: Document[]}).schemaRulesNotSatisfied;
      assert.equal(rule?.operatorName, 'required');
      assert.deepEqual(rule?.missingProperties, ['year']);
      assert.equal(await coll.countDocuments(), 1);

      await coll.insertOne({_id: 10, name: 'x'}, {bypassDocumentValidation: true});
      assert.equal((await serverError(coll.updateOne({_id: 1}, {$set: {year: 'soon'}}))).code, 121);
      assert.equal((await serverError(coll.replaceOne({_id: 1}, {name: 'Ann'}))).code, 121);
      assert.equal((await serverError(coll.findOneAndUpdate({_id: 1}, {$set: {score: 'x'}}))).code, 121);
      assert.equal((await coll.updateOne({_id: 1}, {$set: {score: 'x'}}, {bypassDocumentValidation: true})).modifiedCount, 1);
      assert.equal((await coll.updateOne({_id: 1}, {$set: {score: 2}})).modifiedCount, 1);
      // strict checks updates to documents that were already invalid; moderate does not.
      assert.equal((await serverError(coll.updateOne({_id: 10}, {$set: {name: 'y'}}))).code, 121);
      await db.command({collMod: 'validated', validationLevel: 'moderate'});
      assert.equal((await coll.updateOne({_id: 10}, {$set: {name: 'y'}})).modifiedCount, 1);
      assert.equal((await serverError(coll.updateOne({_id: 1}, {$set: {year: 'soon'}}))).code, 121);
      await db.command({collMod: 'validated', validationAction: 'warn'});
      await coll.insertOne({_id: 11, name: 'x'});
      const [after] = await db.listCollections({name: 'validated'}).toArray();
      assert.deepEqual((after as {options: Document}).options, {validator, validationLevel: 'moderate', validationAction: 'warn'});
      // A query-style validator works the same way.
      await db.createCollection('validated_query', {validator: {qty: {$gte: 0}}});
      await db.collection<Loose>('validated_query').insertOne({_id: 1, qty: 0});
      assert.equal((await serverError(db.collection<Loose>('validated_query').insertOne({_id: 2, qty: -1}))).code, 121);
    });

    test('an empty Timestamp(0, 0) in a top-level field is filled in on insert and replacement, not in _id or nested', async () => {
      // https://www.mongodb.com/docs/manual/reference/bson-types/#timestamps : on insert, top-level
      // empty timestamps are replaced with the current timestamp, except in _id. Replacement-style
      // updates do the same (https://jira.mongodb.org/browse/SERVER-10214,
      // https://jira.mongodb.org/browse/SERVER-88750 lists update and findAndModify too).
      const coll = db.collection<Loose>('ts');
      const empty = (): Timestamp => new Timestamp({t: 0, i: 0});
      await coll.insertOne({_id: 1, ts: empty(), nested: {ts: empty()}});
      await coll.insertOne({_id: empty() as unknown as number, x: 1});
      const [doc] = await coll.find({_id: 1}).toArray();
      const filled = doc!.ts as Timestamp;
      assert.ok(filled.t > 0, 'top-level Timestamp(0, 0) was not filled in');
      assert.ok(Math.abs(filled.t - Date.now() / 1000) < 600, `filled with ${filled.t}`);
      assert.deepEqual((doc!.nested as {ts: Timestamp}).ts, empty());
      assert.equal((await coll.find({_id: empty() as unknown as number}).toArray()).length, 1);
      await coll.replaceOne({_id: 1}, {ts: empty()});
      const [replaced] = await coll.find({_id: 1}).toArray();
      assert.ok((replaced!.ts as Timestamp).t > 0, 'replacement Timestamp(0, 0) was not filled in');
    });

    test('size limits: hello, a 16 MiB document, 16 MiB + 1, an update growing past 16 MiB, a message over 48 MB', async (t) => {
      // https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-BSON-Document-Size (16 MiB)
      // and https://www.mongodb.com/docs/manual/reference/command/hello/#mongodb-data-hello.maxMessageSizeBytes
      const hello = await db.admin().command({hello: 1});
      assert.deepEqual([hello.maxBsonObjectSize, hello.maxMessageSizeBytes, hello.maxWriteBatchSize], [16777216, 48000000, 100000]);
      const target = rawTarget(backend.uri);
      if (!target) {
        t.skip('needs a single host without credentials for a raw socket');
        return;
      }
      // The limit is inclusive: a document of exactly 16777216 bytes is stored.
      const exact = docOfSize('exact', 16 * 1024 * 1024);
      const ok = await exchange(target, opMsg({insert: 'big', $db: dbName}, {id: 'documents', docs: [exact]}));
      assert.deepEqual([ok.reply?.ok, ok.reply?.n, ok.reply?.writeErrors], [1, 1, undefined]);
      const [stored] = (await db.collection<Loose>('big').find({_id: 'exact'}, {raw: true}).toArray()) as unknown as Buffer[];
      assert.ok(Buffer.from(stored!).equals(exact));
      // The same document inline in the command body (a command may be 16 KiB over the limit).
      const inline = docOfSize('inline', 16 * 1024 * 1024);
      const inlineReply = await exchange(target, withHeader(Buffer.concat([Buffer.alloc(4), Buffer.of(0), Buffer.from(BSON.serialize({insert: 'big', documents: [BSON.deserialize(inline)], $db: dbName}))])));
      assert.deepEqual([inlineReply.reply?.ok, inlineReply.reply?.n], [1, 1]);
      const over = await exchange(target, opMsg({insert: 'big', $db: dbName}, {id: 'documents', docs: [docOfSize('over', 16 * 1024 * 1024 + 1)]}));
      assert.equal(over.reply?.ok, 1);
      assert.equal(over.reply?.n, 0);
      const [we] = over.reply?.writeErrors as Document[];
      assert.equal(we?.code, 2);
      assert.match(String(we?.errmsg), /^object to insert too large\. size in bytes: 16777217, max size: 16777216/);
      // An update whose result would pass 16 MiB is refused (17419 up to 6.0; 7.0+ may name it BSONObjectTooLarge).
      await db.collection<Loose>('big').insertOne({_id: 'grow', a: 'x'.repeat(9 * 1024 * 1024)});
      const grow = await serverError(db.collection<Loose>('big').updateOne({_id: 'grow'}, {$set: {b: 'y'.repeat(8 * 1024 * 1024)}}));
      const major = Number(String((await db.admin().command({buildInfo: 1})).version).split('.')[0]);
      assert.ok(major >= 7 ? grow.code === 17419 || grow.code === 10334 : grow.code === 17419, `code ${String(grow.code)}`);
      assert.match(grow.message, /Resulting document after update is larger than 16777216/);
      // A message longer than maxMessageSizeBytes is not answered: the connection is closed.
      const tooLong = await exchange(target, withHeader(Buffer.alloc(0), 48_000_001));
      assert.deepEqual(tooLong, {closed: true});
    });

    test('what the product sends: raw find by _id $in, exact-order inserts, $expr-guarded replace/delete/bulkWrite', async () => {
      // Filters: https://www.mongodb.com/docs/manual/reference/operator/query/in/ and $expr above;
      // write concern: https://www.mongodb.com/docs/manual/reference/write-concern/ (w: "majority"
      // with wtimeout is accepted by a standalone).
      const coll = db.collection<Loose>('product');
      const wc = {writeConcern: {w: 'majority' as const, wtimeout: 5000}};
      const docs = [
        ordered([['_id', 1], ['2020', 'a'], ['10', 'b'], ['name', 'one']]),
        ordered([['_id', Long.fromString('9007199254740993')], ['b', 1], ['1', 2]]),
        ordered([['_id', ordered([['b', 1], ['1', 2]])], ['v', 1]]),
        ordered([['_id', new ObjectId('64b7f0c2a1b2c3d4e5f60718')], ['v', Decimal128.fromString('0.1')]]),
        ordered([['_id', 'str'], ['v', new Timestamp({t: 5, i: 6})]]),
      ];
      const res = await db.command({insert: 'product', documents: docs, ordered: true, writeConcern: {w: 'majority', wtimeout: 5000}});
      assert.equal(res.n, 5);
      const ids = docs.map((d) => d.get('_id'));
      const raw = (await coll.find({_id: {$in: ids}} as Document, {raw: true}).toArray()) as unknown as Buffer[];
      assert.deepEqual(raw.map((b) => Buffer.from(b).toString('hex')).sort(), docs.map((d) => Buffer.from(BSON.serialize(d)).toString('hex')).sort());
      // Long 2^53 + 1 and Long 2^53 are different _ids.
      assert.equal((await coll.find({_id: {$in: [Long.fromString('9007199254740992')]}} as Document).toArray()).length, 0);

      const guard = (doc: Map<string, unknown>): Document => ({_id: doc.get('_id'), $expr: {$eq: ['$$ROOT', {$literal: doc}]}});
      const replacement = ordered([['_id', 1], ['2020', 'a'], ['10', 'c']]);
      const stale = ordered([['_id', 1], ['10', 'b'], ['2020', 'a'], ['name', 'one']]);
      assert.equal((await coll.replaceOne(guard(stale), replacement as unknown as Loose, wc)).matchedCount, 0);
      assert.equal((await coll.replaceOne(guard(docs[0]!), replacement as unknown as Loose, wc)).modifiedCount, 1);
      const [afterReplace] = (await coll.find({_id: 1}, {raw: true}).toArray()) as unknown as Buffer[];
      assert.ok(Buffer.from(afterReplace!).equals(Buffer.from(BSON.serialize(replacement))));
      assert.equal((await coll.deleteOne(guard(docs[0]!), wc)).deletedCount, 0);
      const bulk = await coll.bulkWrite(
        [
          {deleteOne: {filter: guard(docs[1]!)}},
          {replaceOne: {filter: guard(docs[2]!), replacement: ordered([['_id', ordered([['b', 1], ['1', 2]])], ['v', 2]]) as unknown as Loose}},
          {deleteOne: {filter: guard(ordered([['_id', 'str'], ['v', new Timestamp({t: 5, i: 7})]]))}},
        ],
        {ordered: true, ...wc},
      );
      assert.deepEqual([bulk.deletedCount, bulk.matchedCount, bulk.modifiedCount], [1, 1, 1]);
      assert.equal(await coll.countDocuments(), 4);

      await db.createCollection('product_target', {validator: {$jsonSchema: {bsonType: 'object', required: ['v']}}});
      assert.equal(await db.collection<Loose>('product_target').createIndex({v: 1}, {unique: true, name: 'v_unique'}), 'v_unique');
      const indexes = await db.collection<Loose>('product_target').listIndexes().toArray();
      assert.deepEqual(indexes, [{v: 2, key: {_id: 1}, name: '_id_'}, {v: 2, key: {v: 1}, name: 'v_unique', unique: true}]);
      const bypass = await db.command({insert: 'product_target', documents: [{_id: 1}], bypassDocumentValidation: true, writeConcern: {w: 'majority', wtimeout: 5000}});
      assert.equal(bypass.n, 1);
    });

    test('collection and index options mongod does not know are refused; capped collections keep their cap', async () => {
      // https://www.mongodb.com/docs/manual/reference/command/create/ (unknown fields fail IDL
      // parsing, 40415), https://www.mongodb.com/docs/manual/reference/command/createIndexes/ (197
      // InvalidIndexSpecificationOption), https://www.mongodb.com/docs/manual/core/capped-collections/
      // (the oldest documents make room), https://www.mongodb.com/docs/manual/reference/write-concern/
      // (a standalone has one member).
      const unknown = await serverError(db.command({create: 'opts', noSuchOption: true}));
      assert.deepEqual([unknown.code, unknown.codeName], [40415, 'Location40415']);
      const badIndex = await serverError(db.command({createIndexes: 'opts', indexes: [{key: {a: 1}, name: 'a_1', noSuchOption: true}]}));
      assert.deepEqual([badIndex.code, badIndex.codeName], [197, 'InvalidIndexSpecificationOption']);
      const w2 = await serverError(db.command({insert: 'opts', documents: [{_id: 1}], writeConcern: {w: 2}}));
      assert.deepEqual([w2.code, w2.codeName], [2, 'BadValue']);
      await db.createCollection('capped_max', {capped: true, size: 100_000, max: 3});
      const capped = db.collection<Loose>('capped_max');
      for (let i = 1; i <= 5; i++) await capped.insertOne({_id: i});
      assert.deepEqual((await capped.find().toArray()).map((d) => d._id), [3, 4, 5]);
      assert.deepEqual((await capped.find().sort({$natural: -1}).toArray()).map((d) => d._id), [5, 4, 3]);
    });

    test('collations: collection default, per query, simple, unique indexes, regexes unaffected', async () => {
      // https://www.mongodb.com/docs/manual/reference/collation/ (strength 1: base letters only;
      // 2: accents too; numericOrdering; locale "simple" is binary comparison; an index without a
      // collation takes the collection's; $regex does not use collation) and
      // https://www.mongodb.com/docs/manual/reference/collation/#collation-and-index-use
      await db.createCollection('collated', {collation: {locale: 'en', strength: 2}});
      const [info] = await db.listCollections({name: 'collated'}).toArray();
      const {version, ...collation} = (info as unknown as {options: {collation: Document}}).options.collation;
      assert.equal(typeof version, 'string');
      assert.deepEqual(collation, {locale: 'en', caseLevel: false, caseFirst: 'off', strength: 2, numericOrdering: false, alternate: 'non-ignorable', maxVariable: 'punct', normalization: false, backwards: false});
      const coll = db.collection<Loose>('collated');
      await coll.insertMany([{_id: 1, name: 'Café'}, {_id: 2, name: 'cafe'}, {_id: 3, name: 'CAFE'}, {_id: 4, name: 'item10'}, {_id: 5, name: 'item9'}]);
      const ids = async (filter: Document, options: Document = {}): Promise<unknown[]> => (await coll.find(filter, options).sort({_id: 1}).toArray()).map((d) => d._id);
      assert.deepEqual(await ids({name: 'cafe'}), [2, 3]);
      assert.deepEqual(await ids({name: 'cafe'}, {collation: {locale: 'simple'}}), [2]);
      assert.deepEqual(await ids({name: 'cafe'}, {collation: {locale: 'en', strength: 1}}), [1, 2, 3]);
      assert.deepEqual(await ids({name: {$in: ['CAFÉ']}}), [1]);
      assert.deepEqual(await ids({name: /^cafe$/}), [2]);
      const sorted = await coll.find({_id: {$in: [4, 5]}}, {collation: {locale: 'en', numericOrdering: true}}).sort({name: 1}).toArray();
      assert.deepEqual(sorted.map((d) => d._id), [5, 4]);
      assert.equal(await coll.countDocuments({name: 'CaFe'}), 2);
      assert.equal((await coll.deleteMany({name: 'CAFE'}, {collation: {locale: 'simple'}})).deletedCount, 1);

      const people = db.collection<Loose>('collated_unique');
      await people.createIndex({email: 1}, {unique: true, collation: {locale: 'en', strength: 2}});
      await people.insertOne({_id: 1, email: 'Ann@X'});
      const dup = await serverError(people.insertOne({_id: 2, email: 'ann@x'}));
      assert.equal(dup.code, 11000);
      await people.insertOne({_id: 3, email: 'ánn@x'});
      const [, index] = await people.listIndexes().toArray();
      assert.equal((index as {collation: Document}).collation.strength, 2);
      assert.equal((index as {collation: Document}).collation.locale, 'en');
    });

    test('pymongo reads back the exact bytes stored (RawBSONDocument)', async (t) => {
      if (!existsSync(DEBIAN_PYTHON)) {
        t.skip(`${DEBIAN_PYTHON} not found`);
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
        "coll = c[sys.argv[2]].get_collection('product', codec_options=CodecOptions(document_class=RawBSONDocument))",
        "print(','.join(sorted(d.raw.hex() for d in coll.find({}))))",
      ].join('\n');
      const run = await new Promise<{status: number | null; stdout: string; stderr: string}>((resolve) => {
        execFile(DEBIAN_PYTHON, ['-c', script, backend.uri, dbName], {encoding: 'utf8', timeout: 30_000}, (err, stdout, stderr) => {
          resolve({status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr});
        });
      });
      if (run.status === 3) {
        t.skip('pymongo is not installed for Debian python3');
        return;
      }
      assert.equal(run.status, 0, run.stderr);
      const viaNode = ((await db.collection<Loose>('product').find({}, {raw: true}).toArray()) as unknown as Buffer[]).map((b) => Buffer.from(b).toString('hex')).sort();
      assert.equal(run.stdout.trim(), viaNode.join(','));
      assert.ok(viaNode.includes(Buffer.from(BSON.serialize(ordered([['_id', 1], ['2020', 'a'], ['10', 'c']]))).toString('hex')));
    });

    test('pymongo 3.11 (a second, independent client) works against it', async (t) => {
      if (!existsSync(DEBIAN_PYTHON)) {
        t.skip(`${DEBIAN_PYTHON} not found: install Debian's python3-pymongo to run this check`);
        return;
      }
      // Asynchronous on purpose: the test server runs in this process and must keep answering.
      const run = await new Promise<{status: number | null; stdout: string; stderr: string}>((resolve) => {
        execFile(DEBIAN_PYTHON, [PYMONGO_SMOKE, backend.uri, `${dbName}_py`], {encoding: 'utf8', timeout: 30_000}, (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
          resolve({status: code, stdout, stderr});
        });
      });
      if (run.status === 3) {
        t.skip(`pymongo is not installed for ${DEBIAN_PYTHON} (apt-get install python3-pymongo): ${run.stdout.trim()}`);
        return;
      }
      assert.equal(run.status, 0, run.stderr);
      const out = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.equal(out.roundTripBytes, true);
      assert.equal(out.byLong, 1);
      assert.equal(out.byDecimal, 1);
      assert.equal(out.byDate, 1);
      assert.equal(out.iterated, 300);
      assert.deepEqual(out.updated, [1, 1]);
      assert.deepEqual(out.afterUpdate, {name: 'g2', n: '1099511627778', nIsInt64: true});
      assert.equal(out.upserted, 'new');
      assert.equal(out.deleted, 100);
      assert.equal(out.duplicate, 11000);
      assert.equal(out.count, 202);
    });
  });
}

describe('test backend chooser', () => {
  const saved = {uri: process.env.MONGODB_TEST_URI, binary: process.env.MONGOMS_SYSTEM_BINARY, mode: process.env.GRAVITY_RESTORE_TEST_MONGO};
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gr-mongo-backend-'));
    // These tests are about the automatic choice; a CI job that forces a mode (mongod, replset) must not change them.
    delete process.env.GRAVITY_RESTORE_TEST_MONGO;
  });

  after(() => {
    rmSync(dir, {recursive: true, force: true});
    restore('MONGODB_TEST_URI', saved.uri);
    restore('MONGOMS_SYSTEM_BINARY', saved.binary);
    restore('GRAVITY_RESTORE_TEST_MONGO', saved.mode);
  });

  function restore(name: string, value: string | undefined): void {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }

  function fakeMongod(file: string): string {
    writeFileSync(file, '#!/bin/sh\necho "this is not mongod" >&2\nexit 1\n');
    chmodSync(file, 0o755);
    return file;
  }

  test('MONGODB_TEST_URI wins, is not stopped, and its password stays out of logs', async () => {
    process.env.MONGODB_TEST_URI = 'mongodb://app:s3cret@db.example:27017/gravity';
    try {
      const b = await startMongo({label: 'chooser'});
      assert.equal(b.kind, 'external');
      assert.equal(b.uri, 'mongodb://app:s3cret@db.example:27017/gravity');
      assert.doesNotMatch(b.detail, /s3cret/);
      await b.stop();
    } finally {
      restore('MONGODB_TEST_URI', saved.uri);
    }
  });

  test('finds MONGOMS_SYSTEM_BINARY or a cached mongodb-memory-server binary, ignoring other files', async () => {
    const cache = path.join(dir, 'cache');
    await import('node:fs/promises').then((fs) => fs.mkdir(cache));
    writeFileSync(path.join(cache, 'mongod-x64-debian12-7.0.14.lock'), '');
    writeFileSync(path.join(cache, 'mongod-x64-debian12-7.0.14'), 'not executable');
    assert.equal(await findLocalMongod({MONGOMS_DOWNLOAD_DIR: cache, HOME: dir}), undefined);
    const cached = fakeMongod(path.join(cache, 'mongod-x64-debian12-7.0.14'));
    assert.equal(await findLocalMongod({MONGOMS_DOWNLOAD_DIR: cache}), cached);
    const system = fakeMongod(path.join(dir, 'mongod'));
    assert.equal(await findLocalMongod({MONGOMS_SYSTEM_BINARY: system, MONGOMS_DOWNLOAD_DIR: cache}), system);
  });

  test('without a usable mongod it falls back to the test server quickly and says why', async () => {
    delete process.env.MONGODB_TEST_URI;
    process.env.MONGOMS_SYSTEM_BINARY = fakeMongod(path.join(dir, 'broken-mongod'));
    const started = performance.now();
    try {
      const b = await startMongo({label: 'chooser'});
      try {
        assert.equal(b.kind, 'test-server');
        assert.match(b.detail, /broken-mongod failed to start/);
        const c = await new MongoClient(b.uri, {serverSelectionTimeoutMS: 2000}).connect();
        assert.equal((await c.db('x').command({ping: 1})).ok, 1);
        await c.close();
      } finally {
        await b.stop();
      }
      assert.ok(performance.now() - started < 10_000, 'must not wait on a download');
    } finally {
      restore('MONGODB_TEST_URI', saved.uri);
      restore('MONGOMS_SYSTEM_BINARY', saved.binary);
    }
  });
});
