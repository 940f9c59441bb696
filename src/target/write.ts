/**
 * The pieces every write to a target shares: the compare-and-swap filter, the write concern,
 * which server errors are worth another try, and the retry loop itself.
 */
import type {Document} from 'bson';
import {MongoError, MongoServerError, MongoServerSelectionError} from 'mongodb';
import type {Filter, WriteConcernSettings} from 'mongodb';

import {MAX_DOCUMENT_BYTES, writeForm} from './exact.js';
import {isConnectionLoss} from './plan.js';

/**
 * Majority, so a write acknowledged here survives a failover; bounded, so a replica set that lost
 * its majority fails the push (resumable from the journal) instead of blocking it forever.
 * https://www.mongodb.com/docs/manual/reference/write-concern/#wtimeout
 */
export const WRITE_CONCERN: WriteConcernSettings = {w: 'majority', wtimeoutMS: 60_000};

/**
 * The room a statement's filter may take next to its replacement: the driver refuses a write
 * statement of 16 MiB or more, and mongod one over 16 MiB plus a little internal headroom.
 */
const STATEMENT_ROOM = MAX_DOCUMENT_BYTES - 64 * 1024;

/**
 * A filter that matches the document only while it is still what was read (`current`, its raw
 * bytes, compared byte for byte by the caller just before): the server re-checks, atomically with
 * the write, that the whole document equals that version (`$$ROOT` against the exact form, field
 * order included) and has the same BSON size.
 * https://www.mongodb.com/docs/manual/reference/operator/query/expr/
 * https://www.mongodb.com/docs/manual/reference/aggregation-variables/#mongodb-variable-variable.ROOT
 * https://www.mongodb.com/docs/manual/reference/operator/aggregation/bsonSize/
 *
 * What the server's check cannot see, in the moment between the caller's byte comparison and the
 * write (a standalone server has no transaction to close it): changes that keep BSON equality and
 * the size, i.e. a number changing type at the same value and width (NumberLong(5) → 5.0,
 * NumberDecimal("5.0") → NumberDecimal("5.00")), -0.0 ↔ 0.0, and strings the collection's collation
 * treats as equal with the same byte length. When the exact form cannot stand for the document
 * (deprecated types) or the statement would pass the size limit, only `_id` and the size are
 * checked by the server.
 */
export function unchangedFilter(id: unknown, current: Uint8Array, replacementBytes = 0): Filter<Document> {
  const size = {$eq: [{$bsonSize: '$$ROOT'}, current.length]};
  const fits = current.length + replacementBytes < STATEMENT_ROOM;
  if (!fits) return {_id: id, $expr: size} as Filter<Document>;
  const form = writeForm(current);
  if (form.inexact !== null) return {_id: id, $expr: size} as Filter<Document>;
  return {_id: id, $expr: {$and: [size, {$eq: ['$$ROOT', {$literal: form.doc}]}]}} as Filter<Document>;
}

/**
 * Server errors that say "try again" rather than "no": elections, shutdowns, a lost connection.
 * https://www.mongodb.com/docs/manual/core/retryable-writes/#retryable-write-error
 */
const TRANSIENT_CODES = new Set([
  6 /* HostUnreachable */, 7 /* HostNotFound */, 89 /* NetworkTimeout */, 91 /* ShutdownInProgress */, 189 /* PrimarySteppedDown */,
  262 /* ExceededTimeLimit */, 9001 /* SocketException */, 10107 /* NotWritablePrimary */, 11600 /* InterruptedAtShutdown */,
  11602 /* InterruptedDueToReplStateChange */, 13435 /* NotPrimaryNoSecondaryOk */, 13436 /* NotPrimaryOrSecondary */,
]);

export function isTransientCode(code: unknown): boolean {
  return typeof code === 'number' && TRANSIENT_CODES.has(code);
}

export function isTransient(error: unknown): boolean {
  // Server selection already waited its whole window (longer than an election) for a primary: no retry.
  if (error instanceof MongoServerSelectionError) return false;
  if (isConnectionLoss(error)) return true;
  if (error instanceof MongoError && (error.hasErrorLabel('RetryableWriteError') || error.hasErrorLabel('TransientTransactionError'))) return true;
  return error instanceof MongoServerError && isTransientCode(error.code);
}

export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  signal?: AbortSignal;
}

/** About half a minute of backoff in all: longer than an election takes. */
export const DEFAULT_RETRY: RetryPolicy = {attempts: 7, firstDelayMs: 250};

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, {once: true});
  });
}

/** Run `fn`, again after a growing pause while it fails transiently; the last failure is thrown. */
export async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY, onRetry?: (error: unknown, attempt: number) => void): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= policy.attempts || !isTransient(error) || policy.signal?.aborted) throw error;
      onRetry?.(error, attempt);
      await sleep(policy.firstDelayMs * 2 ** (attempt - 1), policy.signal);
    }
  }
}
