import assert from 'node:assert/strict';
import {readFile, writeFile} from 'node:fs/promises';
import {createServer} from 'node:net';
import {after, before, describe, it} from 'node:test';

import {BSON, Double, Int32, Long, ObjectId} from 'bson';
import type {Document} from 'bson';
import {MongoClient} from 'mongodb';

import {startMongo} from '../support/mongo-backend.js';
import type {MongoBackend} from '../support/mongo-backend.js';
import {startTestMongoServer} from '../support/mongo-server/index.js';
import {tempDir, writeSet} from './target-fixture.js';
import type {FixtureCollection} from './target-fixture.js';
import {maskUri} from '../../src/config/redact.js';
import {GravityError} from '../../src/errors.js';
import {allRecords, listJournals} from '../../src/restore-set/journal.js';
import {readLedger} from '../../src/restore-set/ledger.js';
import {checkPushGate} from '../../src/target/gates.js';
import {connectTarget, planSet, pushSet, readPlan, rollbackSet, savePlan, verifySet} from '../../src/target/index.js';
import {finishPlan, newPlan} from '../../src/target/plan.js';
import {findRaw} from '../../src/target/raw-find.js';
import type {TargetConnection, TargetSpec} from '../../src/target/types.js';

let backend: MongoBackend;
let admin: MongoClient;
const cleanups: Array<() => Promise<void>> = [];
let counter = 0;

before(async () => {
  backend = await startMongo({label: 'target-push'});
  console.error(`# MongoDB backend: ${backend.kind} (${backend.detail})`);
  admin = new MongoClient(backend.uri);
  await admin.connect();
});
after(async () => {
  for (const c of cleanups) await c();
  await admin?.close();
  await backend?.stop();
});

/** A fresh database and a restore set in a temp dir, for one test. */
async function fixture(collections: (db: string) => FixtureCollection[], name: TargetSpec['name'] = 'staging') {
  const db = `gr_push_${process.pid}_${++counter}`;
  const tmp = await tempDir();
  const set = await writeSet(tmp.dir, collections('gravity'));
  const spec: TargetSpec = {name, uri: backend.uri, db, label: `${name} (${maskUri(backend.uri)}/${db})`};
  const conn = await connectTarget(spec);
  cleanups.push(async () => {
    await conn.close();
    await admin.db(db).dropDatabase().catch(() => undefined);
    await tmp.cleanup();
  });
  return {set, spec, conn, db: admin.db(db)};
}

/**
 * A connection to a test server of the test's own, which `stopServer` takes away (once) mid-operation.
 * A short selection window: after the loss an operation waits that long for the server to come back.
 */
async function onOwnServer(spec: TargetSpec, body: (conn: TargetConnection, stopServer: () => void) => Promise<void>): Promise<void> {
  const own = await startTestMongoServer();
  let stopped = false;
  const conn = await connectTarget({...spec, uri: own.uri}, {timeoutMs: 1000, selectionMs: 1000});
  try {
    await body(conn, () => {
      if (stopped) return;
      stopped = true;
      void own.close();
    });
  } finally {
    await conn.close();
    if (!stopped) await own.close();
  }
}

const artworks = (n: number, extra: Document = {}) =>
  Array.from({length: n}, (_, i) => ({_id: new ObjectId(i.toString(16).padStart(24, '0')), title: `artwork ${i}`, n: new Int32(i), price: new Double(i + 0.5), ...extra}));

async function rawIds(db: ReturnType<MongoClient['db']>, coll: string): Promise<string[]> {
  return (await db.collection(coll).find({}, {projection: {_id: 1}}).toArray()).map((d) => String(d._id));
}

describe('connectTarget', () => {
  it('fails within ~6 s on a closed port, with TARGET_UNREACHABLE and no password in the message', async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as {port: number}).port;
        srv.close(() => resolve(p));
      });
    });
    const spec: TargetSpec = {name: 'staging', uri: `mongodb://admin:hunter2@127.0.0.1:${port}/gravity`, db: 'gravity', label: `staging (mongodb://admin:****@127.0.0.1:${port}/gravity)`};
    const started = Date.now();
    await assert.rejects(connectTarget(spec), (error: unknown) => {
      assert.ok(error instanceof GravityError);
      assert.equal(error.code, 'TARGET_UNREACHABLE');
      assert.doesNotMatch(`${error.message} ${error.hint}`, /hunter2/);
      assert.match(error.message, /admin:\*\*\*\*@/);
      return true;
    });
    assert.ok(Date.now() - started < 6500, `took ${Date.now() - started} ms`);
  });

  it('rejects a malformed connection string as TARGET_INVALID without echoing the password', async () => {
    const spec: TargetSpec = {name: 'adhoc', uri: 'mongodb://u:pa55word@', db: null, label: 'adhoc'};
    await assert.rejects(connectTarget(spec, {timeoutMs: 1000}), (error: unknown) => {
      assert.ok(error instanceof GravityError);
      // A URI without a host is bad input (exit 2), not a server that could not be reached (exit 5).
      assert.equal(error.code, 'TARGET_INVALID');
      assert.equal(error.exitCode, 2);
      assert.doesNotMatch(error.message, /pa55word/);
      return true;
    });
  });
});

describe('secrets', () => {
  it('a label holding a password is masked before it reaches plans, journals and the ledger', async () => {
    const {set, spec} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1}]}]);
    const conn = await connectTarget({...spec, label: `staging (mongodb://admin:hunter2@127.0.0.1/${spec.db})`});
    try {
      const plan = await planSet(set, conn);
      await savePlan(set, plan);
      const push = await pushSet(set, conn, plan, {onConflict: 'skip'});
      await verifySet(set, conn);
      const written = [JSON.stringify(plan), await readFile(push.journal, 'utf8'), JSON.stringify(await readLedger(set))].join('\n');
      assert.doesNotMatch(written, /hunter2/);
      assert.match(written, /admin:\*\*\*\*@/);
    } finally {
      await conn.close();
    }
  });
});

describe('planSet', () => {
  it('classifies insert, same, conflict and keyMatch, and the same state hashes the same', async () => {
    const docs = [
      {_id: 1, sku: 'A', title: 'lost'},
      {_id: 2, sku: 'B', title: 'unchanged'},
      {_id: 3, sku: 'C', title: 'in the backup'},
      {_id: 4, sku: 'D', title: 'recreated under another id'},
      {_id: 'str', sku: 'E', nested: {a: 1, b: 2}},
    ];
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs}]);
    await db.collection('artworks').insertMany([
      {_id: 2, sku: 'B', title: 'unchanged'},
      {_id: 3, sku: 'C', title: 'edited since'},
      {_id: 40, sku: 'D', title: 'recreated under another id'},
      {_id: 'str', sku: 'E', nested: {b: 2, a: 1}},
    ] as Document[]);
    const progress: number[] = [];
    const plan = await planSet(set, conn, {matchOn: ['sku'], onProgress: (p) => progress.push(p.done)});
    assert.deepEqual(plan.collections, {artworks: {insert: 1, same: 1, conflict: 2, keyMatch: 1, clash: 0, notExact: 0}});
    // One class code a document, in the set's order: inserts and same documents are not listed by id.
    assert.equal(Buffer.from(plan.classes.artworks!, 'base64').toString('latin1'), 'isckc');
    assert.equal((plan.ids.artworks as Record<string, unknown>).insert, undefined);
    // Which written documents decode plainly and exactly: known in memory to the push that planned, never saved.
    assert.deepEqual([...(plan.plainExact?.artworks ?? [])], [1, 0, 1, 0, 1]);
    assert.equal((JSON.parse(await readFile(await savePlan(set, plan), 'utf8')) as Record<string, unknown>).plainExact, undefined);
    assert.deepEqual(plan.ids.artworks?.keyMatch, ['{"$numberInt":"4"}']);
    assert.deepEqual(plan.conflicts[0], {collection: 'artworks', _id: {$numberInt: '3'}, fields: [{path: 'title', backup: 'in the backup', target: 'edited since'}]});
    assert.equal(plan.conflicts[1]?.fields[0]?.path, 'nested (field order)', 'same fields in another order is a conflict');
    assert.deepEqual(plan.keyMatches[0]?.targetId, {$numberInt: '40'});
    assert.ok(progress.includes(5));
    assert.equal(plan.setHash, set.hash);
    assert.doesNotMatch(JSON.stringify(plan), /password|hunter2/);

    const again = await planSet(set, conn, {matchOn: ['sku']});
    assert.equal(again.hash, plan.hash);
    await db.collection('artworks').updateOne({_id: 3} as Document, {$set: {title: 'edited twice'}});
    assert.notEqual((await planSet(set, conn, {matchOn: ['sku']})).hash, plan.hash);

    const file = await savePlan(set, plan);
    assert.match(file, new RegExp(`plans/staging-${plan.hash.slice(0, 12)}\\.json$`));
    const {plainExact: _inMemoryOnly, ...saved} = plan;
    assert.deepEqual(await readPlan(file), saved);
    assert.equal((await readLedger(set)).at(-1)?.action, 'plan');
  });

  it('finds documents whose _id has another numeric type or is a subdocument', async () => {
    const docs = [{_id: new Int32(7), v: 1}, {_id: {a: 1, b: 'x'}, v: 2}, {_id: Long.fromNumber(8), v: 3}];
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'c', docs}]);
    await db.collection('c').insertMany([{_id: new Double(7), v: 1}, {_id: {a: 1, b: 'x'}, v: 2}] as Document[]);
    const plan = await planSet(set, conn);
    assert.deepEqual(plan.collections.c, {insert: 1, same: 1, conflict: 1, keyMatch: 0, clash: 0, notExact: 0});
  });
});

describe('pushSet', () => {
  it('inserts parents before dependents, creates collections with their indexes, journals and records a ledger line', async () => {
    const {set, conn, db} = await fixture((g) => [
      {db: g, name: 'artworks', docs: artworks(30), indexes: [{v: 2, key: {title: 1}, name: 'title_1', unique: true}]},
      {db: g, name: 'sale_artworks', docs: [{_id: 'sa1', artwork_id: 1}]},
    ]);
    const plan = await planSet(set, conn);
    const result = await pushSet(set, conn, plan, {onConflict: 'skip', batchDocs: 7});
    assert.deepEqual(result.collections, {
      artworks: {inserted: 30, overwritten: 0, skipped: 0, conflicts: 0, refused: 0, excluded: 0},
      sale_artworks: {inserted: 1, overwritten: 0, skipped: 0, conflicts: 0, refused: 0, excluded: 0},
    });
    assert.equal(result.resumed, false);
    assert.equal(result.planHash, plan.hash);
    const indexes = await db.collection('artworks').indexes();
    assert.ok(indexes.some((ix) => ix.name === 'title_1' && ix.unique === true), JSON.stringify(indexes));
    // Byte-identical: types survive (Int32 stays Int32, Double stays Double).
    const stored = await db.collection('artworks').findOne({_id: new ObjectId('0'.repeat(24))} as Document, {promoteValues: false});
    assert.equal((stored?.n as {_bsontype?: string})._bsontype, 'Int32');
    assert.equal((stored?.price as {_bsontype?: string})._bsontype, 'Double');

    const journal = (await readFile(result.journal, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as {type: string; collection?: string});
    assert.equal(journal[0]?.type, 'begin');
    assert.equal(journal.at(-1)?.type, 'end');
    assert.equal(journal.filter((r) => r.type === 'intent').length, 5 + 1, '30 docs in batches of 7, then 1');
    const firstIntent = journal.findIndex((r) => r.type === 'intent');
    assert.equal(journal[firstIntent]?.collection, 'artworks', 'parents first');
    const ledger = await readLedger(set);
    assert.deepEqual(ledger.map((l) => [l.action, l.outcome]), [['push', 'ok']]);
    assert.equal(ledger[0]?.planHash, plan.hash);

    // A second push finds everything in place: nothing written twice.
    const again = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    assert.equal(again.collections.artworks?.inserted, 0);
    assert.equal(again.collections.artworks?.skipped, 30);
    assert.equal(await db.collection('artworks').countDocuments(), 30);
  });

  it('--on-conflict fail refuses before writing anything', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1, a: 1}, {_id: 2, a: 2}]}]);
    await db.collection('artworks').insertOne({_id: 2, a: 'changed'} as Document);
    const plan = await planSet(set, conn);
    await assert.rejects(pushSet(set, conn, plan, {onConflict: 'fail'}), (e: unknown) => e instanceof GravityError && e.code === 'CONFLICT' && e.exitCode === 8);
    assert.deepEqual(await rawIds(db, 'artworks'), ['2']);
    assert.deepEqual(await listJournals(set), []);
    assert.deepEqual(await readLedger(set), []);
  });

  it('skip leaves conflicts alone and verify counts them apart', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1, a: 1}, {_id: 2, a: 2}]}]);
    await db.collection('artworks').insertOne({_id: 2, a: 'changed'} as Document);
    const result = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    assert.deepEqual(result.collections.artworks, {inserted: 1, overwritten: 0, skipped: 0, conflicts: 1, refused: 0, excluded: 0});
    assert.equal((await db.collection('artworks').findOne({_id: 2} as Document))?.a, 'changed');
    const verify = await verifySet(set, conn);
    assert.deepEqual(verify.collections.artworks, {present: 1, missing: 0, different: 0, skippedConflicts: 1, excluded: 0});
    assert.equal(verify.ok, true);

    await db.collection('artworks').deleteOne({_id: 1} as Document);
    const broken = await verifySet(set, conn);
    assert.equal(broken.ok, false);
    assert.deepEqual(broken.collections.artworks, {present: 0, missing: 1, different: 0, skippedConflicts: 1, excluded: 0});
    assert.deepEqual((await readLedger(set)).map((l) => [l.action, l.outcome]), [['push', 'ok'], ['verify', 'ok'], ['verify', 'failed']]);
  });

  it('overwrite replaces only documents still as the plan saw them, journaling pre-images', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1, a: 'backup'}, {_id: 2, a: 'backup'}, {_id: 3, a: 'backup'}]}]);
    await db.collection('artworks').insertMany([{_id: 1, a: 'v1'}, {_id: 2, a: 'v1'}, {_id: 3, a: 'v1'}] as Document[]);
    const plan = await planSet(set, conn);
    assert.equal(plan.collections.artworks?.conflict, 3);
    // Between plan and push, someone edits 2 and deletes 3.
    await db.collection('artworks').updateOne({_id: 2} as Document, {$set: {a: 'v2'}});
    await db.collection('artworks').deleteOne({_id: 3} as Document);
    const result = await pushSet(set, conn, plan, {onConflict: 'overwrite'});
    assert.deepEqual(result.collections.artworks, {inserted: 0, overwritten: 1, skipped: 0, conflicts: 2, refused: 0, excluded: 0});
    const now = await db.collection('artworks').find({}).sort({_id: 1}).toArray();
    assert.deepEqual(now, [{_id: 1, a: 'backup'}, {_id: 2, a: 'v2'}]);
    const text = await readFile(result.journal, 'utf8');
    assert.match(text, /"pre":"\{\\"_id\\":\{\\"\$numberInt\\":\\"1\\"\},\\"a\\":\\"v1\\"\}"/);
    assert.deepEqual(result.conflictDetails.map((c) => c.reason), ['changed on the target since the plan (not overwritten)', 'deleted on the target since the plan (not written)']);
  });

  it('a document whose unique key another _id holds is predicted as a clash and refused, never counted as restored', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'users', docs: [{_id: 1, email: 'a@x'}, {_id: 2, email: 'b@x'}]}]);
    await db.collection('users').createIndex({email: 1}, {unique: true});
    await db.collection('users').insertOne({_id: 99, email: 'b@x'} as Document);
    const plan = await planSet(set, conn);
    assert.deepEqual(plan.collections.users, {insert: 1, same: 0, conflict: 0, keyMatch: 0, clash: 1, notExact: 0});
    assert.deepEqual(plan.clashes.users, {'{"$numberInt":"2"}': {index: 'email_1', targetId: '{"$numberInt":"99"}', key: {email: 'b@x'}}});
    const result = await pushSet(set, conn, plan, {onConflict: 'skip'});
    assert.deepEqual(result.collections.users, {inserted: 1, overwritten: 0, skipped: 0, conflicts: 0, refused: 1, excluded: 0});
    assert.equal(result.complete, false);
    assert.match(result.refusedDetails[0]?.reason ?? '', /unique index email_1 already holds this key for _id \{"\$numberInt":"99"\}/);
    assert.equal(result.refusedDetails[0]?.codeName, 'DuplicateKey');
    const verify = await verifySet(set, conn);
    assert.equal(verify.ok, false, 'a refused document fails verify');
    assert.deepEqual(verify.collections.users, {present: 1, missing: 1, different: 0, skippedConflicts: 0, excluded: 0});
    const skipped = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip', skipClashes: true});
    assert.deepEqual(skipped.collections.users, {inserted: 0, overwritten: 0, skipped: 1, conflicts: 0, refused: 0, excluded: 1});
    assert.equal((await verifySet(set, conn)).ok, true, 'left out on purpose with --skip-clashes, verify accepts it');
  });

  it('an overwrite that would break a unique index is refused with its code and leaves the document as it was', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'users', docs: [{_id: 1, email: 'taken@x'}]}]);
    await db.collection('users').createIndex({email: 1}, {unique: true});
    await db.collection('users').insertMany([{_id: 1, email: 'new@x'}, {_id: 2, email: 'taken@x'}] as Document[]);
    const result = await pushSet(set, conn, await planSet(set, conn), {onConflict: 'overwrite'});
    assert.deepEqual(result.collections.users, {inserted: 0, overwritten: 0, skipped: 0, conflicts: 0, refused: 1, excluded: 0});
    assert.equal(result.refusedDetails[0]?.code, 11000);
    assert.equal((await db.collection('users').findOne({_id: 1} as Document))?.email, 'new@x');
  });

  it('refuses a plan made for another set or target', async () => {
    const {set, conn} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1}]}]);
    const plan = await planSet(set, conn);
    await assert.rejects(pushSet(set, conn, {...plan, setHash: 'f'.repeat(64)}, {onConflict: 'skip'}), (e: unknown) => e instanceof GravityError && e.code === 'PLAN_CHANGED');
    await assert.rejects(pushSet(set, conn, {...plan, target: 'production (elsewhere)'}, {onConflict: 'skip'}), (e: unknown) => e instanceof GravityError && e.code === 'PLAN_CHANGED');
  });

  it('interrupted after the first batch, a re-run resumes the journal and writes nothing twice', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: artworks(25)}, {db: g, name: 'sale_artworks', docs: [{_id: 's1', artwork_id: 1}]}]);
    const plan = await planSet(set, conn);
    const controller = new AbortController();
    await assert.rejects(
      pushSet(set, conn, plan, {
        onConflict: 'skip',
        batchDocs: 10,
        // One batch at a time, so the interruption falls exactly after the first.
        writers: 1,
        signal: controller.signal,
        onProgress: (p) => {
          if (p.collection === 'artworks' && p.done >= 10) controller.abort();
        },
      }),
      (e: unknown) => e instanceof GravityError && e.code === 'INTERRUPTED' && /resume/.test(e.hint ?? ''),
    );
    assert.equal(await db.collection('artworks').countDocuments(), 10);
    assert.equal(await db.collection('sale_artworks').countDocuments(), 0);
    assert.deepEqual((await readLedger(set)).map((l) => l.outcome), ['partial']);

    const resumed = await pushSet(set, conn, plan, {onConflict: 'skip', batchDocs: 10});
    assert.equal(resumed.resumed, true);
    assert.equal(resumed.collections.artworks?.inserted, 25, 'the 10 already written count as done');
    assert.equal(await db.collection('artworks').countDocuments(), 25);
    assert.equal(await db.collection('sale_artworks').countDocuments(), 1);
    const journals = await listJournals(set, 'staging');
    assert.equal(journals.length, 1, 'the same journal continued');
    assert.equal(journals[0]?.finished, true);
    assert.ok((await allRecords(journals[0]!)).some((r) => r.type === 'resume'));
    // The whole push is one unit for rollback. The 10 written before the interruption are named
    // twice in the journal; in small batches, four at a time, each is still deleted once.
    const rb = await rollbackSet(set, conn, {batchDocs: 5, writers: 4});
    assert.equal(rb.collections.artworks?.deleted, 25);
    assert.equal(rb.collections.artworks?.alreadyUndone, 10, 'the second mention finds it gone');
    assert.equal(await db.collection('artworks').countDocuments(), 0);
  });
});

describe('pushSet planning as it writes (a saved plan, no prompt)', () => {
  /** A push that follows `saved` and plans each batch of 5 again just before writing it. */
  const live = (set: Parameters<typeof pushSet>[0], conn: TargetConnection, saved: Parameters<typeof pushSet>[2]) =>
    pushSet(set, conn, saved, {onConflict: 'skip', batchDocs: 5, live: {plan: newPlan(set, conn, {batchDocs: 5}), options: {batchDocs: 5}}});

  it('stops before the batch with a conflict the saved plan did not show; what came before is written, journaled and resumed', async () => {
    const docs = artworks(25);
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs}, {db: g, name: 'sale_artworks', docs: [{_id: 's1', artwork_id: 1}]}]);
    const saved = await planSet(set, conn);
    assert.equal(saved.collections.artworks?.insert, 25);
    // After the plan was shown, someone puts back artwork 17, edited.
    const edited = {...docs[17]!, title: 'edited after the plan'};
    await db.collection('artworks').insertOne(edited as Document);

    await assert.rejects(live(set, conn, saved), (e: unknown) => {
      assert.ok(e instanceof GravityError, String(e));
      assert.equal(e.code, 'PLAN_CHANGED');
      assert.match(e.message, /1 new conflict\(s\) in the next batch, e\.g\. artworks \{"\$oid":"0{22}11"\}; 15 document\(s\) the plan approved were written before this, journaled in journal\//);
      return true;
    });
    // Batches 0–14 were planned as the saved plan said and written; 15–19 hold the new conflict: nothing from there on.
    const held = await db.collection('artworks').find({}, {raw: true, sort: {_id: 1}}).toArray() as unknown as Buffer[];
    assert.equal(held.length, 16);
    for (let i = 0; i < 15; i++) assert.deepEqual(Buffer.from(held[i]!), Buffer.from(BSON.serialize(docs[i]!)), `artwork ${i} holds the set's bytes`);
    assert.deepEqual(Buffer.from(held[15]!), Buffer.from(BSON.serialize(edited)), 'the edit is left as it is');
    assert.equal(await db.collection('sale_artworks').countDocuments(), 0);
    const [journal] = await listJournals(set, 'staging');
    assert.equal(journal?.finished, false, 'the journal stays open for a resume or a rollback');

    // The same saved plan again: the first 15 are `same` now (not a risk), and it stops at the same batch, writing nothing.
    await assert.rejects(live(set, conn, saved), (e: unknown) => e instanceof GravityError && e.code === 'PLAN_CHANGED' && /; nothing was written$/.test(e.message));

    // With a plan that shows the conflict, the push resumes the journal and leaves the edit alone.
    const seen = await planSet(set, conn);
    assert.deepEqual([seen.collections.artworks?.same, seen.collections.artworks?.conflict, seen.collections.artworks?.insert], [15, 1, 9]);
    const result = await live(set, conn, seen);
    assert.equal(result.resumed, true);
    assert.deepEqual(result.collections.artworks, {inserted: 9, overwritten: 0, skipped: 15, conflicts: 1, refused: 0, excluded: 0});
    assert.equal(result.collections.sale_artworks?.inserted, 1);
    assert.equal(result.planHash, seen.hash, 'the journal and ledger name the plan the user saw');
    assert.equal(await db.collection('artworks').countDocuments(), 25);
    assert.deepEqual(Buffer.from((await db.collection('artworks').findOne({_id: edited._id} as Document, {raw: true})) as unknown as Buffer), Buffer.from(BSON.serialize(edited)));
    assert.equal((await verifySet(set, conn)).ok, true);
  });

  it('--on-conflict overwrite follows the plan made as it writes, as a push that plans first would; rollback undoes it', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: [1, 2, 3, 4].map((_id) => ({_id, a: 'backup'}))}]);
    await db.collection('artworks').insertMany([1, 2, 3].map((_id) => ({_id, a: 'v1'})) as Document[]);
    const saved = await planSet(set, conn);
    assert.deepEqual([saved.collections.artworks?.conflict, saved.collections.artworks?.insert], [3, 1]);
    // After the plan: 2 is edited again (still a conflict, now of another version) and 3 deleted (now an insert).
    await db.collection('artworks').updateOne({_id: 2} as Document, {$set: {a: 'v2'}});
    await db.collection('artworks').deleteOne({_id: 3} as Document);
    const draft = newPlan(set, conn);
    const result = await pushSet(set, conn, saved, {onConflict: 'overwrite', live: {plan: draft, options: {}}});
    assert.deepEqual(result.collections.artworks, {inserted: 2, overwritten: 2, skipped: 0, conflicts: 0, refused: 0, excluded: 0});
    const made = finishPlan(draft);
    assert.deepEqual([made.collections.artworks?.conflict, made.collections.artworks?.insert], [2, 2], 'what planning first just before writing would have found');
    assert.deepEqual(await db.collection('artworks').find({}).sort({_id: 1}).toArray(), [1, 2, 3, 4].map((_id) => ({_id, a: 'backup'})));
    const rb = await rollbackSet(set, conn, {});
    assert.deepEqual([rb.collections.artworks?.deleted, rb.collections.artworks?.restored], [2, 2]);
    assert.deepEqual(await db.collection('artworks').find({}).sort({_id: 1}).toArray(), [{_id: 1, a: 'v1'}, {_id: 2, a: 'v2'}]);
  });

  it('plans each batch into the new plan: the same plan as planning first, and the same documents on the target', async () => {
    const docs = artworks(23);
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs, indexes: [{v: 2, key: {title: 1}, name: 'title_1', unique: true}]}]);
    // The target has the collection with a unique index: each batch's plan looks for clashes with it.
    await db.collection('artworks').createIndex({title: 1}, {unique: true, name: 'title_1'});
    await db.collection('artworks').insertOne(docs[3] as Document);
    await db.collection('artworks').insertOne({...docs[8], title: 'changed'} as Document);
    const saved = await planSet(set, conn, {batchDocs: 5});
    const draft = newPlan(set, conn, {batchDocs: 5});
    const result = await pushSet(set, conn, saved, {onConflict: 'skip', batchDocs: 4, live: {plan: draft, options: {batchDocs: 5}}});
    assert.deepEqual(result.collections.artworks, {inserted: 21, overwritten: 0, skipped: 1, conflicts: 1, refused: 0, excluded: 0});
    const made = finishPlan(draft);
    assert.equal(made.hash, saved.hash, 'the target was as the saved plan saw it before each batch');
    assert.deepEqual(made.collections, saved.collections);
    const indexes = await db.collection('artworks').indexes();
    assert.ok(indexes.some((ix) => ix.name === 'title_1' && ix.unique === true), 'the existing collection keeps its index');
    for (const [i, d] of docs.entries()) {
      if (i === 8) continue;
      assert.deepEqual(Buffer.from((await db.collection('artworks').findOne({_id: d._id} as Document, {raw: true})) as unknown as Buffer), Buffer.from(BSON.serialize(d)), `artwork ${i}`);
    }
  });
});

describe('pushSet after a crash', () => {
  it('a batch written but not journaled as done (killed mid-batch) is finished on resume and still rolled back', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: artworks(12)}]);
    const plan = await planSet(set, conn);
    const controller = new AbortController();
    await assert.rejects(
      pushSet(set, conn, plan, {onConflict: 'skip', batchDocs: 5, writers: 1, signal: controller.signal, onProgress: (p) => p.done >= 5 && controller.abort()}),
      (e: unknown) => e instanceof GravityError && e.code === 'INTERRUPTED',
    );
    // Make the journal look like the process died after the server applied batch 1 but before it said so.
    const [journal] = await listJournals(set, 'staging');
    const kept = (await readFile(journal!.path, 'utf8')).split('\n').filter((l) => l && !/"type":"(inserted|interrupted)"/.test(l));
    await writeFile(journal!.path, `${kept.join('\n')}\n`);
    assert.equal(await db.collection('artworks').countDocuments(), 5);

    const resumed = await pushSet(set, conn, plan, {onConflict: 'skip', batchDocs: 5});
    assert.equal(resumed.resumed, true);
    assert.equal(resumed.collections.artworks?.inserted, 12);
    assert.equal(await db.collection('artworks').countDocuments(), 12);
    assert.equal((await rollbackSet(set, conn)).collections.artworks?.deleted, 12);
  });

  it('with parallel writers, an interruption lets the batches in flight finish; every journal line is whole and a re-run writes nothing twice', async () => {
    const {set, conn, db} = await fixture((g) => [{db: g, name: 'artworks', docs: artworks(40)}]);
    const plan = await planSet(set, conn);
    const controller = new AbortController();
    await assert.rejects(
      pushSet(set, conn, plan, {onConflict: 'skip', batchDocs: 5, writers: 3, signal: controller.signal, onProgress: (p) => p.done >= 5 && controller.abort()}),
      (e: unknown) => e instanceof GravityError && e.code === 'INTERRUPTED',
    );
    const written = await db.collection('artworks').countDocuments();
    assert.ok(written >= 5 && written < 40, `${written} written before the interruption took effect`);
    const [journal] = await listJournals(set, 'staging');
    const lines = (await readFile(journal!.path, 'utf8')).split('\n').filter(Boolean);
    for (const line of lines) JSON.parse(line);
    const inserted = lines.map((l) => JSON.parse(l) as {type: string; ids?: string[]}).filter((r) => r.type === 'inserted').reduce((n, r) => n + (r.ids?.length ?? 0), 0);
    assert.equal(inserted, written, 'the journal says exactly what reached the server');
    const resumed = await pushSet(set, conn, plan, {onConflict: 'skip', batchDocs: 5, writers: 3});
    assert.equal(resumed.collections.artworks?.inserted, 40);
    assert.equal(await db.collection('artworks').countDocuments(), 40);
  });

  // Planning first, and planning as it writes (where the loss may fall on a batch's lookups): the same outcome.
  for (const live of [false, true]) {
    it(`a lost connection mid-push leaves the journal intact and says to resume${live ? ' (planning as it writes)' : ''}`, async () => {
      // Enough batches, one writer at a time, that the loss surely falls before the last one.
      const {set, spec} = await fixture((g) => [{db: g, name: 'artworks', docs: artworks(100)}]);
      await onOwnServer(spec, async (conn, stopServer) => {
        const plan = await planSet(set, conn);
        await assert.rejects(
          pushSet(set, conn, plan, {
            onConflict: 'skip',
            batchDocs: 5,
            writers: 1,
            ...(live ? {live: {plan: newPlan(set, conn, {batchDocs: 5}), options: {batchDocs: 5}}} : {}),
            onProgress: (p) => {
              if (p.done >= 5) stopServer();
            },
          }),
          (e: unknown) => {
            assert.ok(e instanceof GravityError, String(e));
            assert.equal(e.code, 'TARGET_UNREACHABLE');
            assert.match(e.message, /during the push/);
            assert.match(e.hint ?? '', /journal journal\/.*run the same push again to resume/);
            return true;
          },
        );
        const [journal] = await listJournals(set, 'staging');
        assert.equal(journal?.finished, false);
        assert.ok((await allRecords(journal!)).some((r) => r.type === 'inserted'));
        assert.equal((await readLedger(set)).at(-1)?.outcome, 'partial');
      });
    });
  }
});

describe('findRaw (replies read as bytes)', () => {
  it('returns every matching document byte for byte across getMore batches, as the driver\'s cursor does', async () => {
    const {db} = await fixture(() => []);
    const docs = Array.from({length: 7}, (_v, i) => ({_id: new ObjectId(i.toString(16).padStart(24, '0')), i: new Int32(i), big: Long.fromNumber(i * 1e12), s: 'x'.repeat(i * 100)}));
    await db.collection('c').insertMany(docs);
    const seen: Buffer[] = [];
    await findRaw(db, 'c', {i: {$gte: 1}}, (raw) => seen.push(Buffer.from(raw)), 2);
    const driver = (await db.collection('c').find({i: {$gte: 1}}, {raw: true}).toArray()) as unknown as Buffer[];
    assert.equal(seen.length, 6);
    assert.deepEqual(
      seen.map((b) => b.toString('hex')).sort(),
      driver.map((b) => Buffer.from(b).toString('hex')).sort(),
    );
    // What a visitor throws ends the read with that error.
    await assert.rejects(findRaw(db, 'c', {}, () => {
      throw new Error('stop here');
    }, 2), /stop here/);
  });
});

describe('lookups sent ahead (plan, verify)', () => {
  it('a server lost while lookups are in flight ends verify with one typed error, nothing unhandled', async () => {
    const {set, spec} = await fixture((g) => [{db: g, name: 'artworks', docs: artworks(6000)}]);
    await onOwnServer(spec, async (conn, stopServer) => {
      const plan = await planSet(set, conn);
      assert.equal(Buffer.from(plan.classes.artworks!, 'base64').length, 6000, 'every batch of the set, in order, with lookups ahead');
      await pushSet(set, conn, plan, {onConflict: 'skip'});
      await assert.rejects(
        verifySet(set, conn, {
          onProgress: (p) => {
            if (p.done >= 1000) stopServer();
          },
        }),
        (e: unknown) => e instanceof GravityError && e.code === 'TARGET_UNREACHABLE' && /verify/.test(e.message),
      );
    });
  });
});

describe('gates against a real ledger', () => {
  it('production is refused until staging was pushed and verified, then needs the database name', async () => {
    const {set, conn} = await fixture((g) => [{db: g, name: 'artworks', docs: [{_id: 1}]}]);
    const production: TargetSpec = {name: 'production', uri: 'mongodb://u:pw@prod.example:27017/gravity', db: 'gravity', label: 'production (mongodb://u:****@prod.example:27017/gravity)'};
    const gate = async (over: Partial<Parameters<typeof checkPushGate>[0]> = {}) =>
      checkPushGate({set, ledger: await readLedger(set), target: production, staging: conn.spec, production, yes: true, confirm: 'gravity', interactive: false, ...over});
    assert.equal((await gate()).decision, 'refuse');
    await pushSet(set, conn, await planSet(set, conn), {onConflict: 'skip'});
    assert.equal((await gate()).decision, 'refuse', 'pushed but not verified');
    assert.equal((await verifySet(set, conn)).ok, true);
    assert.deepEqual(await gate(), {decision: 'allow'});
    assert.equal((await gate({confirm: undefined})).decision, 'refuse');
  });
});

