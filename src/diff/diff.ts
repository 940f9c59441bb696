/**
 * `diff FROM AGAINST`: what happened between a backup and a later backup or the live database.
 * Stages: resolve both sides → index AGAINST (a backup: read once, `_id` table) → read FROM once,
 * every document through the compare stage (src/extract/compare.ts, the same code
 * `extract --missing-in/--changed-in` uses) → counts and field summaries per collection.
 */
import type {Document} from 'bson';

import {describeChoice, type BackupChoice} from '../catalog/list.js';
import type {Settings} from '../config/settings.js';
import {readDump} from '../dump/read.js';
import {GravityError} from '../errors.js';
import type {CollectionComparer, FieldSummary} from '../extract/compare.js';
import {splitNamespace} from '../extract/read.js';
import {resolveInput} from '../extract/source.js';
import {compileQuery} from '../query/compile.js';
import {configureMatchGuard, matchTimeoutFromEnv} from '../query/guard.js';
import {parseQuery} from '../query/parse.js';
import {isTargetName, openAgainst} from './against.js';

export interface DiffRequest {
  from: string;
  against: string;
  /** `coll` or `db.coll`; empty: every collection of FROM. */
  collections: string[];
  query?: string;
  /** For a target: scan it for documents FROM lacks. */
  added: boolean;
  workDir?: string;
}

export interface CollectionDiff {
  missing: number;
  changed: number;
  same: number;
  added: number | null;
  fields: Record<string, FieldSummary>;
}

export interface DiffResult {
  from: string;
  against: string;
  collections: Record<string, CollectionDiff>;
  /** FROM documents compared and their bytes, and how long it took. */
  compared: {documents: number; bytes: number; ms: number};
  /** How to name AGAINST in a follow-up `extract --missing-in` (a URI is not repeated: it may hold a password). */
  againstArg: string;
  /** Times given in place of backup ids, and the backups they selected. */
  chosen: Array<BackupChoice & {for: 'from' | 'against'}>;
}

export interface DiffProgress {
  phase: 'against' | 'from';
  documents: number;
  bytes: number;
  mbPerSecond: number;
}

export interface DiffHooks {
  signal?: AbortSignal;
  onProgress?: (p: DiffProgress) => void;
  onNote?: (message: string) => void;
  /** A time given in place of a backup id selected this backup (said even under --json). */
  onChoice?: (message: string) => void;
}

const isSystem = (collection: string) => collection.startsWith('system.');

export async function runDiff(request: DiffRequest, settings: Settings, hooks: DiffHooks = {}): Promise<DiffResult> {
  const started = Date.now();
  const filter: Document | undefined = request.query ? parseQuery(request.query) : undefined;
  // Regexes of --query run on a worker this thread can end: GRAVITY_RESTORE_MATCH_TIMEOUT, Ctrl-C (query/guard.ts).
  configureMatchGuard({timeoutMs: matchTimeoutFromEnv(), label: 'the diff --query'});
  const wanted = request.collections.map((c) => splitNamespace(c));
  const isWanted = (db: string, collection: string) =>
    wanted.length === 0 ? !isSystem(collection) : wanted.some(([d, c]) => c === collection && (d === null || d === db));
  const from = await resolveInput(request.from, settings);
  const chosen: DiffResult['chosen'] = [];
  const choose = (role: 'from' | 'against', choice: BackupChoice) => {
    chosen.push({...choice, for: role});
    (hooks.onChoice ?? hooks.onNote)?.(`${role === 'from' ? 'FROM' : 'AGAINST'}: ${describeChoice(choice)}`);
  };
  if (from.choice) choose('from', from.choice);
  const rate = (bytes: number, since: number) => bytes / 1e6 / Math.max((Date.now() - since) / 1000, 0.001);
  const againstStarted = Date.now();
  const against = await openAgainst(request.against, settings, {
    want: isWanted,
    ...(filter ? {filter} : {}),
    ...(request.workDir ? {workDir: request.workDir} : {}),
    ...(hooks.signal ? {signal: hooks.signal} : {}),
    ...(hooks.onNote ? {onNote: hooks.onNote} : {}),
    onChoice: (choice) => choose('against', choice),
    onProgress: (p) => hooks.onProgress?.({phase: 'against', documents: p.documents, bytes: p.bytes, mbPerSecond: rate(p.bytes, againstStarted)}),
  });
  try {
    hooks.onNote?.(`Reading ${from.location} (FROM)`);
    const comparers = new Map<string, {db: string; collection: string; comparer: CollectionComparer}>();
    const seen = new Set<string>();
    const comparerFor = async (db: string, collection: string) => {
      const name = `${db}.${collection}`;
      let entry = comparers.get(name);
      if (!entry) {
        const scanTarget = isTargetName(request.against) && request.added;
        const compiled = filter && isTargetName(request.against) && !scanTarget ? compileQuery(filter) : null;
        const comparer = await against.comparer(db, collection, {
          fields: true,
          added: !isTargetName(request.against) || request.added,
          ...(filter ? {filter} : {}),
          // Against a target, documents outside the query need no lookup unless --added must know every FROM _id.
          ...(compiled ? {only: (doc: Buffer) => compiled.matches(doc)} : {}),
        });
        entry = {db, collection, comparer};
        comparers.set(name, entry);
      }
      return entry.comparer;
    };
    const fromStarted = Date.now();
    let documents = 0;
    let bytes = 0;
    let last = 0;
    for await (const event of readDump(from.input, {
      ...(hooks.signal ? {signal: hooks.signal} : {}),
      want: (ns) => {
        seen.add(`${ns.db}.${ns.collection}`);
        return isWanted(ns.db, ns.collection);
      },
    })) {
      if (event.type === 'oplog' || event.type === 'metadata') continue;
      seen.add(`${event.db}.${event.collection}`);
      if (!isWanted(event.db, event.collection)) continue;
      const comparer = await comparerFor(event.db, event.collection);
      if (event.type !== 'documents') continue;
      await comparer.add(event.docs);
      documents += event.docs.length;
      bytes += event.bytes;
      const now = Date.now();
      if (now - last > 200) {
        last = now;
        hooks.onProgress?.({phase: 'from', documents, bytes, mbPerSecond: rate(bytes, fromStarted)});
      }
    }
    hooks.onProgress?.({phase: 'from', documents, bytes, mbPerSecond: rate(bytes, fromStarted)});
    for (const [d, c] of wanted) {
      if (![...comparers.values()].some((e) => e.collection === c && (d === null || e.db === d))) {
        const list = [...seen].map((n) => n.slice(n.indexOf('.') + 1)).filter((n) => !isSystem(n)).sort();
        throw new GravityError('UNKNOWN_COLLECTION', `Collection ${d ? `${d}.` : ''}${c} is not in ${from.location}`, {
          hint: list.length > 0 ? `It holds: ${[...new Set(list)].join(', ')}` : 'The backup holds no collections',
        });
      }
    }
    const names = [...comparers.values()];
    const ambiguous = (c: string) => names.filter((e) => e.collection === c).length > 1;
    const collections: Record<string, CollectionDiff> = {};
    for (const {db, collection, comparer} of names.sort((a, b) => (a.collection < b.collection ? -1 : a.collection > b.collection ? 1 : 0))) {
      const {statuses: _statuses, ...summary} = await comparer.finish();
      collections[ambiguous(collection) ? `${db}.${collection}` : collection] = summary;
    }
    return {
      from: from.backup ?? from.location,
      against: against.info.label,
      collections,
      compared: {documents, bytes, ms: Date.now() - started},
      againstArg: /^mongodb(\+srv)?:/.test(request.against) ? '<uri>' : request.against,
      chosen,
    };
  } finally {
    configureMatchGuard(null);
    await against.close();
  }
}
