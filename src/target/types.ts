import type {MongoClient} from 'mongodb';

export type TargetName = 'staging' | 'production' | 'adhoc';

/** A resolved target: the command layer turns `--to` into this. */
export interface TargetSpec {
  name: TargetName;
  uri: string;
  /** Database from the URI path; null → each collection goes to its source database. */
  db: string | null;
  /** Masked for display, e.g. `staging (mongodb://u:****@h:27017/gravity)`. */
  label: string;
}

export interface TargetConnection {
  spec: TargetSpec;
  client: MongoClient;
  /** The database a collection of the set goes to on this target. */
  dbName(sourceDb: string): string;
  close(): Promise<void>;
}

export type Classification = 'insert' | 'same' | 'conflict' | 'keyMatch' | 'clash';

export interface ClassCounts {
  insert: number;
  same: number;
  conflict: number;
  keyMatch: number;
  /** Absent by `_id`, but a unique index of the target holds its key under another `_id`: the server would refuse it. */
  clash: number;
  /** Of the documents that would be written (insert, conflict), those that cannot be written byte for byte. */
  notExact: number;
  /** --fields: present on the target with other values in those fields: the fields are written. */
  repair?: number;
  /** --fields --where-target: present, but the target version no longer matches the condition: left alone. */
  skipped?: number;
}

/** Ids per class, as canonical Extended JSON of `_id` (field order kept), in backup order. */
export interface ClassIds {
  insert: string[];
  same: string[];
  conflict: string[];
  keyMatch: string[];
  clash: string[];
  repair?: string[];
  skipped?: string[];
}

/**
 * The ids a plan keeps by name: the documents that need a person's attention or a digest
 * (conflicts, key matches, clashes, repairs). Inserts and documents already the same are only in
 * the plan's class codes, one byte a document: a plan of millions of inserts stays small.
 */
export type PlanIds = Omit<ClassIds, 'insert' | 'same'>;

/** One byte per document of a collection, in the set's order: its class in the plan. */
export const CLASS_CODE = {insert: 0x69, same: 0x73, conflict: 0x63, keyMatch: 0x6b, clash: 0x78, repair: 0x72, skipped: 0x2d} as const;

/** A document whose fields would be repaired, or that --where-target leaves alone, with the values side by side. */
export interface RepairSample {
  collection: string;
  _id: unknown;
  fields: FieldDiff[];
}

/** A document whose unique key another document of the target holds. */
export interface ClashSample {
  collection: string;
  _id: unknown;
  /** The unique index, and the key it holds. */
  index: string;
  key: Record<string, unknown>;
  /** `_id` of the target document that holds it (canonical Extended JSON). */
  targetId: unknown;
}

/** What the target enforces on a collection, read before planning. */
export interface TargetChecks {
  exists: boolean;
  uniqueIndexes: string[];
  /** The collection has a validator; documents it rejects are refused at push (code 121). */
  validator: boolean;
  validationLevel?: string;
  validationAction?: string;
  /** Default collation of the collection, when it has one (string equality in filters follows it). */
  collation?: unknown;
}

export interface FieldDiff {
  /** Dotted path; `(field order)` when only the order of fields differs. */
  path: string;
  /** Canonical Extended JSON value in the backup; absent when the field is missing there. */
  backup?: unknown;
  /** Canonical Extended JSON value on the target; absent when the field is missing there. */
  target?: unknown;
}

export interface ConflictSample {
  collection: string;
  /** Canonical Extended JSON of `_id`. */
  _id: unknown;
  fields: FieldDiff[];
}

export interface KeyMatchSample {
  collection: string;
  _id: unknown;
  /** `_id` of the target document holding the same natural key. */
  targetId: unknown;
  key: Record<string, unknown>;
}

export interface Plan {
  formatVersion: 2;
  /** Masked target label. */
  target: string;
  targetName: TargetName;
  /** Target database from the URI, or null (source databases). */
  db: string | null;
  /** sha256 of the canonical JSON of {target, setHash, ids, classes, conflictDigests} (and the repair fields). */
  hash: string;
  setHash: string;
  createdAt: string;
  matchOn: string[];
  collections: Record<string, ClassCounts>;
  /** Where each collection goes: the database and collection on the target. */
  namespaces: Record<string, {db: string; collection: string}>;
  conflicts: ConflictSample[];
  keyMatches: KeyMatchSample[];
  /** Every clash, by collection and id: the index and the holder, for push to report. */
  clashes: Record<string, Record<string, {index: string; targetId: string; key: Record<string, unknown>}>>;
  /** Every document to be written whose exact form does not give back its bytes, with why. */
  notExact: Record<string, Record<string, string>>;
  targetChecks: Record<string, TargetChecks>;
  /** --fields: the field paths compared and written on documents that exist; null for whole documents. */
  fields?: string[] | null;
  /** --where-target: the condition on the target's current version (canonical Extended JSON). */
  whereTarget?: string | null;
  /** --fields: digest of each repair's target fields as the plan saw them (compare-and-swap). */
  repairDigests?: Record<string, Record<string, string>>;
  repairs?: RepairSample[];
  skippedSamples?: RepairSample[];
  ids: Record<string, PlanIds>;
  /**
   * Per collection, base64 of one class code (CLASS_CODE) per set document in the set's order:
   * push reads it in step with the set's documents.
   */
  classes: Record<string, string>;
  /**
   * In memory only (never saved): per collection, one byte per set document, 1 where the plan found
   * that the document's plain decode serialises back to its bytes. The push that made the plan
   * decodes those without serialising them a second time (each write is still read back).
   */
  plainExact?: Record<string, Uint8Array>;
  /** sha256 of the target's raw BSON for each conflicting id: what the plan saw, for compare-and-swap. */
  conflictDigests: Record<string, Record<string, string>>;
}

export interface PushCounts {
  inserted: number;
  overwritten: number;
  skipped: number;
  /** Changed on the target since the backup (or since the plan), left as the target has them. */
  conflicts: number;
  /** Not restored: the server refused them (unique key, validator, size, …) or stored other bytes. */
  refused: number;
  /** Left out on purpose (--skip-clashes, --inexact skip, --where-target). */
  excluded: number;
  /** --fields: documents whose fields were written. */
  repaired?: number;
}

export interface RefusedDetail {
  collection: string;
  _id: unknown;
  reason: string;
  code?: number;
  codeName?: string;
}

export interface PushResult {
  target: string;
  planHash: string;
  collections: Record<string, PushCounts>;
  /** Journal path (absolute). */
  journal: string;
  resumed: boolean;
  /** Ids reported as conflicts at push time, with why. */
  conflictDetails: Array<{collection: string; _id: unknown; reason: string}>;
  /** Documents not restored, with the server's reason (up to 100). */
  refusedDetails: RefusedDetail[];
  /** True when every document meant to be written is on the target as promised. */
  complete: boolean;
}

export interface VerifyCounts {
  present: number;
  missing: number;
  different: number;
  skippedConflicts: number;
  /** Left out of the push on purpose (--skip-clashes, --inexact skip): not failures. */
  excluded: number;
}

export interface VerifyResult {
  target: string;
  ok: boolean;
  collections: Record<string, VerifyCounts>;
  /** Up to 20 ids per problem, canonical Extended JSON. */
  problems: Array<{collection: string; _id: unknown; problem: 'missing' | 'different'}>;
  /** Set when only these fields were checked (after a --fields push). */
  fields?: string[];
  /** --where-target (canonical Extended JSON): differing documents that no longer match it were counted excluded. */
  whereTarget?: string;
}

export interface RollbackCounts {
  deleted: number;
  restored: number;
  /** Left as they are (changed after the push, …): a later rollback tries them again. */
  skipped: number;
  /** Already as before the push (an inserted document someone deleted since): nothing to undo. */
  alreadyUndone: number;
}

export interface RollbackResult {
  target: string;
  collections: Record<string, RollbackCounts>;
  skippedDetails: Array<{collection: string; _id: unknown; reason: string}>;
  /** Push journals undone (relative to the set) and this rollback's own journal (absolute). */
  rolledBack: string[];
  journal: string;
}

export type ProgressCallback = (p: {collection: string; done: number; total: number}) => void;
