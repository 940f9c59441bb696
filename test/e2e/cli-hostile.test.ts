import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {existsSync} from 'node:fs';
import {mkdir, readdir, readFile, rm, statfs, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON, ObjectId} from 'bson';

import {buildArchive, everyTypeDocuments, metadataJson, rawDocument, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {assertCleanError, BIN, cleanEnv, json, REPO_ROOT, runCli} from '../support/cli.js';
import {nestedAnd, nestedDocument, tarGzOf, writeBombTarGz} from '../support/hostile-fixtures.js';
import {withDb} from '../support/mongo-backend.js';
import {mongoSuite} from '../support/mongo-suite.js';

/** Free bytes on the disk of `dir` now: a reserve of `free - room` lets a test fill `room` bytes at most. */
async function freeBytes(dir: string): Promise<number> {
  const disk = await statfs(dir);
  return disk.bavail * disk.bsize;
}

/** Runs the CLI and samples its peak resident memory (VmHWM) from /proc while it runs. */
async function runWithPeak(args: string[]): Promise<{code: number | null; stdout: string; stderr: string; peakKiB: number}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd: REPO_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe']});
    let stdout = '';
    let stderr = '';
    let peakKiB = 0;
    const sample = async () => {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8').catch(() => '');
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) peakKiB = Math.max(peakKiB, Number(hwm[1]));
    };
    const timer = setInterval(() => void sample(), 20);
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(timer);
      resolve({code, stdout, stderr, peakKiB});
    });
  });
}

/** Nothing of a refused extraction is left: no set, no temporary folder beside it. */
async function assertNothingLeft(dir: string, out: string): Promise<void> {
  assert.equal(existsSync(out), false, `${out} exists`);
  const leftovers = (await readdir(dir)).filter((name) => name.startsWith(`.${path.basename(out)}.tmp`));
  assert.deepEqual(leftovers, []);
}

describe('hostile and broken backups through bin/run.js', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('cli-hostile');
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('extract {} refuses a document with an unknown type byte, naming the collection, the byte offset and the _id', async () => {
    const good = everyTypeDocuments(6, 5);
    const id = new ObjectId('65a1b2c3d4e5f60718293a4b');
    const bad = rawDocument([
      {type: 0x07, key: '_id', value: Buffer.from(id.id)},
      {type: 0x02, key: 'name', value: Buffer.from([4, 0, 0, 0, 0x61, 0x62, 0x63, 0])},
      {type: 0x77, key: 'x', value: Buffer.from([1, 2, 3, 4])},
    ]);
    const offset = good.slice(0, 4).reduce((sum, d) => sum + d.length, 0);
    await writeFolder(path.join(dir, 'bad77', 'dump'), [{db: 'shop', collection: 'customers', docs: [...good.slice(0, 4), bad, ...good.slice(4)], metadata: metadataJson('customers')}]);
    const out = path.join(dir, 'set-77');
    const result = await runCli(['extract', '--from', path.join(dir, 'bad77'), '--collection', 'customers', '--query', '{}', '--out', out]);
    assert.equal(result.code, 6, result.stderr);
    assertCleanError(result, /shop\.customers.*document at byte (\d+).*_id \{"\$oid":"65a1b2c3d4e5f60718293a4b"\}.*not valid BSON: an unknown BSON type byte 0x77/);
    assert.match(result.stderr, new RegExp(`document at byte ${offset} `));
    await assertNothingLeft(dir, out);

    const jsonResult = await runCli(['extract', '--from', path.join(dir, 'bad77'), '--collection', 'customers', '--query', '{}', '--out', out, '--json']);
    const error = json<{error: {code: string}}>(jsonResult).error;
    assert.equal(error.code, 'DUMP_CORRUPT');
  });

  it('extract {} refuses a string without its NUL inside a .tar.gz, and inspect says the same', async () => {
    const value = Buffer.alloc(4 + 3);
    value.writeInt32LE(3, 0);
    value.write('abc', 4);
    const bad = rawDocument([{type: 0x10, key: '_id', value: Buffer.from([42, 0, 0, 0])}, {type: 0x02, key: 'phone', value}]);
    const data = Buffer.concat([...everyTypeDocuments(3, 8), bad]);
    const file = path.join(dir, 'nonul.tar.gz');
    await writeFile(file, await tarGzOf([{name: 'dump/shop/customers.bson', data}]));
    const out = path.join(dir, 'set-nonul');
    const result = await runCli(['extract', '--from', file, '--collection', 'customers', '--query', '{}', '--out', out]);
    assert.equal(result.code, 6, result.stderr);
    assertCleanError(result, /dump\/shop\/customers\.bson.*\(shop\.customers\).*_id \{"\$numberInt":"42"\}.*string/);
    await assertNothingLeft(dir, out);
    const inspected = await runCli(['inspect', file]);
    assert.equal(inspected.code, 6, inspected.stderr);
    assertCleanError(inspected, /shop\.customers.*not valid BSON/);
  });

  it('a tar member named dump/../mid2.bson is refused by inspect and extract, naming the member', async () => {
    const file = path.join(dir, 'dotdot.tar.gz');
    await writeFile(file, await tarGzOf([
      {name: 'dump/shop/customers.bson', data: Buffer.concat(everyTypeDocuments(3, 1))},
      {name: 'dump/../mid2.bson', data: Buffer.concat(everyTypeDocuments(3, 2))},
    ]));
    for (const args of [['inspect', file], ['extract', '--from', file, '--collection', 'mid2', '--query', '{}', '--out', path.join(dir, 'set-dotdot')]]) {
      const result = await runCli(args);
      assert.equal(result.code, 6, result.stderr);
      assertCleanError(result, /member "dump\/\.\.\/mid2\.bson" points outside the dump/);
      assert.doesNotMatch(result.stderr, /Invalid database name|Report this as a bug/);
    }
    await assertNothingLeft(dir, path.join(dir, 'set-dotdot'));
    // An --archive names its namespaces in headers: a database named ".." is refused the same way.
    const archive = path.join(dir, 'dotdot.archive');
    await writeFile(archive, buildArchive([{db: '..', collection: 'mid2', docs: everyTypeDocuments(2, 3), metadata: metadataJson('mid2')}]));
    const fromArchive = await runCli(['inspect', archive]);
    assert.equal(fromArchive.code, 6, fromArchive.stderr);
    assertCleanError(fromArchive, /names database "\.\.", which MongoDB does not allow/);
    const absolute = path.join(dir, 'absolute.tar.gz');
    await writeFile(absolute, await tarGzOf([{name: '/etc/shop/customers.bson', data: Buffer.concat(everyTypeDocuments(2, 1))}]));
    assertCleanError(await runCli(['inspect', absolute]), /points outside the dump/);
  });

  it('a document nested 100,000 levels is too deep for extract and inspect, never a stack overflow', async () => {
    const deep = nestedDocument(100_000, 3);
    await writeFolder(path.join(dir, 'deep', 'dump'), [{db: 'shop', collection: 'trees', docs: [...everyTypeDocuments(2, 4), deep], metadata: metadataJson('trees')}]);
    const out = path.join(dir, 'set-deep');
    const extract = await runCli(['extract', '--from', path.join(dir, 'deep'), '--collection', 'trees', '--query', '{}', '--out', out]);
    assert.equal(extract.code, 10, extract.stderr);
    assertCleanError(extract, /shop\.trees.*_id \{"\$numberInt":"3"\}.*nested deeper than 250 levels/);
    assert.doesNotMatch(extract.stderr, /call stack/i);
    await assertNothingLeft(dir, out);
    const inspect = await runCli(['inspect', path.join(dir, 'deep')]);
    assert.equal(inspect.code, 10, inspect.stderr);
    assert.doesNotMatch(inspect.stderr, /call stack/i);
    const diff = await runCli(['diff', path.join(dir, 'deep'), path.join(dir, 'deep'), '--collection', 'trees']);
    assert.equal(diff.code, 10, diff.stderr);
    assert.doesNotMatch(diff.stderr, /call stack|Unexpected error/i);
  });

  it('10,000 nested $and are refused as too deep (extract, diff), and 101 levels as mongod refuses them', async () => {
    await writeFolder(path.join(dir, 'small', 'dump'), [{db: 'shop', collection: 'orders', docs: everyTypeDocuments(4, 6), metadata: metadataJson('orders')}]);
    const from = path.join(dir, 'small');
    for (const query of [nestedAnd(10_000), nestedAnd(101)]) {
      const extract = await runCli(['extract', '--from', from, '--collection', 'orders', '--query', query, '--out', path.join(dir, 'set-and')]);
      assert.equal(extract.code, 10, extract.stderr);
      assertCleanError(extract, /Query nests .* more than (250|100) levels deep/);
      assert.doesNotMatch(extract.stderr, /Unexpected error|call stack/i);
      const diff = await runCli(['diff', from, from, '--query', query]);
      assert.equal(diff.code, 10, diff.stderr);
    }
    // At the limit, the query runs.
    const ok = await runCli(['extract', '--from', from, '--collection', 'orders', '--query', nestedAnd(100), '--out', path.join(dir, 'set-and-100'), '--json']);
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('extract {} of a decompression bomb stops before the disk reserve with nothing kept', async () => {
    const file = path.join(dir, 'bomb.tar.gz');
    const inside = await writeBombTarGz(file, 'dump/shop/events.bson', {_id: 1, s: 'x'.repeat(1000)}, 384 * 1024 * 1024);
    assert.ok(inside.bytes > 300 * 1024 * 1024);
    const out = path.join(dir, 'set-bomb');
    // The disk is shared: others' writes eat into the room as well, so only an upper bound is certain.
    const room = 96 * 1024 * 1024;
    const env = cleanEnv({GRAVITY_RESTORE_MIN_FREE_BYTES: String((await freeBytes(dir)) - room)});
    const result = await runCli(['extract', '--from', file, '--collection', 'events', '--query', '{}', '--out', out], {env});
    assert.equal(result.code, 10, result.stderr);
    assertCleanError(result, /Stopped writing the restore set before the disk fills: [\d.]+ (B|KiB|MiB) written so far, [\d.]+ [KMGT]?i?B left on the disk of .*GRAVITY_RESTORE_MIN_FREE_BYTES/);
    await assertNothingLeft(dir, out);
    // --follow spools every document of the collection first: the spools count too.
    const follow = await runCli(['extract', '--from', file, '--collection', 'events', '--query', '{}', '--follow', '--out', out], {env});
    assert.equal(follow.code, 10, follow.stderr);
    await assertNothingLeft(dir, out);
    // Without the reserve in the way, the same backup extracts.
    const small = path.join(dir, 'small-bomb.tar.gz');
    const few = await writeBombTarGz(small, 'dump/shop/events.bson', {_id: 1, s: 'x'.repeat(1000)}, 8 * 1024 * 1024);
    const fineEnv = cleanEnv({GRAVITY_RESTORE_MIN_FREE_BYTES: String((await freeBytes(dir)) - room)});
    const fine = await runCli(['extract', '--from', small, '--collection', 'events', '--query', '{}', '--out', path.join(dir, 'set-fine'), '--json'], {env: fineEnv});
    assert.equal(fine.code, 0, fine.stderr);
    assert.equal(json<{counts: Record<string, number>}>(fine).counts.events, few.documents);
  });

  it('fetch --collection of a decompression bomb stops before the reserve and leaves no cache entry', async () => {
    const source = path.join(dir, 'bomb-source');
    await mkdir(source, {recursive: true});
    await writeBombTarGz(path.join(source, '2026-11-18T14-00-00Z.tar.gz'), 'dump/shop/events.bson', {_id: 1, s: 'x'.repeat(1000)}, 384 * 1024 * 1024);
    const cache = path.join(dir, 'bomb-cache');
    const env = cleanEnv({GRAVITY_RESTORE_MIN_FREE_BYTES: String((await freeBytes(dir)) - 96 * 1024 * 1024)});
    const result = await runCli(['fetch', 'latest', '--source', source, '--cache', cache, '--collection', 'events'], {env});
    assert.equal(result.code, 10, result.stderr);
    assertCleanError(result, /Stopped writing the unpacked collections before the disk fills: .* written so far, .* left on the disk of/);
    const unpacked = path.join(cache, 'unpacked');
    const left = existsSync(unpacked) ? await readdir(unpacked, {recursive: true}) : [];
    assert.deepEqual(left.filter((name) => /\.bson$|tmp-/.test(String(name))), []);
  });

  it('inspect of a bomb of 87 million tiny documents stays in constant memory', async () => {
    const file = path.join(dir, 'tiny-bomb.tar.gz');
    const inside = await writeBombTarGz(file, 'dump/shop/clicks.bson', {a: 1}, 1024 * 1024 * 1024);
    const result = await runWithPeak(['inspect', file, '--json']);
    assert.equal(result.code, 0, result.stderr);
    const ns = json<{namespaces: Array<{documents: number; bytes: number}>}>({...result, ms: 0}).namespaces[0]!;
    assert.equal(ns.documents, inside.documents);
    assert.equal(ns.bytes, inside.bytes);
    // Measured: 370 MB before (one Buffer per document), 189 MB after, the same at 3 GiB.
    assert.ok(result.peakKiB < 280 * 1024, `peak RSS ${Math.round(result.peakKiB / 1024)} MiB`);
  });

  it('fetch keys unpacked collections by source and backup: two sources with a backup of the same name never share', async () => {
    const cache = path.join(dir, 'shared-cache');
    const paths: string[] = [];
    const held: Buffer[] = [];
    for (const [label, seed] of [['a', 31], ['b', 32]] as const) {
      const source = path.join(dir, `source-${label}`);
      await mkdir(source, {recursive: true});
      const docs = everyTypeDocuments(5, seed);
      held.push(Buffer.concat(docs));
      await writeFile(path.join(source, '2026-11-18T14-00-00Z.tar.gz'), await tarGzOf([{name: 'dump/shop/customers.bson', data: Buffer.concat(docs)}]));
      const result = await runCli(['fetch', 'latest', '--source', source, '--cache', cache, '--collection', 'customers', '--json']);
      assert.equal(result.code, 0, result.stderr);
      paths.push(json<{collections: Record<string, string>}>(result).collections.customers!);
    }
    assert.notEqual(paths[0], paths[1]);
    // Each path still holds its own source's documents after the other fetch.
    assert.notDeepEqual(held[0], held[1]);
    assert.ok((await readFile(paths[0]!)).equals(held[0]!), 'the first source\'s path holds the other source\'s documents');
    assert.ok((await readFile(paths[1]!)).equals(held[1]!));
  });
});

describe('documents nested past what mongod stores, planned and pushed through bin/run.js', () => {
  const suite = mongoSuite('cli-hostile-depth');

  it('plan names a document nested 181 levels as one the server refuses, and push never writes it as an insert', async () => {
    const dir = await tempDir('cli-hostile-depth');
    suite.cleanups.push(() => rm(dir, {recursive: true, force: true}));
    const db = `gr_depth_${process.pid}`;
    const uri = withDb(suite.mongo.uri, db);
    // mongod stores 180 levels (maxBSONDepth 200 less 20, src/mongo/bson/bson_depth.h) and refuses 181 with Overflow (15).
    const docs = [Buffer.from(BSON.serialize({_id: 1, name: 'flat'})), nestedDocument(180, 2), nestedDocument(181, 3)];
    await writeFolder(path.join(dir, 'backup', 'dump'), [{db, collection: 'trees', docs, metadata: metadataJson('trees')}]);
    const set = path.join(dir, 'set');
    const extract = await runCli(['extract', '--from', path.join(dir, 'backup'), '--collection', 'trees', '--query', '{}', '--out', set, '--json']);
    assert.equal(extract.code, 0, extract.stderr);
    assert.ok((await readFile(path.join(set, 'dump', db, 'trees.bson'))).equals(Buffer.concat(docs)), 'the set holds the backup\'s bytes');

    const plan = await runCli(['plan', set, '--to', uri, '--json']);
    assert.equal(plan.code, 0, plan.stderr);
    const planned = json<{notExact: Record<string, Record<string, string>>; collections: Record<string, {notExact: number}>}>(plan);
    assert.deepEqual(Object.keys(planned.notExact.trees ?? {}), ['{"$numberInt":"3"}']);
    assert.match(planned.notExact.trees!['{"$numberInt":"3"}']!, /nested 181 levels: the server refuses to store a document deeper than 180 \(Overflow, code 15/);
    assert.equal(planned.collections.trees?.notExact, 1);
    const human = await runCli(['plan', set, '--to', uri]);
    assert.match(human.stdout, /trees _id 3: nested 181 levels/);

    // Pushed as it stands, the push stops before writing; skipping it writes the other two byte for byte.
    const refused = await runCli(['push', set, '--to', uri, '--yes']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /trees _id \{"\$numberInt":"3"\}: nested 181 levels/);
    const skipped = await runCli(['push', set, '--to', uri, '--yes', '--inexact', 'skip', '--json']);
    assert.ok(skipped.code === 0 || skipped.code === 9, skipped.stderr);
    const stored = (await suite.client.db(db).collection('trees').find({}, {raw: true}).sort({_id: 1}).toArray()) as unknown as Uint8Array[];
    assert.deepEqual(stored.map((b) => Buffer.from(b).toString('hex')), [docs[0]!.toString('hex'), docs[1]!.toString('hex')]);
  });
});
