/**
 * extract --at through bin/run.js: a base backup and a dump of local.oplog.rs written by an
 * independent BSON implementation (python3-bson, test/support/oplog-fixture.py), with entries of
 * every kind (diffs that reorder fields and truncate arrays, integer-like keys, a delete and
 * re-insert, a transaction across two collections, an aborted prepared transaction, a batched
 * delete, an image no-op, an entry exactly at TIME). The expected bytes are written out by hand in
 * the fixture from the rules OPLOG.md cites, not computed by the replayer.
 */
import {execFileSync} from 'node:child_process';
import {mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import path from 'node:path';
import {after, before, describe, test} from 'node:test';
import assert from 'node:assert/strict';

import {cleanEnv, json, REPO_ROOT, runCli} from '../support/cli.js';

const PYTHON = '/usr/bin/python3';

interface Fixture {
  at: {t: number; i: number};
  base: number;
  expected: Record<string, string[]>;
  backup: Record<string, string[]>;
}

function splitBson(data: Buffer): string[] {
  const out: string[] = [];
  for (let at = 0; at < data.length; ) {
    const len = data.readInt32LE(at);
    out.push(data.subarray(at, at + len).toString('hex'));
    at += len;
  }
  return out;
}

describe('extract --at: documents as they were at TIME, from a backup plus the oplog', () => {
  let dir: string;
  let fixture: Fixture;
  let env: NodeJS.ProcessEnv;

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gr-at-'));
    fixture = JSON.parse(execFileSync(PYTHON, [path.join(REPO_ROOT, 'test/support/oplog-fixture.py'), dir], {encoding: 'utf8'})) as Fixture;
    writeFileSync(path.join(dir, 'config.json'), JSON.stringify({relations: [{from: 'customers', to: 'orders', foreignField: 'customer'}]}));
    env = cleanEnv({GRAVITY_RESTORE_SOURCE: path.join(dir, 'backups'), GRAVITY_RESTORE_CONFIG: path.join(dir, 'config.json'), GRAVITY_RESTORE_TZ: 'UTC'});
  });
  after(() => rmSync(dir, {recursive: true, force: true}));

  test('every document of the state at TIME, byte for byte; untouched ones first, in backup order', async () => {
    const out = path.join(dir, 'set-all');
    const at = `Timestamp(${fixture.at.t}, ${fixture.at.i})`;
    const result = await runCli(['extract', '--at', at, '--oplog', path.join(dir, 'oplog'), '--collection', 'customers', '--follow', '--out', out, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const body = json<{counts: Record<string, number>}>(result);
    assert.deepEqual(body.counts, {customers: 4, orders: 1});
    const customers = splitBson(readFileSync(path.join(out, 'dump/shop/customers.bson')));
    assert.equal(customers[0], fixture.expected.customers![0], 'the untouched document comes first, unchanged');
    assert.deepEqual([...customers].sort(), [...fixture.expected.customers!].sort());
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {atOpTime: unknown; base: {backup: string}; collections: Record<string, Record<string, number>>};
    assert.deepEqual(manifest.atOpTime, fixture.at);
    assert.equal(manifest.base.backup, 'shop-2026-11-18T14-00-00Z');
    assert.deepEqual(
      {fromBackup: manifest.collections.customers!.fromBackup, replayed: manifest.collections.customers!.replayed, createdAfterBackup: manifest.collections.customers!.createdAfterBackup},
      {fromBackup: 1, replayed: 3, createdAfterBackup: 0},
    );
  });

  test('a mongodump --oplog --gzip base: its own oplog.bson (gzip inside, by its bytes) starts the replay', async () => {
    const out = path.join(dir, 'set-dump-oplog');
    const at = `Timestamp(${fixture.at.t}, ${fixture.at.i})`;
    const result = await runCli(['extract', '--from', path.join(dir, 'dump-with-oplog'), '--at', at, '--oplog', path.join(dir, 'oplog'), '--collection', 'customers', '--out', out, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(splitBson(readFileSync(path.join(out, 'dump/shop/customers.bson'))).sort(), [...fixture.expected.customers!].sort());
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8')) as {base: {fromOplog: boolean; from: {t: number}}};
    assert.equal(manifest.base.fromOplog, true);
    assert.equal(manifest.base.from.t, fixture.base - 3, 'the replay starts at the first entry of the dump\'s own oplog');
  });

  test('the query is judged on the state at TIME, and dependents follow from it', async () => {
    const out = path.join(dir, 'set-bob');
    const at = `Timestamp(${fixture.at.t}, ${fixture.at.i})`;
    // "Bob2" exists only after the re-insert; customer 3's order was created in a transaction after the backup.
    const result = await runCli(['extract', '--at', at, '--oplog', path.join(dir, 'oplog'), '--collection', 'customers', '--query', '{"_id": {"$in": [2, 3]}, "name": {"$in": ["Bob2", "Cy3"]}}', '--follow', '--out', out, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(json<{counts: Record<string, number>}>(result).counts, {customers: 2, orders: 1});
    assert.deepEqual(splitBson(readFileSync(path.join(out, 'dump/shop/orders.bson'))), fixture.expected.orders);
  });

  test('--changed-between keeps the documents whose fields changed in the window, as they were at its start', async () => {
    const out = path.join(dir, 'set-window');
    // In [base+5, base+9): customer 1's name (+5) and tags (+6), customer 2 deleted (+8), which takes its
    // name with it; customer 3 and 4 untouched. Both changed ones come as they were at +5: the backup's bytes.
    const window = `Timestamp(${fixture.base + 5}, 0)..Timestamp(${fixture.base + 9}, 0)`;
    const result = await runCli(['extract', '--changed-between', window, '--fields', 'name', '--oplog', path.join(dir, 'oplog'), '--collection', 'customers', '--out', out, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(json<{counts: Record<string, number>}>(result).counts, {customers: 2});
    assert.deepEqual(splitBson(readFileSync(path.join(out, 'dump/shop/customers.bson'))).sort(), fixture.backup.customers!.slice(0, 2).sort());
  });

  test('a TIME the oplog does not reach is refused, naming the range, and leaves no set', async () => {
    const out = path.join(dir, 'set-late');
    const result = await runCli(['extract', '--at', `Timestamp(${fixture.base + 3600}, 0)`, '--oplog', path.join(dir, 'oplog'), '--collection', 'customers', '--out', out], {env});
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /oplog/i);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(!readdirSync(dir).some((f) => f.startsWith('set-late') || f.startsWith('.set-late')), 'nothing left behind');
  });

  test('a gap in the oplog between the base and TIME is refused, naming it, and leaves no set', async () => {
    const out = path.join(dir, 'set-gap');
    const result = await runCli(['extract', '--at', `Timestamp(${fixture.at.t}, ${fixture.at.i})`, '--oplog', path.join(dir, 'oplog-gap'), '--collection', 'customers', '--out', out], {env});
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stderr, /gap/i);
    assert.doesNotMatch(result.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(!readdirSync(dir).some((f) => f.includes('set-gap')), 'nothing left behind');
  });

  test('a command on a collection that matters whose effect the oplog does not hold stops the extract', async () => {
    const out = path.join(dir, 'set-command');
    const result = await runCli(['extract', '--at', `Timestamp(${fixture.at.t}, ${fixture.at.i})`, '--oplog', path.join(dir, 'oplog-command'), '--collection', 'customers', '--out', out], {env});
    assert.equal(result.code, 8, result.stderr);
    assert.match(result.stderr, /emptycapped/);
    assert.ok(!readdirSync(dir).some((f) => f.includes('set-command')), 'nothing left behind');
    // Before the command, the same oplog rebuilds fine.
    const early = await runCli(['extract', '--at', `Timestamp(${fixture.base + 12}, 1)`, '--oplog', path.join(dir, 'oplog-command'), '--collection', 'customers', '--out', out], {env});
    assert.equal(early.code, 0, early.stderr);
  });

  test('a TIME before the oldest backup is refused', async () => {
    const result = await runCli(['extract', '--at', `Timestamp(${fixture.base - 60}, 0)`, '--oplog', path.join(dir, 'oplog'), '--collection', 'customers', '--out', path.join(dir, 'set-early')], {env});
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /backup/i);
  });
});
