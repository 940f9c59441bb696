/**
 * One operation applied to one document's exact bytes, as mongod applies it during oplog
 * application: field order kept, values' bytes untouched, or refused with a GravityError naming the
 * namespace, `_id` and optime. Per-document rules from OPLOG.md §5:
 * - insert on an existing `_id` replaces the document (rule 3; mongod retries it as an upsert);
 * - update of a missing document is NOT upserted (rule 4): mongod would build a partial document
 *   from `o2._id` and the update; the outcome `update-on-missing` lets the caller record it;
 * - delete of a missing document is a no-op (rule 5).
 */
import {BSON, EJSON} from 'bson';

import {GravityError} from '../../errors.js';
import {formatOpTime} from '../optime.js';
import {MalformedBson, T_DOCUMENT, elementBytes, elements, findElement, embedded, makeDocument, makeElement, readNumber} from '../raw.js';
import type {DocumentOperation} from '../types.js';
import {ApplyContext, ApplyFailure, type ApplyMode} from './context.js';
import {applyDocDiff} from './diff-v2.js';
import {applyModifiers} from './modifiers-v1.js';

export type {ApplyMode} from './context.js';

export type ApplyOutcome =
  /** An update, replacement or delete changed (or removed) the document. */
  | 'applied'
  | 'inserted'
  /** An insert met a document with the same `_id` and replaced it. */
  | 'insert-over-existing'
  /** An update or replacement of a document that is not there: nothing written (OPLOG.md §5 rule 4). */
  | 'update-on-missing'
  /** A delete of a document that is not there: a no-op. */
  | 'delete-on-missing';

export interface ApplyResult {
  doc: Buffer | null;
  outcome: ApplyOutcome;
  /** Idempotent mode only: paths where mongod's re-application rules were used (null written, path ignored, field appended). */
  provisional: string[];
}

export interface ApplyOptions {
  /** Default `strict`; see ApplyMode. */
  mode?: ApplyMode;
}

/** A replacement as mongod's ObjectReplaceExecutor makes it: the given fields in order, the old `_id` first when they have none. */
function replacement(current: Buffer, o: Buffer): Buffer {
  const oEls = elements(o);
  if (oEls.some((el) => el.key === '_id')) return Buffer.from(o);
  const id = elements(current).find((el) => el.key === '_id');
  const parts = oEls.map((el) => elementBytes(o, el));
  return makeDocument(id ? [elementBytes(current, id), ...parts] : parts);
}

function applyUpdate(current: Buffer, o: Buffer, ctx: ApplyContext): Buffer {
  const v = findElement(o, '$v');
  const version = v ? readNumber(o, v) : undefined;
  if (version === 2) {
    const diff = findElement(o, 'diff');
    if (!diff || diff.type !== T_DOCUMENT) throw new ApplyFailure('$v:2 update without a diff document', 'unsupported');
    return applyDocDiff(current, embedded(o, diff), ctx);
  }
  if (v !== undefined && version !== 1) throw new ApplyFailure(`update of unknown format $v:${version ?? '?'}`, 'unsupported');
  return applyModifiers(current, o, ctx);
}

function idText(op: DocumentOperation): string {
  try {
    const doc = makeDocument([makeElement(op.id.type, '_id', op.id.bytes)]);
    return EJSON.stringify((BSON.deserialize(doc, {promoteValues: false, promoteLongs: false}) as {_id: unknown})._id, {relaxed: false});
  } catch {
    return op.idKey;
  }
}

/** Applies `op` to `current` (null: no document with that `_id`), returning the new state and what happened. */
export function replayOperation(current: Buffer | null, op: DocumentOperation, options: ApplyOptions = {}): ApplyResult {
  const ctx = new ApplyContext(options.mode ?? 'strict');
  try {
    switch (op.kind) {
      case 'insert':
        elements(op.o);
        return {doc: Buffer.from(op.o), outcome: current ? 'insert-over-existing' : 'inserted', provisional: []};
      case 'delete':
        return {doc: null, outcome: current ? 'applied' : 'delete-on-missing', provisional: []};
      case 'replace':
        if (!current) return {doc: null, outcome: 'update-on-missing', provisional: []};
        return {doc: replacement(current, op.o), outcome: 'applied', provisional: []};
      case 'update': {
        if (!current) return {doc: null, outcome: 'update-on-missing', provisional: []};
        const doc = applyUpdate(current, op.o, ctx);
        return {doc, outcome: 'applied', provisional: ctx.provisional};
      }
      default:
        throw new ApplyFailure(`operation kind "${(op as {kind: string}).kind}"`, 'unsupported');
    }
  } catch (error) {
    if (!(error instanceof ApplyFailure) && !(error instanceof MalformedBson)) throw error;
    const where = `${op.ns} _id ${idText(op)} at ${formatOpTime(op.ts)}`;
    const inconsistent = error instanceof ApplyFailure && error.kind === 'inconsistent';
    throw new GravityError('OPLOG_UNSUPPORTED', `Cannot apply the oplog entry for ${where} exactly: ${error instanceof MalformedBson ? `not valid BSON (${error.message})` : error.message}`, {
      hint: inconsistent
        ? 'The base document is not the one this entry was written against: replay from a base whose documents are consistent at its point (a mongodump --oplog dump, from the start of its oplog), or choose an earlier base backup'
        : 'This entry cannot be replayed exactly; choose a time before it, or restore this document from a backup taken after it',
      details: {ns: op.ns, _id: idText(op), ts: op.ts},
      cause: error,
    });
  }
}

/**
 * The new state of one document: its bytes, or null when there is none. An update or replacement of
 * a missing document leaves it missing; pass `onMissing` to record that (OPLOG.md §5 rule 4).
 */
export function applyOperation(
  current: Buffer | null,
  op: DocumentOperation,
  options: ApplyOptions & {onMissing?: (outcome: 'update-on-missing' | 'delete-on-missing', op: DocumentOperation) => void} = {},
): Buffer | null {
  const result = replayOperation(current, op, options);
  if (options.onMissing && (result.outcome === 'update-on-missing' || result.outcome === 'delete-on-missing')) options.onMissing(result.outcome, op);
  return result.doc;
}
