/**
 * Guards of plan, push and verify that a one-line slip would switch off without any other test
 * noticing (each was found by mutation testing, see bench/MUTATION.md), through bin/run.js:
 * the per-document exact-form check, the sparse and compound rules of clash prediction, and verify
 * not taking a document the server stored with other bytes for a present one.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, ObjectId, Timestamp} from 'bson';
import type {Document} from 'bson';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {rawDocument} from '../support/bson-fixtures.js';
import {json, runCli} from '../support/cli.js';
import {withDb} from '../support/mongo-backend.js';
import {mongoSuite} from '../support/mongo-suite.js';

const M = (entries: Array<[string, unknown]>): Map<string, unknown> => new Map(entries);
const bytes = (doc: Map<string, unknown>): Buffer => Buffer.from(BSON.serialize(doc));

function cstring(s: string): Buffer {
  return Buffer.from(`${s}\0`, 'utf8');
}

function stringValue(s: string): Buffer {
  const body = cstring(s);
  const len = Buffer.alloc(4);
  len.writeInt32LE(body.length, 0);
  return Buffer.concat([len, body]);
}

interface PlanJson {
  collections: Record<string, {insert: number; same: number; clash: number; notExact: number}>;
  notExact: Record<string, Record<string, string>>;
  clashes: Record<string, Record<string, {index: string; targetId: string; key: Record<string, unknown>}>>;
}

describe('plan, push and verify guards that must not be switched off, through bin/run.js', () => {
  const suite = mongoSuite('cli-target-guards');
  let n = 0;
  const dbName = () => `gr_guard_${process.pid}_${++n}`;
  const target = (db: string) => withDb(suite.mongo.uri, db);

  async function set(db: string, name: string, docs: Buffer[], indexes: Document[] = []): Promise<string> {
    const {dir, cleanup} = await tempDir('gr-guard-');
    suite.cleanups.push(cleanup);
    await writeSet(dir, [{db, name, docs, indexes}]);
    return dir;
  }

  it('a regular expression stored with its options out of order ("mi") is named not exact: bson writes it back as "im"', async () => {
    // The BSON spec stores regex options in alphabetical order (https://bsonspec.org/spec.html,
    // "regex"); a backup may still hold them as another writer left them, and serialising the
    // decoded value sorts them, so these bytes cannot be written back as they are.
    const db = dbName();
    const unsorted = rawDocument([
      {type: 0x02, key: '_id', value: stringValue('mi')},
      {type: 0x0b, key: 'r', value: Buffer.concat([cstring('^a.b$'), cstring('mi')])},
    ]);
    const sorted = rawDocument([
      {type: 0x02, key: '_id', value: stringValue('im')},
      {type: 0x0b, key: 'r', value: Buffer.concat([cstring('^a.b$'), cstring('im')])},
    ]);
    const dir = await set(db, 'patterns', [unsorted, sorted]);
    const plan = json<PlanJson>(await runCli(['plan', dir, '--to', target(db), '--json']));
    assert.equal(plan.collections.patterns?.notExact, 1, 'only the unsorted options are not exact');
    assert.deepEqual(Object.keys(plan.notExact.patterns ?? {}), ['"mi"']);
    assert.match(plan.notExact.patterns?.['"mi"'] ?? '', /does not give back the stored bytes/);
    const push = await runCli(['push', dir, '--to', target(db), '--yes']);
    assert.equal(push.code, 8, `${push.stdout}${push.stderr}`);
    assert.equal(await suite.client.db(db).collection('patterns').countDocuments(), 0, 'nothing written');
    // Told to skip it, the sorted one goes in byte for byte and verify passes.
    const skip = await runCli(['push', dir, '--to', target(db), '--yes', '--inexact', 'skip', '--json']);
    assert.equal(skip.code, 0, skip.stderr);
    const stored = (await suite.client.db(db).collection('patterns').find({}, {raw: true}).toArray()) as unknown as Uint8Array[];
    assert.deepEqual(stored.map((d) => Buffer.from(d).toString('hex')), [sorted.toString('hex')]);
  });

  it('a sparse unique index: two documents that both lack the field do not clash; the same key does', async () => {
    // "An index that is both sparse and unique prevents a collection from having documents with
    // duplicate values for a field but allows multiple documents that omit the key."
    // https://www.mongodb.com/docs/manual/core/index-sparse/#sparse-and-unique-properties
    const db = dbName();
    const coll = suite.client.db(db).collection<Document>('members');
    await coll.createIndex({badge: 1}, {unique: true, sparse: true, name: 'badge_sparse'});
    await coll.insertMany([{_id: 'held-no-badge' as never, name: 'Ann'}, {_id: 'held-badge' as never, name: 'Ben', badge: 'B-7'}]);
    const docs = [bytes(M([['_id', 'no-badge'], ['name', 'Cy']])), bytes(M([['_id', 'same-badge'], ['name', 'Di'], ['badge', 'B-7']]))];
    const dir = await set(db, 'members', docs, [{v: 2, key: {badge: 1}, name: 'badge_sparse', unique: true, sparse: true}]);
    const plan = json<PlanJson>(await runCli(['plan', dir, '--to', target(db), '--json']));
    assert.deepEqual([plan.collections.members?.insert, plan.collections.members?.clash], [1, 1]);
    assert.deepEqual(plan.clashes.members, {'"same-badge"': {index: 'badge_sparse', targetId: '"held-badge"', key: {badge: 'B-7'}}});
    const push = json<{collections: Record<string, {inserted: number; refused: number}>}>(await runCli(['push', dir, '--to', target(db), '--yes', '--json']));
    assert.deepEqual([push.collections.members?.inserted, push.collections.members?.refused], [1, 1], 'the server agrees with the plan');
    assert.ok(await coll.findOne({_id: 'no-badge' as never}), 'the document without the field was inserted');
  });

  it('a compound unique index: plan names the index and the holder of the whole key, not of a part of it', async () => {
    // A compound unique index refuses a repeat of the combination of its fields, not of one field.
    // https://www.mongodb.com/docs/manual/core/index-unique/#unique-compound-index
    const db = dbName();
    const coll = suite.client.db(db).collection<Document>('seats');
    await coll.createIndex({show: 1, seat: 1}, {unique: true, name: 'show_seat'});
    const holder = new ObjectId('6560f00d0000000000000def');
    await coll.insertOne({_id: holder, show: 'matinee', seat: 'A1'});
    const docs = [
      bytes(M([['_id', 'taken'], ['show', 'matinee'], ['seat', 'A1']])),
      bytes(M([['_id', 'other-seat'], ['show', 'matinee'], ['seat', 'A2']])),
      bytes(M([['_id', 'other-show'], ['show', 'evening'], ['seat', 'A1']])),
    ];
    const dir = await set(db, 'seats', docs, [{v: 2, key: {show: 1, seat: 1}, name: 'show_seat', unique: true}]);
    const plan = json<PlanJson>(await runCli(['plan', dir, '--to', target(db), '--json']));
    assert.deepEqual([plan.collections.seats?.insert, plan.collections.seats?.clash], [2, 1]);
    assert.deepEqual(plan.clashes.seats, {'"taken"': {index: 'show_seat', targetId: `{"$oid":"${holder.toHexString()}"}`, key: {show: 'matinee', seat: 'A1'}}});
    const human = await runCli(['plan', dir, '--to', target(db)]);
    assert.match(`${human.stdout}`, /show_seat/);
    assert.match(`${human.stdout}`, new RegExp(holder.toHexString()));
  });

  it('verify does not count a document the server stored with other bytes (a read-back mismatch) as present', async () => {
    // mongod replaces an empty Timestamp(0, 0) in a top-level field with the current time on insert:
    // https://www.mongodb.com/docs/manual/reference/bson-types/#timestamps
    // Written anyway (--inexact write), it reads back other than the set and is journaled as such.
    const db = dbName();
    const emptyTs = bytes(M([['_id', 'ts0'], ['at', new Timestamp({t: 0, i: 0})]]));
    const fine = bytes(M([['_id', 'fine'], ['v', 1]]));
    const dir = await set(db, 'events', [emptyTs, fine]);
    const push = await runCli(['push', dir, '--to', target(db), '--yes', '--inexact', 'write', '--json']);
    const pushed = json<{collections: Record<string, {inserted: number; refused: number}>}>(push);
    assert.deepEqual([pushed.collections.events?.inserted, pushed.collections.events?.refused], [1, 1]);
    const stored = await suite.client.db(db).collection('events').findOne({_id: 'ts0' as never});
    assert.ok(stored && !(stored.at as Timestamp).isZero(), 'the server filled the timestamp in');
    const verify = await runCli(['verify', dir, '--to', target(db), '--json']);
    assert.equal(verify.code, 8, verify.stdout);
    const result = json<{ok: boolean; collections: Record<string, {present: number; different: number}>; problems: Array<{_id: unknown; problem: string}>}>(verify);
    assert.equal(result.ok, false);
    assert.deepEqual([result.collections.events?.present, result.collections.events?.different], [1, 1]);
    assert.deepEqual(result.problems, [{collection: 'events', _id: 'ts0', problem: 'different'}]);
  });
});
