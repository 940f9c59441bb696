/**
 * The read stage: one pass over a backup, keeping the namespaces a relation closure needs. Each
 * namespace becomes one record (metadata, documents spooled or handed on, where it came from),
 * whatever order the backup stores them in, so a collection taken from an older backup is the
 * same kind of record as one from FROM.
 */
import {readDump} from '../dump/read.js';
import type {SpaceGuard} from '../dump/disk-space.js';
import type {DocumentScreen, DumpInput, NamespaceRef} from '../dump/types.js';
import {GravityError} from '../errors.js';
import {SpoolFile} from './spool.js';
import {splitNamespace} from './namespace.js';

export {splitNamespace};

export interface NamespaceState {
  ns: NamespaceRef;
  metadataRaw: string | null;
  /** Null when documents are handed to `onDocs` instead (the streaming path). */
  spool: SpoolFile | null;
  scanned: number;
  bytes: number;
  ended: boolean;
  /** The backup this namespace was read from, when it is not FROM itself. */
  origin?: {backup: string | null; location: string; takenAt: string | null};
}

export interface ReadProgress {
  collection: string;
  scanned: number;
  bytesRead: number;
  totalBytes?: number;
}

export interface ReadStageOptions {
  /** Collection names wanted (a relation closure), in `db` when given. */
  collections: string[];
  db: string | null;
  /** Where spools go; null: documents go to `onDocs` as they stream by. */
  spoolDir: string | null;
  /** Counts the spools' bytes against the free space of their disk. */
  space?: SpaceGuard;
  onDocs?: (state: NamespaceState, docs: Buffer[]) => Promise<void>;
  /** Which documents of a namespace reach `onDocs` (null: all); see ReadOptions.screen. */
  screen?: (ns: NamespaceRef) => DocumentScreen | null;
  signal?: AbortSignal;
  onProgress?: (p: ReadProgress) => void;
  /** Where the backup's own oplog (mongodump --oplog) is copied as it streams by; null: not read. */
  oplogSpool?: SpoolFile | null;
}

export interface ReadStageResult {
  states: Map<string, NamespaceState>;
  /** The backup's oplog entries, copied to `oplogSpool`, when it has an oplog.bson. */
  oplog: SpoolFile | null;
  /** Every collection name seen in the backup. */
  known: Set<string>;
}

export const stateKey = (ns: NamespaceRef): string => `${ns.db}\u0000${ns.collection}`;

export async function readStage(input: DumpInput, options: ReadStageOptions): Promise<ReadStageResult> {
  const states = new Map<string, NamespaceState>();
  const known = new Set<string>();
  const isNeeded = (ns: NamespaceRef) => options.collections.includes(ns.collection) && (options.db === null || ns.db === options.db);
  const allDone = () => options.collections.every((c) => [...states.values()].some((s) => s.ns.collection === c && s.ended));
  const stateFor = (ns: NamespaceRef): NamespaceState => {
    let state = states.get(stateKey(ns));
    if (!state) {
      state = {ns, metadataRaw: null, spool: options.spoolDir === null ? null : new SpoolFile(options.spoolDir, ns.db, ns.collection, options.space), scanned: 0, bytes: 0, ended: false};
      states.set(stateKey(ns), state);
    }
    return state;
  };
  let bytesRead = 0;
  let totalBytes: number | undefined;
  let lastReport = 0;
  const oplogSpool = options.oplogSpool ?? null;
  let oplogSeen = false;
  for await (const event of readDump(input, {
    signal: options.signal,
    want: (ns) => {
      if (ns.db === '' && ns.collection === 'oplog') return oplogSpool !== null;
      known.add(ns.collection);
      return isNeeded(ns);
    },
    ...(oplogSpool ? {oplogEntries: true} : {}),
    ...(options.screen ? {screen: options.screen} : {}),
    onProgress: (p) => {
      bytesRead = p.bytesRead;
      totalBytes = p.totalBytes;
    },
  })) {
    if (event.type === 'oplog') {
      if (oplogSpool && event.entries && event.entries.length > 0) {
        oplogSeen = true;
        await oplogSpool.append(event.entries);
      }
      continue;
    }
    known.add(event.collection);
    const ns = {db: event.db, collection: event.collection};
    if (!isNeeded(ns)) continue;
    const state = stateFor(ns);
    if (event.type === 'metadata') {
      state.metadataRaw = event.raw;
    } else if (event.type === 'documents') {
      state.scanned += event.scanned ?? event.docs.length;
      state.bytes += event.bytes;
      if (state.spool) await state.spool.append(event.docs);
      else if (event.docs.length > 0) await options.onDocs?.(state, event.docs);
      const now = Date.now();
      if (now - lastReport > 100) {
        lastReport = now;
        options.onProgress?.({collection: ns.collection, scanned: state.scanned, bytesRead, totalBytes});
      }
    } else if (event.type === 'end') {
      state.ended = true;
      // Stop reading (and downloading) as soon as every needed collection is complete (the oplog, when
      // wanted, comes after the collections in every layout mongodump writes, so it is read to the end).
      if (allDone() && !oplogSpool) break;
    }
  }
  for (const state of states.values()) await state.spool?.close();
  if (oplogSpool) await oplogSpool.close();
  return {states, known, oplog: oplogSeen ? oplogSpool : null};
}

/** The database of the root collection; UNKNOWN_COLLECTION (naming what the backup holds) or an ambiguity error. */
export function rootDatabase(read: ReadStageResult, name: string, collection: string, location: string): string {
  const roots = [...read.states.values()].filter((s) => s.ns.collection === collection);
  if (roots.length === 0) {
    const list = [...read.known].filter((c) => !c.startsWith('system.')).sort();
    throw new GravityError('UNKNOWN_COLLECTION', `Collection ${name} is not in ${location}`, {
      hint: list.length > 0 ? `Known collections: ${list.join(', ')}` : 'The backup holds no collections',
    });
  }
  if (roots.length > 1) {
    throw new GravityError('USAGE', `Collection ${collection} exists in several databases (${roots.map((s) => s.ns.db).join(', ')})`, {
      hint: `Name it as db.collection, e.g. --collection ${roots[0]!.ns.db}.${collection}`,
    });
  }
  return roots[0]!.ns.db;
}

