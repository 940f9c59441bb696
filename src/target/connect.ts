import {MongoClient, MongoParseError, MongoServerError, MongoServerSelectionError} from 'mongodb';

import {hasValidHostList, redact, registerUriSecrets} from '../config/redact.js';
import {GravityError} from '../errors.js';
import type {TargetConnection, TargetSpec} from './types.js';

const AUTH_CODES = new Set([18 /* AuthenticationFailed */, 13 /* Unauthorized */]);

/** Databases the server keeps for itself: a restore never writes there. */
const SYSTEM_DATABASES = new Set(['admin', 'local', 'config']);

/**
 * How long an operation may wait for a writable primary once connected: longer than a replica-set
 * election (about 12 s by default), so a push rides one out instead of failing mid-way.
 * https://www.mongodb.com/docs/manual/core/replica-set-elections/
 */
const SERVER_SELECTION_MS = 30_000;

export function assertWritableDb(db: string, label: string): string {
  if (SYSTEM_DATABASES.has(db)) {
    throw new GravityError('TARGET_INVALID', `Refusing to use the ${db} database of ${label}: it belongs to the server (admin, local and config are never restored into)`, {
      hint: 'Name the target database with --db (or GRAVITY_RESTORE_<TARGET>_DB / targets.<name>.db); a connection-string path of /admin only says where to authenticate',
    });
  }
  return db;
}

/**
 * Connect and prove the server answers (a `ping`), failing in seconds rather than the driver's
 * default 30 s: a wrong host during an incident should not look like a hang. TLS, auth source,
 * replica set and the like pass through the URI untouched.
 */
export async function connectTarget(
  given: TargetSpec,
  options: {timeoutMs?: number; monitorCommands?: boolean; /** How long an operation waits for a primary once connected. */ selectionMs?: number} = {},
): Promise<TargetConnection> {
  // The label goes into plans, journals, the ledger and messages: never let a password through.
  registerUriSecrets(given.uri);
  const spec: TargetSpec = {...given, label: redact(given.label)};
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!hasValidHostList(spec.uri)) {
    // Checked here: the driver accepts some malformed host lists and then fails outside any promise.
    throw new GravityError('TARGET_INVALID', `Target ${spec.label} has an invalid connection string: the host list after "@" is empty or malformed`, {
      hint: 'Check the URI (mongodb://user:pass@host:port/db); percent-encode @ : / ? # in the password',
    });
  }
  let client: MongoClient;
  try {
    client = new MongoClient(spec.uri, {
      serverSelectionTimeoutMS: options.selectionMs ?? Math.max(SERVER_SELECTION_MS, timeoutMs),
      connectTimeoutMS: timeoutMs,
      appName: 'gravity-restore',
      monitorCommands: options.monitorCommands ?? false,
    });
  } catch (error) {
    throw new GravityError('TARGET_INVALID', `Target ${spec.label} has an invalid connection string: ${redact(messageOf(error))}`, {
      hint: 'Check the URI (mongodb://user:pass@host:port/db)',
      cause: error instanceof MongoParseError ? undefined : error,
    });
  }
  // The first contact fails fast (a wrong host during an incident must not look like a hang); later
  // operations get the longer server-selection window above.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s (server selection timed out)`)), timeoutMs);
  });
  try {
    await Promise.race([
      (async () => {
        await client.connect();
        await client.db('admin').command({ping: 1});
      })(),
      deadline,
    ]);
  } catch (error) {
    await client.close().catch(() => undefined);
    throw classifyConnectError(spec, error, timeoutMs);
  } finally {
    clearTimeout(timer);
  }
  return {
    spec,
    client,
    dbName: (sourceDb: string) => assertWritableDb(spec.db ?? sourceDb, spec.label),
    close: () => client.close(),
  };
}

export function classifyConnectError(spec: TargetSpec, error: unknown, timeoutMs: number): GravityError {
  const message = redact(messageOf(error));
  if (isAuthError(error)) {
    return new GravityError('TARGET_AUTH', `Authentication to ${spec.label} failed: ${message}`, {
      hint: 'Check the user, password and authSource in the connection string',
    });
  }
  if (error instanceof MongoServerSelectionError || /ECONNREFUSED|ENOTFOUND|ETIMEDOUT|timed out/i.test(message)) {
    return new GravityError('TARGET_UNREACHABLE', `Cannot reach ${spec.label} within ${Math.round(timeoutMs / 1000)} s: ${message}`, {
      hint: 'Check the host, port, network access (VPN, firewall) and TLS options in the connection string',
    });
  }
  return new GravityError('TARGET_UNREACHABLE', `Cannot connect to ${spec.label}: ${message}`, {hint: 'Check the connection string and that the server is up'});
}

function isAuthError(error: unknown): boolean {
  if (error instanceof MongoServerError && typeof error.code === 'number' && AUTH_CODES.has(error.code)) return true;
  const cause = (error as {cause?: unknown})?.cause;
  if (cause && cause !== error && isAuthError(cause)) return true;
  return /authentication failed|auth failed|SCRAM/i.test(messageOf(error));
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
