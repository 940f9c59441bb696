/**
 * The repair flow a newcomer followed, through bin/run.js against a MongoDB backend: a bad patch
 * nulled `phone` in 8 of 10 customers after the backup, 2 were re-entered by hand. A field repair
 * (`--fields phone --where-target '{"phone": null}'`) is verified with the same flags, and the
 * report says what was done: the flags, who to notify among the 8 documents written (not the 2 left
 * alone), and no "relations not followed" for orders that still point at customers that were never
 * deleted. Expected numbers follow from the fixture.
 */
import assert from 'node:assert/strict';
import {writeFile} from 'node:fs/promises';
import path from 'node:path';
import {describe, it} from 'node:test';

import {BSON, ObjectId} from 'bson';
import type {Document} from 'bson';

import {metadataJson, writeFolder} from '../support/bson-fixtures.js';
import {tempDir} from '../integration/target-fixture.js';
import {cleanEnv, json, runCli} from '../support/cli.js';
import {withDb} from '../support/mongo-backend.js';
import {mongoSuite} from '../support/mongo-suite.js';

const id = (i: number) => new ObjectId((0x100 + i).toString(16).padStart(24, '0'));
/** Customers 0–7 belong to region "north", 8–9 to "south": the two re-entered by hand. */
const region = (i: number) => (i < 8 ? 'north' : 'south');
const backupCustomer = (i: number) => new Map<string, unknown>([['_id', id(i)], ['name', `customer ${i}`], ['phone', `555-01${i}`], ['region', region(i)]]);

describe('field repair verified with --where-target, and reported as what it was', () => {
  const suite = mongoSuite('cli-newcomer-repair');

  let set: string;
  let uri: string;
  let env: NodeJS.ProcessEnv;
  let dir: string;
  let repair: string[];

  it('report after a field repair: the flags, who to notify among the documents written, no relation it cannot have broken', async () => {
    const temp = await tempDir('gr-newcomer-repair-');
    dir = temp.dir;
    const cleanup = temp.cleanup;
    suite.cleanups.push(cleanup);
    const db = `gr_newcomer_${process.pid}`;
    uri = withDb(suite.mongo.uri, db);
    // The backup: customers, and orders that reference them through an ObjectId no relation is configured for.
    const orders = Array.from({length: 10}, (_, i) => Buffer.from(BSON.serialize({_id: new ObjectId((0x900 + i).toString(16).padStart(24, '0')), customer_id: id(i)})));
    const backup = path.join(dir, 'backup');
    await writeFolder(path.join(backup, 'dump'), [
      {db: 'shop', collection: 'customers', docs: Array.from({length: 10}, (_, i) => Buffer.from(BSON.serialize(backupCustomer(i)))), metadata: metadataJson('customers')},
      {db: 'shop', collection: 'orders', docs: orders, metadata: metadataJson('orders')},
    ]);
    await writeFile(path.join(dir, 'gravity-restore.config.json'), JSON.stringify({notify: ['region']}));
    env = cleanEnv({TZ: 'UTC'});
    set = path.join(dir, 'set');
    const extract = await runCli(['extract', '--from', backup, '--collection', 'customers', '--out', set, '--json'], {env, cwd: dir});
    assert.equal(extract.code, 0, extract.stderr);

    // The target after the incident: phones nulled, except 8 and 9, re-entered by hand.
    const coll = suite.client.db(db).collection('customers');
    const damaged = (i: number) => new Map<string, unknown>([['_id', id(i)], ['name', `customer ${i}`], ['phone', i >= 8 ? `555-99${i}` : null], ['region', region(i)]]);
    await coll.insertMany(Array.from({length: 10}, (_, i) => damaged(i)) as unknown as Document[]);

    repair = ['--fields', 'phone', '--where-target', '{"phone": null}'];
    const push = await runCli(['push', set, '--to', uri, ...repair, '--yes', '--json'], {env, cwd: dir});
    assert.equal(push.code, 0, push.stderr);
    assert.deepEqual(
      (({repaired, excluded, inserted}) => [repaired, excluded, inserted])(json<{collections: Record<string, Record<string, number>>}>(push).collections.customers!),
      [8, 2, 0],
    );

    // The report: what was done, who to notify among the 8 written (all "north"), no relation it cannot have broken.
    const report = await runCli(['report', set, '--json'], {env, cwd: dir});
    assert.equal(report.code, 0, report.stderr);
    const r = json<{
      pushes: Array<{fields: string[] | null; whereTarget: string | null; written: {repaired: number; inserted: number}; excluded: number}>;
      looseEnds: {notify: Array<{field: string; values: Array<{value: unknown; documents: number}>}>; notifyBasis: string; unfollowedRelations: unknown[] | null; unfollowedRelationsNote?: string};
    }>(report);
    assert.deepEqual(r.pushes.map((p) => [p.fields, p.whereTarget, p.written.repaired, p.written.inserted, p.excluded]), [[['phone'], '{"phone":null}', 8, 0, 2]]);
    assert.deepEqual(r.looseEnds.notify, [{field: 'region', values: [{value: 'north', documents: 8}]}]);
    assert.match(r.looseEnds.notifyBasis, /8 document\(s\) the latest push wrote/);
    assert.deepEqual(r.looseEnds.unfollowedRelations, []);
    assert.match(r.looseEnds.unfollowedRelationsNote ?? '', /field repair of phone/);

    const markdown = await runCli(['report', set], {env, cwd: dir});
    assert.equal(markdown.code, 0, markdown.stderr);
    assert.match(markdown.stdout, /field repair of `phone` \(--fields phone --where-target '\{"phone":null\}'\).*repaired 8, inserted 0, excluded 2/);
    assert.doesNotMatch(markdown.stdout, /orders\.customer_id → customers/);
    assert.match(markdown.stdout, /region: `"north"` \(8\)/);
    assert.doesNotMatch(markdown.stdout, /"south"/);
  });

  it('verify takes --where-target with --fields: a document fixed by hand since is out of scope, damage back is not', async () => {
    const coll = suite.client.db(`gr_newcomer_${process.pid}`).collection('customers');
    // After the push someone fixes customer 3 by hand (no longer null), and the patch strikes customer 5 again.
    await coll.updateOne({_id: id(3)}, {$set: {phone: '555-7777'}});
    await coll.updateOne({_id: id(5)}, {$set: {phone: null}});

    // --fields alone: both differ from the backup, verify fails.
    const plain = await runCli(['verify', set, '--to', uri, '--fields', 'phone', '--json'], {env, cwd: dir});
    assert.equal(plain.code, 8, plain.stdout);
    assert.deepEqual(json<{collections: Record<string, {different: number}>}>(plain).collections.customers?.different, 2);

    // --where-target: customer 3 no longer matches {"phone": null} (fixed by hand): out of scope, as push
    // would leave it; customer 5 still matches: the damage is back, verify still fails on it alone.
    const where = await runCli(['verify', set, '--to', uri, ...repair, '--json'], {env, cwd: dir});
    assert.equal(where.code, 8, where.stdout);
    const w = json<{ok: boolean; whereTarget: string; collections: Record<string, {present: number; different: number; excluded: number}>; problems: Array<{_id: unknown; problem: string}>}>(where);
    // present: the 8 repaired but 3 and 5; excluded: 8 and 9 (left alone by the push) and 3.
    assert.deepEqual([w.collections.customers?.present, w.collections.customers?.different, w.collections.customers?.excluded], [6, 1, 3]);
    assert.deepEqual(w.problems, [{collection: 'customers', _id: {$oid: id(5).toHexString()}, problem: 'different'}]);

    // The damage on 5 repaired by hand, the flow's verify passes.
    await coll.updateOne({_id: id(5)}, {$set: {phone: '555-015'}});
    const ok = await runCli(['verify', set, '--to', uri, ...repair, '--json'], {env, cwd: dir});
    assert.equal(ok.code, 0, ok.stdout);
    const o = json<{ok: boolean; fields: string[]; collections: Record<string, {present: number; excluded: number}>}>(ok);
    assert.deepEqual([o.ok, o.fields, o.collections.customers?.present, o.collections.customers?.excluded], [true, ['phone'], 7, 3]);

  });
});
