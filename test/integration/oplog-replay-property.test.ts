/**
 * Property: whatever a client does to documents (updates with every operator users use, replacements,
 * pipeline updates that reorder fields, deletes one by one and many at once, re-inserts), the state at
 * any point rebuilt from a base plus the oplog is, byte for byte, what the server held at that point.
 *
 * The oplog comes from the server (the in-repo test server in replica-set mode always; mongod's own
 * oplog when GRAVITY_RESTORE_TEST_MONGO=replset gives a real replica set, which is the oracle that
 * matters); the rebuild is the product's: decodeOperations (src/oplog/decode.ts) and applyOperation
 * (src/oplog/apply/). States are read raw through the driver after every command, and compared at
 * every cut point (not a sample).
 */
import assert from 'node:assert/strict';
import {after, before, describe, test} from 'node:test';

import fc from 'fast-check';
import {BSON, Double, Long, MongoClient, MongoServerError, Timestamp, type Collection, type Document} from 'mongodb';

import {applyOperation} from '../../src/oplog/apply/index.js';
import {decodeOperations} from '../../src/oplog/decode.js';
import type {DocumentOperation, Operation, RawOplogEntry} from '../../src/oplog/types.js';
import {backendMode, describeBackend, MODE_VAR, startMongo, type MongoBackend} from '../support/mongo-backend.js';
import {startTestMongoServer, type TestMongoServer} from '../support/mongo-server/index.js';

const RUNS = Number(process.env.GRAVITY_RESTORE_PROPERTY_RUNS ?? 40);
const IDS = [0, 1, 2, 3];
const TOP = ['a', 'b', 'z', '10', '2', 'n', 'sub', 'arr'];
const SUB = ['x', 'y', '2', '10'];

// ---- generators ------------------------------------------------------------------------------

const scalar = fc.oneof(
  fc.integer({min: -3, max: 9}),
  fc.constantFrom<unknown>(null, 'foo', 'bar', 1.5, -0.25, true),
  fc.integer({min: -2, max: 2}).map((n) => new Double(n)),
  fc.integer({min: 0, max: 3}).map((n) => Long.fromNumber(2 ** 40 + n)),
);

function mapOf(keys: string[], values: unknown[]): Map<string, unknown> {
  return new Map(keys.map((k, i) => [k, values[i]]));
}

const subdoc = fc.uniqueArray(fc.constantFrom(...SUB), {maxLength: 3}).chain((keys) => fc.tuple(...keys.map(() => scalar)).map((vs) => mapOf(keys, vs)));
const array = fc.array(fc.oneof({weight: 3, arbitrary: fc.integer({min: 0, max: 6})}, {weight: 1, arbitrary: subdoc}), {maxLength: 4});
const value = fc.oneof({weight: 4, arbitrary: scalar}, {weight: 2, arbitrary: subdoc}, {weight: 2, arbitrary: array});

/** A document body (no `_id`): unique fields from the pool in random order. */
const body = fc.uniqueArray(fc.constantFrom(...TOP), {maxLength: 6}).chain((keys) =>
  fc.tuple(...keys.map((k) => (k === 'sub' ? fc.oneof(subdoc, value) : k === 'arr' ? fc.oneof(array, value) : value))).map((vs) => mapOf(keys, vs)),
);

const path = fc.oneof(
  fc.constantFrom(...TOP),
  fc.constantFrom(...SUB.map((s) => `sub.${s}`)),
  fc.integer({min: 0, max: 5}).map((i) => `arr.${i}`),
  fc.constantFrom('arr.0.x', 'arr.1.y', 'sub.x.deep', 'sub.10.k'),
);

const one = (op: string, p: string, v: unknown): Document => ({[op]: new Map([[p, v]])});

/** One update document (operators) or pipeline, covering every operator the product's users use. */
const update: fc.Arbitrary<Document | Document[]> = fc.oneof(
  fc.tuple(path, value).map(([p, v]) => one('$set', p, v)),
  fc.tuple(fc.uniqueArray(path, {minLength: 2, maxLength: 3}), fc.array(value, {minLength: 3, maxLength: 3})).map(([ps, vs]) => ({$set: mapOf(ps, vs)})),
  path.map((p) => one('$unset', p, '')),
  fc.tuple(path, fc.integer({min: -3, max: 3})).map(([p, n]) => one('$inc', p, n)),
  fc.tuple(path, fc.constantFrom(2, -1, 0.5)).map(([p, n]) => one('$mul', p, n)),
  fc.tuple(fc.constantFrom('$min', '$max'), path, scalar).map(([op, p, v]) => one(op, p, v)),
  fc.tuple(fc.constantFrom('arr', 'sub', 'n'), value).map(([p, v]) => one('$push', p, v)),
  fc.tuple(fc.array(fc.integer({min: 0, max: 6}), {maxLength: 3}), fc.option(fc.integer({min: -2, max: 3}), {nil: undefined}), fc.option(fc.integer({min: -3, max: 3}), {nil: undefined})).map(([each, position, slice]) => {
    const spec = new Map<string, unknown>([['$each', each]]);
    if (position !== undefined) spec.set('$position', position);
    if (slice !== undefined) spec.set('$slice', slice);
    return one('$push', 'arr', spec);
  }),
  fc.tuple(fc.constantFrom('arr', 'sub'), fc.oneof(fc.integer({min: 0, max: 6}), subdoc)).map(([p, v]) => one('$addToSet', p, v)),
  fc.oneof(fc.integer({min: 0, max: 6}), fc.integer({min: 0, max: 6}).map((n) => ({$gte: n}))).map((v) => one('$pull', 'arr', v)),
  fc.constantFrom(1, -1).map((n) => one('$pop', 'arr', n)),
  fc.tuple(fc.constantFrom(...TOP, 'sub.x', 'sub.2'), fc.constantFrom(...TOP, 'sub.y', 'sub.10', 'moved')).filter(([a, b]) => a !== b).map(([a, b]) => one('$rename', a, b)),
  fc.tuple(path, value, path, fc.integer({min: 1, max: 3})).map(([p, v, q, n]) => ({$set: new Map([[p, v]]), $inc: new Map([[q, n]])})),
  // Pipelines: $replaceWith in a new field order; $set (in place or appended) then $unset.
  fc.shuffledSubarray(TOP, {minLength: 1}).map((keys) => [{$replaceWith: new Map(keys.map((k) => [k, `$${k}`]))}]),
  fc.tuple(fc.constantFrom(...TOP), value, fc.constantFrom(...TOP)).map(([k, v, u]) => [{$set: new Map([[k, {$literal: v}]])}, {$unset: u}]),
);

type Command =
  | {kind: 'update'; id: number; update: Document | Document[]}
  /** `$[e]` with an array filter, or the positional `$` of the element the query matched. */
  | {kind: 'arrayUpdate'; id: number; positional: boolean; threshold: number; value: unknown}
  | {kind: 'updateMany'; ids: number[]; update: Document | Document[]}
  | {kind: 'replace'; id: number; doc: Map<string, unknown>}
  | {kind: 'insert'; id: number; doc: Map<string, unknown>}
  | {kind: 'deleteOne'; id: number}
  | {kind: 'deleteMany'; ids: number[]};

const id = fc.constantFrom(...IDS);
const ids = fc.uniqueArray(id, {minLength: 1, maxLength: 3});
const command: fc.Arbitrary<Command> = fc.oneof(
  {weight: 8, arbitrary: fc.record({kind: fc.constant('update' as const), id, update})},
  {weight: 1, arbitrary: fc.record({kind: fc.constant('arrayUpdate' as const), id, positional: fc.boolean(), threshold: fc.integer({min: 0, max: 6}), value: fc.oneof(scalar, subdoc)})},
  {weight: 2, arbitrary: fc.record({kind: fc.constant('updateMany' as const), ids, update})},
  {weight: 2, arbitrary: fc.record({kind: fc.constant('replace' as const), id, doc: body})},
  {weight: 2, arbitrary: fc.record({kind: fc.constant('insert' as const), id, doc: body})},
  {weight: 2, arbitrary: fc.record({kind: fc.constant('deleteOne' as const), id})},
  {weight: 1, arbitrary: fc.record({kind: fc.constant('deleteMany' as const), ids})},
);
const scenario = fc.record({seed: fc.array(body, {minLength: IDS.length, maxLength: IDS.length}), commands: fc.array(command, {minLength: 10, maxLength: 40})});

// ---- running a scenario on a server ----------------------------------------------------------

interface Snapshot {
  ts: Timestamp;
  /** `_id` (type and bytes, hex) → the document's bytes (hex), sorted by key. */
  docs: Array<[string, string]>;
}

function withId(n: number, doc: Map<string, unknown>): Map<string, unknown> {
  return new Map([['_id', n], ...doc]);
}

/** The `_id` element of a raw document as `type:hex`, the same key the replay state uses. */
function idKeyOf(raw: Buffer): string {
  for (const [type, nameStart, nameLength, offset, length] of BSON.onDemand.parseToElements(raw)) {
    if (raw.toString('utf8', nameStart, nameStart + nameLength) === '_id') return `${type}:${raw.toString('hex', offset, offset + length)}`;
  }
  throw new Error('document without _id');
}

async function lastTs(client: MongoClient): Promise<Timestamp> {
  const [last] = await client.db('local').collection('oplog.rs').find({}, {projection: {ts: 1}}).sort({$natural: -1}).limit(1).toArray();
  return last!.ts as Timestamp;
}

async function snapshot(client: MongoClient, coll: Collection): Promise<Snapshot> {
  const raws = (await coll.find({}, {raw: true}).toArray()) as unknown as Uint8Array[];
  const docs = raws.map((r) => Buffer.from(r)).map((b) => [idKeyOf(b), b.toString('hex')] as [string, string]);
  docs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {ts: await lastTs(client), docs};
}

async function run(coll: Collection, c: Command): Promise<void> {
  const filter = (n: number) => ({_id: n}) as Document;
  try {
    switch (c.kind) {
      case 'update':
        await coll.updateOne(filter(c.id), c.update as Document);
        return;
      case 'arrayUpdate':
        // https://www.mongodb.com/docs/manual/reference/operator/update/positional-filtered/ and .../positional/
        if (c.positional) await coll.updateOne({_id: c.id, arr: c.threshold} as Document, {$set: {'arr.$': c.value}} as Document);
        else await coll.updateOne(filter(c.id), {$set: {'arr.$[e]': c.value}} as Document, {arrayFilters: [{e: {$gte: c.threshold}}]});
        return;
      case 'updateMany':
        await coll.updateMany({_id: {$in: c.ids}} as Document, c.update as Document);
        return;
      case 'replace':
        await coll.replaceOne(filter(c.id), c.doc as unknown as Document);
        return;
      case 'insert':
        await coll.insertOne(withId(c.id, c.doc) as unknown as Document, {forceServerObjectId: true});
        return;
      case 'deleteOne':
        await coll.deleteOne(filter(c.id));
        return;
      case 'deleteMany':
        await coll.deleteMany({_id: {$in: c.ids}} as Document);
        return;
    }
  } catch (e) {
    // Refused writes (type errors, conflicts, duplicate _id) change nothing and log nothing.
    if (!(e instanceof MongoServerError)) throw e;
    refused.set(e.code ?? 0, (refused.get(e.code ?? 0) ?? 0) + 1);
  }
}

async function* oplogSince(client: MongoClient, since: Timestamp): AsyncGenerator<RawOplogEntry> {
  const cursor = client.db('local').collection('oplog.rs').find({ts: {$gt: since}}, {raw: true}).sort({$natural: 1});
  for await (const r of cursor as unknown as AsyncIterable<Uint8Array>) {
    const raw = Buffer.from(r);
    const ts = BSON.deserialize(raw, {promoteValues: false}).ts as Timestamp;
    yield {ts: {t: ts.t, i: ts.i}, raw};
  }
}

function before_(a: {t: number; i: number}, b: Timestamp): boolean {
  return a.t < b.t || (a.t === b.t && a.i <= b.i);
}

let collections = 0;
const refused = new Map<unknown, number>();
let commandsRun = 0;

/** Runs one scenario and checks every cut point; returns counts for the log. */
async function check(client: MongoClient, dbName: string, scenarioValue: {seed: Array<Map<string, unknown>>; commands: Command[]}): Promise<{entries: number}> {
  const coll = client.db(dbName).collection(`prop_${process.pid}_${collections++}`);
  const ns = `${dbName}.${coll.collectionName}`;
  await coll.insertMany(scenarioValue.seed.map((d, i) => withId(IDS[i]!, d)) as unknown as Document[], {forceServerObjectId: true});
  const base = await snapshot(client, coll);
  const snapshots: Snapshot[] = [];
  for (const c of scenarioValue.commands) {
    commandsRun++;
    await run(coll, c);
    snapshots.push(await snapshot(client, coll));
  }
  const ops: Operation[] = [];
  let entries = 0;
  const counted = async function* (): AsyncGenerator<RawOplogEntry> {
    for await (const e of oplogSince(client, base.ts)) {
      entries++;
      yield e;
    }
  };
  for await (const op of decodeOperations(counted(), {namespaces: (n) => n === ns})) ops.push(op);
  const state = new Map<string, Buffer>(base.docs.map(([k, h]) => [k, Buffer.from(h, 'hex')]));
  let next = 0;
  for (const [k, snap] of snapshots.entries()) {
    while (next < ops.length && before_(ops[next]!.ts, snap.ts)) {
      const op = ops[next++]!;
      if (op.ns !== ns) continue;
      assert.ok(op.kind === 'insert' || op.kind === 'update' || op.kind === 'replace' || op.kind === 'delete', `unexpected ${op.kind} in ${ns}`);
      const d = op as DocumentOperation;
      const key = `${d.id.type}:${d.id.bytes.toString('hex')}`;
      const after = applyOperation(state.get(key) ?? null, d);
      if (after) state.set(key, after);
      else state.delete(key);
    }
    const rebuilt = [...state.entries()].map(([key, b]) => [key, b.toString('hex')] as [string, string]).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    assert.deepEqual(rebuilt, snap.docs, `state after command ${k} (${JSON.stringify(scenarioValue.commands[k], (_, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v))}) rebuilt from base + oplog differs from what the server held`);
  }
  await coll.drop().catch(() => undefined);
  return {entries};
}

// ---- backends ----------------------------------------------------------------------------------

async function property(client: MongoClient, dbName: string, label: string): Promise<void> {
  let entries = 0;
  await fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      entries += (await check(client, dbName, s)).entries;
    }),
    {numRuns: RUNS},
  );
  console.log(`# ${label}: ${RUNS} scenarios, ${commandsRun} commands (refused, by code: ${JSON.stringify(Object.fromEntries(refused))}), ${entries} oplog entries replayed and compared after every command`);
}

describe('oplog replay property', () => {
  let server: TestMongoServer;
  let client: MongoClient;
  before(async () => {
    server = await startTestMongoServer({replSet: 'rs-property'});
    client = await new MongoClient(server.uri).connect();
  });
  after(async () => {
    await client?.close();
    await server?.close();
  });

  test('base + the test server oplog rebuilds every state byte for byte', async () => {
    await property(client, 'prop', 'test server (replica-set mode)');
  });

  describe('against mongod', () => {
    let real: MongoBackend | undefined;
    let why: string | undefined;
    before(async () => {
      if (backendMode() !== 'replset' && !process.env.MONGODB_TEST_URI) {
        why = `${MODE_VAR} is not replset and MONGODB_TEST_URI is not set: no real replica set to read mongod's own oplog from`;
        return;
      }
      real = await startMongo({label: 'oplog-replay-property', replSet: 'rs-property'});
      const probe = await new MongoClient(real.uri, {serverSelectionTimeoutMS: 10_000}).connect();
      try {
        const hello = await probe.db('admin').command({hello: 1});
        if (!hello.setName || real.kind === 'test-server') why = `${describeBackend(real.kind)} is not a real replica set (${real.detail})`;
      } finally {
        await probe.close();
      }
    });
    after(async () => {
      await real?.stop();
    });

    test("base + mongod's own oplog rebuilds every state byte for byte", async (t) => {
      if (why || !real) {
        t.skip(why ?? 'no real replica set');
        return;
      }
      const c = await new MongoClient(real.uri).connect();
      try {
        await property(c, `gr_prop_${process.pid}`, `mongod (${real.detail})`);
        await c.db(`gr_prop_${process.pid}`).dropDatabase();
      } finally {
        await c.close();
      }
    });
  });
});
