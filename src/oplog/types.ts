/**
 * The oplog's shared vocabulary: what a source yields, what decoding makes of it, what a replay needs.
 *
 * Three layers, one direction of dependency (sources → decode → apply; commands and extract on top):
 *   sources/  (OplogSource)      raw entries in `ts` order, with the ranges they cover and their gaps
 *   decode.ts (decodeOperations) entries flattened into per-document operations in apply order:
 *                                applyOps unwrapped, transactions applied at their commit, aborted
 *                                ones dropped, no-ops and index builds skipped, commands named
 *   apply/    (applyOperation)   one operation applied to one document's exact bytes, as mongod
 *                                applies it (field order included), or a ReplayError
 * The facts each layer relies on are in ../shared/OPLOG.md (cited by section where used).
 */

/** An optime: `t` seconds since the epoch, `i` the counter within the second; compared as unsigned pairs. */
export interface OpTime {
  t: number;
  i: number;
}

/** One oplog document as read, untouched. `ts` is read from it once so ordering never decodes twice. */
export interface RawOplogEntry {
  ts: OpTime;
  raw: Buffer;
}

/** A stretch no entry of the source covers: `from` is the last entry before it, `to` the first after. */
export interface OplogGap {
  from: OpTime;
  to: OpTime;
}

/** What a source covers. `entries` is null when counting would mean reading everything (a live oplog). */
export interface OplogCoverage {
  /** The source as the user named it, secrets masked. */
  source: string;
  from: OpTime | null;
  to: OpTime | null;
  entries: number | null;
  gaps: OplogGap[];
}

export interface OplogReadOptions {
  /** First entry wanted (inclusive). */
  since?: OpTime;
  /** First entry not wanted (exclusive): "state at TIME" applies every entry with ts < TIME. */
  until?: OpTime;
  /**
   * `db.coll` namespaces that matter (null: all). A hint: a live source filters on the server with
   * it (commands and applyOps kept), a file source may ignore it; decoding filters again anyway.
   */
  namespaces?: string[] | null;
  signal?: AbortSignal;
  onProgress?: (p: {entries: number; bytesRead: number; totalBytes?: number}) => void;
}

/** Anything that holds oplog entries: a dump's oplog.bson, dumps of local.oplog.rs, a live oplog, PBM chunks. */
export interface OplogSource {
  /** As the user named it, secrets masked. */
  readonly label: string;
  /** The ranges covered and the gaps inside them (cheap where the format allows: names, first and last entry). */
  coverage(signal?: AbortSignal): Promise<OplogCoverage>;
  /** Entries in `ts` order, each once (duplicates at file boundaries dropped), streaming, constant memory. */
  entries(options?: OplogReadOptions): AsyncIterable<RawOplogEntry>;
}

/** A document's `_id` in a form usable as a map key: the canonical key the rest of the tool uses (bson/ids). */
export type IdKey = string;

/**
 * One write to one document (or one collection), flattened out of whatever entry carried it, in the
 * order mongod applied them. Operations from one applyOps or one transaction share the entry's ts.
 */
export type Operation =
  | DocumentOperation
  | CollectionOperation;

interface OperationBase {
  ts: OpTime;
  /** The outer entry's wall clock (ms), when it has one. */
  wall: Date | null;
  /** `db.coll` (for `dropDatabase`, the database name alone; for `rename`, the namespace renamed from). */
  ns: string;
  /** The collection UUID (`ui`) as hex, when present. */
  ui: string | null;
  /** Part of a committed transaction (or a prepared one, applied at its commit). */
  transaction: boolean;
  /** A chunk migration's write (`fromMigrate`): applied, never shown as something a user did. */
  fromMigrate: boolean;
}

export interface DocumentOperation extends OperationBase {
  kind: 'insert' | 'update' | 'replace' | 'delete';
  /** The document's `_id` as BSON value bytes with its type byte: {type, bytes} of the element. */
  id: {type: number; bytes: Buffer};
  idKey: IdKey;
  /**
   * insert / replace: the whole new document's bytes (for a replace, `_id` included as logged);
   * update: the update description `o` (`$v:1` modifiers or `$v:2` diff) as raw bytes;
   * delete: the delete's `o` (document key).
   */
  o: Buffer;
}

export interface CollectionOperation extends OperationBase {
  kind: 'drop' | 'rename' | 'dropDatabase' | 'create' | 'unsupported';
  /** rename: the namespace the collection now has; `dropTarget` when the rename replaced one. */
  to?: string;
  dropTarget?: boolean;
  /** unsupported: the command's first key (e.g. `importCollection`, `emptycapped`), for the error. */
  command?: string;
}

/** Paths an operation changed, for `changes`, `history` and `--changed-between --fields`. */
export interface FieldChanges {
  set: string[];
  unset: string[];
  /** Of `set`, the paths set to null. */
  nulled: string[];
}
