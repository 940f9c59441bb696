/**
 * `oplog`, `changes` and `history` through bin/run.js, on a base backup and oplog dumps written by
 * python3-bson in mongod's entry format (test/support/oplog-fixtures.ts cites OPLOG.md for each
 * shape). The story: the 14:00 backup holds artworks A and B; after it A's price changes, C is
 * created, a transaction marks A sold and creates a sale_artwork, A's title is nulled, B is edited
 * by a 4.4-style $v:1 update, a findAndModify image no-op names artworks, B goes in a batched
 * delete, C is deleted and inserted again. Every expected number comes from that story.
 */
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {promises as fsp} from 'node:fs';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';
import zlib from 'node:zlib';

import {PutObjectCommand} from '@aws-sdk/client-s3';

import {LiveOplogSource} from '../../src/oplog/sources/live.js';
import {createS3Client} from '../../src/s3/client.js';
import {metadataJson, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {assertCleanError, cleanEnv, json, REPO_ROOT, runCli} from '../support/cli.js';
import {startMongo, type MongoBackend} from '../support/mongo-backend.js';
import {s3EnvFor, startS3Server, type S3Server} from '../support/s3-server.js';
import {
  batchedDeletes, DEBIAN_PYTHON, dropCollection, encodeEntries, renameCollection, imageNoop, innerInsert, innerUpdateV2, insert, noop, oid, remove, transaction, updateV1, updateV2, type Json,
} from '../support/oplog-fixtures.js';

const T0 = 1_763_474_400; // 2025-11-18T14:00:00Z, the backup's time
const ISO = (s: number) => new Date((T0 + s) * 1000).toISOString().replace('.000Z', 'Z');
const ART = 'gravity.artworks';
const SALES = 'gravity.sale_artworks';
const A = '65f0c0ffee00000000000a0a';
const B = '65f0c0ffee00000000000b0b';
const C = '65f0c0ffee00000000000c0c';
const P = '57d1e4a2cd530e65f6000001';
const int = (n: number): Json => ({$numberInt: String(n)});

const docA = {_id: oid(A), title: 'Untitled', partner_id: oid(P), price: int(100)};
const docB = {_id: oid(B), title: 'B', partner_id: oid(P), note: 'keep', price: int(5)};
const docC = {_id: oid(C), title: 'New', partner_id: oid(P)};
const docC2 = {_id: oid(C), title: 'New again', partner_id: oid(P)};

/** Idle no-ops every 10 s (an unfiltered oplog), so the dumps' silences are judged. */
function noopsBetween(from: number, to: number): Json[] {
  const out: Json[] = [];
  for (let s = from; s <= to; s += 10) out.push(noop(T0 + s, 1));
  return out;
}

function story(): Json[] {
  const writes: Json[] = [
    updateV2(T0 + 5, 2, ART, oid(A), {u: {price: int(120)}}),
    insert(T0 + 21, 1, ART, docC),
    transaction(T0 + 31, 1, [innerUpdateV2(ART, oid(A), {i: {sold: true}}), innerInsert(SALES, {_id: oid('5a0000000000000000000001'), artwork_id: oid(A)})]),
    updateV2(T0 + 41, 1, ART, oid(A), {u: {title: null}}),
    updateV1(T0 + 51, 1, ART, oid(B), {$set: {title: 'B2'}, $unset: {note: true}}),
    imageNoop(T0 + 61, 1, ART, {...docA, title: 'an image, not a write'}),
    batchedDeletes(T0 + 111, 1, ART, [oid(B)]),
    remove(T0 + 121, 1, ART, oid(C)),
    insert(T0 + 131, 1, ART, docC2),
  ];
  return [...writes, ...noopsBetween(-10, 300)].sort((x, y) => {
    const a = (x.ts as {$timestamp: {t: number; i: number}}).$timestamp;
    const b = (y.ts as {$timestamp: {t: number; i: number}}).$timestamp;
    return a.t - b.t || a.i - b.i;
  });
}

const tsOf = (e: Json) => (e.ts as {$timestamp: {t: number}}).$timestamp.t - T0;

describe('oplog, changes and history through bin/run.js', () => {
  let root: string;
  let dumps: string;
  let base: string;
  let entries: Json[];
  const env = cleanEnv({GRAVITY_RESTORE_SOURCE_TZ: 'UTC'});

  before(async () => {
    root = await tempDir('cli-oplog');
    entries = story();
    // Two dumps of local.oplog.rs, as `mongodump -d local -c oplog.rs --query '{"ts": {"$gte": …}}'` writes them,
    // sharing their boundary entry (the no-op at +100); the second with --gzip.
    const first = entries.filter((e) => tsOf(e) <= 100);
    const second = entries.filter((e) => tsOf(e) >= 100);
    dumps = path.join(root, 'oplog');
    await fsp.mkdir(path.join(dumps, 'dump-1', 'local'), {recursive: true});
    await fsp.mkdir(path.join(dumps, 'dump-2', 'local'), {recursive: true});
    await fsp.writeFile(path.join(dumps, 'dump-1', 'local', 'oplog.rs.bson'), Buffer.concat(encodeEntries(first)));
    await fsp.writeFile(path.join(dumps, 'dump-2', 'local', 'oplog.rs.bson.gz'), zlib.gzipSync(Buffer.concat(encodeEntries(second))));
    base = path.join(root, 'dump-2025-11-18T14-00-00Z');
    const art = encodeEntries([docA, docB]);
    await writeFolder(base, [{db: 'gravity', collection: 'artworks', docs: art, metadata: metadataJson('artworks')}]);
  });

  after(async () => {
    await fsp.rm(root, {recursive: true, force: true});
  });

  it('oplog: the range the dumps cover together, every entry, no gap', async () => {
    const result = await runCli(['oplog', '--oplog', dumps, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const out = json<{sources: Array<{source: string; from: unknown; to: unknown; entries: number; gaps: unknown[]; files: unknown[]}>}>(result);
    assert.equal(out.sources.length, 1);
    const s = out.sources[0]!;
    assert.deepEqual([s.from, s.to, s.gaps], [{t: T0 - 10, i: 1}, {t: T0 + 300, i: 1}, []]);
    assert.equal(s.entries, entries.length + 1, 'the boundary entry is in both files');
    assert.equal(s.files.length, 2);
    const human = await runCli(['oplog', '--oplog', dumps, '--tz', 'America/New_York'], {env});
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /2025-11-18 08:59:50 EST \(-05:00\) \[1763474390, 1\]/);
    assert.match(human.stdout, /Together: .* no gaps/);
  });

  it('changes: counts per collection in [since, until), transactions and batches unwrapped, image no-ops ignored', async () => {
    const result = await runCli(['changes', '--since', '2025-11-18 09:00', '--tz', 'America/New_York', '--until', ISO(200), '--oplog', dumps, '--collection', 'artworks', '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const out = json<{since: unknown; collections: Record<string, {inserted: number; updated: number; replaced: number; deleted: number; deletedIds: unknown[]; inTransactions: number; fields: Record<string, {set: number; unset: number; nulled: number; examples: unknown[]}>}>}>(result);
    assert.deepEqual(out.since, {t: T0, i: 0});
    assert.deepEqual(Object.keys(out.collections), ['artworks'], '--collection leaves sale_artworks out');
    const art = out.collections.artworks!;
    assert.deepEqual([art.inserted, art.updated, art.replaced, art.deleted, art.inTransactions], [2, 4, 0, 2, 1]);
    assert.deepEqual(art.deletedIds, [{$oid: B}, {$oid: C}]);
    assert.deepEqual(art.fields.price, {set: 1, unset: 0, nulled: 0, examples: [{$oid: A}]});
    assert.deepEqual(art.fields.sold, {set: 1, unset: 0, nulled: 0, examples: [{$oid: A}]});
    assert.deepEqual(art.fields.title, {set: 2, unset: 0, nulled: 1, examples: [{$oid: A}, {$oid: B}]});
    assert.deepEqual(art.fields.note, {set: 0, unset: 1, nulled: 0, examples: [{$oid: B}]});
    const all = json<{collections: Record<string, {inserted: number; inTransactions: number}>}>(await runCli(['changes', '--since', ISO(0), '--oplog', dumps, '--json'], {env}));
    assert.deepEqual([all.collections.sale_artworks?.inserted, all.collections.sale_artworks?.inTransactions], [1, 1]);
    // A window ending before the transaction's commit shows none of it.
    const early = json<{collections: Record<string, {updated: number}>}>(await runCli(['changes', '--since', ISO(0), '--until', ISO(31), '--oplog', dumps, '--json'], {env}));
    assert.equal(early.collections.artworks?.updated, 1);
    assert.equal(early.collections.sale_artworks, undefined);
  });

  it('history: base backup, each operation with its fields, the state at the end replayed exactly', async () => {
    const result = await runCli(['history', 'artworks', `ObjectId("${A}")`, '--from', base, '--oplog', dumps, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const out = json<{base: {backup: string; point: unknown}; events: Array<{ts: {t: number}; op: string; set: string[]; unset: string[]; transaction: boolean}>; stateJson: string; state: unknown}>(result);
    assert.equal(out.base.backup, base);
    assert.deepEqual(out.base.point, {t: T0, i: 0}, 'a dump without oplog.bson starts at the time in its name');
    assert.deepEqual(out.events.map((e) => [e.ts.t - T0, e.op, e.set, e.unset, e.transaction]), [
      [5, 'update', ['price'], [], false],
      [31, 'update', ['sold'], [], true],
      [41, 'update', ['title'], [], false],
    ]);
    // $v:2 `u` keeps a field in place, `i` appends (OPLOG.md §2.3): the state's field order is mongod's.
    assert.equal(out.stateJson, `{"_id":{"$oid":"${A}"},"title":null,"partner_id":{"$oid":"${P}"},"price":{"$numberInt":"120"},"sold":true}`);
    const human = await runCli(['history', 'artworks', `ObjectId("${A}")`, '--from', base, '--oplog', dumps, '--since', ISO(30), '--tz', 'America/New_York'], {env});
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /2025-11-18 09:00:31 EST \(-05:00\)\s+1763474431:1\s+update\s+\+sold\s+yes/);
    assert.doesNotMatch(human.stdout, /\+price/, 'operations before --since are applied, not listed');
  });

  it('history without a base: the state is known from the insert inside the window on (delete, then insert again)', async () => {
    const out = json<{base: unknown; events: Array<{op: string}>; stateJson: string; stateKnown: boolean}>(
      await runCli(['history', 'gravity.artworks', `{"$oid": "${C}"}`, '--since', ISO(0), '--oplog', dumps, '--json'], {env}));
    assert.equal(out.base, null);
    assert.deepEqual(out.events.map((e) => e.op), ['insert', 'delete', 'insert']);
    assert.equal(out.stateKnown, true);
    assert.equal(out.stateJson, `{"_id":{"$oid":"${C}"},"title":"New again","partner_id":{"$oid":"${P}"}}`);
    const b = json<{events: Array<{op: string}>; state: unknown; stateKnown: boolean}>(
      await runCli(['history', 'artworks', `ObjectId("${B}")`, '--from', base, '--oplog', dumps, '--json'], {env}));
    assert.deepEqual(b.events.map((e) => e.op), ['update', 'delete'], 'the delete inside a batched applyOps');
    assert.deepEqual([b.state, b.stateKnown], [null, true]);
  });

  it('history from a mongodump --oplog dump: its point is its oplog\'s first entry, and its oplog.bson joins the --oplog sources', async () => {
    // The dump's oplog runs from 13:59:50 to 14:01:40 (gzip inside a file named oplog.bson, OPLOG.md §8); the --oplog dump takes over at 14:01:40.
    const withOplog = path.join(root, 'dump-with-oplog');
    await writeFolder(withOplog, [{db: 'gravity', collection: 'artworks', docs: encodeEntries([docA, docB]), metadata: metadataJson('artworks')}], {gzip: true});
    await fsp.writeFile(path.join(withOplog, 'oplog.bson'), zlib.gzipSync(Buffer.concat(encodeEntries(entries.filter((e) => tsOf(e) <= 100)))));
    const result = await runCli(['history', 'artworks', `ObjectId("${B}")`, '--from', withOplog, '--oplog', path.join(dumps, 'dump-2'), '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const out = json<{base: {point: unknown}; events: Array<{op: string; ts: {t: number}}>; state: unknown; sources: string[]}>(result);
    assert.deepEqual(out.base.point, {t: T0 - 10, i: 1});
    assert.deepEqual(out.events.map((e) => [e.op, e.ts.t - T0]), [['update', 51], ['delete', 111]]);
    assert.equal(out.state, null);
    assert.equal(out.sources.length, 2);
    // Without the dump's own oplog the --oplog dump alone starts too late.
    assertCleanError(await runCli(['history', 'artworks', `ObjectId("${B}")`, '--from', base, '--oplog', path.join(dumps, 'dump-2')], {env}), /The oplog starts at 2025-11-18T14:01:40Z/);
  });

  it('history follows the document through a rename of its collection, then the drop of the new one', async () => {
    const X = {_id: {$numberLong: '7'}, n: int(1)};
    const moved = encodeEntries([
      noop(T0 - 5),
      insert(T0 + 1, 1, 'gravity.a', X),
      renameCollection(T0 + 2, 1, 'gravity.a', 'gravity.b'),
      updateV2(T0 + 3, 1, 'gravity.b', {$numberLong: '7'}, {u: {n: int(2)}}),
      dropCollection(T0 + 4, 1, 'gravity.b'),
      noop(T0 + 5),
    ]);
    const file = path.join(root, 'renamed.bson');
    await fsp.writeFile(file, Buffer.concat(moved));
    // NumberLong(7), 7 and 7.0 are one _id to the server's index (the tool's idKey), as typed here.
    const out = json<{events: Array<{op: string; ns: string; to?: string; set: string[]}>; state: unknown; stateKnown: boolean}>(
      await runCli(['history', 'gravity.a', '7', '--since', ISO(0), '--oplog', file, '--json'], {env}));
    assert.deepEqual(out.events.map((e) => [e.op, e.ns, e.to ?? null, e.set]), [
      ['insert', 'gravity.a', null, ['n']],
      ['rename', 'gravity.a', 'gravity.b', []],
      ['update', 'gravity.b', null, ['n']],
      ['drop', 'gravity.b', null, []],
    ]);
    assert.deepEqual([out.state, out.stateKnown], [null, true]);
  });

  it('a gap, an oplog starting too late, a truncated dump and a missing source: one line each, non-zero exit', async () => {
    const late = await runCli(['changes', '--since', ISO(0), '--oplog', path.join(dumps, 'dump-2'), '--json'], {env});
    assertCleanError(late, /The oplog starts at 2025-11-18T14:01:40Z .* after 2025-11-18T14:00:00Z/);
    assert.equal(late.code, 3);
    const gapped = path.join(root, 'gapped');
    await fsp.mkdir(gapped);
    await fsp.writeFile(path.join(gapped, 'a.bson'), Buffer.concat(encodeEntries(entries.filter((e) => tsOf(e) <= 40))));
    await fsp.writeFile(path.join(gapped, 'b.bson'), Buffer.concat(encodeEntries(entries.filter((e) => tsOf(e) >= 200))));
    const gap = await runCli(['changes', '--since', ISO(0), '--oplog', gapped], {env});
    assertCleanError(gap, /gap from 2025-11-18T14:00:40Z \(Timestamp\(1763474440, 1\)\) to 2025-11-18T14:03:20Z/);
    const shown = json<{sources: Array<{gaps: Array<{from: unknown; to: unknown}>}>}>(await runCli(['oplog', '--oplog', gapped, '--json'], {env}));
    assert.deepEqual(shown.sources[0]!.gaps.map((g) => [g.from, g.to]), [[{t: T0 + 40, i: 1}, {t: T0 + 200, i: 1}]]);
    const cut = path.join(root, 'cut.bson');
    const whole = Buffer.concat(encodeEntries(entries.slice(0, 5)));
    await fsp.writeFile(cut, whole.subarray(0, whole.length - 3));
    const corrupt = await runCli(['oplog', '--oplog', cut], {env});
    assertCleanError(corrupt, /cut\.bson: truncated document at byte \d+ .*copy or dump it again/);
    assert.equal(corrupt.code, 6);
    assertCleanError(await runCli(['oplog'], {env}), /No oplog source given.*--oplog SRC/);
    assertCleanError(await runCli(['changes', '--since', '2025-11-18T14:00:00.250Z', '--oplog', dumps], {env}), /whole seconds/);
  });

  it('the oplog setting: GRAVITY_RESTORE_OPLOG (one or a JSON array) and the config file key', async () => {
    const viaEnv = json<{sources: unknown[]}>(await runCli(['oplog', '--json'], {env: {...env, GRAVITY_RESTORE_OPLOG: JSON.stringify([path.join(dumps, 'dump-1'), path.join(dumps, 'dump-2')])}}));
    assert.equal(viaEnv.sources.length, 2);
    const config = path.join(root, 'config.json');
    await fsp.writeFile(config, JSON.stringify({oplog: dumps}));
    const viaConfig = json<{sources: Array<{source: string}>}>(await runCli(['oplog', '--config', config, '--json'], {env}));
    assert.deepEqual(viaConfig.sources.map((s) => s.source), [dumps]);
    await fsp.writeFile(config, JSON.stringify({oplog: [3]}));
    assertCleanError(await runCli(['oplog', '--config', config], {env}), /"oplog" must be a source or a list of sources/);
  });
});

describe('the live oplog of a target, read only and filtered on the server', () => {
  let backend: MongoBackend;
  before(async () => {
    backend = await startMongo({label: 'cli-oplog live'});
  });
  after(async () => {
    await backend?.stop();
  });

  it('oplog and changes against a mongodb:// URI; the namespace filter cuts the bytes received', async (t) => {
    if (backend.kind !== 'test-server') {
      t.skip(`${backend.kind}: mongod does not let a client write local.oplog.rs; this test writes its entries there`);
      return;
    }
    const env0 = cleanEnv({GRAVITY_RESTORE_SOURCE_TZ: 'UTC'});
    assertCleanError(await runCli(['oplog', '--oplog', backend.uri], {env: env0}), /has no oplog \(local\.oplog\.rs is missing or empty\)\. Only a replica-set member keeps an oplog/);
    const entries = story();
    const filler = Array.from({length: 300}, (_, k) => insert(T0 + 140 + Math.floor(k / 10), 2 + (k % 10), 'gravity.other', {_id: int(k), pad: 'x'.repeat(200)}));
    const all = [...entries, ...filler].sort((x, y) => {
      const a = (x.ts as {$timestamp: {t: number; i: number}}).$timestamp;
      const b = (y.ts as {$timestamp: {t: number; i: number}}).$timestamp;
      return a.t - b.t || a.i - b.i;
    });
    // Asynchronously: the test server answers from this process.
    const inserted = await new Promise<{code: number | null; stderr: string}>((resolve, reject) => {
      const child = spawn(DEBIAN_PYTHON, [path.join(REPO_ROOT, 'test', 'support', 'oplog-insert.py'), backend.uri], {stdio: ['pipe', 'ignore', 'pipe']});
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({code, stderr}));
      child.stdin.end(JSON.stringify(all));
    });
    assert.equal(inserted.code, 0, inserted.stderr);
    const env = cleanEnv({GRAVITY_RESTORE_SOURCE_TZ: 'UTC'});
    const shown = json<{sources: Array<{kind: string; from: unknown; to: unknown; entries: null}>}>(await runCli(['oplog', '--oplog', backend.uri, '--json'], {env}));
    assert.deepEqual(shown.sources.map((s) => [s.kind, s.from, s.to, s.entries]), [['live', {t: T0 - 10, i: 1}, {t: T0 + 300, i: 1}, null]]);
    const result = await runCli(['changes', '--since', ISO(0), '--until', ISO(200), '--oplog', backend.uri, '--collection', ART, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const art = json<{collections: Record<string, {inserted: number; updated: number; deleted: number; inTransactions: number}>}>(result).collections.artworks!;
    assert.deepEqual([art.inserted, art.updated, art.deleted, art.inTransactions], [2, 4, 2, 1]);

    // history reads the live oplog filtered on gravity.artworks; without a base the updates find no document.
    const history = json<{events: Array<{op: string; transaction: boolean; missing?: boolean}>; stateKnown: boolean; state: unknown}>(
      await runCli(['history', ART, `ObjectId("${A}")`, '--since', ISO(0), '--oplog', backend.uri, '--json'], {env}));
    assert.deepEqual(history.events.map((e) => [e.op, e.transaction, e.missing]), [['update', false, true], ['update', true, true], ['update', false, true]]);
    assert.deepEqual([history.stateKnown, history.state], [false, null]);

    // Bytes the server sends: all entries of the window, or only those that can touch gravity.artworks.
    const measure = async (namespaces: string[] | null): Promise<{bytes: number; entries: number}> => {
      const source = new LiveOplogSource({name: 'adhoc', uri: backend.uri, db: null, label: 'test'});
      let count = 0;
      try {
        for await (const batch of source.batches({since: {t: T0, i: 0}, namespaces})) count += batch.length;
      } finally {
        await source.close();
      }
      return {bytes: source.bytesReceived, entries: count};
    };
    const unfiltered = await measure(null);
    const filtered = await measure([ART]);
    t.diagnostic(`live oplog read, ${unfiltered.entries} entries in the window: ${unfiltered.bytes} bytes unfiltered, ${filtered.bytes} bytes (${filtered.entries} entries) filtered on gravity.artworks`);
    // Kept: the artworks CRUD entries, the transaction and the batched delete; dropped: no-ops, images, gravity.other.
    assert.equal(filtered.entries, 8);
    assert.ok(filtered.bytes * 5 < unfiltered.bytes, `${filtered.bytes} vs ${unfiltered.bytes}`);
  });
});

describe('oplog dumps and backups in S3', () => {
  let s3: S3Server;
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await tempDir('cli-oplog-s3');
    s3 = await startS3Server();
    await s3.createBucket('gravity');
    const client = createS3Client({endpoint: s3.endpoint, region: s3.region, credentials: {accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey}});
    const put = (key: string, body: Buffer) => client.send(new PutObjectCommand({Bucket: 'gravity', Key: key, Body: body}));
    const entries = story();
    await put('oplog/2025-11-18/local/oplog.rs.bson', Buffer.concat(encodeEntries(entries.filter((e) => tsOf(e) <= 100))));
    await put('oplog/2025-11-18b/local/oplog.rs.bson.gz', zlib.gzipSync(Buffer.concat(encodeEntries(entries.filter((e) => tsOf(e) >= 100)))));
    // 13:00 is before the oplog's first entry, 14:00 is covered, 14:10 is after its last: the base is 14:00.
    const [a, b] = encodeEntries([docA, docB]);
    const [oldA] = encodeEntries([{...docA, title: 'the 13:00 version'}]);
    await put('backups/dump-2025-11-18T13-00-00Z/gravity/artworks.bson', oldA!);
    await put('backups/dump-2025-11-18T14-00-00Z/gravity/artworks.bson', Buffer.concat([a!, b!]));
    await put('backups/dump-2025-11-18T14-00-00Z/gravity/artworks.metadata.json', Buffer.from(metadataJson('artworks')));
    await put('backups/dump-2025-11-18T14-10-00Z/gravity/artworks.bson', oldA!);
    // A mongodump --oplog --gzip dump under its own prefix: oplog.bson keeps its name, gzip inside.
    await put('with-oplog/oplog.bson', zlib.gzipSync(Buffer.concat(encodeEntries(entries.filter((e) => tsOf(e) <= 12)))));
    await put('with-oplog/gravity/artworks.bson.gz', zlib.gzipSync(Buffer.concat([a!, b!])));
    await put('with-oplog/gravity/artworks.metadata.json.gz', zlib.gzipSync(Buffer.from(metadataJson('artworks'))));
    env = cleanEnv({...s3EnvFor(s3), GRAVITY_RESTORE_SOURCE: 's3://gravity/backups/', GRAVITY_RESTORE_SOURCE_TZ: 'UTC', GRAVITY_RESTORE_CACHE: path.join(dir, 'cache')});
  });
  after(async () => {
    await s3?.stop();
    await fsp.rm(dir, {recursive: true, force: true});
  });

  it('an s3:// prefix of oplog dumps is one source; history picks the newest backup the oplog follows unbroken', async () => {
    const shown = json<{sources: Array<{source: string; from: unknown; to: unknown; gaps: unknown[]; files: unknown[]}>}>(await runCli(['oplog', '--oplog', 's3://gravity/oplog/', '--json'], {env}));
    assert.deepEqual(shown.sources.map((s) => [s.source, s.from, s.to, s.gaps, s.files.length]), [['s3://gravity/oplog/', {t: T0 - 10, i: 1}, {t: T0 + 300, i: 1}, [], 2]]);
    const dump = json<{sources: Array<{kind: string; from: unknown; to: unknown}>}>(await runCli(['oplog', '--oplog', 's3://gravity/with-oplog/', '--json'], {env}));
    assert.deepEqual(dump.sources.map((s) => [s.kind, s.from, s.to]), [['dump', {t: T0 - 10, i: 1}, {t: T0 + 10, i: 1}]]);
    const result = await runCli(['history', 'artworks', `ObjectId("${A}")`, '--oplog', 's3://gravity/oplog/', '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const out = json<{base: {backup: string; takenAt: string}; events: unknown[]; stateJson: string}>(result);
    assert.deepEqual([out.base.backup, out.base.takenAt], ['dump-2025-11-18T14-00-00Z', '2025-11-18T14:00:00.000Z']);
    assert.equal(out.events.length, 3);
    assert.equal(out.stateJson, `{"_id":{"$oid":"${A}"},"title":null,"partner_id":{"$oid":"${P}"},"price":{"$numberInt":"120"},"sold":true}`);
  });
});
