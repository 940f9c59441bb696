/**
 * Streaming readers for every mongodump layout. Documents leave as the exact bytes of the
 * backup (subarrays of the chunks read), never decoded.
 *
 * Event order, and how names are resolved:
 * - Folder (local or a list of stream sources): every metadata file is read first (they are
 *   small), so a namespace's 'metadata' always comes before its documents and the collection name
 *   is the metadata's `collectionName` (file names may be escaped or hashed). Namespaces follow in
 *   path order, except that several wanted .bson.gz files are inflated at once and their
 *   documents interleave (each namespace's own in order); the oplog and any tarball/archive found
 *   in the folder come after.
 * - Tar: members in tar order. A data member is named by its metadata when that came earlier in
 *   the tar, else by its unescaped file name (exact for every name mongodump does not hash). When
 *   the data comes first (`tar czf` stores members in directory order), its 'end' is held back
 *   until the metadata member arrives, or the tar ends without one: so every namespace's
 *   'metadata' comes before its 'end', and a consumer that stops at its last 'end' still has it.
 *   Only the members in between are read (and dropped). A hashed long name (its real name only in
 *   the metadata) whose metadata comes later is skipped on the first pass and read on a second
 *   pass over the tar, once its name is known: documents are never buffered or written anywhere.
 * - --archive: the prelude's metadata first, then documents as the segments interleave them;
 *   'end' when a namespace's EOF header arrives and its CRC-64 matches.
 * 'end' is emitted only for wanted namespaces; a view (no data) or a collection without a data file
 * gets an 'end' with 0 documents. A time series' data is its own namespace, system.buckets.<name>.
 */
import {promises as fsp} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {BSON} from 'bson';
import {GravityError} from '../errors.js';
import {Crc64} from './crc64.js';
import {DETECT_HEAD_BYTES, detectFormatSync, isGzipFile, isGzipHead} from './detect.js';
import {hasOwnData, parseMetadata} from './metadata.js';
import {classifyName, dbFromDir, isHashedStem, unescapeCollectionName} from './names.js';
import {BsonSplitter, type SplitCheck, takeChecked, TERMINATOR} from './split.js';
import {bsonProblem, documentError} from './validate.js';
import {type FileInflate, startFileInflate, takeFileInflate} from './inflate.js';
import {localSource} from './local-source.js';
import {type Chunks, gunzip, gunzipPort, interleave, peek, slurp, tarEntries} from './streams.js';
import type {CollectionMetadata, DocumentScreen, DumpEvent, DumpInput, DumpStreamSource, NamespaceRef, ReadOptions} from './types.js';

export {detectFormat, detectFormatSync, type DumpFormat} from './detect.js';

/** A metadata file larger than this is not one (they hold options and index specs). */
const METADATA_LIMIT = 64 * 1024 * 1024;
const OPLOG: NamespaceRef = {db: '', collection: 'oplog'};
/**
 * .bson.gz files of a folder inflated at once when several are wanted. Reading one is bound by
 * inflate on one thread-pool thread while the main thread mostly waits, so two use a second core
 * when there is one free; where there is none it cost no time and ~20 MB (bench/RESULTS.md).
 */
const FOLDER_INFLATE_PARALLEL = Math.max(2, Math.min(4, os.availableParallelism()));

class Progress {
  bytesRead = 0;
  totalBytes: number | undefined;
  private last = 0;
  constructor(private readonly onProgress: ReadOptions['onProgress']) {}

  add(bytes: number): void {
    this.bytesRead += bytes;
    if (this.onProgress === undefined) return;
    const now = Date.now();
    if (now - this.last >= 100) {
      this.last = now;
      this.report();
    }
  }

  report(): void {
    this.onProgress?.(this.totalBytes === undefined ? {bytesRead: this.bytesRead} : {bytesRead: this.bytesRead, totalBytes: this.totalBytes});
  }
}

interface Ctx {
  want: (ns: NamespaceRef) => boolean;
  screen: (ns: NamespaceRef) => DocumentScreen | null;
  parallel: number;
  progress: Progress;
  signal: AbortSignal | undefined;
  check: SplitCheck;
  oplogEntries: boolean;
}

function corrupt(message: string, hint = 'The backup is damaged or incomplete; fetch it again', details?: Record<string, unknown>): GravityError {
  return new GravityError('DUMP_CORRUPT', message, details === undefined ? {hint} : {hint, details});
}

function interrupted(): GravityError {
  return new GravityError('INTERRUPTED', 'Reading the backup was interrupted', {hint: 'Run the command again'});
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk));
}

/** The bytes of one source, counted for progress (unless `count` is false: a second pass). */
async function* rawChunks(source: DumpStreamSource, ctx: Ctx, count = true): AsyncGenerator<Buffer> {
  if (ctx.signal?.aborted) throw interrupted();
  const stream = await source.open();
  try {
    for await (const chunk of stream as AsyncIterable<unknown>) {
      if (ctx.signal?.aborted) throw interrupted();
      const buffer = toBuffer(chunk);
      if (count) ctx.progress.add(buffer.length);
      yield buffer;
    }
  } finally {
    (stream as {destroy?: () => void}).destroy?.();
  }
}


async function listLocalFolder(root: string): Promise<DumpStreamSource[]> {
  const out: DumpStreamSource[] = [];
  // The root's own name is kept so that a folder holding .bson files directly names the database.
  const top = path.basename(path.resolve(root));
  async function walk(dir: string, rel: string): Promise<void> {
    const entries = await fsp.readdir(dir, {withFileTypes: true});
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      const relName = `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(full, relName);
      else if (entry.isFile()) {
        const stat = await fsp.stat(full);
        out.push(localSource(full, relName, stat.size));
      }
    }
  }
  await walk(root, top);
  return out;
}

/** Reads a dump in any layout as a stream of events; see the module comment for the order. */
export async function* readDump(input: DumpInput, options: ReadOptions = {}): AsyncGenerator<DumpEvent> {
  const ctx: Ctx = {want: options.want ?? (() => true), screen: options.screen ?? (() => null), parallel: options.parallel ?? FOLDER_INFLATE_PARALLEL, progress: new Progress(options.onProgress), signal: options.signal, check: options.check ?? 'kept', oplogEntries: options.oplogEntries ?? false};
  if (typeof input === 'string') {
    let stat;
    try {
      stat = await fsp.stat(input);
    } catch (error) {
      throw new GravityError('SOURCE_NOT_FOUND', `No file or folder at ${input}`, {hint: 'Check the path', cause: error});
    }
    if (stat.isDirectory()) {
      const entries = await listLocalFolder(input);
      ctx.progress.totalBytes = entries.reduce((sum, e) => sum + (e.size ?? 0), 0);
      yield* readFolder(entries, ctx);
    } else {
      ctx.progress.totalBytes = stat.size;
      yield* readSingle(localSource(input, path.resolve(input), stat.size), ctx);
    }
  } else if (Array.isArray(input)) {
    if (input.every((s) => s.size !== undefined)) ctx.progress.totalBytes = input.reduce((sum, s) => sum + (s.size ?? 0), 0);
    yield* readFolder(input, ctx);
  } else {
    if (input.size !== undefined) ctx.progress.totalBytes = input.size;
    yield* readSingle(input, ctx);
  }
  ctx.progress.report();
}

/**
 * A local gzip file inflates on a worker that reads the file itself: the reading thread neither
 * reads the compressed bytes nor hands them on. The command may have started it already (offered);
 * null when the source is not a local gzip file.
 */
function localGzipInflate(source: DumpStreamSource): FileInflate | null {
  if (source.file === undefined) return null;
  const offered = takeFileInflate(source.file);
  if (offered) return {port: offered, stop: async () => undefined};
  return isGzipFile(source.file) ? startFileInflate(source.file) : null;
}

/** What a local gzip file holds, read from its inflate worker (localGzipInflate), which ends with it. */
async function* readLocalGzip(source: DumpStreamSource, inflate: FileInflate, ctx: Ctx): AsyncGenerator<DumpEvent> {
  const reopen = () => gunzip(rawChunks(source, ctx, false), source.name, {offThread: true});
  try {
    yield* readGunzipped(untilAborted(gunzipPort(inflate.port, (n) => ctx.progress.add(n), source.name), ctx), source.name, source.name, ctx, reopen);
  } finally {
    await inflate.stop();
  }
}

async function* readSingle(source: DumpStreamSource, ctx: Ctx): AsyncGenerator<DumpEvent> {
  const inflate = localGzipInflate(source);
  if (inflate) {
    yield* readLocalGzip(source, inflate, ctx);
    return;
  }
  const peeked = await peek(rawChunks(source, ctx), DETECT_HEAD_BYTES);
  try {
    yield* readDetected(peeked.all, peeked.head, source.name, source.name, ctx, () => rawChunks(source, ctx, false), false);
  } finally {
    await peeked.close();
  }
}

/** Chunks, stopped with INTERRUPTED when the read is aborted (as rawChunks stops). */
async function* untilAborted(chunks: Chunks, ctx: Ctx): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    if (ctx.signal?.aborted) throw interrupted();
    yield chunk;
  }
}

/** What a gzip stream holds (a tar, an archive, a .bson), read as it inflates. */
async function* readGunzipped(inflated: Chunks, name: string, where: string, ctx: Ctx, reopenInner: (() => Chunks) | undefined): AsyncGenerator<DumpEvent> {
  const inner = await peek(inflated, DETECT_HEAD_BYTES);
  try {
    yield* readDetected(inner.all, inner.head, stripGz(name), `${where} (gunzipped)`, ctx, reopenInner, true);
  } finally {
    await inner.close();
  }
}

function stripGz(name: string): string {
  if (/\.tgz$/i.test(name)) return name.slice(0, -4) + '.tar';
  if (/\.agz$/i.test(name)) return name.slice(0, -4) + '.archive';
  return name.replace(/\.gz$/i, '');
}

async function* readDetected(
  chunks: Chunks, head: Buffer, name: string, where: string, ctx: Ctx,
  reopen: (() => Chunks) | undefined, gzipped: boolean,
): AsyncGenerator<DumpEvent> {
  const format = detectFormatSync(head, name);
  switch (format) {
    case 'gzip': {
      if (gzipped) break; // gzip inside gzip is not a mongodump layout
      // One compressed stream holds the whole backup (a .tar.gz, an --archive --gzip): it inflates on a thread of its own.
      const reopenInner = reopen === undefined ? undefined : () => gunzip(reopen(), where, {offThread: true});
      yield* readGunzipped(gunzip(chunks, where, {offThread: true}), name, where, ctx, reopenInner);
      return;
    }
    case 'tar':
      yield* readTar(chunks, where, ctx, reopen);
      return;
    case 'archive':
      yield* readArchive(chunks, where, ctx);
      return;
    case 'bson': {
      const c = classifyName(name);
      if (c.kind === 'oplog') {
        yield* readOplog(chunks, where, ctx);
        return;
      }
      const stem = c.kind === 'data' ? c.stem : c.stem.replace(/\.[^.]*$/, '');
      yield* readCollection(chunks, {db: dbFromDir(c.dir), collection: unescapeCollectionName(stem)}, where, ctx);
      return;
    }
    case 'json': {
      const c = classifyName(name);
      const raw = (await slurp(chunks, METADATA_LIMIT, where)).toString('utf8');
      const metadata = parseMetadata(raw, unescapeCollectionName(c.stem.replace(/\.json$/, '')), where);
      yield {type: 'metadata', db: dbFromDir(c.dir), collection: metadata.collectionName, metadata, raw};
      return;
    }
    default:
      break;
  }
  throw new GravityError('DUMP_UNKNOWN_FORMAT', `${where}: not a mongodump backup`, {
    hint: 'Expected a dump folder (.bson, .metadata.json), a .tar/.tar.gz of one, a mongodump --archive (optionally gzipped) or a single .bson/.bson.gz file',
  });
}

/** Streams one namespace's .bson data as 'documents' batches, then its 'end'. */
async function* readCollection(chunks: Chunks, ns: NamespaceRef, where: string, ctx: Ctx): AsyncGenerator<DumpEvent> {
  if (!ctx.want(ns)) {
    for await (const _chunk of chunks) {
      // Not wanted, and the bytes must still pass (a single file); nothing is kept.
    }
    return;
  }
  const counts = yield* collectionDocuments(chunks, ns, where, ctx);
  yield {type: 'end', db: ns.db, collection: ns.collection, ...counts};
}

/** One wanted namespace's 'documents' batches; returns the counts its 'end' carries (the caller decides when that comes). */
async function* collectionDocuments(chunks: Chunks, ns: NamespaceRef, where: string, ctx: Ctx): AsyncGenerator<DumpEvent, {documents: number; bytes: number}> {
  const splitter = new BsonSplitter(`${where} (${ns.db}.${ns.collection})`, {check: ctx.check});
  const screen = ctx.screen(ns) ?? undefined;
  for await (const chunk of chunks) {
    const documents = splitter.documents;
    const bytes = splitter.bytes;
    const docs = splitter.push(chunk, [], screen);
    if (splitter.documents === documents) continue;
    const batch = {type: 'documents', db: ns.db, collection: ns.collection, docs, bytes: splitter.bytes - bytes} as const;
    yield screen === undefined ? batch : {...batch, scanned: splitter.documents - documents};
  }
  splitter.end();
  return {documents: splitter.documents, bytes: splitter.bytes};
}

/**
 * `mongodump --oplog --gzip` writes gzip into a file still named oplog.bson (OPLOG.md §8, trap 16):
 * its content says whether it is compressed, not its name.
 */
async function* readOplog(chunks: Chunks, where: string, ctx: Ctx): AsyncGenerator<DumpEvent> {
  if (!ctx.want(OPLOG)) return;
  const peeked = await peek(chunks, 2);
  const gzipped = isGzipHead(peeked.head);
  const label = gzipped ? `${where} (gunzipped)` : where;
  // Only counted (no document cut out or checked) unless the caller asked for the entries.
  const splitter = new BsonSplitter(`${label} (oplog)`, {check: ctx.oplogEntries ? 'kept' : 'none'});
  const none = (): boolean => false;
  try {
    for await (const chunk of gzipped ? gunzip(peeked.all, where) : peeked.all) {
      if (!ctx.oplogEntries) {
        splitter.push(chunk, [], none);
        continue;
      }
      const docs = splitter.push(chunk);
      if (docs.length > 0) yield {type: 'oplog', documents: splitter.documents, bytes: splitter.bytes, entries: docs, where: label};
    }
  } finally {
    await peeked.close();
  }
  splitter.end();
  yield {type: 'oplog', documents: splitter.documents, bytes: splitter.bytes};
}

function decompressIf(gzip: boolean, chunks: Chunks, where: string): Chunks {
  return gzip ? gunzip(chunks, where) : chunks;
}

async function readMetadataSource(source: DumpStreamSource, gzip: boolean, fallback: string, ctx: Ctx): Promise<{raw: string; metadata: CollectionMetadata}> {
  const raw = (await slurp(decompressIf(gzip, rawChunks(source, ctx), source.name), METADATA_LIMIT, source.name)).toString('utf8');
  return {raw, metadata: parseMetadata(raw, fallback, source.name)};
}

interface FolderGroup {
  dir: string;
  stem: string;
  data?: {source: DumpStreamSource; gzip: boolean};
  meta?: {source: DumpStreamSource; gzip: boolean};
}

async function* readFolder(entries: DumpStreamSource[], ctx: Ctx): AsyncGenerator<DumpEvent> {
  const groups = new Map<string, FolderGroup>();
  const oplogs: Array<{source: DumpStreamSource; gzip: boolean}> = [];
  const others: DumpStreamSource[] = [];
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const source of sorted) {
    const c = classifyName(source.name);
    if (c.kind === 'data' || c.kind === 'metadata') {
      const key = `${c.dir}\u0000${c.stem}`;
      const group = groups.get(key) ?? {dir: c.dir, stem: c.stem};
      group[c.kind === 'data' ? 'data' : 'meta'] = {source, gzip: c.gzip};
      groups.set(key, group);
    } else if (c.kind === 'oplog') oplogs.push({source, gzip: c.gzip});
    else if (c.kind === 'other') others.push(source);
  }

  const metas = new Map<string, {raw: string; metadata: CollectionMetadata}>();
  for (const [key, group] of groups) {
    if (group.meta) metas.set(key, await readMetadataSource(group.meta.source, group.meta.gzip, unescapeCollectionName(group.stem), ctx));
  }

  const jobs: Array<{gzip: boolean; run: () => AsyncGenerator<DumpEvent>}> = [];
  for (const [key, group] of [...groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const db = dbFromDir(group.dir);
    const meta = metas.get(key);
    const collection = meta?.metadata.collectionName ?? unescapeCollectionName(group.stem);
    if (meta) yield {type: 'metadata', db, collection, metadata: meta.metadata, raw: meta.raw};
    const ns = {db, collection};
    if (!ctx.want(ns)) {
      if (group.data) ctx.progress.add(group.data.source.size ?? 0);
      continue;
    }
    const data = group.data;
    if (data) {
      const where = data.gzip ? `${data.source.name} (uncompressed)` : data.source.name;
      jobs.push({gzip: data.gzip, run: () => readCollection(decompressIf(data.gzip, rawChunks(data.source, ctx), data.source.name), ns, where, ctx)});
    } else {
      yield {type: 'end', db, collection, documents: 0, bytes: 0};
    }
  }
  // Several wanted .bson.gz files inflate side by side (zlib works on the thread pool), their
  // documents interleaving; plain .bson files gain nothing from it and are read one by one.
  const parallel = jobs.filter((j) => j.gzip).length >= 2 ? ctx.parallel : 1;
  yield* interleave(jobs.map((j) => j.run), parallel);

  for (const oplog of oplogs) {
    if (!ctx.want(OPLOG)) continue;
    yield* readOplog(decompressIf(oplog.gzip, rawChunks(oplog.source, ctx), oplog.source.name), oplog.source.name, ctx);
  }

  // A backup "folder" may hold a tarball or an archive next to other files (a manifest, say).
  for (const source of others) {
    const gzipName = /\.(tgz|tar\.gz|agz|archive\.gz|gz)$/i.test(source.name);
    const inflate = gzipName ? localGzipInflate(source) : null;
    if (inflate) {
      yield* readLocalGzip(source, inflate, ctx);
      continue;
    }
    const peeked = await peek(rawChunks(source, ctx), DETECT_HEAD_BYTES);
    try {
      const format = detectFormatSync(peeked.head, source.name);
      if (format === 'tar' || format === 'archive' || (format === 'gzip' && gzipName)) {
        yield* readDetected(peeked.all, peeked.head, source.name, source.name, ctx, () => rawChunks(source, ctx, false), false);
      }
    } finally {
      await peeked.close();
    }
  }
}

/**
 * A member named with a `..` segment or an absolute path does not lie inside the dump: its folder
 * would name a database `..` (or one outside the tree) and an unpacked copy would land elsewhere.
 */
function checkMemberName(name: string, where: string): void {
  const clean = name.replace(/\\/g, '/');
  if (clean.startsWith('/') || /^[A-Za-z]:\//.test(clean) || clean.split('/').includes('..')) {
    throw corrupt(`${where}: member ${JSON.stringify(name)} points outside the dump (an absolute path or a ".." segment)`,
      'A mongodump tarball holds <db>/<collection>.bson members; this one was not written by mongodump and tar, or was tampered with: use another backup', {member: name});
  }
}

async function* readTar(chunks: Chunks, where: string, ctx: Ctx, reopen: (() => Chunks) | undefined): AsyncGenerator<DumpEvent> {
  const metas = new Map<string, CollectionMetadata>();
  const withData = new Set<string>();
  const deferred = new Set<string>();
  // A wanted namespace whose data came before its metadata: its 'end' waits for the metadata (or
  // the end of the tar), because consumers stop reading at the last 'end' they need.
  const awaiting = new Map<string, {ns: NamespaceRef; documents: number; bytes: number}>();
  for await (const entry of tarEntries(chunks, where)) {
    if (entry.type !== 'file' && entry.type !== 'contiguous-file') continue;
    checkMemberName(entry.name, where);
    const c = classifyName(entry.name);
    const key = `${c.dir}\u0000${c.stem}`;
    const memberWhere = `${where}: ${entry.name}`;
    const db = dbFromDir(c.dir);
    if (c.kind === 'metadata') {
      const raw = (await slurp(decompressIf(c.gzip, entry.body, memberWhere), METADATA_LIMIT, memberWhere)).toString('utf8');
      const metadata = parseMetadata(raw, unescapeCollectionName(c.stem), memberWhere);
      metas.set(key, metadata);
      yield {type: 'metadata', db, collection: metadata.collectionName, metadata, raw};
      const waiting = awaiting.get(key);
      if (waiting !== undefined) {
        awaiting.delete(key);
        yield {type: 'end', ...waiting.ns, documents: waiting.documents, bytes: waiting.bytes};
      } else if (!hasOwnData(metadata) && ctx.want({db, collection: metadata.collectionName})) {
        yield {type: 'end', db, collection: metadata.collectionName, documents: 0, bytes: 0};
      }
    } else if (c.kind === 'data') {
      withData.add(key);
      const metadata = metas.get(key);
      if (metadata === undefined && isHashedStem(c.stem) && reopen !== undefined) {
        deferred.add(entry.name);
        continue;
      }
      const ns = {db, collection: metadata?.collectionName ?? unescapeCollectionName(c.stem)};
      if (!ctx.want(ns)) continue; // tarEntries skips the member's bytes
      const counts = yield* collectionDocuments(decompressIf(c.gzip, entry.body, memberWhere), ns, c.gzip ? `${memberWhere} (uncompressed)` : memberWhere, ctx);
      if (metadata === undefined) awaiting.set(key, {ns, ...counts});
      else yield {type: 'end', ...ns, ...counts};
    } else if (c.kind === 'oplog') {
      if (!ctx.want(OPLOG)) continue;
      yield* readOplog(decompressIf(c.gzip, entry.body, memberWhere), memberWhere, ctx);
    }
  }
  // Data members the tar holds no metadata for.
  for (const waiting of awaiting.values()) yield {type: 'end', ...waiting.ns, documents: waiting.documents, bytes: waiting.bytes};
  for (const [key, metadata] of metas) {
    if (!hasOwnData(metadata) || withData.has(key)) continue;
    const db = dbFromDir(key.slice(0, key.indexOf('\u0000')));
    if (ctx.want({db, collection: metadata.collectionName})) yield {type: 'end', db, collection: metadata.collectionName, documents: 0, bytes: 0};
  }
  if (deferred.size === 0 || reopen === undefined) return;
  // Second pass, only for hashed long names whose metadata came after their data.
  for await (const entry of tarEntries(reopen(), where)) {
    if (!deferred.has(entry.name)) continue;
    const c = classifyName(entry.name);
    const memberWhere = `${where}: ${entry.name}`;
    const db = dbFromDir(c.dir);
    const ns = {db, collection: metas.get(`${c.dir}\u0000${c.stem}`)?.collectionName ?? unescapeCollectionName(c.stem)};
    if (!ctx.want(ns)) continue;
    yield* readCollection(decompressIf(c.gzip, entry.body, memberWhere), ns, memberWhere, ctx);
  }
}

interface ArchiveNamespace {
  db: string;
  collection: string;
  wanted: boolean;
  crc: Crc64 | null;
  screen: DocumentScreen | null;
  documents: number;
  bytes: number;
  closed: boolean;
  /** The archive and namespace, as a refused document names them. */
  place: string;
}

type ArchiveState = 'magic' | 'header' | 'prelude' | 'block' | 'body' | 'eof-terminator';

function decodeHeader(doc: Buffer, what: string, where: string, offset: number): Record<string, unknown> {
  const problem = bsonProblem(doc, 0, doc.length);
  if (problem !== null) throw documentError(problem, doc, 0, doc.length, `${where} (${what})`, offset);
  try {
    return BSON.deserialize(doc, {useBigInt64: true}) as Record<string, unknown>;
  } catch (error) {
    throw corrupt(`${where}: ${what} at byte ${offset} is not valid BSON (${(error as Error).message})`, undefined, {offset});
  }
}

function asBigInt(value: unknown): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  return 0n;
}

/** mongodump --archive: magic, header, prelude, interleaved namespace segments, EOF headers with CRC-64. */
async function* readArchive(chunks: Chunks, where: string, ctx: Ctx): AsyncGenerator<DumpEvent> {
  // Headers and documents come through one splitter; documents are checked below, where their namespace is known.
  const splitter = new BsonSplitter(where, {allowTerminator: true, check: 'none'});
  const prelude = new Map<string, {db: string; collection: string; type: string}>();
  const namespaces = new Map<string, ArchiveNamespace>();
  let state: ArchiveState = 'magic';
  let magic = Buffer.alloc(0);
  let offset = 4; // of the next item
  let current: ArchiveNamespace | null = null;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let batchScanned = 0;
  let oplogBatch: Buffer[] = [];
  const events: DumpEvent[] = [];
  // The CRC runs over whole runs of adjacent documents (a segment's documents lie back to back in
  // a chunk), not one call per document: one long update is what makes the checksum fast.
  let run: {ns: ArchiveNamespace; buffer: ArrayBufferLike; start: number; end: number} | null = null;
  const crcRun = (): void => {
    if (run !== null) run.ns.crc!.update(new Uint8Array(run.buffer, run.start, run.end - run.start));
    run = null;
  };
  const crcAdd = (ns: ArchiveNamespace, item: Buffer): void => {
    if (run !== null && run.ns === ns && run.buffer === item.buffer && run.end === item.byteOffset) {
      run.end += item.length;
      return;
    }
    crcRun();
    run = {ns, buffer: item.buffer, start: item.byteOffset, end: item.byteOffset + item.length};
  };

  const flush = (): void => {
    if (current !== null && oplogBatch.length > 0) {
      events.push({type: 'oplog', documents: current.documents, bytes: current.bytes, entries: oplogBatch, where});
      oplogBatch = [];
    }
    if (current !== null && batchScanned > 0) {
      const docs = {type: 'documents', db: current.db, collection: current.collection, docs: batch, bytes: batchBytes} as const;
      events.push(current.screen === null ? docs : {...docs, scanned: batchScanned});
      batch = [];
      batchBytes = 0;
      batchScanned = 0;
    }
  };

  for await (let chunk of chunks) {
    if (state === 'magic') {
      magic = Buffer.concat([magic, chunk]);
      if (magic.length < 4) continue;
      if (magic.readUInt32LE(0) !== 0x8199e26d) {
        throw corrupt(`${where}: not a mongodump archive (bad magic number 0x${magic.readUInt32LE(0).toString(16)} at byte 0)`);
      }
      chunk = magic.subarray(4);
      splitter.offset = 4;
      state = 'header';
    }
    const items = splitter.push(chunk);
    for (const item of items) {
      const at = offset;
      offset += item.length;
      switch (state) {
        case 'header':
          if (item === TERMINATOR) throw corrupt(`${where}: archive header missing at byte ${at}`, undefined, {offset: at});
          decodeHeader(item, 'archive header', where, at);
          state = 'prelude';
          break;
        case 'prelude': {
          if (item === TERMINATOR) {
            state = 'block';
            break;
          }
          const cm = decodeHeader(item, 'collection metadata', where, at);
          const db = typeof cm.db === 'string' ? cm.db : '';
          const collection = typeof cm.collection === 'string' ? cm.collection : '';
          const raw = typeof cm.metadata === 'string' ? cm.metadata : '';
          let type = typeof cm.type === 'string' && cm.type !== '' ? cm.type : 'collection';
          if (raw !== '') {
            const metadata = parseMetadata(raw, collection, `${where} (${db}.${collection})`);
            if (!(typeof cm.type === 'string' && cm.type !== '') && metadata.type) type = metadata.type;
            events.push({type: 'metadata', db, collection, metadata, raw});
          }
          prelude.set(`${db}\u0000${collection}`, {db, collection, type});
          break;
        }
        case 'block': {
          if (item === TERMINATOR) throw corrupt(`${where}: two terminators in a row at byte ${at}`, undefined, {offset: at});
          const h = decodeHeader(item, 'namespace header', where, at);
          const db = typeof h.db === 'string' ? h.db : '';
          const collection = typeof h.collection === 'string' ? h.collection : '';
          if (collection === '') throw corrupt(`${where}: namespace header without a collection at byte ${at}`, undefined, {offset: at});
          if (!(db === '' && collection === 'oplog') && (db === '' || db === '.' || db === '..' || /[/\\\0]/.test(db))) {
            throw corrupt(`${where}: namespace header at byte ${at} names database ${JSON.stringify(db)}, which MongoDB does not allow`, 'Use another backup', {offset: at});
          }
          const key = `${db}\u0000${collection}`;
          let ns = namespaces.get(key);
          if (ns === undefined) {
            const ref = db === '' && collection === 'oplog' ? OPLOG : {db, collection};
            const wanted = ctx.want(ref);
            const screen = wanted && ref !== OPLOG ? ctx.screen(ref) : null;
            ns = {db, collection, wanted, crc: wanted ? new Crc64() : null, screen, documents: 0, bytes: 0, closed: false, place: `${where} (${db}.${collection})`};
            namespaces.set(key, ns);
          } else if (ns.closed) {
            throw corrupt(`${where}: namespace ${db}.${collection} continues after its EOF header (byte ${at})`, undefined, {offset: at});
          }
          if (h.EOF === true) {
            ns.closed = true;
            crcRun();
            if (ns.crc !== null) {
              const expected = asBigInt(h.CRC);
              const actual = ns.crc.digestInt64();
              if (expected !== actual) {
                throw corrupt(`${where}: bad CRC for namespace ${db}.${collection} (EOF header at byte ${at} says ${expected}, the data gives ${actual})`,
                  undefined, {offset: at, namespace: `${db}.${collection}`});
              }
            }
            if (ns.wanted) {
              if (db === '' && collection === 'oplog') events.push({type: 'oplog', documents: ns.documents, bytes: ns.bytes});
              else events.push({type: 'end', db, collection, documents: ns.documents, bytes: ns.bytes});
            }
            state = 'eof-terminator';
          } else {
            current = ns;
            state = 'body';
          }
          break;
        }
        case 'body': {
          const ns = current!;
          if (item === TERMINATOR) {
            flush();
            current = null;
            state = 'block';
            break;
          }
          ns.documents++;
          ns.bytes += item.length;
          if (ns.wanted) {
            crcAdd(ns, item);
            if (!(ns.db === '' && ns.collection === 'oplog')) {
              batchScanned++;
              batchBytes += item.length;
              if (takeChecked(item, 0, item.length, ns.screen, ctx.check, ns.place, at)) batch.push(item);
            } else if (ctx.oplogEntries) {
              oplogBatch.push(item);
            }
          }
          break;
        }
        case 'eof-terminator':
          if (item !== TERMINATOR) throw corrupt(`${where}: EOF header not followed by a terminator (byte ${at})`, undefined, {offset: at});
          state = 'block';
          break;
        default:
          break;
      }
    }
    flush();
    crcRun();
    if (events.length > 0) {
      const out = events.splice(0, events.length);
      for (const event of out) yield event;
    }
  }

  if (state === 'magic') throw corrupt(`${where}: truncated archive (${magic.length} bytes, shorter than the magic number)`);
  splitter.end();
  if (state === 'header' || state === 'prelude') throw corrupt(`${where}: truncated archive (it ends inside the prelude, at byte ${offset})`, undefined, {offset});
  if (state === 'body' || state === 'eof-terminator') {
    const name = current ? `${current.db}.${current.collection}` : 'a namespace';
    throw corrupt(`${where}: truncated archive (it ends inside the segment of ${name}, at byte ${offset})`, undefined, {offset});
  }
  for (const ns of namespaces.values()) {
    if (!ns.closed) throw corrupt(`${where}: truncated archive (namespace ${ns.db}.${ns.collection} has no EOF header; the archive ends at byte ${offset})`, undefined, {offset});
  }
  for (const [key, entry] of prelude) {
    if (namespaces.has(key)) continue;
    if (entry.type === 'view' || entry.type === 'timeseries') {
      if (ctx.want({db: entry.db, collection: entry.collection})) yield {type: 'end', db: entry.db, collection: entry.collection, documents: 0, bytes: 0};
      continue;
    }
    const name = entry.db === '' ? entry.collection : `${entry.db}.${entry.collection}`;
    throw corrupt(`${where}: truncated archive (the prelude lists ${name} but its data never came; the archive ends at byte ${offset})`, undefined, {offset});
  }
}
