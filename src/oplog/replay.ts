/**
 * One document's operations, in order, from its state at the base to its state at the end: what
 * `extract --at` rebuilds for each touched `_id` and what `history` shows. Document operations come
 * from applyOperation; collection operations act on every document of their namespace (OPLOG.md §3.3):
 * a drop or dropDatabase deletes it, a rename moves it to the new namespace (and a rename onto its
 * namespace with `dropTarget` deletes it), a create changes nothing, and a command the replayer
 * cannot follow is refused.
 */
import {GravityError} from '../errors.js';
import {replayOperation, type ApplyMode, type ApplyOutcome} from './apply/index.js';
import {fieldChanges} from './field-changes.js';
import {formatOpTime} from './optime.js';
import type {DocumentOperation, OpTime, Operation} from './types.js';

export interface DocumentEvent {
  ts: OpTime;
  wall: Date | null;
  op: 'insert' | 'update' | 'replace' | 'delete' | 'drop' | 'rename';
  /** The namespace the document had before the event. */
  ns: string;
  set: string[];
  unset: string[];
  nulled: string[];
  transaction: boolean;
  fromMigrate: boolean;
  /** What applying did (an update of a missing document changes nothing, OPLOG.md §5 rule 4). */
  outcome: ApplyOutcome | 'collection';
  /** Idempotent mode: paths written by mongod's re-application rules. */
  provisional: string[];
}

export interface DocumentReplay {
  /** The state at the end: bytes, or null when there is no document. */
  doc: Buffer | null;
  /** The namespace the document has at the end (renames move it). */
  ns: string;
  events: DocumentEvent[];
}

export interface ReplayDocumentOptions {
  /** Per operation: `idempotent` while the base may already reflect it (a dump's capture window), else `strict`. */
  mode?: (op: DocumentOperation) => ApplyMode;
  /** Compute set/unset paths per event (history, changes); off saves the comparison of replacements. */
  fieldChanges?: boolean;
}

/** Whether a collection operation on `opNs` concerns a document living in `ns`. */
function concerns(op: Operation, ns: string): boolean {
  if (op.kind === 'dropDatabase') return ns.startsWith(`${op.ns}.`);
  if (op.kind === 'rename') return op.ns === ns || op.to === ns;
  return op.ns === ns;
}

/**
 * Applies `ops` (in ts order: this document's operations and the collection operations around them)
 * to `initial`, the document as the base holds it in `ns` (null: not there). Document operations
 * for another namespace or `_id` than the document's current ones are ignored, so a caller may pass a
 * wider stream.
 */
export function replayDocument(ns: string, idKey: string, initial: Buffer | null, ops: Iterable<Operation>, options: ReplayDocumentOptions = {}): DocumentReplay {
  let doc = initial;
  let where = ns;
  const events: DocumentEvent[] = [];
  const wantChanges = options.fieldChanges ?? true;
  for (const op of ops) {
    const common = {ts: op.ts, wall: op.wall, ns: where, transaction: op.transaction, fromMigrate: op.fromMigrate, provisional: [] as string[]};
    if (op.kind === 'insert' || op.kind === 'update' || op.kind === 'replace' || op.kind === 'delete') {
      if (op.ns !== where || op.idKey !== idKey) continue;
      const before = doc;
      const result = replayOperation(before, op, {mode: options.mode?.(op) ?? 'strict'});
      doc = result.doc;
      const changes = wantChanges && result.outcome !== 'update-on-missing' && result.outcome !== 'delete-on-missing' ? fieldChanges(op, before) : {set: [], unset: [], nulled: []};
      events.push({...common, op: op.kind, ...changes, outcome: result.outcome, provisional: result.provisional});
      continue;
    }
    if (!concerns(op, where)) continue;
    switch (op.kind) {
      case 'create':
        continue;
      case 'drop':
      case 'dropDatabase':
        if (doc) events.push({...common, op: 'drop', set: [], unset: [], nulled: [], outcome: 'collection'});
        doc = null;
        continue;
      case 'rename':
        if (op.ns === where && op.to !== undefined) {
          // Only a document that exists moves; a missing one keeps its (namespace, _id) identity.
          if (doc) {
            events.push({...common, op: 'rename', set: [], unset: [], nulled: [], outcome: 'collection'});
            where = op.to;
          }
        } else if (op.to === where && op.dropTarget) {
          // The collection this document lived in was replaced by the renamed one.
          if (doc) events.push({...common, op: 'drop', set: [], unset: [], nulled: [], outcome: 'collection'});
          doc = null;
        }
        continue;
      case 'unsupported':
        throw new GravityError('OPLOG_UNSUPPORTED', `Cannot replay ${op.command ?? 'a command'} on ${op.ns} at ${formatOpTime(op.ts)}: it changes documents without oplog entries for them`, {
          hint: 'Choose a time before it, or restore this collection from a backup taken after it',
          details: {ns: op.ns, ts: op.ts, command: op.command},
        });
    }
  }
  return {doc, ns: where, events};
}
