import {MongoClient, MongoParseError, MongoServerError, MongoServerSelectionError} from 'mongodb';

import {redact} from '../config/redact.js';
import {GravityError} from '../errors.js';
import type {TargetConnection, TargetSpec} from './types.js';

const AUTH_CODES = new Set([18 /* AuthenticationFailed */, 13 /* Unauthorized */]);

/**
 * Connect and prove the server answers (a `ping`), failing in seconds rather than the driver's
 * default 30 s: a wrong host during an incident should not look like a hang. TLS, auth source,
 * replica set and the like pass through the URI untouched.
 */
export async function connectTarget(given: TargetSpec, options: {timeoutMs?: number; monitorCommands?: boolean} = {}): Promise<TargetConnection> {
  // The label goes into plans, journals, the ledger and messages: never let a password through.
  const spec: TargetSpec = {...given, label: redact(given.label)};
  const timeoutMs = options.timeoutMs ?? 5000;
  let client: MongoClient;
  try {
    client = new MongoClient(spec.uri, {serverSelectionTimeoutMS: timeoutMs, connectTimeoutMS: timeoutMs, appName: 'gravity-restore', monitorCommands: options.monitorCommands ?? false});
  } catch (error) {
    throw new GravityError('TARGET_INVALID', `Target ${spec.label} has an invalid connection string: ${redact(messageOf(error))}`, {
      hint: 'Check the URI (mongodb://user:pass@host:port/db)',
      cause: error instanceof MongoParseError ? undefined : error,
    });
  }
  try {
    await client.connect();
    await client.db('admin').command({ping: 1});
  } catch (error) {
    await client.close().catch(() => undefined);
    throw classifyConnectError(spec, error, timeoutMs);
  }
  return {
    spec,
    client,
    dbName: (sourceDb: string) => spec.db ?? sourceDb,
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
