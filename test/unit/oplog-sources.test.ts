/**
 * Oplog sources: local.oplog.rs dumps merged by ts (boundary duplicates dropped, gaps found), a
 * mongodump --oplog dump's oplog.bson in every layout, damaged files refused with the file and
 * offset. Entries are written by python3-bson in mongod's format (test/support/oplog-fixtures.ts).
 */
import assert from 'node:assert/strict';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {test} from 'node:test';
import zlib from 'node:zlib';

import {crc64} from '../../src/dump/crc64.js';
import {isGravityError} from '../../src/errors.js';
import {assertCovers, CombinedOplog} from '../../src/oplog/sources/combined.js';
import {DumpOplogSource} from '../../src/oplog/sources/dump.js';
import {skippable} from '../../src/oplog/sources/entry.js';
import {OplogFileSet, type OplogFile} from '../../src/oplog/sources/files.js';
import {openOplogSource} from '../../src/oplog/sources/open.js';
import type {RawOplogEntry} from '../../src/oplog/types.js';
import {parseOplogTime} from '../../src/oplog/time.js';
import {runChanges} from '../../src/oplog/changes.js';
import {resolveSettings} from '../../src/config/settings.js';
import {buildArchive, metadataJson, tarFolder, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {encodeEntries, innerInsert, insert, noop, oid, remove, transactionChain, updateV2, type Json} from '../support/oplog-fixtures.js';

const NS = 'gravity.artworks';
const T0 = 1_763_476_200; // 2025-11-18T14:30:00Z

/** Entries at T0 + k seconds (k given), an insert each, a no-op where asked. */
function entriesAt(seconds: number[], withNoops = false): Json[] {
  return seconds.map((k, n) => (withNoops && n % 2 === 1 ? noop(T0 + k) : insert(T0 + k, 1, NS, {_id: {$numberInt: String(k)}})));
}

async function collect(iterable: AsyncIterable<RawOplogEntry>): Promise<RawOplogEntry[]> {
  const out: RawOplogEntry[] = [];
  for await (const e of iterable) out.push(e);
  return out;
}

function memoryFile(name: string, data: Buffer, chunk = 37): OplogFile {
  return {
    name,
    size: data.length,
    open: async () => (async function* () {
      for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
    })(),
  };
}

async function rejectsWith(promise: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isGravityError(error), `not a GravityError: ${String(error)}`);
    assert.equal(error.code, code);
    assert.match(error.message, pattern);
    return true;
  });
}

test('dumps that share their boundary entry merge into one run: each entry once, in ts order, no gap', async () => {
  // mongodump --query '{ts: {$gte: <last ts of the previous dump>}}' repeats the boundary entry (OPLOG.md §8 row b).
  const a = encodeEntries(entriesAt([0, 5, 10]));
  const b = encodeEntries(entriesAt([10, 15, 20]));
  const c = encodeEntries(entriesAt([20, 25]));
  // Listed out of order: the source orders files by their first entry.
  const source = new OplogFileSet('dumps', [memoryFile('c.bson', Buffer.concat(c)), memoryFile('a.bson', Buffer.concat(a)), memoryFile('b.bson', Buffer.concat(b))]);
  const entries = await collect(source.entries());
  assert.deepEqual(entries.map((e) => e.ts.t - T0), [0, 5, 10, 15, 20, 25]);
  assert.ok(entries[2]!.raw.equals(a[2]!), 'entries leave as the bytes read');
  const coverage = await source.coverage();
  assert.deepEqual(coverage.from, {t: T0, i: 1});
  assert.deepEqual(coverage.to, {t: T0 + 25, i: 1});
  assert.equal(coverage.entries, 8, 'the count is per file: the boundary entries are in two files');
  assert.deepEqual(coverage.gaps, []);
  // After a coverage scan, the same read again.
  assert.deepEqual((await collect(source.entries())).map((e) => e.ts.t - T0), [0, 5, 10, 15, 20, 25]);
});

test('files that do not meet leave a gap between the last entry of one and the first of the next', async () => {
  // '{ts: {$gt: …}}' drops the boundary entry: nothing proves the stretch between is empty.
  const source = new OplogFileSet('dumps', [memoryFile('a.bson', Buffer.concat(encodeEntries(entriesAt([0, 5])))), memoryFile('b.bson', Buffer.concat(encodeEntries(entriesAt([6, 9]))))]);
  const coverage = await source.coverage();
  assert.deepEqual(coverage.gaps, [{from: {t: T0 + 5, i: 1}, to: {t: T0 + 6, i: 1}}]);
  assert.deepEqual((await collect(source.entries())).map((e) => e.ts.t - T0), [0, 5, 6, 9]);
  assert.throws(() => assertCovers(coverage, {t: T0, i: 1}, {t: T0 + 8, i: 0}, 'the window'), /gap from .* to /);
  assert.doesNotThrow(() => assertCovers(coverage, {t: T0 + 6, i: 1}, {t: T0 + 9, i: 0}, 'the window'));
  assert.throws(() => assertCovers(coverage, {t: T0 - 1, i: 0}, null, 'the window'), /starts at .* after/);
});

test('inside an unfiltered oplog (it holds no-ops) a silence over 60 s is a gap; a filtered dump may be silent', async () => {
  // An idle primary writes a no-op every 10 s (jira SERVER-23892; periodicNoopIntervalSecs ≤ 10).
  const withNoops = new OplogFileSet('full', [memoryFile('full.bson', Buffer.concat(encodeEntries(entriesAt([0, 10, 20, 30, 200, 210], true))))]);
  assert.deepEqual((await withNoops.coverage()).gaps, [{from: {t: T0 + 30, i: 1}, to: {t: T0 + 200, i: 1}}]);
  const filtered = new OplogFileSet('filtered', [memoryFile('f.bson', Buffer.concat(encodeEntries(entriesAt([0, 200, 400]))))]);
  assert.deepEqual((await filtered.coverage()).gaps, []);
  // A silence one file has and another covers is no gap.
  const covered = new OplogFileSet('both', [
    memoryFile('full.bson', Buffer.concat(encodeEntries(entriesAt([0, 10, 20, 30, 200, 210], true)))),
    memoryFile('middle.bson', Buffer.concat(encodeEntries(entriesAt([30, 100, 200])))),
  ]);
  assert.deepEqual((await covered.coverage()).gaps, []);
});

test('since and until bound the read: since inclusive, until exclusive (state at TIME = entries before it)', async () => {
  const source = new OplogFileSet('dumps', [memoryFile('a.bson', Buffer.concat(encodeEntries(entriesAt([0, 5, 10, 15]))))]);
  const got = await collect(source.entries({since: {t: T0 + 5, i: 1}, until: {t: T0 + 15, i: 1}}));
  assert.deepEqual(got.map((e) => e.ts.t - T0), [5, 10]);
});

test('a truncated file is OPLOG_CORRUPT naming the file and the byte offset', async () => {
  const docs = encodeEntries(entriesAt([0, 5, 10]));
  const whole = Buffer.concat(docs);
  const cut = whole.subarray(0, whole.length - 7);
  const source = new OplogFileSet('dumps', [memoryFile('cut.bson', cut)]);
  const at = docs[0]!.length + docs[1]!.length;
  await rejectsWith(source.coverage(), 'OPLOG_CORRUPT', new RegExp(`cut\\.bson: truncated document at byte ${at}`));
  // Gzipped: the offset is in the uncompressed bytes, and says so.
  const gz = new OplogFileSet('dumps', [memoryFile('cut.bson.gz', zlib.gzipSync(cut))]);
  await rejectsWith(gz.coverage(), 'OPLOG_CORRUPT', new RegExp(`cut\\.bson\\.gz \\(gunzipped\\): truncated document at byte ${at}`));
});

test('an entry over 16 MiB + 16 KiB is OPLOG_CORRUPT (mongorestore reads oplog entries up to that size)', async () => {
  const first = encodeEntries(entriesAt([0]))[0]!;
  const huge = Buffer.alloc(64);
  huge.writeInt32LE(16 * 1024 * 1024 + 16 * 1024 + 1, 0);
  const source = new OplogFileSet('dumps', [memoryFile('big.bson', Buffer.concat([first, huge]))]);
  await rejectsWith(source.coverage(), 'OPLOG_CORRUPT', new RegExp(`big\\.bson: an entry of 16793601 bytes at byte ${first.length}, over the 16 MiB \\+ 16 KiB`));
});

test('entries out of ts order, a document without ts, and two files disagreeing at one ts are refused', async () => {
  const disorder = new OplogFileSet('x', [memoryFile('disorder.bson', Buffer.concat(encodeEntries(entriesAt([5, 0]))))]);
  await rejectsWith(disorder.coverage(), 'OPLOG_CORRUPT', /disorder\.bson: entries out of order .* \(entry at byte \d+\)/);
  const notOplog = new OplogFileSet('x', [memoryFile('artworks.bson', Buffer.concat(encodeEntries([{_id: oid('65f0c0ffee0000000000abcd'), title: 'x'}])))]);
  await rejectsWith(notOplog.coverage(), 'OPLOG_CORRUPT', /artworks\.bson: a document without a Timestamp "ts" field is not an oplog entry \(entry at byte 0\)/);
  const a = encodeEntries([insert(T0, 1, NS, {_id: {$numberInt: '1'}}), insert(T0 + 5, 1, NS, {_id: {$numberInt: '2'}})]);
  const b = encodeEntries([remove(T0 + 5, 1, NS, {$numberInt: '2'}), insert(T0 + 6, 1, NS, {_id: {$numberInt: '3'}})]);
  const clash = new OplogFileSet('x', [memoryFile('a.bson', Buffer.concat(a)), memoryFile('b.bson', Buffer.concat(b))]);
  await rejectsWith(collect(clash.entries()), 'OPLOG_CORRUPT', /a\.bson and b\.bson hold different entries at Timestamp\(\d+, 1\)/);
});

const DUMP_ENTRIES = (): Buffer[] => encodeEntries([
  noop(T0),
  insert(T0 + 1, 1, NS, {_id: oid('65f0c0ffee0000000000abcd'), title: 'Untitled'}),
  updateV2(T0 + 2, 1, NS, oid('65f0c0ffee0000000000abcd'), {u: {title: 'Titled'}}),
  noop(T0 + 12),
]);

test('a mongodump --oplog dump: oplog.bson in a folder (gzip inside a file still named oplog.bson), a tarball, an archive', async () => {
  const oplog = DUMP_ENTRIES();
  const root = await tempDir('oplog-dump');
  const artworks = encodeEntries([{_id: oid('65f0c0ffee0000000000abcd'), title: 'Untitled'}]);
  const namespaces = [{db: 'gravity', collection: 'artworks', docs: artworks, metadata: metadataJson('artworks')}];
  const expect = async (source: DumpOplogSource, what: string) => {
    const entries = await collect(source.entries());
    assert.equal(entries.length, 4, what);
    entries.forEach((e, k) => assert.ok(e.raw.equals(oplog[k]!), `${what}: entry ${k} byte for byte`));
    const coverage = await source.coverage();
    assert.deepEqual([coverage.from, coverage.to, coverage.entries, coverage.gaps], [{t: T0, i: 1}, {t: T0 + 12, i: 1}, 4, []], what);
  };
  const plain = path.join(root, 'plain');
  await writeFolder(plain, namespaces, {oplog});
  await expect(new DumpOplogSource(plain, plain), 'folder');
  // mongodump --oplog --gzip: collections get .bson.gz, the oplog keeps its name with gzip inside (OPLOG.md §8, trap 16).
  const gz = path.join(root, 'gz');
  await writeFolder(gz, namespaces, {gzip: true});
  await fsp.writeFile(path.join(gz, 'oplog.bson'), zlib.gzipSync(Buffer.concat(oplog)));
  await expect(new DumpOplogSource(gz, gz), 'gzip folder');
  const opened = await openOplogSource(gz, resolveSettings({}, {}, null, {}));
  assert.ok(opened instanceof DumpOplogSource, 'a dump folder given to --oplog is read for its oplog.bson');
  const tarball = path.join(root, 'dump.tar.gz');
  tarFolder(root, 'gz', tarball, {gzip: true});
  await expect(new DumpOplogSource(tarball, tarball), 'tar.gz');
  // --archive: the oplog is the namespace with db "" and collection "oplog" (OPLOG.md §8).
  const archive = path.join(root, 'dump.archive');
  await fsp.writeFile(archive, buildArchive([...namespaces, {db: '', collection: 'oplog', docs: oplog}], {crc: (d) => crc64(Buffer.concat(d)), segment: 3}));
  await expect(new DumpOplogSource(archive, archive), 'archive');
  const cut = path.join(root, 'cut');
  await writeFolder(cut, namespaces, {oplog: [Buffer.concat(oplog).subarray(0, 100)]});
  await rejectsWith(collect(new DumpOplogSource(cut, cut).entries()), 'OPLOG_CORRUPT', /oplog\.bson \(oplog\): truncated document at byte 0/);
});

test('--oplog: a folder of .bson/.bson.gz dumps (as mongodump -d local -c oplog.rs writes them), one file, and several sources together', async () => {
  const root = await tempDir('oplog-files');
  await fsp.mkdir(path.join(root, 'dumps', 'day1', 'local'), {recursive: true});
  await fsp.mkdir(path.join(root, 'dumps', 'day2', 'local'), {recursive: true});
  await fsp.writeFile(path.join(root, 'dumps', 'day1', 'local', 'oplog.rs.bson'), Buffer.concat(encodeEntries(entriesAt([0, 5, 10]))));
  await fsp.writeFile(path.join(root, 'dumps', 'day1', 'local', 'oplog.rs.metadata.json'), '{"options":{"capped":true}}');
  await fsp.writeFile(path.join(root, 'dumps', 'day2', 'local', 'oplog.rs.bson.gz'), zlib.gzipSync(Buffer.concat(encodeEntries(entriesAt([10, 15])))));
  const settings = resolveSettings({}, {}, null, {});
  const folder = await openOplogSource(path.join(root, 'dumps'), settings);
  assert.ok(folder instanceof OplogFileSet);
  assert.deepEqual((await collect(folder.entries())).map((e) => e.ts.t - T0), [0, 5, 10, 15]);
  const one = await openOplogSource(path.join(root, 'dumps', 'day2', 'local', 'oplog.rs.bson.gz'), settings);
  assert.deepEqual((await one.coverage()).from, {t: T0 + 10, i: 1});
  // A later dump that overlaps the first: together they run unbroken, entries once.
  await fsp.writeFile(path.join(root, 'later.bson'), Buffer.concat(encodeEntries(entriesAt([15, 20]))));
  const later = await openOplogSource(path.join(root, 'later.bson'), settings);
  const combined = new CombinedOplog([later, folder]);
  const coverage = await combined.coverage();
  assert.deepEqual([coverage.from, coverage.to, coverage.gaps], [{t: T0, i: 1}, {t: T0 + 20, i: 1}, []]);
  assert.deepEqual((await collect(combined.entries())).map((e) => e.ts.t - T0), [0, 5, 10, 15, 20]);
  await rejectsWith(openOplogSource(path.join(root, 'nowhere'), settings), 'SOURCE_NOT_FOUND', /No oplog source at/);
  await fsp.mkdir(path.join(root, 'empty'));
  await rejectsWith(openOplogSource(path.join(root, 'empty'), settings), 'SOURCE_NOT_FOUND', /holds no oplog dumps/);
});

test('TIME: ISO 8601 with an offset or read in a zone, Timestamp(t, i), fractions of a second refused', () => {
  assert.deepEqual(parseOplogTime('2025-11-18T14:30:00Z', 'UTC'), {t: T0, i: 0});
  assert.deepEqual(parseOplogTime('2025-11-18T09:30:00-05:00', 'UTC'), {t: T0, i: 0});
  assert.deepEqual(parseOplogTime('2025-11-18 09:30', 'America/New_York'), {t: T0, i: 0});
  assert.deepEqual(parseOplogTime('Timestamp(1763476200, 7)', 'UTC'), {t: T0, i: 7});
  assert.deepEqual(parseOplogTime('Timestamp({ t: 1763476200, i: 7 })', 'UTC'), {t: T0, i: 7});
  assert.deepEqual(parseOplogTime('{"$timestamp": {"t": 1763476200, "i": 7}}', 'UTC'), {t: T0, i: 7});
  assert.throws(() => parseOplogTime('2025-11-18T14:30:00.5Z', 'UTC'), /whole seconds/);
  assert.throws(() => parseOplogTime('Timestamp(1, 99999999999)', 'UTC'), /unsigned 32-bit/);
  assert.throws(() => parseOplogTime('yesterday', 'UTC'), /Cannot read "yesterday" as a time/);
});

test('the merge of overlapping files, cut anywhere from one oplog, gives that oplog back: each entry once, in order', async () => {
  const all = encodeEntries(Array.from({length: 60}, (_, k) => (k % 7 === 3 ? noop(T0 + k * 2) : insert(T0 + k * 2, 1 + (k % 3), NS, {_id: {$numberInt: String(k)}}))));
  let seed = 11;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let round = 0; round < 25; round++) {
    // Random stretches covering every entry at least once, overlapping each other, in random order.
    const files: OplogFile[] = [];
    let start = 0;
    while (start < all.length) {
      const end = Math.min(all.length, start + 1 + Math.floor(next() * 20));
      // At least one entry shared with what came before: files that do not meet leave a gap.
      const from = Math.max(0, start - 1 - Math.floor(next() * 5));
      files.push(memoryFile(`f${files.length}.bson`, Buffer.concat(all.slice(from, end)), 1 + Math.floor(next() * 200)));
      start = end;
    }
    if (next() < 0.5) files.push(memoryFile('whole.bson', Buffer.concat(all.slice(10, 40))));
    files.sort(() => next() - 0.5);
    const source = new OplogFileSet('random', files);
    const got = await collect(source.entries());
    assert.equal(got.length, all.length, `round ${round}`);
    got.forEach((e, k) => assert.ok(e.raw.equals(all[k]!), `round ${round}: entry ${k}`));
    assert.deepEqual((await source.coverage()).gaps, [], `round ${round}`);
  }
});

test('entries that cannot matter are passed over undecoded: no-ops and other namespaces\' CRUD; commands never', () => {
  const [n, mine, other, txn, image] = encodeEntries([
    noop(T0),
    insert(T0 + 1, 1, NS, {_id: {$numberInt: '1'}}),
    insert(T0 + 2, 1, 'gravity.other', {_id: {$numberInt: '1'}}),
    {op: 'c', ns: 'admin.$cmd', o: {applyOps: [{op: 'i', ns: 'gravity.other', o: {_id: 1}}]}, ts: {$timestamp: {t: T0 + 3, i: 1}}},
    {op: 'n', ns: NS, o: {_id: 1, image: true}, ts: {$timestamp: {t: T0 + 4, i: 1}}},
  ]);
  const matters = (ns: string) => ns === NS;
  assert.deepEqual([n, mine, other, txn, image].map((d) => skippable(d!, matters)), [true, false, true, false, true]);
});

test('a time (t, 0) is covered by an oplog whose first entry is (t, 1): no entry has a counter of 0', () => {
  const coverage = {source: 'x', from: {t: T0, i: 1}, to: {t: T0 + 9, i: 1}, entries: 2, gaps: [{from: {t: T0 + 3, i: 4}, to: {t: T0 + 5, i: 1}}]};
  assert.doesNotThrow(() => assertCovers(coverage, {t: T0, i: 0}, {t: T0 + 2, i: 0}, 'x'));
  assert.throws(() => assertCovers(coverage, {t: T0 - 1, i: 0}, null, 'x'), /starts at/);
  assert.doesNotThrow(() => assertCovers(coverage, {t: T0 + 5, i: 0}, null, 'x'), 'the gap ends at (t, 1): nothing of it is at or after (t, 0)');
  assert.throws(() => assertCovers(coverage, {t: T0 + 4, i: 0}, null, 'x'), /gap/);
  assert.doesNotThrow(() => assertCovers({...coverage, from: {t: T0, i: 1}}, {t: T0, i: 0}, {t: T0 + 3, i: 4}, 'x'), 'a window ending where the gap starts');
});

test('changes counts a transaction that began before --since and committed inside the window (oplog files are read whole)', async () => {
  const root = await tempDir('oplog-txn');
  const chain = transactionChain([
    {t: T0 + 1, i: 1, ops: [innerInsert(NS, {_id: {$numberInt: '1'}})]},
    {t: T0 + 3, i: 1, ops: [innerInsert(NS, {_id: {$numberInt: '2'}})]},
  ]);
  const file = path.join(root, 'txn.bson');
  await fsp.writeFile(file, Buffer.concat(encodeEntries([noop(T0), ...chain, noop(T0 + 5)])));
  const source = await openOplogSource(file, resolveSettings({}, {}, null, {}));
  const result = await runChanges([source], {since: {t: T0 + 2, i: 0}, until: null, collections: []});
  // Both inserts apply at the chain's last entry (inside the window); the first entry is before it.
  assert.equal(result.collections.artworks?.inserted, 2);
  assert.equal(result.collections.artworks?.inTransactions, 2);
  assert.deepEqual(result.warnings, []);
  const before = await runChanges([await openOplogSource(file, resolveSettings({}, {}, null, {}))], {since: {t: T0, i: 0}, until: {t: T0 + 3, i: 0}, collections: []});
  assert.equal(before.collections.artworks, undefined, 'a window ending before the commit holds none of it');
});
