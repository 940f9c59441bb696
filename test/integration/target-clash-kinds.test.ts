/**
 * Clash prediction for the kinds of unique index mongod has besides a plain one: partial, collated,
 * multikey (an array value), on a nested path, and with a validator beside it. Each prediction is
 * checked against what the server then does with the same documents (the push refuses exactly the
 * predicted ones). https://www.mongodb.com/docs/manual/core/index-unique/ ,
 * https://www.mongodb.com/docs/manual/core/index-partial/#partial-index-with-unique-constraint ,
 * https://www.mongodb.com/docs/manual/core/index-unique/#unique-constraint-across-separate-documents
 * (a multikey unique index refuses another document holding any one of the array's elements),
 * https://www.mongodb.com/docs/manual/reference/collation/ (strength 2 ignores case).
 */
import assert from 'node:assert/strict';
import {after, before, describe, it} from 'node:test';

import type {Document} from 'bson';
import {MongoClient} from 'mongodb';

import {startMongo} from '../support/mongo-backend.js';
import type {MongoBackend} from '../support/mongo-backend.js';
import {tempDir, writeSet} from './target-fixture.js';
import type {FixtureCollection} from './target-fixture.js';
import {maskUri} from '../../src/config/redact.js';
import {connectTarget, planSet, pushSet} from '../../src/target/index.js';
import type {TargetSpec} from '../../src/target/types.js';

let backend: MongoBackend;
let admin: MongoClient;
const cleanups: Array<() => Promise<void>> = [];
let counter = 0;

before(async () => {
  backend = await startMongo({label: 'target-clash-kinds'});
  admin = await new MongoClient(backend.uri).connect();
});
after(async () => {
  for (const c of cleanups) await c();
  await admin?.close();
  await backend?.stop();
});

async function fixture(collections: FixtureCollection[]) {
  const db = `gr_clash_${process.pid}_${++counter}`;
  const tmp = await tempDir();
  const set = await writeSet(tmp.dir, collections);
  const spec: TargetSpec = {name: 'staging', uri: backend.uri, db, label: `staging (${maskUri(backend.uri)}/${db})`};
  const conn = await connectTarget(spec);
  cleanups.push(async () => {
    await conn.close();
    await admin.db(db).dropDatabase().catch(() => undefined);
    await tmp.cleanup();
  });
  return {set, conn, db: admin.db(db)};
}

/** Plan, then push what the plan did not predict as a clash too: the server must refuse exactly the predicted ones. */
async function predictedAndRefused(set: Awaited<ReturnType<typeof fixture>>['set'], conn: Awaited<ReturnType<typeof fixture>>['conn'], name: string) {
  const plan = await planSet(set, conn);
  const result = await pushSet(set, conn, plan, {onConflict: 'skip'});
  const refused = result.refusedDetails.filter((r) => r.codeName === 'DuplicateKey').map((r) => JSON.stringify(r._id)).sort();
  return {plan, clashes: plan.clashes[name] ?? {}, refused, counts: plan.collections[name]};
}

describe('clash prediction across kinds of unique index', () => {
  it('a partial unique index: only documents its filter selects can clash', async () => {
    const {set, conn, db} = await fixture([{db: 'gravity', name: 'accounts', docs: [
      {_id: 'active-dup', email: 'a@x', active: true},
      {_id: 'inactive-dup', email: 'a@x', active: false},
    ]}]);
    await db.collection('accounts').createIndex({email: 1}, {unique: true, partialFilterExpression: {active: true}, name: 'email_active'});
    await db.collection('accounts').insertOne({_id: 'holder', email: 'a@x', active: true} as Document);
    const {clashes, refused, counts} = await predictedAndRefused(set, conn, 'accounts');
    assert.deepEqual(clashes, {'"active-dup"': {index: 'email_active', targetId: '"holder"', key: {email: 'a@x'}}});
    assert.deepEqual([counts?.insert, counts?.clash], [1, 1]);
    assert.deepEqual(refused, ['"active-dup"']);
  });

  it('a collated unique index: keys equal under its collation clash, whatever their case', async () => {
    const {set, conn, db} = await fixture([{db: 'gravity', name: 'people', docs: [{_id: 'upper', email: 'ADA@X'}, {_id: 'other', email: 'bob@x'}]}]);
    await db.collection('people').createIndex({email: 1}, {unique: true, collation: {locale: 'en', strength: 2}, name: 'email_ci'});
    await db.collection('people').insertOne({_id: 'holder', email: 'ada@x'} as Document);
    const {clashes, refused} = await predictedAndRefused(set, conn, 'people');
    assert.deepEqual(clashes, {'"upper"': {index: 'email_ci', targetId: '"holder"', key: {email: 'ADA@X'}}});
    assert.deepEqual(refused, ['"upper"']);
  });

  it('a multikey unique index: one shared element is a clash; an empty array is a key of its own', async () => {
    const {set, conn, db} = await fixture([{db: 'gravity', name: 'tagged', docs: [
      {_id: 'shares-b', tags: ['z', 'b']},
      {_id: 'fresh', tags: ['x', 'y']},
      {_id: 'empty', tags: []},
    ]}]);
    await db.collection('tagged').createIndex({tags: 1}, {unique: true, name: 'tags_1'});
    await db.collection('tagged').insertMany([{_id: 'holder', tags: ['a', 'b']}, {_id: 'empty-holder', tags: []}] as Document[]);
    const {clashes, refused, counts} = await predictedAndRefused(set, conn, 'tagged');
    assert.deepEqual(Object.keys(clashes).sort(), ['"empty"', '"shares-b"']);
    assert.equal(clashes['"shares-b"']?.targetId, '"holder"');
    assert.equal(clashes['"empty"']?.targetId, '"empty-holder"');
    assert.deepEqual([counts?.insert, counts?.clash], [1, 2]);
    assert.deepEqual(refused, ['"empty"', '"shares-b"']);
  });

  it('a unique index on a nested path, beside a validator: the holder is found through the path; the validator is reported', async () => {
    const {set, conn, db} = await fixture([{db: 'gravity', name: 'vendors', docs: [{_id: 'dup', contact: {email: 'v@x', name: 'V'}}, {_id: 'new', contact: {email: 'w@x'}}]}]);
    await db.createCollection('vendors', {validator: {contact: {$exists: true}}});
    await db.collection('vendors').createIndex({'contact.email': 1}, {unique: true, name: 'contact_email'});
    await db.collection('vendors').insertOne({_id: 'holder', contact: {email: 'v@x'}} as Document);
    const {plan, clashes, refused} = await predictedAndRefused(set, conn, 'vendors');
    assert.deepEqual(clashes, {'"dup"': {index: 'contact_email', targetId: '"holder"', key: {'contact.email': 'v@x'}}});
    assert.deepEqual(refused, ['"dup"']);
    const checks = plan.targetChecks?.vendors as {uniqueIndexes: string[]; validator: boolean; validationLevel?: string; validationAction?: string} | undefined;
    assert.deepEqual(checks && [checks.uniqueIndexes, checks.validator, checks.validationLevel, checks.validationAction], [['contact_email'], true, 'strict', 'error']);
  });
});
