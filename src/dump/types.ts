import type {Readable} from 'node:stream';

export interface NamespaceRef {
  db: string;
  collection: string;
}

/** From <coll>.metadata.json or an archive prelude. */
export interface CollectionMetadata {
  /** The truth (file names may be escaped/hashed). */
  collectionName: string;
  /** 'collection' | 'view' | 'timeseries' …; inferred from the options when the dump has none. */
  type?: string;
  /** As parsed by bson EJSON.parse (relaxed: false). */
  options: Record<string, unknown>;
  indexes: Array<Record<string, unknown>>;
  uuid?: string;
}

export type DumpEvent =
  /** raw = JSON text exactly as in the backup (decompressed). */
  | {type: 'metadata'; db: string; collection: string; metadata: CollectionMetadata; raw: string}
  /**
   * A batch of documents, in backup order; each Buffer is one whole BSON document. `bytes` counts
   * every document the batch covers; with a screen (ReadOptions.screen), `docs` holds only those it
   * kept and `scanned` says how many it was asked about (the batch may then hold none).
   */
  | {type: 'documents'; db: string; collection: string; docs: Buffer[]; bytes: number; scanned?: number}
  /** This namespace's data is complete (emitted only for wanted namespaces). */
  | {type: 'end'; db: string; collection: string; documents: number; bytes: number}
  /**
   * oplog.bson recognised, not a collection: its count once it is read. With ReadOptions.oplogEntries,
   * batches of its documents come first, each an 'oplog' event with `entries` (the documents, in file
   * order) and `where` (the file, for messages), `documents`/`bytes` counting so far.
   */
  | {type: 'oplog'; documents: number; bytes: number; entries?: Buffer[]; where?: string};

/** A file reachable as a stream (an S3 object, say). `name` is its path/key, used for layout (db/coll) and format guess. */
export interface DumpStreamSource {
  name: string;
  size?: number;
  /** A local file's path, when the source is one (its inflate may have been started ahead: `offerFileInflate`). */
  file?: string;
  /** May be called more than once (a second pass over a tar); each call opens a fresh stream. */
  open(): Promise<NodeJS.ReadableStream | Readable>;
}

/** A local path (folder or file), one stream source, or several (a virtual folder: names are relative paths). */
export type DumpInput = string | DumpStreamSource | DumpStreamSource[];

export interface ReadOptions {
  /** false: skip this namespace's documents cheaply; metadata events still emitted. The oplog is asked as {db: '', collection: 'oplog'}. */
  want?: (ns: NamespaceRef) => boolean;
  /** Bytes of the INPUT consumed (compressed), at most ~10 calls a second plus a last one. */
  onProgress?: (p: {bytesRead: number; totalBytes?: number}) => void;
  signal?: AbortSignal;
  /** How many wanted .bson.gz files of a folder to inflate at once; default: by the cores there are (2 to 4). */
  parallel?: number;
  /**
   * Which documents of a wanted namespace to hand on (null: all). In a folder, a tar or a single
   * file it is asked about each document where it lies in the chunk, before any subarray is made
   * for it, so a document it drops costs no allocation (an archive's documents are cut out first,
   * its headers being documents too). The oplog is never screened.
   */
  screen?: (ns: NamespaceRef) => DocumentScreen | null;
  /**
   * Which documents of a wanted namespace are checked for structure (dump/validate.ts) before they
   * are handed on: 'kept' (default: every document that leaves the reader), or 'all' (those a
   * screen drops too, as inspect does), or 'none' (a file this program wrote from checked
   * documents: a spool read back).
   */
  check?: 'kept' | 'all' | 'none';
  /** Hand on the oplog's documents (as 'oplog' events with `entries`), not only its count. Off: the oplog is only counted. */
  oplogEntries?: boolean;
}

/** Whether to keep the document at [start, end) of `buffer` (bytes that do not change while it is asked). */
export type DocumentScreen = (buffer: Buffer, start: number, end: number) => boolean;

export type {DumpFormat} from './detect.js';
