import {createReadStream} from 'node:fs';
import {mkdir, open, readdir} from 'node:fs/promises';
import type {FileHandle} from 'node:fs/promises';
import path from 'node:path';

import type {RestoreSet} from './manifest.js';

export const JOURNAL_DIR = 'journal';

/**
 * Write-ahead journal of a push or rollback: `journal/<target>-<time>.jsonl`, one record a line,
 * fsync'd before the write it announces. Ids are canonical Extended JSON of `_id` (lossless:
 * Int32, Int64 and Double stay distinct); documents are canonical Extended JSON too.
 */
export interface JournalBegin {
  type: 'begin';
  op: 'push' | 'rollback';
  target: string;
  targetLabel: string;
  setHash: string;
  planHash?: string;
  onConflict?: 'skip' | 'overwrite' | 'fail';
  /** Push: documents without an exact form were written re-encoded (--inexact write). */
  inexact?: 'fail' | 'skip' | 'write';
  bypassDocumentValidation?: boolean;
  /** Push with --fields: only these paths were written on existing documents. */
  fields?: string[];
  whereTarget?: string;
  /** For a rollback: the push journals (relative paths) it undoes. */
  rollsBack?: string[];
  time: string;
}
export interface JournalResume { type: 'resume'; time: string; planHash?: string }
/** `creating` is written before createCollection, `created` once its indexes exist: a resume finishes the indexes. */
export interface JournalCreated { type: 'creating' | 'created'; collection: string; db: string; indexes: string[] }
/** Announced before a batch is written: everything needed to undo it if the process dies mid-batch. */
export interface JournalIntent {
  type: 'intent';
  collection: string;
  db: string;
  batch: number;
  /** Push: ids about to be inserted. Rollback: ids about to be deleted. */
  insert?: string[];
  /** Push: base64 sha256 of the bytes about to be inserted, one per `insert` id (rollback recognises them by it). */
  insertSha256?: string[];
  /**
   * Push: documents about to be replaced, with their pre-image as canonical Extended JSON (for
   * people) and as base64 BSON (for rollback: exact even where Extended JSON is not, e.g. a
   * subtype-4 binary that is not 16 bytes).
   */
  overwrite?: Array<{id: string; pre: string; preBson: string; preSha256: string; writtenSha256: string}>;
  /** Rollback: ids about to be deleted / restored. */
  delete?: string[];
  restore?: string[];
  /**
   * Push with --fields: documents whose fields are about to be written, with the fields' values
   * before (base64 BSON of {v: value}, null where absent) and digests of the fields before and after.
   */
  repair?: Array<{id: string; pre: Record<string, string | null>; preSha256: string; writtenSha256: string}>;
}
export interface JournalDone {
  type: 'inserted' | 'overwritten' | 'repaired' | 'deleted' | 'restored';
  collection: string;
  db: string;
  batch: number;
  ids: string[];
}
/**
 * Documents not written: `conflict` (changed on the target since the backup: the user's choice to
 * keep the target's), `refused` (the server refused, or stored other bytes: a failure), `excluded`
 * (left out on purpose by a flag), `skipped` (rollback: left as is).
 */
export interface JournalSkipped {
  type: 'conflict' | 'skipped' | 'refused' | 'excluded';
  collection: string;
  db: string;
  ids: string[];
  reason: string;
  code?: number;
  codeName?: string;
}
/**
 * Written, but what the target holds is not the set's bytes: re-encoded on purpose (--inexact write)
 * or changed by the server. The sha256 of what the target holds lets verify and rollback recognise it.
 */
export interface JournalStored {
  type: 'stored';
  collection: string;
  db: string;
  batch: number;
  items: Array<{id: string; sha256: string}>;
  reason: string;
  /** `inexact`: re-encoded on purpose (--inexact write), verify accepts it; `mismatch`: the server stored other bytes, a failure. */
  kind?: 'inexact' | 'mismatch';
}
export interface JournalEnd {
  type: 'end';
  outcome: 'ok' | 'partial' | 'failed';
  counts: Record<string, unknown>;
  time: string;
}
export interface JournalInterrupted { type: 'interrupted'; reason: string; time: string }

export type JournalRecord =
  | JournalBegin
  | JournalResume
  | JournalCreated
  | JournalIntent
  | JournalDone
  | JournalSkipped
  | JournalStored
  | JournalEnd
  | JournalInterrupted;

/**
 * A journal as listed: its first record and whether it ended. Its records are read as a stream
 * (`journalRecords`): a journal of a million-document push is a hundred megabytes, never held whole.
 */
export interface JournalFile {
  /** Absolute path. */
  path: string;
  /** Path relative to the set folder, as recorded in the ledger. */
  relPath: string;
  begin: JournalBegin;
  /** Its last record is `end`: the operation ran to completion (successfully or not). */
  finished: boolean;
  /** The `end` record, when finished. */
  end?: JournalEnd;
}

export class JournalWriter {
  private constructor(
    readonly path: string,
    readonly relPath: string,
    private readonly handle: FileHandle,
  ) {}

  /** Start a new journal for `begin.target`; the file name carries the start time. */
  static async create(set: RestoreSet, begin: JournalBegin): Promise<JournalWriter> {
    const dir = path.join(set.dir, JOURNAL_DIR);
    await mkdir(dir, {recursive: true, mode: 0o700});
    const stamp = begin.time.replace(/[:.]/g, '-');
    for (let n = 0; ; n++) {
      const name = `${begin.target}-${stamp}${n ? `-${n}` : ''}.jsonl`;
      const file = path.join(dir, name);
      let handle: FileHandle;
      try {
        handle = await open(file, 'wx', 0o600);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EEXIST' && n < 100) continue;
        throw error;
      }
      const writer = new JournalWriter(file, path.join(JOURNAL_DIR, name), handle);
      await writer.append(begin);
      return writer;
    }
  }

  /** Reopen an unfinished journal to continue it. */
  static async reopen(journal: JournalFile): Promise<JournalWriter> {
    const handle = await open(journal.path, 'a+', 0o600);
    // A crash mid-line leaves a torn last record; end that line so the next record stays readable.
    const {size} = await handle.stat();
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) await handle.write('\n');
    }
    return new JournalWriter(journal.path, journal.relPath, handle);
  }

  private tail: Promise<void> = Promise.resolve();

  /**
   * Append and fsync: when this resolves the record survives a crash. Appends from concurrent
   * writers are queued, so records never interleave and each is whole on its own line.
   */
  append(record: JournalRecord): Promise<void> {
    const line = `${JSON.stringify(record)}\n`;
    const next = this.tail.then(async () => {
      await this.handle.write(line);
      await this.handle.sync();
    });
    // A failed append fails its caller; the queue goes on for the others.
    this.tail = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.tail;
    await this.handle.close();
  }
}

/**
 * The records of a journal, one at a time, in the order written. A torn line (a crash mid-write)
 * is passed over: the records around it are intact.
 */
export async function* journalRecords(journal: Pick<JournalFile, 'path'>): AsyncGenerator<JournalRecord> {
  // Chunks are pulled one at a time (a readline interface would run ahead of a slow consumer and
  // queue the whole file's lines): memory holds one chunk and the records not yet consumed.
  let rest = '';
  for await (const chunk of createReadStream(journal.path, {encoding: 'utf8', highWaterMark: 1 << 20})) {
    const lines = (rest + (chunk as string)).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      const record = parseRecord(line);
      if (record) yield record;
    }
  }
  const record = parseRecord(rest);
  if (record) yield record;
}

function parseRecord(line: string): JournalRecord | null {
  if (!line.trim()) return null;
  try {
    return JSON.parse(line) as JournalRecord;
  } catch {
    return null;
  }
}

/** Every record of a journal in memory: for small journals and tests; the target steps stream. */
export async function allRecords(journal: Pick<JournalFile, 'path'>): Promise<JournalRecord[]> {
  const out: JournalRecord[] = [];
  for await (const r of journalRecords(journal)) out.push(r);
  return out;
}

/** The first line of a file, read a block at a time up to its newline. */
async function firstLine(handle: FileHandle): Promise<string> {
  const chunks: Buffer[] = [];
  for (let position = 0; ; ) {
    const block = Buffer.alloc(64 * 1024);
    const {bytesRead} = await handle.read(block, 0, block.length, position);
    if (bytesRead === 0) break;
    const newline = block.subarray(0, bytesRead).indexOf(0x0a);
    if (newline >= 0) {
      chunks.push(block.subarray(0, newline));
      break;
    }
    chunks.push(block.subarray(0, bytesRead));
    position += bytesRead;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The last whole record of a file: read from its end, a growing block at a time. */
async function lastRecord(handle: FileHandle, size: number): Promise<JournalRecord | null> {
  for (let span = 64 * 1024; ; span *= 4) {
    const start = Math.max(0, size - span);
    const block = Buffer.alloc(size - start);
    await handle.read(block, 0, block.length, start);
    const lines = block.toString('utf8').split('\n');
    // The first line of a block that does not start the file may be cut: never trusted.
    for (let i = lines.length - 1; i >= (start === 0 ? 0 : 1); i--) {
      // A torn last line does not parse: the record before it is the last whole one.
      const record = parseRecord(lines[i]!);
      if (record) return record;
    }
    if (start === 0) return null;
  }
}

export async function readJournal(set: RestoreSet, file: string): Promise<JournalFile | null> {
  const abs = path.isAbsolute(file) ? file : path.join(set.dir, file);
  const handle = await open(abs, 'r');
  try {
    let begin: JournalRecord;
    try {
      begin = JSON.parse(await firstLine(handle)) as JournalRecord;
    } catch {
      return null;
    }
    if (!begin || begin.type !== 'begin') return null;
    const last = await lastRecord(handle, (await handle.stat()).size);
    return {
      path: abs,
      relPath: path.relative(set.dir, abs),
      begin,
      finished: last?.type === 'end',
      ...(last?.type === 'end' ? {end: last} : {}),
    };
  } finally {
    await handle.close();
  }
}

/** Journals of one target (or all), oldest first. Files that are not journals are ignored. */
export async function listJournals(set: RestoreSet, target?: string): Promise<JournalFile[]> {
  const dir = path.join(set.dir, JOURNAL_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const out: JournalFile[] = [];
  for (const name of names.filter((n) => n.endsWith('.jsonl')).sort()) {
    const journal = await readJournal(set, path.join(dir, name));
    if (!journal) continue;
    if (target !== undefined && journal.begin.target !== target) continue;
    out.push(journal);
  }
  return out.sort((a, b) => (a.begin.time < b.begin.time ? -1 : a.begin.time > b.begin.time ? 1 : a.relPath.localeCompare(b.relPath)));
}
