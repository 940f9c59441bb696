import assert from 'node:assert/strict';
import {writeFile} from 'node:fs/promises';
import {after, before, describe, it} from 'node:test';

import {Binary} from 'bson';
import type {Document} from 'bson';
import {MongoClient} from 'mongodb';

import {startMongo} from '../support/mongo-backend.js';
import type {MongoBackend} from '../support/mongo-backend.js';
import {tempDir, writeSet} from './target-fixture.js';
import type {FixtureCollection} from './target-fixture.js';
import {maskUri} from '../../src/config/redact.js';
import {GravityError} from '../../src/errors.js';
import {allRecords, listJournals} from '../../src/restore-set/journal.js';
import {readLedger} from '../../src/restore-set/ledger.js';
import {connectTarget, planSet, pushSet, rollbackSet} from '../../src/target/index.js';
import type {TargetSpec} from '../../src/target/types.js';

let backend: MongoBackend;
let admin: MongoClient;
const cleanups: Array<() => Promise<void>> = [];
let counter = 0;

before(async () => {
  backend = await startMongo({label: 'target-rollback'});
  console.error(`# MongoDB backend: ${backend.kind} (${backend.detail})`);
  admin = new MongoClient(backend.uri);
  await admin.connect();
});
after(async () => {
  for (const c of cleanups) await c();
  await admin?.close();
  await backend?.stop();
});

async function fixture(collections: (db: string) => FixtureCollection[]) {
  const db = `gr_rollback_${process.pid}_${++counter}`;
  const tmp = await tempDir();
  const set = await writeSet(tmp.dir, collections('gravity'));
  const spec: TargetSpec = {name: 'staging', uri: backend.uri, db, label: `staging (${maskUri(backend.uri)}/${db})`};
  const conn = await connectTarget(spec);
  cleanups.push(async () => {
    await conn.close();
    await admin.db(db).dropDatabase().catch(() => undefined);
    await tmp.cleanup();
  });
  return {set, conn, db: admin.db(db)};
}

const all = async (db: ReturnType<MongoClient['db']>, coll: string) => db.collection(coll).find({}).sort({_id: 1}).toArray();

describe('rollbackSet', () => {
  it('without a push: JOURNAL_MISSING', async () => {
    const {set, conn} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1}]}]);
    await assert.rejects(rollbackSet(set, conn), (e: unknown) => e instanceof GravityError && e.code === 'JOURNAL_MISSING' && e.exitCode === 3);
  });

  it('deletes inserted documents still as inserted, leaves edited ones and reports them', async () => {
    const {set, conn, db} = await fixture((g) => [
      {db: g, name: 'artworks', docs: [{_id: 1, a: 1}, {_id: 2, a: 2}, {_id: 3, a: 3}]},
      {db: g, name: 'sale_artworks', docs: [{_id: 10, artwork_id: 1}]},
    ]);
    await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    await db.collection('artworks').updateOne({_id: 2} as Document, {$set: {a: 'edited after the push'}});
    await db.collection('artworks').deleteOne({_id: 3} as Document);
    const result = await rollbackSet(set, conn);
    assert.deepEqual(result.collections, {artworks: {deleted: 1, restored: 0, skipped: 1, alreadyUndone: 1}, sale_artworks: {deleted: 1, restored: 0, skipped: 0, alreadyUndone: 0}});
    assert.deepEqual(
      result.skippedDetails.map((s) => [s._id, s.reason]),
      [[{$numberInt: '2'}, 'changed after the push (left as is)']],
    );
    assert.deepEqual(await all(db, 'artworks'), [{_id: 2, a: 'edited after the push'}]);
    assert.deepEqual(await all(db, 'sale_artworks'), []);
    const ledger = await readLedger(set);
    assert.deepEqual(ledger.map((l) => [l.action, l.outcome]), [['push', 'ok'], ['rollback', 'partial']]);
    const rollbackJournal = (await listJournals(set)).find((j) => j.begin.op === 'rollback');
    assert.ok(rollbackJournal?.finished);
    assert.ok((await allRecords(rollbackJournal!)).some((r) => r.type === 'intent' && (r.delete ?? []).length === 1));
    // A partial rollback is not final: once the edit is undone, a second rollback removes what the first left.
    const again = await rollbackSet(set, conn);
    // What the first rollback removed is found gone and counted as already undone, with the one deleted by hand.
    assert.deepEqual(again.collections.artworks, {deleted: 0, restored: 0, skipped: 1, alreadyUndone: 2}, 'still edited: left alone again');
    await db.collection('artworks').updateOne({_id: 2} as Document, {$set: {a: 2}});
    const last = await rollbackSet(set, conn);
    assert.deepEqual(last.collections, {artworks: {deleted: 1, restored: 0, skipped: 0, alreadyUndone: 2}, sale_artworks: {deleted: 0, restored: 0, skipped: 0, alreadyUndone: 1}});
    assert.deepEqual(await all(db, 'artworks'), []);
    assert.deepEqual((await readLedger(set)).map((l) => l.outcome), ['ok', 'partial', 'partial', 'ok']);
    await assert.rejects(rollbackSet(set, conn), (e: unknown) => e instanceof GravityError && e.code === 'JOURNAL_MISSING');
  });

  it('a journal whose inserts carry no digest (written by an earlier version) is undone by the set\'s own bytes', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1, a: 1}, {_id: 2, a: 2}, {_id: 3, a: 3}]}]);
    await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    const [journal] = await listJournals(set, 'staging');
    const records = await allRecords(journal!);
    assert.ok(records.some((r) => r.type === 'intent' && (r.insertSha256 ?? []).length === 3), 'inserts record their digest');
    const older = records.map((r) => (r.type === 'intent' ? {...r, insertSha256: undefined} : r));
    await writeFile(journal!.path, `${older.map((r) => JSON.stringify(r)).join('\n')}\n`);
    await db.collection('artworks').updateOne({_id: 2} as Document, {$set: {a: 'edited after the push'}});
    const result = await rollbackSet(set, conn);
    assert.deepEqual(result.collections.artworks, {deleted: 2, restored: 0, skipped: 1, alreadyUndone: 0});
    assert.deepEqual(await all(db, 'artworks'), [{_id: 2, a: 'edited after the push'}]);
  });

  it('restores pre-images of overwritten documents unless they changed after the push', async () => {
    // A subtype-4 binary of 5 bytes cannot go through Extended JSON; the journal's BSON copy restores it exactly.
    const odd = new Binary(Buffer.from('12345'), 4);
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1, a: 'backup'}, {_id: 2, a: 'backup'}, {_id: 3, a: 'new'}]}]);
    await db.collection('artworks').insertMany([{_id: 1, a: 'before push', odd}, {_id: 2, a: 'before push'}] as Document[]);
    const push = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'overwrite'});
    assert.deepEqual(push.collections.artworks, {inserted: 1, overwritten: 2, skipped: 0, conflicts: 0, refused: 0, excluded: 0});
    await db.collection('artworks').updateOne({_id: 2} as Document, {$set: {a: 'edited after the push'}});
    const result = await rollbackSet(set, conn);
    assert.deepEqual(result.collections.artworks, {deleted: 1, restored: 1, skipped: 1, alreadyUndone: 0});
    const docs = await db.collection('artworks').find({}).sort({_id: 1}).toArray();
    assert.equal(docs.length, 2);
    assert.equal(docs[0]?.a, 'before push');
    assert.deepEqual(Buffer.from((docs[0]?.odd as Binary).buffer), Buffer.from('12345'));
    assert.equal(docs[1]?.a, 'edited after the push');
    assert.equal(result.skippedDetails[0]?.reason, 'changed after the push (left as is)');
  });

  it('undoes every push not yet rolled back, not only the newest', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1}, {_id: 2}]}]);
    await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    // The second push finds everything in place and writes nothing.
    await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    const result = await rollbackSet(set, conn);
    assert.equal(result.rolledBack.length, 2);
    assert.equal(result.collections.artworks?.deleted, 2);
    assert.equal(await db.collection('artworks').countDocuments(), 0);
  });
});
