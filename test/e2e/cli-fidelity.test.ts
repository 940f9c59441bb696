/**
 * The central promise, through the real entry point: documents an ordinary application stores go
 * back byte for byte, and a document the target refuses is never reported as restored. What reached
 * the server is read back with an independent client (pymongo RawBSONDocument) and compared byte by
 * byte with the restore set.
 */
import assert from 'node:assert/strict';
import {execFile} from 'node:child_process';
import {promisify} from 'node:util';
import {readdir, stat} from 'node:fs/promises';
import path from 'node:path';
import {describe, it} from 'node:test';

import {
  Binary, BSON, BSONRegExp, Decimal128, Double, Int32, Long, MaxKey, MinKey, ObjectId, Timestamp, UUID,
} from 'bson';
import type {Document} from 'bson';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {REPO_ROOT, cleanEnv, json, runCli, assertCleanError} from '../support/cli.js';
import {rawDocument} from '../support/bson-fixtures.js';
import {withDb} from '../support/mongo-backend.js';
import {mongoSuite} from '../support/mongo-suite.js';

const PYTHON = '/usr/bin/python3';
const M = (entries: Array<[string, unknown]>): Map<string, unknown> => new Map(entries);

/** Documents as an application stores them, built as Maps so their field order is the stored one. */
function ordinaryDocuments(): Buffer[] {
  const subtypes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 0x80].map((t) => new Binary(t === 4 || t === 3 ? Buffer.alloc(16, t + 1) : Buffer.from([t, 1, 2]), t));
  const docs: Array<Map<string, unknown>> = [
    M([['_id', new ObjectId('57d1e4a2cd530e65f6000001')], ['by_year', M([['2021', 5], ['2020', 3], ['10', 1]])], ['title', 'Guernica']]),
    M([['_id', M([['b', 1], ['1', 2]])], ['kind', 'embedded _id with an integer-like key']]),
    M([['_id', 7], ['stats', [M([['2', 'two'], ['1', 'one']]), M([['z', 1], ['0', 0]])]], ['nested', [[M([['9', 9], ['a', 1]])]]]]),
    M([['_id', 'numbers'], ['int64', Long.fromString('9007199254740993')], ['double', new Double(5)], ['int32', new Int32(5)], ['decimal', Decimal128.fromString('1234.5000')], ['negZero', new Double(-0)]]),
    M([['_id', 'dates'], ['pre1970', new Date(Date.UTC(1937, 3, 26, 16, 30))], ['epoch', new Date(0)], ['ts', new Timestamp({t: 1_700_000_000, i: 7})]]),
    M([['_id', 'binaries'], ['uuid', new UUID('4e2a1c2e-5b6f-4c1d-9a7e-0123456789ab')], ['all', subtypes]]),
    M([['_id', 'regex'], ['r1', new BSONRegExp('^gu.*a$', 'imsx')], ['r2', new BSONRegExp('a|b', 'u')], ['keys', M([['min', new MinKey()], ['max', new MaxKey()]])]]),
    M([['_id', 'unicode'], ['ключ', 'значение'], ['キー', M([['ü', 'ß'], ['😀', [1, 'x']]])]]),
  ];
  return docs.map((d) => Buffer.from(BSON.serialize(d)));
}

/** Asynchronous: the test server may live in this process and must keep answering. */
async function pymongoRead(uri: string, db: string, collection: string): Promise<{docs: string[]; collections: Record<string, string[]>}> {
  try {
    const {stdout} = await promisify(execFile)(PYTHON, [path.join(REPO_ROOT, 'test', 'support', 'pymongo-raw.py'), uri, db, collection], {encoding: 'utf8'});
    return JSON.parse(stdout) as {docs: string[]; collections: Record<string, string[]>};
  } catch (error) {
    throw new Error(`pymongo read failed (is python3-pymongo installed? .ci/run installs it): ${String((error as Error).message)}`, {cause: error});
  }
}

describe('byte-exact writes and honest refusals, through bin/run.js', () => {
  const suite = mongoSuite('cli-fidelity');
  const dirs = suite.cleanups;
  let n = 0;
  const dbName = () => `gr_fid_${process.pid}_${++n}`;
  const target = (db: string) => withDb(suite.mongo.uri, db);


  async function set(db: string, collections: Array<{name: string; docs: Buffer[]; indexes?: Document[]}>): Promise<string> {
    const {dir, cleanup} = await tempDir('gr-fid-');
    dirs.push(cleanup);
    await writeSet(dir, collections.map((c) => ({db, name: c.name, docs: c.docs, ...(c.indexes ? {indexes: c.indexes} : {})})));
    return dir;
  }

  it('ordinary documents reach the server with the set\'s exact bytes; verify passes; files are owner-only', async () => {
    const db = dbName();
    const docs = ordinaryDocuments();
    const dir = await set(db, [{name: 'artworks', docs}]);
    const plan = json<{collections: Record<string, {insert: number; notExact: number}>}>(await runCli(['plan', dir, '--to', target(db), '--json']));
    assert.deepEqual(plan.collections.artworks, {insert: 8, same: 0, conflict: 0, keyMatch: 0, clash: 0, notExact: 0});
    const push = await runCli(['push', dir, '--to', target(db), '--yes', '--json']);
    assert.equal(push.code, 0, push.stderr);
    assert.equal(json<{collections: Record<string, {inserted: number}>}>(push).collections.artworks?.inserted, 8);
    // The plan it prints has the counts and ids that matter, not a code per document.
    const shown = json<{plan: Record<string, unknown>}>(push).plan;
    assert.ok(shown.collections);
    assert.deepEqual([shown.classes, shown.plainExact], [undefined, undefined]);
    const back = await pymongoRead(target(db), db, 'artworks');
    assert.deepEqual([...back.docs].sort(), docs.map((d) => d.toString('hex')).sort(), 'every document byte-identical as read by pymongo');
    const verify = await runCli(['verify', dir, '--to', target(db), '--json']);
    assert.equal(verify.code, 0, verify.stdout);
    assert.equal(json<{ok: boolean}>(verify).ok, true);
    // A second plan finds every document the same: the embedded _id {b: 1, "1": 2} is found again, not duplicated.
    const again = json<{collections: Record<string, {same: number; insert: number}>}>(await runCli(['plan', dir, '--to', target(db), '--json']));
    assert.equal(again.collections.artworks?.same, 8);
    assert.equal(await suite.client.db(db).collection('artworks').countDocuments(), 8);
    // Plans, journals and the ledger hold production data: owner-only.
    for (const sub of ['plans', 'journal']) {
      assert.equal((await stat(path.join(dir, sub))).mode & 0o777, 0o700, `${sub}/ is 0700`);
      for (const f of await readdir(path.join(dir, sub))) assert.equal((await stat(path.join(dir, sub, f))).mode & 0o777, 0o600, `${sub}/${f} is 0600`);
    }
    assert.equal((await stat(path.join(dir, 'ledger.jsonl'))).mode & 0o777, 0o600);
    // Rollback finds them by their exact _id and removes every one.
    const rollback = await runCli(['rollback', dir, '--to', target(db), '--yes', '--json']);
    assert.equal(rollback.code, 0, rollback.stderr);
    assert.equal(json<{collections: Record<string, {deleted: number}>}>(rollback).collections.artworks?.deleted, 8);
    assert.equal(await suite.client.db(db).collection('artworks').countDocuments(), 0);
  });

  it('a document that cannot be written byte for byte is named in the plan and stops the push unless a flag says what to do', async () => {
    const db = dbName();
    const undef = rawDocument([
      {type: 0x02, key: '_id', value: stringValue('undef')},
      {type: 0x06, key: 'legacy', value: Buffer.alloc(0)},
    ]);
    const emptyTs = Buffer.from(BSON.serialize(M([['_id', 'ts0'], ['at', new Timestamp({t: 0, i: 0})]])));
    const fine = Buffer.from(BSON.serialize(M([['_id', 'fine'], ['v', 1]])));
    const dir = await set(db, [{name: 'things', docs: [undef, emptyTs, fine]}]);
    const plan = json<{collections: Record<string, {notExact: number}>; notExact: Record<string, Record<string, string>>}>(await runCli(['plan', dir, '--to', target(db), '--json']));
    assert.equal(plan.collections.things?.notExact, 2);
    assert.match(plan.notExact.things?.['"undef"'] ?? '', /undefined/);
    assert.match(plan.notExact.things?.['"ts0"'] ?? '', /Timestamp\(0, 0\).*replaced by the server/);
    const refused = await runCli(['push', dir, '--to', target(db), '--yes']);
    assertCleanError(refused, /2 document\(s\) cannot be written byte for byte.*nothing was written.*--inexact skip/);
    assert.equal(refused.code, 8);
    assert.equal(await suite.client.db(db).collection('things').countDocuments(), 0, 'nothing written');
    const skip = await runCli(['push', dir, '--to', target(db), '--yes', '--inexact', 'skip', '--json']);
    assert.equal(skip.code, 0, skip.stderr);
    assert.deepEqual(json<{collections: Record<string, unknown>}>(skip).collections.things, {inserted: 1, overwritten: 0, skipped: 0, conflicts: 0, refused: 0, excluded: 2});
    const verify = json<{ok: boolean; collections: Record<string, {excluded: number}>}>(await runCli(['verify', dir, '--to', target(db), '--json']));
    assert.equal(verify.ok, true);
    assert.equal(verify.collections.things?.excluded, 2);
  });

  it('a re-created document holding a unique key: plan and push name the index and the holder; push and verify fail', async () => {
    const db = dbName();
    const users = [
      Buffer.from(BSON.serialize(M([['_id', new ObjectId('57d1e4a2cd530e65f6000011')], ['email', 'ada@example.com']]))),
      Buffer.from(BSON.serialize(M([['_id', new ObjectId('57d1e4a2cd530e65f6000012')], ['email', 'bob@example.com']]))),
    ];
    const dir = await set(db, [{name: 'users', docs: users, indexes: [{v: 2, key: {email: 1}, name: 'email_1', unique: true}]}]);
    await suite.client.db(db).collection('users').createIndex({email: 1}, {unique: true});
    const recreated = new ObjectId('6560f00d0000000000000abc');
    await suite.client.db(db).collection('users').insertOne({_id: recreated, email: 'bob@example.com'});
    const plan = json<{collections: Record<string, {insert: number; clash: number}>; clashes: Record<string, Record<string, {index: string; targetId: string}>>}>(
      await runCli(['plan', dir, '--to', target(db), '--json']),
    );
    assert.equal(plan.collections.users?.insert, 1);
    assert.equal(plan.collections.users?.clash, 1);
    assert.deepEqual(Object.values(plan.clashes.users ?? {}), [{index: 'email_1', targetId: `{"$oid":"${recreated.toHexString()}"}`, key: {email: 'bob@example.com'}}]);
    const push = await runCli(['push', dir, '--to', target(db), '--yes', '--json']);
    assert.equal(push.code, 9, 'a push that left a document behind exits non-zero');
    const result = json<{complete: boolean; collections: Record<string, {inserted: number; refused: number}>; refusedDetails: Array<{reason: string; codeName: string}>}>(push);
    assert.equal(result.complete, false);
    assert.deepEqual([result.collections.users?.inserted, result.collections.users?.refused], [1, 1]);
    assert.match(result.refusedDetails[0]?.reason ?? '', new RegExp(`unique index email_1 .*${recreated.toHexString()}`));
    const verify = await runCli(['verify', dir, '--to', target(db), '--json']);
    assert.equal(verify.code, 8, 'verify does not pass');
    assert.equal(json<{ok: boolean}>(verify).ok, false);
    const human = await runCli(['verify', dir, '--to', target(db)]);
    assertCleanError(human, /does not hold everything the set promised/);
    const report = json<{looseEnds: {refused: Array<{collection: string; _id: unknown; reason: string; code: number}>}}>(await runCli(['report', dir, '--json']));
    assert.deepEqual(report.looseEnds.refused.map((r) => [r.collection, r._id, r.code]), [['users', {$oid: '57d1e4a2cd530e65f6000012'}, 11000]]);
    assert.match((await runCli(['report', dir])).stdout, /## Not restored \(refused by the target\)\n\n- .*users .*unique index email_1/);
  });

  it('a connection-string path of /admin is where to authenticate, not where to restore; admin, local and config are refused', async () => {
    const db = dbName();
    const dir = await set(db, [{name: 'artworks', docs: [Buffer.from(BSON.serialize(M([['_id', 1], ['a', 1]])))]}]);
    const adminUri = target('admin');
    const push = await runCli(['push', dir, '--to', adminUri, '--yes', '--json']);
    assert.equal(push.code, 0, push.stderr);
    const back = await pymongoRead(suite.mongo.uri, db, 'artworks');
    assert.equal(back.docs.length, 1, 'written to the set\'s source database');
    assert.deepEqual(back.collections.admin?.filter((c) => c === 'artworks'), [], 'nothing written to admin');
    for (const forbidden of ['admin', 'local', 'config']) {
      const r = await runCli(['push', dir, '--to', target(db), '--db', forbidden, '--yes']);
      assertCleanError(r, new RegExp(`Refusing to use the ${forbidden} database`));
      assert.equal(r.code, 2);
    }
  });

  it('passwords holding #, @, / or ? never appear in errors, for an invalid and an unreachable URI', async () => {
    const dir = await set(dbName(), [{name: 'a', docs: [Buffer.from(BSON.serialize(M([['_id', 1]])))]}]);
    const passwords = ['Zq9#Xw7kp', 'Pa@ssWd42', 'Sl/ash9Rty', 'Qu?est8Mn'];
    for (const pw of passwords) {
      const fragments = pw.split(/[#@/?]/).filter((f) => f.length >= 3);
      for (const uri of [`mongodb://restorer:${pw}@127.0.0.1:1/gravity?serverSelectionTimeoutMS=300`, `mongodb://restorer:${pw}@`, `mongodb://restorer:${pw}@host:notaport/gravity`]) {
        for (const args of [['plan', dir, '--to', uri], ['plan', dir, '--to', uri, '--json']]) {
          const r = await runCli(args, {env: cleanEnv({GRAVITY_RESTORE_STAGING_URI: uri})});
          assert.notEqual(r.code, 0);
          for (const f of fragments) assert.ok(!`${r.stdout}${r.stderr}`.includes(f), `fragment "${f}" of the password leaked for ${args.join(' ')}:\n${r.stdout}${r.stderr}`);
        }
      }
    }
  });
});

function stringValue(s: string): Buffer {
  const body = Buffer.from(`${s}\0`, 'utf8');
  const len = Buffer.alloc(4);
  len.writeInt32LE(body.length, 0);
  return Buffer.concat([len, body]);
}

