/**
 * "Recover without knowing the query", through bin/run.js. A source folder holds backups of one
 * database: a daily one (every collection), an hourly at 13:00 holding only artworks, and full
 * hourlies at 14:00 ("before") and 15:00 ("after"). Between 14:00 and 15:00 ten artworks were
 * deleted with their sale_artworks, `title` was nulled in fifteen others (five of those also lost
 * `medium`), one sale_artwork gained `sold`, and seven artworks were created. A live target holds
 * the 15:00 state minus three more artworks. Every expected number below comes from how the
 * fixture was built, not from the code under test.
 */
import assert from 'node:assert/strict';
import {readFile, rm} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON, Decimal128, Int32, ObjectId, type Document} from 'bson';
import {MongoClient} from 'mongodb';

import {splitDocuments} from '../../src/dump/split.js';
import {metadataJson, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {startMongo, type MongoBackend} from '../support/mongo-backend.js';
import {withDb} from '../support/mongo-backend.js';

const ART = 60;
const DELETED = [...Array(10).keys()];
const NULLED = [...Array(15).keys()].map((i) => 20 + i);
const NO_MEDIUM = [30, 31, 32, 33, 34];
const CREATED = [...Array(7).keys()].map((i) => 100 + i);
const GONE_ON_TARGET = [50, 51, 52];
const SOLD_OF = 40;

/** Same-length changes, caught only by comparing bytes: a value (Int32 45 → 46) and the order of two fields. */
const RENUMBERED = 45;
const REORDERED = 46;
const CHANGED_ART = [...NULLED, RENUMBERED, REORDERED];
const partner = (i: number) => new ObjectId(`57d1e4a2cd530e65f600000${i % 3}`);

const artId = (i: number) => new ObjectId(`a0${i.toString(16).padStart(22, '0')}`);
const saleId = (i: number, k: number) => new ObjectId(`5a${(i * 2 + k).toString(16).padStart(22, '0')}`);
/** A sale_artwork of a deleted artwork that the deletion left behind: --follow must not take it. */
const ORPHAN = saleId(0, 1);

/** An artwork as the 14:00 backup holds it; integer-like keys ("2020") and typed numbers on purpose. */
function artwork(i: number): Document {
  return {_id: artId(i), title: `work ${i}`, partner_id: partner(i), n: new Int32(i), medium: 'oil', prices: {usd: new Decimal128(`${i}.50`), '2020': new Int32(i)}};
}
function sale(i: number, k: number): Document {
  return {_id: saleId(i, k), artwork_id: artId(i), lot: new Int32(k)};
}
const bytes = (d: Document) => Buffer.from(BSON.serialize(d));

const before14 = {
  artworks: [...Array(ART).keys()].map(artwork),
  sale_artworks: [...Array(45).keys()].flatMap((i) => [sale(i, 0), sale(i, 1)]),
};
const after15 = {
  artworks: [
    ...before14.artworks
      .filter((_d, i) => !DELETED.includes(i))
      .map((d, _j) => {
        const i = (d.n as Int32).value;
        if (i === RENUMBERED) return {...d, prices: {usd: d.prices.usd, '2020': new Int32(46)}};
        if (i === REORDERED) return {_id: d._id, partner_id: d.partner_id, title: d.title, n: d.n, medium: d.medium, prices: d.prices};
        if (!NULLED.includes(i)) return d;
        const changed: Document = {...d, title: null};
        if (NO_MEDIUM.includes(i)) delete changed.medium;
        return changed;
      }),
    ...CREATED.map(artwork),
  ],
  sale_artworks: before14.sale_artworks
    .filter((d) => (d._id as ObjectId).equals(ORPHAN) || !DELETED.some((i) => artId(i).equals(d.artwork_id as ObjectId)))
    .map((d) => (d._id as ObjectId).equals(saleId(SOLD_OF, 0)) ? {...d, sold: true} : d),
};

describe('diff and extract --missing-in/--changed-in through bin/run.js', () => {
  let dir: string;
  let source: string;
  let mongo: MongoBackend;
  let client: MongoClient;
  const db = `diff_${process.pid}`;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await tempDir('cli-diff');
    source = path.join(dir, 'backups');
    const ns = (state: typeof before14, collections: Array<keyof typeof before14>) =>
      collections.map((c) => ({db: 'gravity', collection: c, docs: state[c].map(bytes), metadata: metadataJson(c)}));
    // An older daily too, with no sale_artworks at all: only the newest older backup holding them counts.
    await writeFolder(path.join(source, 'gravity-daily-2026-11-17'), ns({artworks: before14.artworks, sale_artworks: []}, ['artworks', 'sale_artworks']));
    await writeFolder(path.join(source, 'gravity-daily-2026-11-18'), ns(before14, ['artworks', 'sale_artworks']));
    await writeFolder(path.join(source, 'gravity-hourly-2026-11-18T13-00-00Z'), ns(before14, ['artworks']));
    await writeFolder(path.join(source, 'gravity-hourly-2026-11-18T14-00-00Z'), ns(before14, ['artworks', 'sale_artworks']));
    await writeFolder(path.join(source, 'gravity-hourly-2026-11-18T15-00-00Z'), ns(after15, ['artworks', 'sale_artworks']));
    mongo = await startMongo({label: 'cli-diff'});
    console.log(`cli-diff MongoDB backend: ${mongo.detail}`);
    client = await MongoClient.connect(mongo.uri);
    // The target is loaded from the exact bytes (pymongo-style raw insert is not available to the
    // driver): documents go as BSON-deserialised Maps in stored order, then are read back and checked.
    const {exactForm} = await import('../../src/target/exact.js');
    for (const [c, docs] of Object.entries(after15)) {
      const live = docs.filter((d) => !(c === 'artworks' && GONE_ON_TARGET.some((i) => artId(i).equals(d._id as ObjectId))));
      await client.db(db).collection(c).insertMany(live.map((d) => exactForm(bytes(d)).doc as unknown as Document), {forceServerObjectId: true});
      const stored = (await client.db(db).collection(c).find({}, {raw: true}).toArray()) as unknown as Uint8Array[];
      const want = new Set(live.map((d) => bytes(d).toString('hex')));
      assert.equal(stored.length, live.length);
      for (const raw of stored) assert.ok(want.has(Buffer.from(raw).toString('hex')), 'target fixture holds the exact bytes');
    }
    env = cleanEnv({GRAVITY_RESTORE_SOURCE: source, GRAVITY_RESTORE_STAGING_URI: withDb(mongo.uri, db)});
  });
  after(async () => {
    await client?.db(db).dropDatabase().catch(() => undefined);
    await client?.close();
    await mongo?.stop();
    await rm(dir, {recursive: true, force: true});
  });

  const expectedFields = {
    artworks: {
      title: {changed: 15, nulled: 15, removed: 0, added: 0},
      medium: {changed: 5, nulled: 0, removed: 5, added: 0},
      '(field order)': {changed: 1, nulled: 0, removed: 0, added: 0},
      'prices.2020': {changed: 1, nulled: 0, removed: 0, added: 0},
    },
    sale_artworks: {sold: {changed: 1, nulled: 0, removed: 0, added: 1}},
  };
  type DiffJson = {from: string; against: string; collections: Record<string, {missing: number; changed: number; same: number; added: number | null; fields: Record<string, {changed: number; nulled: number; removed: number; added: number; examples: unknown[]}>}>};
  const stripExamples = (fields: DiffJson['collections'][string]['fields']) => Object.fromEntries(Object.entries(fields).map(([k, {examples: _e, ...v}]) => [k, v]));

  for (const spill of [false, true]) {
    it(`diff of two backups: exact counts and field summaries${spill ? ' (the _id tables spilled to disk)' : ''}`, async () => {
      const result = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z', 'gravity-hourly-2026-11-18T15-00-00Z', '--json'], {
        env: {...env, ...(spill ? {GRAVITY_RESTORE_DIFF_MEMORY_IDS: '7'} : {})},
      });
      assert.equal(result.code, 0, result.stderr);
      const out = json<DiffJson>(result);
      assert.equal(out.from, 'gravity-hourly-2026-11-18T14-00-00Z');
      assert.equal(out.against, 'gravity-hourly-2026-11-18T15-00-00Z');
      const art = out.collections.artworks!;
      assert.deepEqual([art.missing, art.changed, art.same, art.added], [10, 17, 33, 7]);
      assert.deepEqual(stripExamples(art.fields), expectedFields.artworks);
      const sales = out.collections.sale_artworks!;
      assert.deepEqual([sales.missing, sales.changed, sales.same, sales.added], [19, 1, 70, 0]);
      assert.deepEqual(stripExamples(sales.fields), expectedFields.sale_artworks);
      // Examples are `_id`s of documents that changed that path.
      const nulledIds = NULLED.map((i) => artId(i).toHexString());
      for (const e of art.fields.title!.examples) assert.ok(nulledIds.includes((e as {$oid: string}).$oid));
      assert.equal(art.fields.title!.examples.length, 5);
    });
  }

  it('diff against a live target: missing includes the later deletions; added only with --added', async () => {
    const result = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z', 'staging', '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const out = json<DiffJson>(result);
    const art = out.collections.artworks!;
    assert.deepEqual([art.missing, art.changed, art.same, art.added], [13, 17, 30, null]);
    assert.deepEqual(stripExamples(art.fields), expectedFields.artworks);
    const sales = out.collections.sale_artworks!;
    assert.deepEqual([sales.missing, sales.changed, sales.same, sales.added], [19, 1, 70, null]);
    assert.match(out.against, /^staging \(mongodb:/);

    const withAdded = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z', 'staging', '--added', '--collection', 'artworks', '--json'], {env});
    assert.equal(withAdded.code, 0, withAdded.stderr);
    const added = json<DiffJson>(withAdded);
    assert.deepEqual(Object.keys(added.collections), ['artworks']);
    assert.equal(added.collections.artworks!.added, 7);
  });

  it('diff --query restricts both sides; the human output is a table with the top field changes', async () => {
    const q = `{"partner_id": ObjectId("${partner(0).toHexString()}")}`;
    const result = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z', 'gravity-hourly-2026-11-18T15-00-00Z', '--collection', 'artworks', '--query', q, '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const art = json<DiffJson>(result).collections.artworks!;
    const of0 = (list: number[]) => list.filter((i) => i % 3 === 0).length;
    const same = [...Array(ART).keys()].filter((i) => i % 3 === 0 && !DELETED.includes(i) && !CHANGED_ART.includes(i)).length;
    assert.deepEqual([art.missing, art.changed, art.same, art.added], [of0(DELETED), of0(CHANGED_ART), same, of0(CREATED)]);

    // The same query against the live target (three more artworks gone there), with and without --added.
    for (const added of [false, true]) {
      const live = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z', 'staging', '--collection', 'artworks', '--query', q, ...(added ? ['--added'] : []), '--json'], {env});
      assert.equal(live.code, 0, live.stderr);
      const t = json<DiffJson>(live).collections.artworks!;
      assert.deepEqual([t.missing, t.changed, t.same, t.added], [of0(DELETED) + of0(GONE_ON_TARGET), of0(CHANGED_ART), same - of0(GONE_ON_TARGET), added ? of0(CREATED) : null]);
    }

    const human = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z', 'gravity-hourly-2026-11-18T15-00-00Z'], {env});
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /artworks\s+10\s+17\s+33\s+7/);
    assert.match(human.stdout, /title: changed in 15 documents \(nulled in 15\)/);
    assert.match(human.stderr, /Compared 150 documents/);
  });

  it('diff errors: an unknown collection on either side, an unreachable target', async () => {
    const nope = await runCli(['diff', 'gravity-hourly-2026-11-18T14-00-00Z', 'gravity-hourly-2026-11-18T15-00-00Z', '--collection', 'nope'], {env});
    assertCleanError(nope, /Collection nope is not in .*14-00-00Z.*It holds: artworks, sale_artworks/);
    assert.equal(nope.code, 3);
    const notAgainst = await runCli(['diff', 'gravity-daily-2026-11-18', 'gravity-hourly-2026-11-18T13-00-00Z'], {env});
    assertCleanError(notAgainst, /Collection gravity\.sale_artworks is not in gravity-hourly-2026-11-18T13-00-00Z/);
    const notTarget = await runCli(['diff', 'gravity-daily-2026-11-18', 'staging', '--collection', 'artworks', '--db', 'elsewhere'], {env});
    assertCleanError(notTarget, /Collection artworks is not in database elsewhere of staging/);
    const down = await runCli(['diff', 'gravity-daily-2026-11-18', 'mongodb://127.0.0.1:1/gravity'], {env});
    assertCleanError(down, /Cannot reach mongodb:\/\/127\.0\.0\.1:1/);
    assert.equal(down.code, 5);
  });

  it('`_id`s compare as the server compares them: numbers across types are one _id, subdocument keys in order are not', async () => {
    // https://www.mongodb.com/docs/manual/reference/bson-type-comparison-order/ : numeric types are
    // compared by value; embedded documents field by field, in order.
    const sub = (first: string, second: string) => new Map<string, unknown>([[first, new Int32(1)], [second, new Int32(2)]]);
    const doc = (id: unknown, v: number) => Buffer.from(BSON.serialize(new Map<string, unknown>([['_id', id], ['v', new Int32(v)]])));
    const {Double, Long} = await import('bson');
    const fromDocs = [doc(new Int32(5), 1), doc(Long.fromNumber(7), 1), doc(sub('b', 'a'), 1), doc('same', 1)];
    const againstDocs = [doc(new Double(5), 1), doc(new Int32(7), 1), doc(sub('a', 'b'), 1), doc('same', 1)];
    await writeFolder(path.join(dir, 'ids-from'), [{db: 'gravity', collection: 'counters', docs: fromDocs, metadata: metadataJson('counters')}]);
    await writeFolder(path.join(dir, 'ids-against'), [{db: 'gravity', collection: 'counters', docs: againstDocs, metadata: metadataJson('counters')}]);
    const result = await runCli(['diff', path.join(dir, 'ids-from'), path.join(dir, 'ids-against'), '--json'], {env});
    assert.equal(result.code, 0, result.stderr);
    const c = json<DiffJson>(result).collections.counters!;
    // 5 vs 5.0 and NumberLong(7) vs 7: the same _id, other bytes (changed); {b, a} vs {a, b}: two _ids.
    assert.deepEqual([c.missing, c.changed, c.same, c.added], [1, 2, 1, 1]);
  });

  async function setDocs(set: string, collection: string): Promise<Buffer[]> {
    return splitDocuments(await readFile(path.join(set, 'dump', 'gravity', `${collection}.bson`)));
  }
  const hex = (docs: Buffer[]) => docs.map((d) => d.toString('hex'));

  for (const spill of [false, true]) {
  it(`extract --missing-in a backup, --follow: exactly the deleted artworks and their deleted dependents, byte for byte${spill ? ' (spilled _id tables)' : ''}`, async () => {
    const out = path.join(dir, `missing-backup-${spill}`);
    const result = await runCli(
      ['extract', '--from', 'gravity-hourly-2026-11-18T14-00-00Z', '--collection', 'artworks', '--missing-in', 'gravity-hourly-2026-11-18T15-00-00Z', '--follow', '--out', out, '--incident-at', '2026-11-18T14:30:00-00:00', '--json'],
      {env: {...env, GRAVITY_RESTORE_CONFIG: await relationsConfig(), ...(spill ? {GRAVITY_RESTORE_DIFF_MEMORY_IDS: '7'} : {})}},
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(json<{counts: Record<string, number>}>(result).counts, {artworks: 10, sale_artworks: 19});
    assert.deepEqual(hex(await setDocs(out, 'artworks')), hex(DELETED.map((i) => bytes(artwork(i)))));
    assert.deepEqual(hex(await setDocs(out, 'sale_artworks')), hex(DELETED.flatMap((i) => [sale(i, 0), sale(i, 1)]).filter((d) => !(d._id as ObjectId).equals(ORPHAN)).map(bytes)));
    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as {incidentAt: string; comparison: Array<{keep: string[]; against: {kind: string; backup: string; takenAt: string}; counts: Record<string, {missing: number; changed: number; same: number; kept: number}>}>};
    assert.equal(manifest.incidentAt, '2026-11-18T14:30:00.000Z');
    assert.deepEqual(manifest.comparison[0]!.keep, ['missing']);
    assert.equal(manifest.comparison[0]!.against.backup, 'gravity-hourly-2026-11-18T15-00-00Z');
    assert.equal(manifest.comparison[0]!.against.takenAt, '2026-11-18T15:00:00.000Z');
    assert.deepEqual(manifest.comparison[0]!.counts.artworks, {missing: 10, changed: 17, same: 33, kept: 10});
    assert.deepEqual(manifest.comparison[0]!.counts.sale_artworks, {missing: 19, changed: 0, same: 1, kept: 19});
  });
  }

  it('extract --changed-in and --missing-in the live target: the nulled artworks and every deletion, byte for byte', async () => {
    const changed = path.join(dir, 'changed-target');
    const r1 = await runCli(['extract', '--from', 'gravity-hourly-2026-11-18T14-00-00Z', '--collection', 'artworks', '--changed-in', 'staging', '--out', changed, '--json'], {env});
    assert.equal(r1.code, 0, r1.stderr);
    assert.deepEqual(hex(await setDocs(changed, 'artworks')), hex(CHANGED_ART.map((i) => bytes(artwork(i)))));

    const both = path.join(dir, 'both-target');
    const r2 = await runCli(['extract', '--from', 'gravity-hourly-2026-11-18T14-00-00Z', '--collection', 'artworks', '--missing-in', 'staging', '--changed-in', 'staging', '--out', both, '--json'], {env});
    assert.equal(r2.code, 0, r2.stderr);
    const expected = [...Array(ART).keys()].filter((i) => DELETED.includes(i) || CHANGED_ART.includes(i) || GONE_ON_TARGET.includes(i));
    assert.deepEqual(hex(await setDocs(both, 'artworks')), hex(expected.map((i) => bytes(artwork(i)))));
    const manifest = JSON.parse(await readFile(path.join(both, 'manifest.json'), 'utf8')) as {comparison: Array<{keep: string[]; against: {kind: string}; counts: Record<string, unknown>}>};
    assert.equal(manifest.comparison.length, 1);
    assert.deepEqual(manifest.comparison[0]!.keep, ['missing', 'changed']);
    assert.equal(manifest.comparison[0]!.against.kind, 'target');
    assert.deepEqual(manifest.comparison[0]!.counts.artworks, {missing: 13, changed: 17, same: 30, kept: 30});
  });

  it('an hourly backup without the dependents: --follow reads them from the daily one, says so, and --strict-backup refuses', async () => {
    const out = path.join(dir, 'through-daily');
    const config = await relationsConfig();
    const result = await runCli(
      ['extract', '--from', 'gravity-hourly-2026-11-18T13-00-00Z', '--collection', 'artworks', '--missing-in', 'gravity-hourly-2026-11-18T15-00-00Z', '--follow', '--out', out, '--json'],
      {env: {...env, GRAVITY_RESTORE_CONFIG: config}},
    );
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(json<{counts: Record<string, number>}>(result).counts, {artworks: 10, sale_artworks: 19});
    assert.deepEqual(hex(await setDocs(out, 'sale_artworks')), hex(DELETED.flatMap((i) => [sale(i, 0), sale(i, 1)]).filter((d) => !(d._id as ObjectId).equals(ORPHAN)).map(bytes)));
    assert.match(result.stderr, /Warning: Collection sale_artworks is not in the backup: taken from gravity-daily-2026-11-18 \(13\.0 h older than gravity-hourly-2026-11-18T13-00-00Z\); its documents may be stale/);
    const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as {collections: Record<string, {from?: {backup: string; olderByMs: number}}>};
    assert.equal(manifest.collections.artworks!.from, undefined);
    assert.deepEqual(manifest.collections.sale_artworks!.from, {backup: 'gravity-daily-2026-11-18', location: `${source}/gravity-daily-2026-11-18`, takenAt: '2026-11-18T00:00:00.000Z', olderByMs: 13 * 3_600_000});

    const strict = await runCli(
      ['extract', '--from', 'gravity-hourly-2026-11-18T13-00-00Z', '--collection', 'artworks', '--follow', '--strict-backup', '--out', path.join(dir, 'strict')],
      {env: {...env, GRAVITY_RESTORE_CONFIG: config}},
    );
    assertCleanError(strict, /sale_artworks \(a dependent\) is not in .*--strict-backup/);
  });

  it('extract errors: X lacks the collection, X unreachable, an unreadable --incident-at; no set is left behind', async () => {
    const out = path.join(dir, 'error-set');
    const lacks = await runCli(['extract', '--from', 'gravity-daily-2026-11-18', '--collection', 'sale_artworks', '--missing-in', 'gravity-hourly-2026-11-18T13-00-00Z', '--out', out], {env});
    assertCleanError(lacks, /Collection gravity\.sale_artworks is not in gravity-hourly-2026-11-18T13-00-00Z/);
    const down = await runCli(['extract', '--from', 'gravity-daily-2026-11-18', '--collection', 'artworks', '--changed-in', 'mongodb://127.0.0.1:1/gravity', '--out', out], {env});
    assertCleanError(down, /Cannot reach mongodb:\/\/127\.0\.0\.1:1/);
    const when = await runCli(['extract', '--from', 'gravity-daily-2026-11-18', '--collection', 'artworks', '--incident-at', 'yesterday-ish', '--out', out], {env});
    assertCleanError(when, /Cannot read "yesterday-ish" as a time/);
    const {readdir} = await import('node:fs/promises');
    assert.deepEqual((await readdir(dir)).filter((f) => f.includes('error-set')), []);
  });

  async function relationsConfig(): Promise<string> {
    const file = path.join(dir, 'gravity-restore.config.json');
    const {writeFile} = await import('node:fs/promises');
    await writeFile(file, JSON.stringify({relations: [{from: 'artworks', to: 'sale_artworks', foreignField: 'artwork_id'}]}));
    return file;
  }
});
