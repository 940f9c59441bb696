/**
 * One MongoDB backend (see mongo-backend.ts) and a connected client for a suite: started before its
 * tests, closed after them, then the cleanups its tests registered are run.
 */
import {after, before} from 'node:test';

import {MongoClient} from 'mongodb';

import {startMongo, type MongoBackend} from './mongo-backend.js';

export interface MongoSuite {
  readonly mongo: MongoBackend;
  readonly client: MongoClient;
  readonly cleanups: Array<() => Promise<void>>;
}

export function mongoSuite(label: string): MongoSuite {
  let mongo: MongoBackend | undefined;
  let client: MongoClient | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  before(async () => {
    mongo = await startMongo({label});
    client = await new MongoClient(mongo.uri).connect();
  });
  after(async () => {
    await client?.close();
    await mongo?.stop();
    for (const c of cleanups) await c();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error(`${label}: the MongoDB backend is used before the suite started it`);
    return value;
  };
  return {
    get mongo() {
      return started(mongo);
    },
    get client() {
      return started(client);
    },
    cleanups,
  };
}
