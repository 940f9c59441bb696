/**
 * The trap table (test/support/query-traps.ts, expectations from the MongoDB manual) run through a
 * server with the official driver: always the in-repo test server, and a real mongod when
 * MONGODB_TEST_URI names one. Each trap document is stored under its own _id and the parsed filter
 * is asked with that _id, so every trap is one find.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import {after, before, describe, test} from 'node:test';

import {BSON, MongoClient, type Collection, type Document} from 'mongodb';

import {parseQuery} from '../../src/query/parse.js';
import {startTestMongoServer, type TestMongoServer} from '../support/mongo-server/index.js';
import {TRAPS, containsUndefined, trapBytes, type TrapCase} from '../support/query-traps.js';

type TrapDoc = {_id: number; [key: string]: unknown};

/**
 * Inserts one document through a bare OP_MSG on a new connection: the driver cannot write BSON
 * undefined (type 6). Works only where the server needs no authentication.
 */
async function insertRaw(uri: string, db: string, collection: string, doc: Document): Promise<void> {
  const url = new URL(uri.replace(/^mongodb:\/\//, 'http://'));
  const body = trapBytes({insert: collection, documents: [doc], $db: db});
  const header = Buffer.alloc(21);
  header.writeInt32LE(21 + body.length, 0);
  header.writeInt32LE(1, 4);
  header.writeInt32LE(0, 8);
  header.writeInt32LE(2013, 12);
  header.writeUInt32LE(0, 16);
  header[20] = 0;
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const socket = net.connect(Number(url.port || 27017), url.hostname);
    const chunks: Buffer[] = [];
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      if (all.length >= 4 && all.length >= all.readInt32LE(0)) {
        socket.end();
        resolve(all);
      }
    });
    socket.write(Buffer.concat([header, body]));
  });
  const answer = BSON.deserialize(reply.subarray(21));
  if (answer.ok !== 1 || answer.writeErrors) throw new Error(`raw insert refused: ${JSON.stringify(answer)}`);
}

interface Backend {
  uri: string;
  /** Server major version, to pick the documented pre-8.0 answer where one exists. */
  major: number;
  coll: Collection<TrapDoc>;
  /** _ids of the traps whose documents could not be stored, with the reason. */
  unstored: Map<number, string>;
  close(): Promise<void>;
}

async function load(uri: string, dbName: string): Promise<Backend> {
  const client = new MongoClient(uri, {serverSelectionTimeoutMS: 10_000});
  await client.connect();
  const db = client.db(dbName);
  const info = await db.admin().command({buildInfo: 1}).catch(() => ({version: '0'}));
  const major = Number(String((info as {version?: string}).version ?? '0').split('.')[0]);
  const coll = db.collection<TrapDoc>('traps');
  await coll.drop().catch(() => undefined);
  const unstored = new Map<number, string>();
  const plain: TrapDoc[] = [];
  for (const [i, trap] of TRAPS.entries()) {
    if (!containsUndefined(trap.doc)) plain.push({_id: i, ...trap.doc});
  }
  await coll.insertMany(plain, {ordered: true});
  for (const [i, trap] of TRAPS.entries()) {
    if (!containsUndefined(trap.doc)) continue;
    try {
      await insertRaw(uri, dbName, 'traps', {_id: i, ...trap.doc});
    } catch (error) {
      unstored.set(i, `BSON undefined could not be stored: ${(error as Error).message}`);
    }
  }
  return {
    uri,
    major,
    coll,
    unstored,
    close: async () => {
      await coll.drop().catch(() => undefined);
      await client.close();
    },
  };
}

function expectedOn(trap: TrapCase, major: number): boolean {
  return major > 0 && major < 8 && trap.before80 !== undefined ? trap.before80 : trap.expected;
}

function registerTraps(label: string, backend: () => Backend): void {
  for (const [i, trap] of TRAPS.entries()) {
    test(trap.name, async (t) => {
      const b = backend();
      const why = b.unstored.get(i);
      if (why) {
        t.skip(why);
        return;
      }
      const filter = parseQuery(trap.filter);
      const found = await b.coll.find({$and: [{_id: i}, filter]}).toArray();
      const expected = expectedOn(trap, b.major);
      assert.equal(
        found.length === 1,
        expected,
        `${label}: ${trap.name}\n  filter: ${trap.filter}\n  manual: ${trap.manual}\n  expected ${expected}, server said ${found.length === 1}`,
      );
    });
  }
}

describe('trap table against the in-repo test server', () => {
  let server: TestMongoServer;
  let backend: Backend;
  before(async () => {
    server = await startTestMongoServer();
    backend = await load(server.uri, 'query_traps');
  });
  after(async () => {
    await backend?.close();
    await server?.close();
  });
  registerTraps('test server', () => backend);
});

const REAL = process.env.MONGODB_TEST_URI;
if (REAL) {
  describe('trap table against real mongod (MONGODB_TEST_URI)', () => {
    let backend: Backend;
    before(async () => {
      backend = await load(REAL, `gravity_query_traps_${process.pid}`);
    });
    after(async () => {
      await backend?.close();
    });
    registerTraps('mongod', () => backend);
  });
} else {
  test('trap table against real mongod', {skip: 'no real mongod: set MONGODB_TEST_URI'}, () => {});
}
