import {randomBytes} from 'node:crypto';
import {mkdir, rename, rm, stat, writeFile} from 'node:fs/promises';
import path from 'node:path';

import {EJSON, type Document} from 'bson';

import {readDump} from '../dump/read.js';
import type {DumpInput, NamespaceRef} from '../dump/types.js';
import {DumpFolderWriter} from '../dump/write.js';
import {GravityError} from '../errors.js';
import {compileQuery} from '../query/compile.js';
import {
  canonicalJson,
  manifestHash,
  MANIFEST_FILE,
  type Manifest,
  type ManifestCollection,
  type ManifestSourceObject,
  type Relation,
} from '../restore-set/manifest.js';
import {relationClosure, validateRelations, valueKey, valuesAtPath} from './relations.js';
import {SpoolFile} from './spool.js';
import type {Selector} from './selector.js';
import {StreamSelector} from './stream-selector.js';

export interface ExtractInput {
  input: DumpInput;
  backup: string | null;
  location: string;
  takenAt: string | null;
  objects: ManifestSourceObject[];
}

export interface ExtractProgress {
  phase: 'read' | 'select' | 'write';
  collection?: string;
  scanned: number;
  matched: number;
  bytesRead: number;
  totalBytes?: number;
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
  toolVersion: string;
  onProgress?: (p: ExtractProgress) => void;
  onNote?: (message: string) => void;
  signal?: AbortSignal;
}

export interface ExtractResult {
  set: string;
  counts: Record<string, number>;
  manifestHash: string;
  order: string[];
  scanned: Record<string, number>;
  durationMs: number;
  warnings: string[];
}

interface NamespaceState {
  ns: NamespaceRef;
  metadataRaw: string | null;
  spool: SpoolFile | null;
  scanned: number;
  bytes: number;
  ended: boolean;
}

async function prepareOut(out: string, force: boolean | undefined): Promise<string> {
  const target = path.resolve(out);
  const exists = await stat(target).then(
    () => true,
    () => false,
  );
  if (exists && !force) {
    throw new GravityError('SET_EXISTS', `Output folder ${target} already exists`, {hint: 'Choose another --out, or pass --force to replace it'});
  }
  await mkdir(path.dirname(target), {recursive: true});
  return target;
}

/**
 * Pull the documents matching a query (and, with --follow, their dependents) out of a backup
 * into a restore set. The backup is read once; without --follow the root collection is
 * filtered as it streams by, with --follow the needed collections are spooled locally first.
 */
export async function extract(options: ExtractOptions): Promise<ExtractResult> {
  const started = Date.now();
  const warnings: string[] = [];
  const note = (m: string) => options.onNote?.(m);
  validateRelations(options.relations);
  const target = await prepareOut(options.out, options.force);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(temp, {recursive: true, mode: 0o700});
  const spoolDir = path.join(temp, '.spool');
  try {
    const [wantDb, wantColl] = splitNamespace(options.collection);
    const closure = options.follow ? relationClosure(wantColl, options.relations) : [wantColl];
    const streaming = !options.follow && options.engine === 'stream';
    const compiled = streaming ? compileQuery(options.filter) : null;
    const writer = new DumpFolderWriter(path.join(temp, 'dump'));
    const states = new Map<string, NamespaceState>();
    const known = new Set<string>();
    const stateKey = (ns: NamespaceRef) => `${ns.db}\u0000${ns.collection}`;
    const isNeeded = (ns: NamespaceRef) => closure.includes(ns.collection) && (wantDb === null || ns.db === wantDb);
    let bytesRead = 0;
    let totalBytes: number | undefined;
    let rootMatched = 0;
    const rootMatchedByNs = new Map<string, number>();

    const stateFor = (ns: NamespaceRef): NamespaceState => {
      let state = states.get(stateKey(ns));
      if (!state) {
        state = {ns, metadataRaw: null, spool: streaming ? null : new SpoolFile(spoolDir, ns.db, ns.collection), scanned: 0, bytes: 0, ended: false};
        states.set(stateKey(ns), state);
      }
      return state;
    };
    const allDone = () => closure.every((c) => [...states.values()].some((s) => s.ns.collection === c && s.ended));

    let lastReport = 0;
    for await (const event of readDump(options.source.input, {
      signal: options.signal,
      want: (ns) => {
        known.add(ns.collection);
        return isNeeded(ns);
      },
      onProgress: (p) => {
        bytesRead = p.bytesRead;
        totalBytes = p.totalBytes;
      },
    })) {
      if (event.type === 'oplog') continue;
      known.add(event.collection);
      const ns = {db: event.db, collection: event.collection};
      if (!isNeeded(ns)) continue;
      const state = stateFor(ns);
      if (event.type === 'metadata') {
        state.metadataRaw = event.raw;
      } else if (event.type === 'documents') {
        state.scanned += event.docs.length;
        state.bytes += event.bytes;
        if (compiled) {
          const matched = event.docs.filter((doc) => compiled.matches(doc));
          if (matched.length > 0) await writer.append(ns.db, ns.collection, matched);
          rootMatched += matched.length;
          rootMatchedByNs.set(stateKey(ns), (rootMatchedByNs.get(stateKey(ns)) ?? 0) + matched.length);
        } else {
          await state.spool!.append(event.docs);
        }
        const now = Date.now();
        if (now - lastReport > 100) {
          lastReport = now;
          options.onProgress?.({phase: 'read', collection: ns.collection, scanned: state.scanned, matched: rootMatched, bytesRead, totalBytes});
        }
      } else if (event.type === 'end') {
        state.ended = true;
        // Stop reading (and downloading) as soon as every needed collection is complete.
        if (allDone()) break;
      }
    }

    const rootStates = [...states.values()].filter((s) => s.ns.collection === wantColl);
    if (rootStates.length === 0) {
      const list = [...known].filter((c) => !c.startsWith('system.')).sort();
      throw new GravityError('UNKNOWN_COLLECTION', `Collection ${options.collection} is not in ${options.source.location}`, {
        hint: list.length > 0 ? `Known collections: ${list.join(', ')}` : 'The backup holds no collections',
      });
    }
    if (rootStates.length > 1) {
      throw new GravityError('USAGE', `Collection ${wantColl} exists in several databases (${rootStates.map((s) => s.ns.db).join(', ')})`, {
        hint: `Name it as db.collection, e.g. --collection ${rootStates[0]!.ns.db}.${wantColl}`,
      });
    }
    const db = rootStates[0]!.ns.db;
    const stateOf = (collection: string) => states.get(`${db}\u0000${collection}`);
    for (const c of closure) {
      if (!stateOf(c)) {
        warnings.push(`Collection ${c} (a dependent) is not in the backup; nothing selected from it`);
      }
    }

    const counts: Record<string, number> = {};
    const scanned: Record<string, number> = {};
    const order: string[] = [];
    const selectedBy = new Map<string, ManifestCollection['selectedBy']>();
    const followed: Relation[] = [];

    if (compiled) {
      const state = rootStates[0]!;
      if (state.metadataRaw !== null) await writer.writeMetadata(db, wantColl, state.metadataRaw);
      await writer.append(db, wantColl, []);
      counts[wantColl] = rootMatchedByNs.get(stateKey(state.ns)) ?? 0;
      scanned[wantColl] = state.scanned;
      order.push(wantColl);
      selectedBy.set(wantColl, 'query');
    } else {
      const spools = new Map<string, SpoolFile>();
      const metadata = new Map<string, string>();
      for (const state of states.values()) {
        if (state.ns.db !== db) continue;
        await state.spool!.close();
        spools.set(state.ns.collection, state.spool!);
        if (state.metadataRaw !== null) metadata.set(state.ns.collection, state.metadataRaw);
        scanned[state.ns.collection] = state.scanned;
      }
      const selector: Selector =
        options.engine === 'mongod'
          ? await requireSelectorFactory(options)(spools, metadata)
          : new StreamSelector(spools, options.signal);
      try {
        const selection = await selectWithRelations(selector, wantColl, options.filter, options.follow ? options.relations : [], spools, (p) =>
          options.onProgress?.({phase: 'select', bytesRead, totalBytes, ...p}),
        );
        for (const [collection, info] of selection.levels) {
          order.push(collection);
          selectedBy.set(collection, info);
        }
        followed.push(...selection.followed);
        for (const collection of order) {
          const spool = spools.get(collection);
          const raw = metadata.get(collection);
          if (raw !== undefined) await writer.writeMetadata(db, collection, raw);
          await writer.append(db, collection, []);
          const picked = selection.selected.get(collection) ?? new Set<number>();
          counts[collection] = picked.size;
          if (!spool || picked.size === 0) continue;
          let batch: Buffer[] = [];
          for await (const {ordinal, doc} of spool.documentsWithOrdinal(options.signal)) {
            if (!picked.has(ordinal)) continue;
            batch.push(doc);
            if (batch.length >= 1000) {
              await writer.append(db, collection, batch);
              batch = [];
            }
          }
          await writer.append(db, collection, batch);
          options.onProgress?.({phase: 'write', collection, scanned: spool.documents, matched: picked.size, bytesRead, totalBytes});
        }
      } finally {
        await selector.close();
      }
    }

    const written = await writer.close();
    await rm(spoolDir, {recursive: true, force: true});
    const collections: Record<string, ManifestCollection> = {};
    for (const collection of order) {
      const file = written.find((w) => w.collection === collection && w.db === db);
      if (!file) throw new GravityError('INTERNAL', `Restore set file for ${collection} was not written`);
      collections[collection] = {
        db,
        collection,
        documents: file.documents,
        bytes: file.bytes,
        file: path.posix.join('dump', file.file.split(path.sep).join('/')),
        sha256: file.sha256,
        metadataFile: file.metadataFile ? path.posix.join('dump', file.metadataFile.split(path.sep).join('/')) : null,
        metadataSha256: file.metadataSha256,
        scanned: scanned[collection] ?? 0,
        selectedBy: selectedBy.get(collection) ?? 'query',
      };
    }
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
      collections,
      timings: {extractMs: Date.now() - started},
    };
    if (warnings.length > 0) (manifest as Manifest & {warnings?: string[]}).warnings = warnings;
    await writeFile(path.join(temp, MANIFEST_FILE), `${JSON.stringify(JSON.parse(canonicalJson(manifest)), null, 2)}\n`);
    await rm(target, {recursive: true, force: true});
    await rename(temp, target);
    for (const w of warnings) note(`Warning: ${w}`);
    return {set: target, counts, manifestHash: manifestHash(JSON.parse(canonicalJson(manifest)) as Manifest), order, scanned, durationMs: Date.now() - started, warnings};
  } catch (error) {
    await rm(temp, {recursive: true, force: true});
    throw error;
  }
}

function requireSelectorFactory(options: ExtractOptions): NonNullable<ExtractOptions['createSelector']> {
  if (!options.createSelector) throw new GravityError('INTERNAL', 'The mongod engine was requested without a scratch server');
  return options.createSelector;
}

export function splitNamespace(name: string): [string | null, string] {
  const dot = name.indexOf('.');
  // `system.x` and names whose first part is a known collection prefix are ambiguous; a db name never holds a dot.
  if (dot <= 0 || name.startsWith('system.')) return [null, name];
  return [name.slice(0, dot), name.slice(dot + 1)];
}

interface Selection {
  selected: Map<string, Set<number>>;
  levels: Map<string, ManifestCollection['selectedBy']>;
  followed: Relation[];
}

/**
 * The root query, then relations applied until nothing new is selected. Cycles end because a
 * document is selected at most once; the level of a collection is when it was first reached.
 */
export async function selectWithRelations(
  selector: Selector,
  root: string,
  filter: Document,
  relations: Relation[],
  spools: Map<string, SpoolFile>,
  onProgress?: (p: {collection: string; scanned: number; matched: number}) => void,
): Promise<Selection> {
  const selected = new Map<string, Set<number>>();
  const levels = new Map<string, ManifestCollection['selectedBy']>();
  const followed: Relation[] = [];
  const usedValues = new Map<Relation, Set<string>>();
  levels.set(root, 'query');
  const rootHits = await selector.select(root, filter, onProgress);
  const pending: Array<{collection: string; docs: Document[]; level: number}> = [];
  const addHits = (collection: string, hits: Array<{ordinal: number; doc: Document}>, level: number) => {
    let set = selected.get(collection);
    if (!set) selected.set(collection, (set = new Set()));
    const fresh = hits.filter((h) => !set!.has(h.ordinal));
    for (const h of fresh) set.add(h.ordinal);
    if (fresh.length > 0) pending.push({collection, docs: fresh.map((h) => h.doc), level});
  };
  addHits(root, rootHits, 0);
  if (!selected.has(root)) selected.set(root, new Set());
  while (pending.length > 0) {
    const {collection, docs, level} = pending.shift()!;
    for (const relation of relations.filter((r) => r.from === collection)) {
      if (!spools.has(relation.to)) continue;
      const used = usedValues.get(relation) ?? new Set<string>();
      usedValues.set(relation, used);
      const values: unknown[] = [];
      for (const doc of docs) {
        for (const v of valuesAtPath(doc, relation.localField ?? '_id')) {
          const key = valueKey(v);
          if (!used.has(key)) {
            used.add(key);
            values.push(v);
          }
        }
      }
      if (!followed.includes(relation)) followed.push(relation);
      if (!levels.has(relation.to)) levels.set(relation.to, {relation, level: level + 1});
      if (!selected.has(relation.to)) selected.set(relation.to, new Set());
      if (values.length === 0) continue;
      const hits = await selector.select(relation.to, {[relation.foreignField]: {$in: values}}, onProgress);
      addHits(relation.to, hits, level + 1);
    }
  }
  return {selected, levels, followed};
}

