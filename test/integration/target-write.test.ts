/**
 * The risks of the write path, one test each: what the compare-and-swap detects, the size limits,
 * `_id` equality across numeric types, retries, an interrupted collection creation, and the scratch
 * engine's collation. Expectations about the server come from the MongoDB manual (cited).
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, Decimal128, Double, Int32, Long} from 'bson';
import type {Document} from 'bson';
import {MongoServerError} from 'mongodb';

import {tempDir, writeSet} from './target-fixture.js';
import {mongoSuite} from '../support/mongo-suite.js';
import {GravityError} from '../../src/errors.js';
import {JournalWriter} from '../../src/restore-set/journal.js';
import {idKey} from '../../src/target/bson-util.js';
import {exactForm, MAX_DOCUMENT_BYTES} from '../../src/target/exact.js';
import {connectTarget, planSet, pushSet, verifySet} from '../../src/target/index.js';
import type {TargetConnection} from '../../src/target/types.js';
import {sendsRawBytes} from '../../src/target/raw-insert.js';
import {unchangedFilter, withRetry, WRITE_CONCERN} from '../../src/target/write.js';

const M = (entries: Array<[string, unknown]>): Map<string, unknown> => new Map(entries);

describe('write path risks', () => {
  const suite = mongoSuite('target-write');
  const cleanups = suite.cleanups;
  let n = 0;
  const dbName = () => `gr_write_${process.pid}_${++n}`;


  async function connect(db: string): Promise<TargetConnection> {
    const conn = await connectTarget({name: 'adhoc', uri: suite.mongo.uri, db, label: `test ${db}`});
    cleanups.push(() => conn.close());
    return conn;
  }

  describe('the compare-and-swap filter matches only the document as it was read', () => {
    // https://www.mongodb.com/docs/manual/reference/operator/query/expr/ with $$ROOT
    // (https://www.mongodb.com/docs/manual/reference/aggregation-variables/): whole-document equality
    // compares field by field in order (https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/#objects);
    // $bsonSize (https://www.mongodb.com/docs/manual/reference/operator/aggregation/bsonSize/) adds the byte size.
    const original = M([['_id', 1], ['title', 'Guernica'], ['price', new Int32(5)], ['tags', ['a', 'b']]]);
    const cases: Array<[string, Document]> = [
      ['a field added since', {$set: {added: true}}],
      ['a field removed since ({f: null} would match a missing field)', {$unset: {tags: ''}}],
      ['a field set to null', {$set: {title: null}}],
      ['a number changing type at the same value (Int32 5 → Double 5.0: another size)', {$set: {price: new Double(5)}}],
      ['fields reordered', {$unset: {title: ''}}],
    ];
    for (const [what, change] of cases) {
      it(`detects ${what}`, async () => {
        const coll = suite.client.db(dbName()).collection('c');
        await coll.insertOne(original as unknown as Document);
        const read = (await coll.find({}, {raw: true}).toArray())[0] as unknown as Uint8Array;
        await coll.updateOne({_id: 1} as Document, change);
        if (what.startsWith('fields reordered')) await coll.updateOne({_id: 1} as Document, {$set: {title: 'Guernica'}});
        const res = await coll.replaceOne(unchangedFilter(1, Buffer.from(read)), M([['_id', 1], ['v', 'overwritten']]) as unknown as Document);
        assert.equal(res.matchedCount, 0);
      });
    }
    it('matches the unchanged document, an embedded _id by its field order', async () => {
      const coll = suite.client.db(dbName()).collection('c');
      const id = M([['b', 1], ['1', 2]]);
      await coll.insertOne(M([['_id', id], ['by_year', M([['2021', 5], ['10', 1]])]]) as unknown as Document);
      const read = Buffer.from((await coll.find({}, {raw: true}).toArray())[0] as unknown as Uint8Array);
      const res = await coll.replaceOne(unchangedFilter(exactForm(read).doc.get('_id'), read), M([['_id', id], ['v', 2]]) as unknown as Document);
      assert.equal(res.matchedCount, 1);
    });
  });

  it('an overwrite of a document over 8 MB stays under the 16 MB statement limit', async () => {
    // https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-BSON-Document-Size
    const db = dbName();
    const big = (fill: string) => M([['_id', 1], ['blob', fill.repeat(9 * 1024 * 1024)]]);
    const {dir, cleanup} = await tempDir();
    cleanups.push(cleanup);
    const set = await writeSet(dir, [{db, name: 'big', docs: [Buffer.from(BSON.serialize(big('a')))]}]);
    await suite.client.db(db).collection('big').insertOne(big('b') as unknown as Document);
    const conn = await connect(db);
    const result = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'overwrite'});
    assert.deepEqual([result.collections.big?.overwritten, result.collections.big?.refused], [1, 0]);
    assert.equal((await verifySet(set, conn)).ok, true);
  });

  it('a document of exactly 16 MiB is inserted (mongod accepts it; the driver alone would refuse it)', async () => {
    // The limit is inclusive: https://www.mongodb.com/docs/manual/reference/limits/#mongodb-limit-BSON-Document-Size
    const db = dbName();
    const empty = BSON.serialize(M([['_id', 1], ['blob', '']])).length;
    const doc = Buffer.from(BSON.serialize(M([['_id', 1], ['blob', 'x'.repeat(MAX_DOCUMENT_BYTES - empty)]])));
    assert.equal(doc.length, MAX_DOCUMENT_BYTES);
    const {dir, cleanup} = await tempDir();
    cleanups.push(cleanup);
    const set = await writeSet(dir, [{db, name: 'huge', docs: [doc]}]);
    const conn = await connect(db);
    const result = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    assert.deepEqual([result.collections.huge?.inserted, result.collections.huge?.refused], [1, 0]);
    assert.equal((await verifySet(set, conn)).ok, true);
  });

  it('_id 1, NumberLong(1), 1.0 and NumberDecimal("1.00") are one _id; 0.1 and NumberDecimal("0.1") are two; subdocuments by field order', () => {
    // https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/#numeric-types
    const one = [1, new Int32(1), Long.fromNumber(1), new Double(1), Decimal128.fromString('1.00'), Decimal128.fromString('1E+0')].map(idKey);
    assert.equal(new Set(one).size, 1);
    assert.notEqual(idKey(new Double(0.1)), idKey(Decimal128.fromString('0.1')));
    assert.notEqual(idKey(Long.fromString('9007199254740993')), idKey(new Double(9007199254740992)));
    assert.notEqual(idKey(M([['b', 1], ['1', 2]])), idKey(M([['1', 2], ['b', 1]])));
  });

  it('transient errors are retried with backoff; a refusal is not', async () => {
    let calls = 0;
    const value = await withRetry(async () => {
      if (++calls < 3) throw new MongoServerError({code: 10107, errmsg: 'not primary', codeName: 'NotWritablePrimary'});
      return 'written';
    }, {attempts: 5, firstDelayMs: 1});
    assert.deepEqual([value, calls], ['written', 3]);
    calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw new MongoServerError({code: 121, errmsg: 'Document failed validation', codeName: 'DocumentValidationFailure'});
      }, {attempts: 5, firstDelayMs: 1}),
      (e: unknown) => e instanceof MongoServerError && e.code === 121,
    );
    assert.equal(calls, 1);
    // A replica set that lost its majority fails the write instead of blocking it forever.
    assert.equal(WRITE_CONCERN.wtimeoutMS, 60_000);
  });

  it('a validator refusal (code 121) is reported with its reason; --bypass-document-validation writes it, recorded', async () => {
    // https://www.mongodb.com/docs/manual/core/schema-validation/handle-invalid-documents/
    const db = dbName();
    await suite.client.db(db).createCollection('users', {validator: {$jsonSchema: {bsonType: 'object', required: ['email']}}});
    const {dir, cleanup} = await tempDir();
    cleanups.push(cleanup);
    const set = await writeSet(dir, [{db, name: 'users', docs: [{_id: 1, email: 'a@x'}, {_id: 2, name: 'no email'}]}]);
    const conn = await connect(db);
    const plan = await planSet(set, conn);
    assert.equal(plan.targetChecks.users?.validator, true);
    const result = await pushSet(set, conn, plan, {onConflict: 'skip'});
    assert.deepEqual([result.collections.users?.inserted, result.collections.users?.refused], [1, 1]);
    assert.equal(result.refusedDetails[0]?.code, 121);
    assert.equal((await verifySet(set, conn)).ok, false);
    const bypass = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip', bypassDocumentValidation: true});
    assert.deepEqual([bypass.collections.users?.inserted, bypass.complete], [1, true]);
    assert.equal((await verifySet(set, conn)).ok, true);
  });

  it("inserts send the set's own bytes, and each refusal is pinned on its own document", async () => {
    // The locked driver version builds an insert's documents from bytes (src/target/raw-insert.ts); if
    // an upgrade takes that away, pushes still work re-encoded, slower, and this says so.
    assert.equal(sendsRawBytes(), true);
    // ordered: false goes on after a refused document; writeErrors[].index is its position in the command.
    // https://www.mongodb.com/docs/manual/reference/command/insert/#output
    const db = dbName();
    await suite.client.db(db).createCollection('users', {validator: {$jsonSchema: {bsonType: 'object', required: ['email']}}});
    const {dir, cleanup} = await tempDir();
    cleanups.push(cleanup);
    const docs = [
      M([['_id', 1], ['email', 'a@x']]),
      M([['_id', 2], ['name', 'no email']]),
      // Integer-like keys after others: a plain object would put them first.
      M([['_id', 3], ['email', 'c@x'], ['b', 1], ['10', M([['z', 1], ['2', 2]])]]),
      M([['_id', 4], ['name', 'no email either']]),
    ].map((d) => Buffer.from(BSON.serialize(d)));
    const set = await writeSet(dir, [{db, name: 'users', docs}]);
    const conn = await connect(db);
    const result = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    assert.deepEqual([result.collections.users?.inserted, result.collections.users?.refused], [2, 2]);
    assert.deepEqual(result.refusedDetails.map((r) => [r._id, r.code]), [[{$numberInt: '2'}, 121], [{$numberInt: '4'}, 121]]);
    const stored = (await suite.client.db(db).collection('users').find({}, {raw: true, sort: {_id: 1}}).toArray()) as unknown as Uint8Array[];
    assert.deepEqual(stored.map((b) => Buffer.from(b).toString('hex')), [docs[0]!, docs[2]!].map((b) => b.toString('hex')));
  });

  it('a push that died between createCollection and createIndexes builds the unique index when resumed', async () => {
    const db = dbName();
    const {dir, cleanup} = await tempDir();
    cleanups.push(cleanup);
    const set = await writeSet(dir, [{db, name: 'users', docs: [{_id: 1, email: 'a@x'}], indexes: [{v: 2, key: {email: 1}, name: 'email_1', unique: true}]}]);
    const conn = await connect(db);
    const plan = await planSet(set, conn);
    // What the dead push left: the collection, no index, a journal that says it was creating it.
    await suite.client.db(db).createCollection('users');
    const journal = await JournalWriter.create(set, {type: 'begin', op: 'push', target: 'adhoc', targetLabel: conn.spec.label, setHash: set.hash, planHash: plan.hash, onConflict: 'skip', time: new Date().toISOString()});
    await journal.append({type: 'creating', collection: 'users', db, indexes: ['email_1']});
    await journal.close();
    const result = await pushSet(set, conn, plan, {onConflict: 'skip'});
    assert.equal(result.resumed, true);
    const names = (await suite.client.db(db).collection('users').listIndexes().toArray()).map((ix) => ix.name);
    assert.ok(names.includes('email_1'), `indexes: ${names.join(', ')}`);
  });

  it('--inexact write stores the re-encoded form, recorded: verify accepts it, rollback removes it', async () => {
    const db = dbName();
    const {dir, cleanup} = await tempDir();
    cleanups.push(cleanup);
    // {_id: "u", legacy: undefined}: BSON undefined has no object form; the driver writes null.
    const undef = Buffer.from('1a000000025f69640002000000750006'.concat(Buffer.from('legacy').toString('hex'), '0000'), 'hex');
    undef.writeInt32LE(undef.length, 0);
    const set = await writeSet(dir, [{db, name: 'legacy', docs: [undef]}]);
    const conn = await connect(db);
    const plan = await planSet(set, conn);
    assert.equal(plan.collections.legacy?.notExact, 1);
    await assert.rejects(pushSet(set, conn, plan, {onConflict: 'skip'}), (e: unknown) => e instanceof GravityError && e.code === 'NOT_EXACT');
    const result = await pushSet(set, conn, plan, {onConflict: 'skip', inexact: 'write'});
    assert.deepEqual([result.collections.legacy?.inserted, result.collections.legacy?.refused], [1, 0]);
    const stored = (await suite.client.db(db).collection('legacy').find({}, {raw: true}).toArray())[0] as unknown as Uint8Array;
    assert.equal(Buffer.from(stored).toString('hex'), Buffer.from(BSON.serialize({_id: 'u', legacy: null})).toString('hex'), 'written as the driver can: null');
    assert.equal((await verifySet(set, conn)).ok, true);
    const {rollbackSet} = await import('../../src/target/index.js');
    const undo = await rollbackSet(set, conn);
    assert.equal(undo.collections.legacy?.deleted, 1);
  });

  it('a malformed host list is refused before the driver sees it', async () => {
    await assert.rejects(connectTarget({name: 'adhoc', uri: 'mongodb://u:pw@h1,,h2/db', db: null, label: 'x'}), (e: unknown) => e instanceof GravityError && e.code === 'TARGET_INVALID');
  });
});
