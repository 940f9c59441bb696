/**
 * One set of assertions about MongoDB behaviour this project relies on, run against every
 * backend available: always the in-repo test server, plus real mongod (or MONGODB_TEST_URI) when
 * startMongo() finds one. The test server is held to what mongod does, not the other way round.
 */
import {after, before, describe, test} from 'node:test';
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
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
      assert.deepEqual(Object.keys(created!), ['_id', 'code', 'v', 'created']);
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

    test('10,000 inserts in batches of 1000 and a full read stay fast', async () => {
      const coll = db.collection<Loose>('bulk');
      const started = performance.now();
      for (let b = 0; b < 10; b++) {
        await coll.insertMany(Array.from({length: 1000}, (_, i) => ({n: b * 1000 + i, name: `artwork ${i}`, tags: ['a', 'b'], at: new Date()})));
      }
      const all = await coll.find().toArray();
      const ms = performance.now() - started;
      console.log(`mongo-contract: ${backend.name}: 10k inserts + full read in ${ms.toFixed(0)} ms`);
      assert.equal(all.length, 10_000);
      assert.ok(ms < 4000, `took ${ms.toFixed(0)} ms`);
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
  const saved = {uri: process.env.MONGODB_TEST_URI, binary: process.env.MONGOMS_SYSTEM_BINARY};
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'gr-mongo-backend-'));
  });

  after(() => {
    rmSync(dir, {recursive: true, force: true});
    restore('MONGODB_TEST_URI', saved.uri);
    restore('MONGOMS_SYSTEM_BINARY', saved.binary);
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
