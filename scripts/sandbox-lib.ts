/**
 * The local sandbox: an S3 server and two MongoDB servers (staging, production) on 127.0.0.1.
 * Used by `npm run sandbox`, the demo and the end-to-end tests.
 */
import {createHash} from 'node:crypto';
import {open, readFile, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {MongoClient} from 'mongodb';

import {maskUri} from '../src/config/redact.js';
import {startMongo, type MongoBackendKind} from '../test/support/mongo-backend.js';
import {startS3Server} from '../test/support/s3-server.js';

export interface SandboxInfo {
  s3: {endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string};
  staging: string;
  production: string;
  /** Which MongoDB the staging and production URIs point at. */
  mongo: MongoBackendKind;
  /** Why that one, in one line (e.g. why no real mongod ran). */
  mongoDetail: string;
}

export interface Sandbox {
  info: SandboxInfo;
  /** Environment for a gravity-restore process that should use this sandbox. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

export async function startSandbox(options: {bucket?: string; db?: string} = {}): Promise<Sandbox> {
  const bucket = options.bucket ?? 'gravity-production-db-backup';
  const db = options.db ?? 'gravity';
  const stops: Array<() => Promise<void>> = [];
  try {
    const s3 = await startS3Server();
    stops.push(() => s3.stop());
    await s3.createBucket(bucket);
    // Replica sets, so both have an oplog (`--oplog production` reads it) as real deployments do.
    const staging = await startMongo({label: 'staging', replSet: 'staging'});
    stops.push(() => staging.stop());
    const production = await startMongo({label: 'production', replSet: 'production'});
    stops.push(() => production.stop());
    // With one external server for both, keep them apart by database name.
    const sameServer = staging.uri === production.uri;
    if (sameServer) {
      // The demo and the pymongo flow both use these fixed database names (production pushes are
      // confirmed by typing the name), so sandboxes on one shared server take turns and start empty.
      stops.push(await lockSharedServer(production.uri));
      await dropDatabases(production.uri, [db, `${db}_staging`]);
    }
    const info: SandboxInfo = {
      s3: {endpoint: s3.endpoint, bucket, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey},
      staging: withDb(staging.uri, sameServer ? `${db}_staging` : db),
      production: withDb(production.uri, db),
      mongo: production.kind,
      mongoDetail: production.detail,
    };
    return {
      info,
      env: {
        AWS_ACCESS_KEY_ID: s3.accessKeyId,
        AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        AWS_REGION: s3.region,
        AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
        AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
        GRAVITY_RESTORE_S3_ENDPOINT: s3.endpoint,
        GRAVITY_RESTORE_STAGING_URI: info.staging,
        GRAVITY_RESTORE_PRODUCTION_URI: info.production,
      },
      async stop() {
        for (const stop of stops.reverse()) await stop().catch(() => undefined);
      },
    };
  } catch (error) {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    throw error;
  }
}

const LOCK_WAIT_MS = 10 * 60 * 1000;

/** A lock file per shared server, held for the sandbox's life; a dead holder's lock is taken over. */
async function lockSharedServer(uri: string): Promise<() => Promise<void>> {
  const key = createHash('sha256').update(uri).digest('hex').slice(0, 12);
  const file = path.join(os.tmpdir(), `gravity-restore-sandbox-${key}.lock`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  let announced = false;
  for (;;) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, {force: true});
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(await readFile(file, 'utf8').catch(() => ''));
    if (holder > 0 && !isAlive(holder)) {
      await rm(file, {force: true});
      continue;
    }
    if (Date.now() > deadline) throw new Error(`sandbox: another sandbox (pid ${holder}) has held ${maskUri(uri)} for ${LOCK_WAIT_MS / 60000} minutes (${file})`);
    if (!announced) {
      process.stderr.write(`sandbox: waiting for another sandbox (pid ${holder}) using the same MongoDB server\n`);
      announced = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function dropDatabases(uri: string, names: string[]): Promise<void> {
  const client = await MongoClient.connect(uri, {serverSelectionTimeoutMS: 10_000});
  try {
    for (const name of names) await client.db(name).dropDatabase();
  } finally {
    await client.close();
  }
}

function withDb(uri: string, db: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(\/[^?]*)?(\?.*)?$/.exec(uri);
  if (!match) return uri;
  return `${match[1]}/${db}${match[3] ?? ''}`;
}
