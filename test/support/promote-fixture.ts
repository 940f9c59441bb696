/**
 * Staging and production MongoDB servers plus restore sets on disk, for CLI tests of
 * plan/push/verify/rollback. Each test takes its own database so tests do not see each other.
 */
import {readFile} from 'node:fs/promises';
import path from 'node:path';

import {BSON, Int32, ObjectId, type Document} from 'bson';
import {MongoClient} from 'mongodb';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {cleanEnv} from './cli.js';
import {startMongo, withDb, type MongoBackend} from './mongo-backend.js';

/** Artworks whose fields include integer-like names, which a careless writer would reorder. */
export function artworkDocs(n: number, tag = 'a'): Document[] {
  return Array.from({length: n}, (_, i) => ({
    _id: new ObjectId(`${tag.charCodeAt(0).toString(16).padStart(2, '0')}${i.toString(16).padStart(22, '0')}`),
    title: `work ${i}`,
    n: new Int32(i),
    prices: {usd: i * 10, '2020': i},
  }));
}

export interface PromoteWorld {
  staging: MongoBackend;
  production: MongoBackend;
  stagingClient: MongoClient;
  productionClient: MongoClient;
  stop(): Promise<void>;
}

export async function startWorld(): Promise<PromoteWorld> {
  const staging = await startMongo({label: 'staging'});
  const production = await startMongo({label: 'production'});
  const stagingClient = await MongoClient.connect(staging.uri);
  const productionClient = await MongoClient.connect(production.uri);
  return {
    staging,
    production,
    stagingClient,
    productionClient,
    async stop() {
      await stagingClient.close();
      await productionClient.close();
      await staging.stop();
      await production.stop();
    },
  };
}

let counter = 0;

export interface Scenario {
  db: string;
  dir: string;
  setDir: string;
  env: NodeJS.ProcessEnv;
  docs: Record<string, Document[]>;
  cleanup(): Promise<void>;
}

/** A restore set of `collections` and fresh target databases of the same name for it. */
export async function scenario(world: PromoteWorld, collections: Record<string, Document[]>): Promise<Scenario> {
  const db = `g${process.pid}_${++counter}`;
  const tmp = await tempDir('gr-cli-promote-');
  const setDir = path.join(tmp.dir, 'set');
  await writeSet(
    setDir,
    // The set's source database is the target's: production writes into another one only when --db names it.
    Object.entries(collections).map(([name, docs]) => ({db, name, docs})),
  );
  const env = cleanEnv({
    GRAVITY_RESTORE_STAGING_URI: withDb(world.staging.uri, db),
    GRAVITY_RESTORE_PRODUCTION_URI: withDb(world.production.uri, db),
  });
  return {
    db,
    dir: tmp.dir,
    setDir,
    env,
    docs: collections,
    async cleanup() {
      await world.stagingClient.db(db).dropDatabase().catch(() => undefined);
      await world.productionClient.db(db).dropDatabase().catch(() => undefined);
      await tmp.cleanup();
    },
  };
}

/** Every document of a collection as the exact bytes the server holds, by hex of the BSON `_id` element. */
export async function rawDocs(client: MongoClient, db: string, collection: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const docs = (await client.db(db).collection(collection).find({}, {raw: true}).toArray()) as unknown as Uint8Array[];
  for (const raw of docs) {
    const buf = Buffer.from(raw);
    const id = (BSON.deserialize(buf) as Document)._id as unknown;
    out.set(idKeyOf(id), buf);
  }
  return out;
}

export function idKeyOf(id: unknown): string {
  return Buffer.from(BSON.serialize({_id: id})).toString('hex');
}

/** The BSON bytes a set holds for each document, as the backup had them. */
export function bytesOf(doc: Document): Buffer {
  return Buffer.from(BSON.serialize(doc));
}

export interface LedgerLine {
  action: string;
  target: string;
  outcome: string;
  reason?: string;
  setHash: string;
}

export async function ledger(setDir: string): Promise<LedgerLine[]> {
  const text = await readFile(path.join(setDir, 'ledger.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as LedgerLine);
}
