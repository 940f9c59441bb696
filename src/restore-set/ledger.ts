import {open, readFile} from 'node:fs/promises';
import path from 'node:path';

import type {RestoreSet} from './manifest.js';

export const LEDGER_FILE = 'ledger.jsonl';

export type LedgerAction = 'extract' | 'plan' | 'push' | 'verify' | 'rollback' | 'override';
export type LedgerOutcome = 'ok' | 'failed' | 'partial' | 'refused';

/** One line of `ledger.jsonl`: what was done to which target with which set, and how it ended. */
export interface LedgerEntry {
  time: string;
  action: LedgerAction;
  /** Target name: 'staging' | 'production' | 'adhoc' (or 'local' for extract). */
  target: string;
  /** Masked label, never a connection string with a password. */
  targetLabel: string;
  setHash: string;
  planHash?: string;
  counts?: Record<string, unknown>;
  outcome: LedgerOutcome;
  reason?: string;
  /** The push wrote past the target's validator (--bypass-document-validation). */
  bypassDocumentValidation?: boolean;
  /** Journal path relative to the set folder. */
  journal?: string;
  /**
   * How a push wrote (push lines only): what the production gate compares with the staging
   * rehearsal. Lines written before it was recorded mean the default mode.
   */
  mode?: PushMode;
  durationMs?: number;
}

/** The settings that change what a push writes, in canonical form (sorted lists, canonical Extended JSON). */
export interface PushMode {
  /** --fields, sorted; null: whole documents. */
  fields: string[] | null;
  /** --where-target as canonical Extended JSON (only with --fields); null: none. */
  whereTarget: string | null;
  onConflict: 'skip' | 'overwrite' | 'fail';
  inexact: 'fail' | 'skip' | 'write';
  skipClashes: boolean;
  bypassDocumentValidation: boolean;
  /** --match-on, sorted; empty: none. */
  matchOn: string[];
}

export function ledgerPath(set: RestoreSet): string {
  return path.join(set.dir, LEDGER_FILE);
}

/** Append one entry and fsync, so a gate decision never rests on a line the disk lost. */
export async function appendLedger(set: RestoreSet, entry: LedgerEntry): Promise<void> {
  const handle = await open(ledgerPath(set), 'a', 0o600);
  try {
    await handle.write(`${JSON.stringify(entry)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * All entries, oldest first. A line that does not parse (a write torn by a crash, always the
 * last one) is dropped rather than failing every later command on the set.
 */
export async function readLedger(set: RestoreSet): Promise<LedgerEntry[]> {
  let text: string;
  try {
    text = await readFile(ledgerPath(set), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return parseJsonLines<LedgerEntry>(text).filter((e) => typeof e.action === 'string' && typeof e.time === 'string');
}

/** Parse JSON lines, skipping blank and unparsable ones (torn writes). */
export function parseJsonLines<T>(text: string): T[] {
  const out: T[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      // A torn trailing line from a crash mid-write: the entries before it are intact.
    }
  }
  return out;
}
