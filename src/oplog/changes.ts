/**
 * `changes`: what the oplog says happened in [since, until), per collection — operations by kind
 * (those inside transactions and applyOps batches counted one by one, at their commit), the deleted
 * `_id`s, and per field path how often an update set it, unset it or set it to null. Chunk
 * migrations' writes (`fromMigrate`) are internal and not counted (OPLOG.md §1).
 *
 * Only updates contribute field paths: a replacement or an insert names every field it holds, and
 * without the document's previous state (which `changes` does not keep) that says nothing about
 * what changed.
 */
import {GravityError} from '../errors.js';
import {idOf, idToJson} from '../target/bson-util.js';
import {OplogDecoder} from './decode.js';
import {fieldChanges} from './field-changes.js';
import {collectionFilter, collectionOf} from './namespaces.js';
import {compareOpTime} from './optime.js';
import {makeDocument, makeElement} from './raw.js';
import {assertCovers, CombinedOplog} from './sources/combined.js';
import {DumpOplogSource} from './sources/dump.js';
import {opTimeToIso, skippable} from './sources/entry.js';
import {OplogFileSet} from './sources/files.js';
import type {DocumentOperation, OplogSource, OpTime} from './types.js';

const DELETED_IDS = 1000;
const NOTHING = (): boolean => false;
const EXAMPLES = 5;

export interface FieldCounts {
  set: number;
  unset: number;
  nulled: number;
  /** `_id`s of the first documents changed there (canonical Extended JSON). */
  examples: unknown[];
}

export interface CollectionChanges {
  namespace: string;
  inserted: number;
  updated: number;
  replaced: number;
  deleted: number;
  /** The first 1000 deleted `_id`s, canonical Extended JSON. */
  deletedIds: unknown[];
  /** Of all the above, operations inside transactions. */
  inTransactions: number;
  fields: Record<string, FieldCounts>;
  /** drop, rename, dropDatabase, create… of the collection. */
  commands: Record<string, number>;
}

export interface ChangesResult {
  since: OpTime;
  until: OpTime | null;
  sinceTime: string;
  untilTime: string | null;
  sources: string[];
  /** The last entry the sources hold: with no --until, the window ends there. */
  oplogTo: OpTime | null;
  entries: number;
  collections: Record<string, CollectionChanges>;
  /** What the window cannot show (a live oplog read from --since: a transaction committed in it whose operations came before it). */
  warnings: string[];
}

export interface ChangesOptions {
  since: OpTime;
  until: OpTime | null;
  collections: string[];
  signal?: AbortSignal;
  onProgress?: (p: {phase: 'coverage' | 'read'; entries: number}) => void;
}

/** The document's `_id` as canonical Extended JSON (an object, ready for the JSON result). */
export function idJson(op: DocumentOperation): unknown {
  return JSON.parse(idToJson(idOf(makeDocument([makeElement(op.id.type, '_id', op.id.bytes)]))));
}

function empty(namespace: string): CollectionChanges {
  return {namespace, inserted: 0, updated: 0, replaced: 0, deleted: 0, deletedIds: [], inTransactions: 0, fields: {}, commands: {}};
}

export async function runChanges(sources: OplogSource[], options: ChangesOptions): Promise<ChangesResult> {
  const {since, until} = options;
  if (until !== null && until.t * 2 ** 32 + until.i <= since.t * 2 ** 32 + since.i) {
    throw new GravityError('USAGE', `--until (${opTimeToIso(until)}) is not after --since (${opTimeToIso(since)})`, {hint: 'Give a window that ends after it starts'});
  }
  const oplog = new CombinedOplog(sources);
  // Oplog files are read whole to learn what they cover: one whole read serves both, the window
  // picked out of it, and coverage is judged after (nothing is kept if it fails). A live oplog says
  // what it covers at once, and is then read only for the window.
  const onePass = sources.every((s) => s instanceof OplogFileSet || s instanceof DumpOplogSource);
  const what = `what happened from ${opTimeToIso(since)}`;
  if (!onePass) {
    const coverage = await oplog.coverage(options.signal, (_s, p) => options.onProgress?.({phase: 'coverage', entries: p.entries}));
    assertCovers(coverage, since, until, what);
  }
  const filter = collectionFilter(options.collections);
  const decoder = new OplogDecoder({namespaces: filter.matters});
  const byNs = new Map<string, CollectionChanges>();
  const of = (ns: string): CollectionChanges => {
    let c = byNs.get(ns);
    if (!c) byNs.set(ns, (c = empty(ns)));
    return c;
  };
  let entries = 0;
  const read = oplog.batches(onePass
    ? {...(options.signal ? {signal: options.signal} : {})}
    : {since, ...(until ? {until} : {}), namespaces: filter.serverHint, ...(options.signal ? {signal: options.signal} : {})});
  for await (const batch of read) {
    for (const entry of batch) {
      if (onePass && until !== null && compareOpTime(entry.ts, until) >= 0) continue;
      // Before the window only commands are decoded, their operations dropped: a transaction that
      // began before --since and commits inside the window is then counted whole.
      const before = onePass && compareOpTime(entry.ts, since) < 0;
      if (skippable(entry.raw, before ? NOTHING : filter.matters)) continue;
      const ops = decoder.decode(entry);
      if (before) continue;
      for (const op of ops) {
        if (op.fromMigrate || !filter.matters(op.ns)) continue;
        const c = of(op.ns);
        if (op.kind === 'insert' || op.kind === 'update' || op.kind === 'replace' || op.kind === 'delete') {
          if (op.transaction) c.inTransactions++;
          if (op.kind === 'insert') c.inserted++;
          else if (op.kind === 'replace') c.replaced++;
          else if (op.kind === 'delete') {
            c.deleted++;
            if (c.deletedIds.length < DELETED_IDS) c.deletedIds.push(idJson(op));
          } else {
            c.updated++;
            const changed = fieldChanges(op, null);
            const nulled = new Set(changed.nulled);
            const count = (path: string, kind: 'set' | 'unset') => {
              const f = (c.fields[path] ??= {set: 0, unset: 0, nulled: 0, examples: []});
              f[kind]++;
              if (kind === 'set' && nulled.has(path)) f.nulled++;
              if (f.examples.length < EXAMPLES) f.examples.push(idJson(op));
            };
            for (const path of changed.set) count(path, 'set');
            for (const path of changed.unset) count(path, 'unset');
          }
        } else {
          c.commands[op.kind] = (c.commands[op.kind] ?? 0) + 1;
        }
      }
    }
    entries += batch.length;
    options.onProgress?.({phase: 'read', entries});
  }
  decoder.finish();
  const coverage = await oplog.coverage(options.signal);
  if (onePass) assertCovers(coverage, since, until, what);
  const warnings = decoder.stats.commitsWithoutOperations.map((ts) =>
    `a transaction committed at ${opTimeToIso(ts)} began before --since; its operations are not counted (start the window earlier to see them)`);
  const collections: Record<string, CollectionChanges> = {};
  const names = [...byNs.keys()].sort();
  const bare = names.map(collectionOf);
  for (const ns of names) {
    // Keyed by collection name, as the other commands' results are; by `db.coll` where two databases share one.
    const key = bare.filter((b) => b === collectionOf(ns)).length > 1 ? ns : collectionOf(ns);
    collections[key] = byNs.get(ns)!;
  }
  return {
    since,
    until,
    sinceTime: opTimeToIso(since),
    untilTime: until ? opTimeToIso(until) : null,
    sources: sources.map((s) => s.label),
    oplogTo: coverage.to,
    entries,
    collections,
    warnings,
  };
}
