import {spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {mkdtemp} from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import {BSON, EJSON, type Document} from 'bson';
import {MongoClient, type CollationOptions} from 'mongodb';

import {maskUri} from '../config/redact.js';
import {GravityError} from '../errors.js';
import {idKey} from '../target/bson-util.js';
import {exactForm, exactId} from '../target/exact.js';
import type {Keep, Selector} from './selector.js';
import type {SpoolFile} from './spool.js';

export interface Scratch {
  uri: string;
  db: string;
  client: MongoClient;
  /** Drops the scratch database / stops the server unless kept. */
  stop(): Promise<void>;
  kept: boolean;
  /** For a kept server this command started: how to stop it. */
  stopHint?: string;
}

/**
 * A scratch MongoDB for the mongod engine: `--scratch-uri`, or a mongod started by
 * mongodb-memory-server from a binary already on this machine. It never waits on a download:
 * with no binary it fails at once and says what to do.
 */
export async function openScratch(options: {scratchUri?: string; keep?: boolean}): Promise<Scratch> {
  const db = `gravity_restore_scratch_${randomBytes(4).toString('hex')}`;
  if (options.scratchUri) {
    const client = await connect(options.scratchUri);
    return {
      uri: options.scratchUri,
      db,
      client,
      kept: Boolean(options.keep),
      async stop() {
        if (!options.keep) await client.db(db).dropDatabase().catch(() => undefined);
        await client.close();
      },
    };
  }
  // Never download: this is an ops tool, often on machines without internet access.
  process.env.MONGOMS_RUNTIME_DOWNLOAD = 'false';
  const {MongoBinary, MongoMemoryServer} = await import('mongodb-memory-server');
  let binary: string;
  try {
    binary = await MongoBinary.getPath();
  } catch {
    throw new GravityError('SCRATCH_UNAVAILABLE', 'No mongod binary is available for the scratch engine', {
      hint: 'Set MONGOMS_SYSTEM_BINARY to a mongod binary, pass --scratch-uri mongodb://host:port, or use --engine stream',
    });
  }
  if (options.keep) return startDetachedMongod(binary, db);
  let server: {getUri(): string; stop(): Promise<boolean>};
  try {
    server = await MongoMemoryServer.create();
  } catch (error) {
    throw new GravityError('SCRATCH_UNAVAILABLE', `The scratch mongod did not start: ${(error as Error).message.split('\n')[0]}`, {
      hint: 'Check MONGOMS_SYSTEM_BINARY, pass --scratch-uri mongodb://host:port, or use --engine stream',
    });
  }
  const uri = server.getUri();
  const client = await connect(uri);
  return {
    uri,
    db,
    client,
    kept: false,
    async stop() {
      await client.close();
      await server.stop();
    },
  };
}

/**
 * `--keep-scratch` without `--scratch-uri`: mongodb-memory-server stops its mongod with this
 * process, so a kept scratch server is started on its own, detached, and outlives the command.
 * Its data folder and pid are in `stopHint`.
 */
async function startDetachedMongod(binary: string, db: string): Promise<Scratch> {
  const port = await freePort();
  const dbpath = await mkdtemp(path.join(os.tmpdir(), 'gravity-restore-scratch-'));
  const child = spawn(binary, ['--dbpath', dbpath, '--port', String(port), '--bind_ip', '127.0.0.1'], {detached: true, stdio: 'ignore'});
  child.unref();
  const uri = `mongodb://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const client = await connect(uri);
      return {uri, db, client, kept: true, stopHint: `kill ${child.pid} (data in ${dbpath})`, async stop() {
        await client.close();
      }};
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function connect(uri: string): Promise<MongoClient> {
  const client = new MongoClient(uri, {serverSelectionTimeoutMS: 5000, connectTimeoutMS: 5000});
  try {
    await client.connect();
    await client.db('admin').command({ping: 1});
    return client;
  } catch (error) {
    await client.close().catch(() => undefined);
    throw new GravityError('SCRATCH_UNAVAILABLE', `Cannot reach the scratch server ${maskUri(uri)}: ${(error as Error).message}`, {
      hint: 'Check --scratch-uri, or use --engine stream',
    });
  }
}

/** Exact server semantics: the spooled collections are loaded into the scratch database and queried there. */
export class MongoSelector implements Selector {
  private readonly ordinals = new Map<string, Map<string, number>>();

  private constructor(private readonly scratch: Scratch) {}

  static async load(scratch: Scratch, spools: Map<string, SpoolFile>, metadata: Map<string, string>, signal?: AbortSignal): Promise<MongoSelector> {
    const selector = new MongoSelector(scratch);
    const db = scratch.client.db(scratch.db);
    for (const [collection, spool] of spools) {
      const ids = new Map<string, number>();
      selector.ordinals.set(collection, ids);
      const raw = metadata.get(collection);
      const meta = raw ? (EJSON.parse(raw, {relaxed: false}) as {indexes?: Document[]; options?: Document}) : {};
      // The collection's default collation decides string equality and order in its queries: the scratch
      // copy must have it, or a case-insensitive collection would answer a query differently than it did.
      if (meta.options?.collation) await db.createCollection(collection, {collation: meta.options.collation as CollationOptions});
      const coll = db.collection(collection);
      let batch: Document[] = [];
      for await (const {ordinal, doc} of spool.documentsWithOrdinal(signal)) {
        // Exact form (field order kept): an embedded _id {b: 1, "1": 2} is stored as it is, not reordered.
        const form = exactForm(doc);
        ids.set(idKey(form.doc.get('_id')), ordinal);
        batch.push(form.doc as unknown as Document);
        if (batch.length >= 1000) {
          await coll.insertMany(batch, {ordered: false, forceServerObjectId: true});
          batch = [];
        }
      }
      if (batch.length > 0) await coll.insertMany(batch, {ordered: false, forceServerObjectId: true});
      const indexes = (meta.indexes ?? []).filter((ix) => ix.name !== '_id_');
      // Indexes only speed the queries up; a failure to build one must not stop the extract.
      if (indexes.length > 0) await db.command({createIndexes: collection, indexes: indexes.map(({v: _v, ns: _ns, ...rest}) => rest)}).catch(() => undefined);
    }
    return selector;
  }

  async select(collection: string, filter: Document, onProgress?: (p: {collection: string; scanned: number; matched: number}) => void, keep?: Keep) {
    const ids = this.ordinals.get(collection);
    if (!ids) return [];
    const hits: Array<{ordinal: number; doc: Document}> = [];
    const cursor = this.scratch.client.db(this.scratch.db).collection(collection).find(filter, {raw: true});
    for await (const raw of cursor) {
      const bytes = Buffer.from(raw as unknown as Uint8Array);
      const doc = BSON.deserialize(bytes, {promoteValues: false, promoteLongs: false});
      const ordinal = ids.get(idKey(exactId(bytes)));
      if (ordinal !== undefined && (!keep || keep(collection, ordinal))) hits.push({ordinal, doc});
    }
    hits.sort((a, b) => a.ordinal - b.ordinal);
    onProgress?.({collection, scanned: ids.size, matched: hits.length});
    return hits;
  }

  async close(): Promise<void> {
    await this.scratch.stop();
  }
}
