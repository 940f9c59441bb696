/**
 * The local sandbox: an S3 server and two MongoDB servers (staging, production) on 127.0.0.1.
 * Used by `npm run sandbox`, the demo and the end-to-end tests.
 */
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
    const staging = await startMongo({label: 'staging'});
    stops.push(() => staging.stop());
    const production = await startMongo({label: 'production'});
    stops.push(() => production.stop());
    // With one external server for both, keep them apart by database name.
    const sameServer = staging.uri === production.uri;
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

function withDb(uri: string, db: string): string {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(\/[^?]*)?(\?.*)?$/.exec(uri);
  if (!match) return uri;
  return `${match[1]}/${db}${match[3] ?? ''}`;
}
