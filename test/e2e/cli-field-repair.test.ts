/**
 * Field repair through bin/run.js. A bad patch nulled `important_a` in 10 documents after the backup;
 * users kept editing `title` meanwhile, and 2 of them re-entered `important_a` by hand. Restoring
 * whole documents would clobber the titles; `--fields important_a --where-target '{"important_a":
 * null}'` must repair exactly the 8 still damaged, touch nothing else, and leave the 2 alone.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {BSON, Int32} from 'bson';
import type {Document} from 'bson';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {json, runCli} from '../support/cli.js';
import {withDb} from '../support/mongo-backend.js';
import {mongoSuite} from '../support/mongo-suite.js';

const M = (entries: Array<[string, unknown]>): Map<string, unknown> => new Map(entries);

/** The document as the backup has it: field order as an application wrote it, integer-like keys included. */
function backupDoc(i: number): Map<string, unknown> {
  return M([['_id', i], ['title', `Work ${i}`], ['important_a', `value-${i}`], ['by_year', M([['2021', new Int32(i)], ['10', new Int32(1)]])], ['important_b', 'kept']]);
}

describe('field repair with --fields and --where-target, through bin/run.js', () => {
  const suite = mongoSuite('cli-field-repair');
  const cleanups = suite.cleanups;


  it('repairs exactly the damaged documents, only that field, and rolls back all but what was edited since', async () => {
    const db = `gr_repair_${process.pid}`;
    const uri = withDb(suite.mongo.uri, db);
    const {dir, cleanup} = await tempDir('gr-repair-');
    cleanups.push(cleanup);
    await writeSet(dir, [{db, name: 'records', docs: Array.from({length: 10}, (_, i) => Buffer.from(BSON.serialize(backupDoc(i))))}]);

    // The target after the incident: every important_a nulled, every title edited by users since.
    const coll = suite.client.db(db).collection('records');
    const damaged = (i: number) => M([['_id', i], ['title', `Work ${i} (edited)`], ['important_a', i >= 8 ? `value-${i} (re-entered)` : null], ['by_year', M([['2021', new Int32(i)], ['10', new Int32(1)]])], ['important_b', 'kept']]);
    await coll.insertMany(Array.from({length: 10}, (_, i) => damaged(i)) as unknown as Document[]);
    const before = new Map((await coll.find({}, {raw: true}).toArray()).map((r) => [BSON.deserialize(r as unknown as Uint8Array)._id as number, Buffer.from(r as unknown as Uint8Array)]));

    const flags = ['--fields', 'important_a', '--where-target', '{"important_a": null}'];
    const plan = json<{collections: Record<string, Record<string, number>>; skippedSamples: Array<{_id: unknown; fields: Array<{path: string; backup: unknown; target: unknown}>}>}>(
      await runCli(['plan', dir, '--to', uri, ...flags, '--json']),
    );
    assert.deepEqual(
      [plan.collections.records?.repair, plan.collections.records?.skipped, plan.collections.records?.same, plan.collections.records?.conflict, plan.collections.records?.insert],
      [8, 2, 0, 0, 0],
    );
    assert.deepEqual(plan.skippedSamples.map((s) => s.fields[0]), [
      {path: 'important_a', backup: 'value-8', target: 'value-8 (re-entered)'},
      {path: 'important_a', backup: 'value-9', target: 'value-9 (re-entered)'},
    ], 'the plan shows the current value next to the backup\'s');
    const human = await runCli(['plan', dir, '--to', uri, ...flags]);
    assert.match(human.stdout, /Excluded \(the target no longer matches --where-target/);

    const push = await runCli(['push', dir, '--to', uri, ...flags, '--yes', '--json']);
    assert.equal(push.code, 0, push.stderr);
    const counts = json<{collections: Record<string, Record<string, number>>}>(push).collections.records;
    assert.deepEqual([counts?.repaired, counts?.excluded, counts?.inserted, counts?.refused], [8, 2, 0, 0]);

    // Every other field byte-identical: the repaired document is the damaged one with only important_a put back.
    for (const [id, raw] of before) {
      const now = Buffer.from((await coll.find({_id: id} as Document, {raw: true}).toArray())[0] as unknown as Uint8Array);
      const expected = id < 8 ? Buffer.from(BSON.serialize(new Map([...damaged(id)].map(([k, v]) => [k, k === 'important_a' ? `value-${id}` : v])))) : raw;
      assert.ok(now.equals(expected), `document ${id}: ${BSON.deserialize(now).important_a}`);
    }
    const verify = await runCli(['verify', dir, '--to', uri, '--json']);
    assert.equal(verify.code, 0, verify.stdout);
    const v = json<{ok: boolean; fields: string[]; collections: Record<string, Record<string, number>>}>(verify);
    assert.deepEqual([v.ok, v.fields, v.collections.records?.present, v.collections.records?.excluded], [true, ['important_a'], 8, 2]);

    // A user edits one repaired value after the push: rollback puts the nulls back everywhere else.
    await coll.updateOne({_id: 3} as Document, {$set: {important_a: 'edited after the repair'}});
    const rollback = await runCli(['rollback', dir, '--to', uri, '--yes', '--json']);
    assert.equal(rollback.code, 0, rollback.stderr);
    const r = json<{collections: Record<string, Record<string, number>>; skippedDetails: Array<{_id: unknown; reason: string}>}>(rollback);
    assert.deepEqual([r.collections.records?.restored, r.collections.records?.skipped], [7, 1]);
    assert.deepEqual(r.skippedDetails.map((s) => s._id), [{$numberInt: '3'}]);
    for (const [id, raw] of before) {
      const now = Buffer.from((await coll.find({_id: id} as Document, {raw: true}).toArray())[0] as unknown as Uint8Array);
      if (id === 3) assert.equal(BSON.deserialize(now).important_a, 'edited after the repair');
      else assert.ok(now.equals(raw), `document ${id} is back to its state before the push`);
    }
  });

  it('refuses field paths it cannot repair exactly', async () => {
    const {dir, cleanup} = await tempDir('gr-repair-');
    cleanups.push(cleanup);
    await writeSet(dir, [{db: 'x', name: 'c', docs: [{_id: 1}]}]);
    for (const [fields, message] of [['_id', /cannot repair _id/], ['tags.0', /array position/], ['a,a.b', /"a.b" is inside "a"/], ['$x', /not a field path/]] as const) {
      const r = await runCli(['plan', dir, '--to', 'mongodb://127.0.0.1:1/x', '--fields', fields]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, message);
    }
    const r = await runCli(['plan', dir, '--to', 'mongodb://127.0.0.1:1/x', '--where-target', '{}']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--fields/);
  });
});
