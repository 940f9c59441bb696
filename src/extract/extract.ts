/**
 * `extract` as a pipeline of named stages:
 *
 *   read (read.ts)        one pass over FROM; dependents FROM lacks read from an older backup
 *   replay (at.ts)        with --at: the collections as they were at TIME, FROM plus the oplog
 *   compare (compare.ts)  with --missing-in/--changed-in: each spooled document's verdict against X
 *   select (select.ts)    the query, then relations, keeping only documents the verdicts allow
 *   write (write.ts)      selected documents copied into the set byte for byte, in backup order
 *   seal (seal.ts)        the manifest written, the set renamed into place
 *
 * Without --follow, a comparison or the mongod engine, read and select fuse: the root collection is
 * filtered as it streams by and matches go straight to the writer (nothing spooled).
 */
import {randomBytes} from 'node:crypto';
import {mkdir, rm} from 'node:fs/promises';
import path from 'node:path';

import {EJSON, type Document} from 'bson';

import {SpaceGuard} from '../dump/disk-space.js';
import type {DumpInput} from '../dump/types.js';
import {DumpFolderWriter} from '../dump/write.js';
import {GravityError} from '../errors.js';
import {compileQuery} from '../query/compile.js';
import type {Manifest, ManifestCollection, ManifestComparison, ManifestSourceObject, Relation} from '../restore-set/manifest.js';
import {replayStage, type PointInTime, type ReplayOutcome} from './at.js';
import type {Against} from './compare.js';
import {CHANGED, MISSING, SAME} from './compare-status.js';
import {readStage, rootDatabase, splitNamespace, stateKey, type NamespaceState} from './read.js';
import {relationClosure, validateRelations} from './relations.js';
import {selectWithRelations} from './select.js';
import type {Keep, Selector} from './selector.js';
import {manifestCollections, prepareOut, seal} from './seal.js';
import {SpoolFile} from './spool.js';
import {StreamSelector} from './stream-selector.js';
import {writeSelected} from './write.js';

export {selectWithRelations} from './select.js';
export {splitNamespace} from './read.js';

export interface ExtractInput {
  input: DumpInput;
  backup: string | null;
  location: string;
  takenAt: string | null;
  objects: ManifestSourceObject[];
}

export interface ExtractProgress {
  phase: 'read' | 'replay' | 'compare' | 'select' | 'write';
  collection?: string;
  scanned: number;
  matched: number;
  bytesRead: number;
  totalBytes?: number;
}

/** Keep documents absent from (`missing`) and/or different in (`changed`) another backup or a target. */
export interface ExtractComparison {
  against: Against;
  missing: boolean;
  changed: boolean;
}

export interface ExtractOptions {
  source: ExtractInput;
  /** `coll` or `db.coll`. */
  collection: string;
  queryText: string;
  filter: Document;
  follow: boolean;
  relations: Relation[];
  out: string;
  force?: boolean;
  engine: 'stream' | 'mongod';
  /** Builds the selector for the mongod engine (kept out of this module so it loads the driver only when used). */
  createSelector?: (spools: Map<string, SpoolFile>, metadata: Map<string, string>) => Promise<Selector>;
  comparisons?: ExtractComparison[];
  /** ISO UTC time of the incident, recorded in the manifest. */
  incidentAt?: string;
  /** For a dependent collection FROM lacks: the newest older backup of the same source holding it, or null. */
  olderBackup?: (collection: string) => Promise<ExtractInput | null>;
  /** Refuse, rather than take a dependent collection from an older backup (or leave it out). */
  strictBackup?: boolean;
  /** --at: the documents as they were at TIME, FROM being the base the oplog is replayed on. */
  pointInTime?: PointInTime;
  toolVersion: string;
  onProgress?: (p: ExtractProgress) => void;
  onNote?: (message: string) => void;
  /** Staleness and left-out dependents: shown even under --json (default: onNote). */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
  /** Told the temporary set folder as soon as it exists (a worker's owner removes it if it must end the worker). */
  onTemp?: (dir: string) => void;
}

export interface ExtractResult {
  set: string;
  counts: Record<string, number>;
  manifestHash: string;
  order: string[];
  scanned: Record<string, number>;
  durationMs: number;
  warnings: string[];
  /** Per comparison, per collection verdicts (as in the manifest). */
  comparison?: ManifestComparison[];
  /** Collections read from a backup other than FROM. */
  from?: Record<string, NonNullable<ManifestCollection['from']>>;
  /** --at: what the replay did (as in the manifest), with its counts per collection. */
  pointInTime?: ReplayOutcome['manifest'] & {counts: ReplayOutcome['counts']};
}

function msBetween(later: string | null, earlier: string | null): number | null {
  if (!later || !earlier) return null;
  return Date.parse(later) - Date.parse(earlier);
}

/**
 * Read stage, second part: a dependent collection FROM does not hold comes from the newest older
 * backup of the same source that does (hourly backups often hold only some collections).
 */
async function readMissingDependents(
  options: ExtractOptions,
  states: Map<string, NamespaceState>,
  closure: string[],
  db: string,
  spoolDir: string,
  warnings: string[],
  space?: SpaceGuard,
): Promise<void> {
  for (const collection of closure) {
    if (states.has(stateKey({db, collection}))) continue;
    if (options.strictBackup) {
      throw new GravityError('UNKNOWN_COLLECTION', `Collection ${collection} (a dependent) is not in ${options.source.location}, and --strict-backup forbids taking it from another backup`, {
        hint: 'Drop --strict-backup to take it from the newest older backup holding it, or extract without --follow',
      });
    }
    const older = options.olderBackup ? await options.olderBackup(collection) : null;
    if (!older) {
      warnings.push(`Collection ${collection} (a dependent) is not in the backup; nothing selected from it`);
      continue;
    }
    const read = await readStage(older.input, {collections: [collection], db, spoolDir: path.join(spoolDir, `older-${collection}`), ...(space ? {space} : {}), signal: options.signal});
    const state = read.states.get(stateKey({db, collection}));
    if (!state) {
      warnings.push(`Collection ${collection} (a dependent) is in neither the backup nor ${older.location}; nothing selected from it`);
      continue;
    }
    const olderBy = msBetween(options.source.takenAt, older.takenAt);
    state.origin = {backup: older.backup, location: older.location, takenAt: older.takenAt};
    states.set(stateKey({db, collection}), state);
    const age = olderBy === null ? '' : ` (${(olderBy / 3_600_000).toFixed(1)} h older than ${options.source.backup ?? options.source.location})`;
    warnings.push(`Collection ${collection} is not in the backup: taken from ${older.backup ?? older.location}${age}; its documents may be stale (changes after that backup are not in the set)`);
  }
}

/** Compare stage: the verdict of every spooled document of the closure, per comparison. */
async function compareStage(options: ExtractOptions, spools: Map<string, SpoolFile>, db: string, root: string): Promise<Array<Map<string, Uint8Array>>> {
  const out: Array<Map<string, Uint8Array>> = [];
  const rootMatch = compileQuery(options.filter);
  for (const comparison of options.comparisons ?? []) {
    const verdicts = new Map<string, Uint8Array>();
    for (const [collection, spool] of spools) {
      // Against a target, only root documents the query selects are looked up: no needless reads.
      const comparer = await comparison.against.comparer(db, collection, {fields: false, added: false, ...(collection === root ? {only: (doc: Buffer) => rootMatch.matches(doc)} : {})});
      let batch: Buffer[] = [];
      let scanned = 0;
      for await (const {doc} of spool.documentsWithOrdinal(options.signal)) {
        batch.push(doc);
        if (batch.length >= 1000) {
          await comparer.add(batch);
          scanned += batch.length;
          batch = [];
          options.onProgress?.({phase: 'compare', collection, scanned, matched: 0, bytesRead: 0});
        }
      }
      await comparer.add(batch);
      verdicts.set(collection, (await comparer.finish()).statuses);
    }
    out.push(verdicts);
  }
  return out;
}

/** The verdicts as a `keep` filter for the select stage, counting each selected document once. */
function keepFilter(options: ExtractOptions, verdicts: Array<Map<string, Uint8Array>>): {keep: Keep; counts: ManifestComparison['counts'][]} {
  const comparisons = options.comparisons ?? [];
  const counts: ManifestComparison['counts'][] = comparisons.map(() => ({}));
  // Per collection and ordinal: 0 not asked yet, 1 kept, 2 not kept (one byte per document, not a Map entry).
  const asked = new Map<string, Uint8Array>();
  const keep: Keep = (collection, ordinal) => {
    let seen = asked.get(collection);
    if (!seen) asked.set(collection, (seen = new Uint8Array(Math.max(0, ...verdicts.map((v) => v.get(collection)?.length ?? 0)))));
    if (ordinal < seen.length && seen[ordinal] !== 0) return seen[ordinal] === 1;
    let kept = false;
    const statuses = comparisons.map((c, i) => {
      const status = verdicts[i]!.get(collection)?.[ordinal] ?? SAME;
      if ((c.missing && status === MISSING) || (c.changed && status === CHANGED)) kept = true;
      return status;
    });
    statuses.forEach((status, i) => {
      const entry = (counts[i]![collection] ??= {missing: 0, changed: 0, same: 0, kept: 0});
      if (status === MISSING) entry.missing++;
      else if (status === CHANGED) entry.changed++;
      else entry.same++;
      if (kept) entry.kept++;
    });
    if (ordinal < seen.length) seen[ordinal] = kept ? 1 : 2;
    return kept;
  };
  return {keep, counts};
}

/** The comparisons' filter and --changed-between's, both required when both are given. */
function combineKeeps(comparisons: {keep: Keep; counts: ManifestComparison['counts'][]} | null, window: Keep | null): {keep: Keep; counts: ManifestComparison['counts'][]} | null {
  if (!window) return comparisons;
  if (!comparisons) return {keep: window, counts: []};
  return {keep: (collection, ordinal) => window(collection, ordinal) && comparisons.keep(collection, ordinal), counts: comparisons.counts};
}

/**
 * Pull the documents matching a query (and, with --follow, their dependents) out of a backup
 * into a restore set, optionally only those missing from / changed in another backup or a target.
 */
export async function extract(options: ExtractOptions): Promise<ExtractResult> {
  const started = Date.now();
  const warnings: string[] = [];
  const note = (m: string) => options.onNote?.(m);
  validateRelations(options.relations);
  const target = await prepareOut(options.out, options.force);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(temp, {recursive: true, mode: 0o700});
  options.onTemp?.(temp);
  const spoolDir = path.join(temp, '.spool');
  try {
    const [wantDb, wantColl] = splitNamespace(options.collection);
    const closure = options.follow ? relationClosure(wantColl, options.relations) : [wantColl];
    const comparing = (options.comparisons ?? []).length > 0;
    const streaming = !options.follow && options.engine === 'stream' && !comparing && !options.pointInTime;
    // The set and its spools share one count of what the extraction puts on the disk.
    const space = new SpaceGuard(temp, 'the restore set', {shown: path.dirname(target), hint: 'Free some space on that disk, or pass --out on another one; a narrower --query writes less'});
    const writer = new DumpFolderWriter(path.join(temp, 'dump'), {space});
    let bytesRead = 0;
    let totalBytes: number | undefined;
    let rootMatched = 0;

    // read (fused with select and write on the streaming path)
    const compiled = streaming ? compileQuery(options.filter) : null;
    const read = await readStage(options.source.input, {
      collections: closure,
      db: wantDb,
      spoolDir: streaming ? null : spoolDir,
      space,
      signal: options.signal,
      // The query is the reader's screen: only the documents it keeps reach the writer.
      ...(compiled === null ? {} : {screen: () => compiled.matchesAt}),
      onDocs: async (state, matched) => {
        await writer.append(state.ns.db, state.ns.collection, matched);
        rootMatched += matched.length;
      },
      ...(options.pointInTime ? {oplogSpool: new SpoolFile(path.join(spoolDir, 'own-oplog'), '', 'oplog', space)} : {}),
      onProgress: (p) => {
        bytesRead = p.bytesRead;
        totalBytes = p.totalBytes;
        options.onProgress?.({phase: 'read', collection: p.collection, scanned: p.scanned, matched: rootMatched, bytesRead, totalBytes});
      },
    });
    const db = rootDatabase(read, options.collection, wantColl, options.source.location);
    // An older backup's collection has another base point: with --at it would not replay exactly.
    if (!streaming && !options.pointInTime) await readMissingDependents(options, read.states, closure, db, spoolDir, warnings, space);
    for (const collection of closure) {
      if (options.pointInTime && !read.states.has(stateKey({db, collection}))) {
        warnings.push(`Collection ${collection} (a dependent) is not in the base backup; with --at it is left out`);
      }
    }
    // replay
    const replayed: ReplayOutcome | null = options.pointInTime
      ? await replayStage(options.pointInTime, read.oplog, read.states, db, path.join(spoolDir, 'at'), space, options.signal, (p) => options.onProgress?.({phase: 'replay', bytesRead, totalBytes, scanned: p.operations, matched: 0, ...(p.collection ? {collection: p.collection} : {})}))
      : null;
    for (const [collection, c] of Object.entries(replayed?.counts ?? {})) {
      if (c.reapplied > 0) {
        warnings.push(`${c.reapplied} document(s) of ${collection} needed mongod's re-application rules inside the base backup's capture window (a value of another type written as null until a later entry rewrote it); they are as mongod's own replay would make them`);
      }
    }
    const stateOf = (collection: string) => read.states.get(stateKey({db, collection}));

    const counts: Record<string, number> = {};
    const scanned: Record<string, number> = {};
    const order: string[] = [];
    const selectedBy = new Map<string, ManifestCollection['selectedBy']>();
    const followed: Relation[] = [];
    let comparisonCounts: ManifestComparison['counts'][] = [];

    if (streaming) {
      const state = stateOf(wantColl)!;
      if (state.metadataRaw !== null) await writer.writeMetadata(db, wantColl, state.metadataRaw);
      await writer.append(db, wantColl, []);
      counts[wantColl] = rootMatched;
      scanned[wantColl] = state.scanned;
      order.push(wantColl);
      selectedBy.set(wantColl, 'query');
    } else {
      const spools = new Map<string, SpoolFile>();
      const metadata = new Map<string, string>();
      for (const state of read.states.values()) {
        if (state.ns.db !== db) continue;
        spools.set(state.ns.collection, state.spool!);
        if (state.metadataRaw !== null) metadata.set(state.ns.collection, state.metadataRaw);
        scanned[state.ns.collection] = state.scanned;
      }
      // compare
      const verdicts = comparing ? await compareStage(options, spools, db, wantColl) : [];
      const filter = combineKeeps(comparing ? keepFilter(options, verdicts) : null, replayed?.keep ?? null);
      // select
      const selector: Selector =
        options.engine === 'mongod' ? await requireSelectorFactory(options)(spools, metadata) : new StreamSelector(spools, options.signal);
      try {
        const selection = await selectWithRelations(
          selector,
          wantColl,
          options.filter,
          options.follow ? options.relations : [],
          spools,
          (p) => options.onProgress?.({phase: 'select', bytesRead, totalBytes, ...p}),
          filter?.keep,
        );
        comparisonCounts = filter?.counts ?? [];
        for (const [collection, info] of selection.levels) {
          order.push(collection);
          selectedBy.set(collection, info);
        }
        followed.push(...selection.followed);
        // write
        for (const collection of order) {
          const picked = selection.selected.get(collection) ?? new Set<number>();
          counts[collection] = picked.size;
          await writeSelected(writer, db, collection, spools.get(collection), metadata.get(collection), picked, options.signal);
          options.onProgress?.({phase: 'write', collection, scanned: spools.get(collection)?.documents ?? 0, matched: picked.size, bytesRead, totalBytes});
        }
      } finally {
        await selector.close();
      }
    }

    // seal
    const written = await writer.close();
    await rm(spoolDir, {recursive: true, force: true});
    const from: Record<string, NonNullable<ManifestCollection['from']>> = {};
    for (const collection of order) {
      const origin = stateOf(collection)?.origin;
      if (origin) from[collection] = {...origin, olderByMs: msBetween(options.source.takenAt, origin.takenAt)};
    }
    const comparison: ManifestComparison[] = (options.comparisons ?? []).map((c, i) => ({
      keep: [...(c.missing ? (['missing'] as const) : []), ...(c.changed ? (['changed'] as const) : [])],
      against: c.against.info,
      counts: Object.fromEntries(order.map((coll) => [coll, comparisonCounts[i]?.[coll] ?? {missing: 0, changed: 0, same: 0, kept: 0}])),
    }));
    const manifest: Manifest = {
      formatVersion: 1,
      tool: {name: 'gravity-restore', version: options.toolVersion},
      createdAt: new Date().toISOString(),
      source: {backup: options.source.backup, location: options.source.location, takenAt: options.source.takenAt, objects: options.source.objects},
      query: {collection: options.collection, text: options.queryText, canonical: EJSON.stringify(options.filter, {relaxed: false})},
      engine: options.engine,
      follow: options.follow,
      relations: followed,
      order,
      collections: manifestCollections(written, db, order, (c) => ({
        scanned: scanned[c] ?? 0,
        selectedBy: selectedBy.get(c) ?? 'query',
        ...(from[c] ? {from: from[c]} : {}),
        ...(replayed?.counts[c] ? {fromBackup: replayed.counts[c].fromBackup, replayed: replayed.counts[c].replayed, createdAfterBackup: replayed.counts[c].createdAfterBackup, deletedBeforeAt: replayed.counts[c].deleted} : {}),
      })),
      timings: {extractMs: Date.now() - started},
      ...(comparison.length > 0 ? {comparison} : {}),
      ...(options.incidentAt ? {incidentAt: options.incidentAt} : {}),
      ...(replayed ? replayed.manifest : {}),
      ...(warnings.length > 0 ? {warnings} : {}),
    };
    const hash = await seal(temp, target, manifest);
    for (const w of warnings) (options.onWarning ?? ((m: string) => note(`Warning: ${m}`)))(w);
    return {
      set: target,
      counts,
      manifestHash: hash,
      order,
      scanned,
      durationMs: Date.now() - started,
      warnings,
      ...(comparison.length > 0 ? {comparison} : {}),
      ...(Object.keys(from).length > 0 ? {from} : {}),
      ...(replayed ? {pointInTime: {...replayed.manifest, counts: replayed.counts}} : {}),
    };
  } catch (error) {
    await rm(temp, {recursive: true, force: true});
    throw error;
  }
}

function requireSelectorFactory(options: ExtractOptions): NonNullable<ExtractOptions['createSelector']> {
  if (!options.createSelector) throw new GravityError('INTERNAL', 'The mongod engine was requested without a scratch server');
  return options.createSelector;
}
