/**
 * Fetching a backup into the local cache: cached by source/key/ETag, resumable after an
 * interruption (positional writes into `<file>.part`, progress kept in `<file>.part.json`),
 * parallel ranged downloads for large objects, and verified (size, plain-MD5 ETag, `.sha256` /
 * `.md5` sidecar objects) before the file is renamed into place.
 */

import {createHash} from 'node:crypto';
import {mkdir, open, readFile, rename, rm, stat, writeFile, type FileHandle} from 'node:fs/promises';
import path from 'node:path';
import type {Readable} from 'node:stream';

import {GravityError} from '../errors.js';
import {defaultCacheDir} from '../config/cache-dir.js';
import {SpaceGuard} from '../dump/disk-space.js';
import {hashFile, OrderedHasher} from './digests.js';
import {isSidecarKey, type Backup, type BackupObject} from './list.js';
import {collectionOfNamespace, namespaceMatches, namespaceOfMember, packedFormatOf} from './members.js';
import type {BackupStore} from './store.js';

export interface FetchedFile {
  key: string;
  path: string;
  size: number;
  sha256: string;
}

export interface FetchResult {
  backup: string;
  files: FetchedFile[];
  bytesTransferred: number;
  resumed: boolean;
  /** Collection → local path (.bson(.gz) of a dump tree, or what `unpack` produced). */
  collections: Record<string, string>;
}

export interface FetchProgress {
  key: string;
  /** Bytes of this object present locally so far (including a resumed part). */
  bytes: number;
  total: number;
  /** Bytes per second transferred for this object in this run. */
  rate: number;
}

export interface FetchOptions {
  cacheDir: string;
  /** Only these collections ('coll' or 'db.coll'); dump-tree backups then download only their files. */
  collections?: string[];
  signal?: AbortSignal;
  onProgress?: (progress: FetchProgress) => void;
  /**
   * Unpacks a tarball/archive (the dump module does this) into `dir`, a folder of the cache that
   * belongs to this source and backup; without it `collections` holds dump-tree files only.
   */
  unpack?: (file: {key: string; path: string; dir: string}, collections: string[]) => Promise<Record<string, string>>;
  /** Objects larger than this are downloaded in parallel ranged parts (default 64 MiB). */
  parallelThreshold?: number;
  /** Ranged requests in flight at once, over all objects (default 4). */
  concurrency?: number;
  /** Attempts per ranged request when the connection drops (default 4). */
  attempts?: number;
}

const MIB = 1024 * 1024;
const STATE_FLUSH_MS = 500;
const PROGRESS_MS = 100;
const WRITE_AHEAD = 8 * MIB;
const PROGRESS_BYTES = 4 * MIB;

export {defaultCacheDir};

class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

interface Segment {
  start: number;
  /** Inclusive. */
  end: number;
  done: number;
}

interface PartState {
  etag: string | null;
  size: number;
  segments: Segment[];
}

interface CacheMeta {
  key: string;
  etag: string | null;
  size: number;
  sha256: string;
  mtimeMs?: number;
  verifiedAt: string;
}

function slug(text: string): string {
  return text.replace(/^s3:\/\//, '').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 80) || 'source';
}

function sourceRoot(cacheDir: string, store: BackupStore): string {
  const digest = createHash('sha256').update(store.identity).digest('hex').slice(0, 10);
  return `${slug(store.location)}-${digest}`;
}

function safeRelative(key: string): string {
  const segments = key.split('/');
  if (segments.some((segment) => segment === '..' || segment === '.' || segment === '') || path.isAbsolute(key)) {
    throw new GravityError('DOWNLOAD_CORRUPT', `Refusing to write object ${key}: its key is not a plain relative path`, {
      hint: 'Fetch from a source whose keys have no empty, "." or ".." segments',
    });
  }
  return path.join(...segments);
}

async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return null;
  }
}

async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), {recursive: true});
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, JSON.stringify(value));
  await rename(temporary, file);
}

function plainMd5Etag(etag: string | undefined): string | null {
  const value = etag?.replace(/"/g, '').toLowerCase();
  return value && /^[0-9a-f]{32}$/.test(value) ? value : null;
}

function interrupted(backup: Backup, cause?: unknown): GravityError {
  return new GravityError('INTERRUPTED', `Download of ${backup.id} interrupted`, {
    cause,
    hint: 'Run the same fetch again to resume where it stopped',
  });
}

function isAbort(error: unknown, signal: AbortSignal): boolean {
  if (signal.aborted) return true;
  const name = (error as {name?: string}).name;
  return name === 'AbortError';
}

function planSegments(size: number, threshold: number, parts: number): Segment[] {
  if (size === 0) return [];
  if (size <= threshold) return [{start: 0, end: size - 1, done: 0}];
  const count = Math.max(2, Math.min(parts, Math.ceil(size / MIB)));
  const length = Math.ceil(size / count);
  const segments: Segment[] = [];
  for (let start = 0; start < size; start += length) segments.push({start, end: Math.min(size, start + length) - 1, done: 0});
  return segments;
}

async function readSidecar(store: BackupStore, key: string, signal: AbortSignal): Promise<string> {
  const chunks: Buffer[] = [];
  const stream: Readable = await store.open(key, undefined, signal);
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function sidecarDigest(text: string, kind: 'sha256' | 'md5'): string | null {
  const length = kind === 'sha256' ? 64 : 32;
  const match = new RegExp(`(?<![0-9a-f])[0-9a-f]{${length}}(?![0-9a-f])`, 'i').exec(text);
  return match ? match[0].toLowerCase() : null;
}

interface Context {
  store: BackupStore;
  backup: Backup;
  options: FetchOptions;
  signal: AbortSignal;
  limiter: Semaphore;
  downloadRoot: string;
  metaRoot: string;
  sidecars: Map<string, BackupObject[]>;
  transferred: number;
  resumed: boolean;
  /** Downloads count against the free space of the cache's disk. */
  space: SpaceGuard;
}

function needsMd5(context: Context, object: BackupObject): boolean {
  return plainMd5Etag(object.etag) !== null || (context.sidecars.get(object.key) ?? []).some((sidecar) => sidecar.key.toLowerCase().endsWith('.md5'));
}

async function verify(context: Context, object: BackupObject, file: string, hasher: OrderedHasher): Promise<string> {
  const sidecars = context.sidecars.get(object.key) ?? [];
  const expectedMd5 = plainMd5Etag(object.etag);
  const hashes = await hasher.finish(file);
  const problems: string[] = [];
  if (hashes.size !== object.size) problems.push(`${hashes.size} bytes instead of ${object.size}`);
  let sidecarSha256Agrees = false;
  for (const sidecar of sidecars) {
    const kind = sidecar.key.toLowerCase().endsWith('.md5') ? 'md5' : 'sha256';
    const expected = sidecarDigest(await readSidecar(context.store, sidecar.key, context.signal), kind);
    const actual = kind === 'md5' ? hashes.md5 : hashes.sha256;
    if (expected === null) problems.push(`${sidecar.key} holds no ${kind} digest`);
    else if (expected !== actual) problems.push(`${kind} ${actual} but ${sidecar.key} says ${expected}`);
    else if (kind === 'sha256') sidecarSha256Agrees = true;
  }
  // An ETag of 32 hex digits is the MD5 of the data, except with SSE-KMS/SSE-C; a matching sha256 sidecar outranks it.
  if (expectedMd5 && hashes.md5 !== expectedMd5 && !sidecarSha256Agrees) problems.push(`md5 ${hashes.md5} but the ETag is ${expectedMd5}`);
  if (problems.length > 0) {
    await rm(file, {force: true});
    throw new GravityError('DOWNLOAD_CORRUPT', `Downloaded ${object.key} does not match the source: ${problems.join('; ')}`, {
      hint: 'The bad copy was deleted; run the fetch again, and if it fails again the object in the source is damaged',
      details: {key: object.key, problems},
    });
  }
  return hashes.sha256;
}

async function fetchLocal(context: Context, object: BackupObject): Promise<FetchedFile> {
  const {store} = context;
  const file = (store.localPath as (key: string) => string).call(store, object.key);
  const metaFile = path.join(context.metaRoot, `${safeRelative(object.key)}.json`);
  const info = await stat(file).catch((error: unknown) => {
    throw store.mapError(error, object.key);
  });
  const meta = await readJson<CacheMeta>(metaFile);
  if (meta && meta.size === info.size && meta.mtimeMs === info.mtimeMs) return {key: object.key, path: file, size: info.size, sha256: meta.sha256};
  // Verification must not delete the user's own backup file; check a copy of the facts instead.
  const sidecars = context.sidecars.get(object.key) ?? [];
  const hashes = await hashFile(file, sidecars.some((sidecar) => sidecar.key.toLowerCase().endsWith('.md5')));
  for (const sidecar of sidecars) {
    const kind = sidecar.key.toLowerCase().endsWith('.md5') ? 'md5' : 'sha256';
    const expected = sidecarDigest(await readSidecar(store, sidecar.key, context.signal), kind);
    const actual = kind === 'md5' ? hashes.md5 : hashes.sha256;
    if (expected !== actual) {
      throw new GravityError('DOWNLOAD_CORRUPT', `${file} does not match ${sidecar.key}: ${kind} ${actual} but expected ${expected ?? 'a digest'}`, {
        hint: 'The backup file is damaged or the checksum file is stale; use another backup',
      });
    }
  }
  await writeJsonAtomic(metaFile, {key: object.key, etag: null, size: info.size, sha256: hashes.sha256, mtimeMs: info.mtimeMs, verifiedAt: new Date().toISOString()} satisfies CacheMeta);
  return {key: object.key, path: file, size: info.size, sha256: hashes.sha256};
}

async function downloadSegment(
  context: Context,
  object: BackupObject,
  handle: FileHandle,
  segment: Segment,
  report: (bytes: number) => void,
  persist: () => void,
  hasher: OrderedHasher,
): Promise<void> {
  const attempts = context.options.attempts ?? 4;
  for (let attempt = 1; segment.start + segment.done <= segment.end; attempt++) {
    try {
      await context.limiter.run(async () => {
        if (context.signal.aborted) throw context.signal.reason ?? new Error('aborted');
        const stream = await context.store.open(object.key, {start: segment.start + segment.done, end: segment.end}, context.signal);
        // Writes are queued, not awaited one by one, so the next chunk downloads while the last is
        // written (up to WRITE_AHEAD bytes in flight). `segment.done` advances only when a write has
        // completed, so the resume state never claims bytes that are not on disk.
        let writes: Promise<void> = Promise.resolve();
        let inFlight = 0;
        try {
          for await (const chunk of stream) {
            // Data may already be buffered when Ctrl-C comes: stop at the next chunk, not at the end.
            if (context.signal.aborted) throw context.signal.reason ?? new Error('aborted');
            const buffer = chunk as Buffer;
            const position = segment.start + segment.done + inFlight;
            if (position + buffer.length > segment.end + 1) {
              throw new GravityError('DOWNLOAD_CORRUPT', `The source sent more bytes of ${object.key} than the range asked for`, {
                hint: 'The S3 server may not support ranged reads; report this with the server name',
              });
            }
            hasher.feed(position, buffer);
            inFlight += buffer.length;
            writes = writes.then(async () => {
              // Queued data is dropped once interrupted: what is on disk is exactly what the state says.
              if (context.signal.aborted) throw context.signal.reason ?? new Error('aborted');
              await handle.write(buffer, 0, buffer.length, position);
              inFlight -= buffer.length;
              segment.done += buffer.length;
              report(buffer.length);
              persist();
            });
            writes.catch(() => undefined);
            if (inFlight > WRITE_AHEAD) await writes;
          }
        } finally {
          stream.destroy();
          await writes.catch(() => undefined);
        }
        await writes;
        if (segment.start + segment.done <= segment.end) {
          throw Object.assign(new Error(`connection closed early while reading ${object.key}`), {code: 'ECONNRESET'});
        }
      });
    } catch (error) {
      if (isAbort(error, context.signal)) throw error;
      if (error instanceof GravityError && error.code !== 'S3_NETWORK') throw error;
      if (attempt >= attempts) throw context.store.mapError(error, object.key);
      // Back off before asking again for the rest of the range: 200 ms, 400 ms, 800 ms…
      await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** (attempt - 1)));
    }
  }
}

async function fetchRemote(context: Context, object: BackupObject): Promise<FetchedFile> {
  const relative = safeRelative(object.key);
  const finalPath = path.join(context.downloadRoot, relative);
  const metaFile = path.join(context.metaRoot, `${relative}.json`);
  const partPath = `${finalPath}.part`;
  const statePath = `${partPath}.json`;
  const etag = object.etag ?? null;

  const meta = await readJson<CacheMeta>(metaFile);
  const present = await stat(finalPath).catch(() => null);
  if (meta && present && meta.etag === etag && meta.size === object.size && present.size === object.size) {
    context.options.onProgress?.({key: object.key, bytes: object.size, total: object.size, rate: 0});
    return {key: object.key, path: finalPath, size: object.size, sha256: meta.sha256};
  }

  await mkdir(path.dirname(finalPath), {recursive: true});
  let state = await readJson<PartState>(statePath);
  const partInfo = await stat(partPath).catch(() => null);
  const usable =
    state !== null &&
    partInfo !== null &&
    state.etag === etag &&
    state.size === object.size &&
    partInfo.size === object.size &&
    Array.isArray(state.segments) &&
    state.segments.every((segment) => segment.done >= 0 && segment.start + segment.done <= segment.end + 1);
  // The part file is preallocated sparse, its blocks taken as the bytes arrive: the space they need
  // is asked for before it is made.
  await context.space.reserve(usable && state ? object.size - state.segments.reduce((total, segment) => total + segment.done, 0) : object.size);
  if (!usable || !state) {
    state = {
      etag,
      size: object.size,
      segments: planSegments(object.size, context.options.parallelThreshold ?? 64 * MIB, context.options.concurrency ?? 4),
    };
    // Preallocated to full length so parallel parts can write at their own offsets.
    const fresh = await open(partPath, 'w');
    await fresh.truncate(object.size);
    await fresh.close();
    await writeJsonAtomic(statePath, state);
  } else if (state.segments.some((segment) => segment.done > 0)) {
    context.resumed = true;
  }
  const current = state;

  let bytes = current.segments.reduce((total, segment) => total + segment.done, 0);
  let sessionBytes = 0;
  const started = Date.now();
  let lastProgress = 0;
  let lastReported = bytes;
  const report = (count: number) => {
    bytes += count;
    sessionBytes += count;
    context.transferred += count;
    const now = Date.now();
    // By time for a smooth bar, and by bytes so a fast local download still reports as it goes.
    if (now - lastProgress >= PROGRESS_MS || bytes - lastReported >= PROGRESS_BYTES || bytes === object.size) {
      lastProgress = now;
      lastReported = bytes;
      context.options.onProgress?.({key: object.key, bytes, total: object.size, rate: sessionBytes / Math.max(0.001, (now - started) / 1000)});
    }
  };
  // The state file may lag the data (never lead it): a crash then re-downloads a little, never skips.
  let lastFlush = Date.now();
  let flushing: Promise<void> = Promise.resolve();
  const persist = () => {
    if (Date.now() - lastFlush < STATE_FLUSH_MS) return;
    lastFlush = Date.now();
    const snapshot = JSON.parse(JSON.stringify(current)) as PartState;
    flushing = flushing.then(() => writeJsonAtomic(statePath, snapshot)).catch(() => undefined);
  };

  const hasher = new OrderedHasher(needsMd5(context, object), object.size);
  const handle = await open(partPath, 'r+');
  try {
    const results = await Promise.allSettled(
      current.segments.map((segment) => downloadSegment(context, object, handle, segment, report, persist, hasher)),
    );
    const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failure) throw failure.reason;
  } finally {
    await handle.close();
    await flushing;
    await writeJsonAtomic(statePath, current).catch(() => undefined);
  }

  let sha256: string;
  try {
    sha256 = await verify(context, object, partPath, hasher);
  } catch (error) {
    if (error instanceof GravityError && error.code === 'DOWNLOAD_CORRUPT') await rm(statePath, {force: true});
    throw error;
  }
  await rename(partPath, finalPath);
  await rm(statePath, {force: true});
  await writeJsonAtomic(metaFile, {key: object.key, etag, size: object.size, sha256, verifiedAt: new Date().toISOString()} satisfies CacheMeta);
  return {key: object.key, path: finalPath, size: object.size, sha256};
}

/** Pick the objects to download: with `collections`, only those collections' files of a dump tree. */
function chooseObjects(backup: Backup, wanted: string[] | undefined): {data: BackupObject[]; treeNamespaces: Map<string, string>} {
  const data = backup.objects.filter((object) => !isSidecarKey(object.key));
  const treeNamespaces = new Map<string, string>();
  for (const object of data) {
    if (packedFormatOf(object.key) !== null) continue;
    const relative = object.key === backup.id ? object.key : object.key.slice(backup.id.length + 1);
    const namespace = namespaceOfMember(relative);
    if (namespace !== null) treeNamespaces.set(object.key, namespace);
  }
  if (!wanted || wanted.length === 0) return {data, treeNamespaces};
  const packed = data.filter((object) => packedFormatOf(object.key) !== null);
  const known = [...new Set(treeNamespaces.values())];
  if (packed.length === 0) {
    const missing = wanted.filter((collection) => !known.some((namespace) => namespaceMatches(namespace, collection)));
    if (missing.length > 0) {
      const names = [...new Set(known.map((namespace) => collectionOfNamespace(namespace)))].sort();
      throw new GravityError('UNKNOWN_COLLECTION', `Backup ${backup.id} holds no collection ${missing.join(', ')}`, {
        hint: names.length ? `Known collections: ${names.join(', ')}` : 'Run `gravity-restore inspect` on the backup to see what it holds',
        details: {missing, known: names},
      });
    }
  }
  const selected = data.filter((object) => {
    const namespace = treeNamespaces.get(object.key);
    if (namespace === undefined) return packedFormatOf(object.key) !== null;
    return wanted.some((collection) => namespaceMatches(namespace, collection));
  });
  return {data: selected, treeNamespaces};
}

/**
 * Download (or find in the cache) the objects of a backup, verify them, and unpack packed ones
 * through `options.unpack`. A second fetch of an unchanged backup transfers nothing.
 */
export async function fetchBackup(store: BackupStore, backup: Backup, options: FetchOptions): Promise<FetchResult> {
  const internal = new AbortController();
  const onUserAbort = () => internal.abort(options.signal?.reason);
  if (options.signal?.aborted) throw interrupted(backup, options.signal.reason);
  options.signal?.addEventListener('abort', onUserAbort, {once: true});

  const root = sourceRoot(options.cacheDir, store);
  const sidecars = new Map<string, BackupObject[]>();
  for (const object of backup.objects) {
    if (!isSidecarKey(object.key)) continue;
    const base = object.key.replace(/\.(sha256|md5)$/i, '');
    sidecars.set(base, [...(sidecars.get(base) ?? []), object]);
  }
  const context: Context = {
    store,
    backup,
    options,
    signal: internal.signal,
    limiter: new Semaphore(options.concurrency ?? 4),
    downloadRoot: path.join(options.cacheDir, 'downloads', root),
    metaRoot: path.join(options.cacheDir, 'meta', root),
    sidecars,
    transferred: 0,
    resumed: false,
    space: new SpaceGuard(path.join(options.cacheDir, 'downloads'), 'the download', {shown: options.cacheDir, hint: 'Free some space, or point --cache (GRAVITY_RESTORE_CACHE) at a larger disk'}),
  };

  try {
    const {data, treeNamespaces} = chooseObjects(backup, options.collections);
    // Objects in progress at once are bounded too: a dump tree of thousands of files must not open thousands of files.
    const objectLimiter = new Semaphore(2 * (options.concurrency ?? 4));
    const results = await Promise.allSettled(
      data.map(async (object) => {
        try {
          return await objectLimiter.run(async () => {
            if (internal.signal.aborted) throw internal.signal.reason ?? new Error('aborted');
            return store.localPath ? await fetchLocal(context, object) : await fetchRemote(context, object);
          });
        } catch (error) {
          // One failed object stops the others; their progress is saved for the next run.
          internal.abort(error);
          throw error;
        }
      }),
    );
    const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected').map((result) => result.reason as unknown);
    if (failures.length > 0) {
      if (options.signal?.aborted) throw interrupted(backup, options.signal.reason);
      const meaningful = failures.find((error) => (error as {name?: string}).name !== 'AbortError' && !(error instanceof GravityError && error.code === 'INTERRUPTED')) ?? failures[0];
      throw meaningful instanceof GravityError ? meaningful : store.mapError(meaningful);
    }
    const files = results.map((result) => (result as PromiseFulfilledResult<FetchedFile>).value);

    const collections: Record<string, string> = {};
    const wanted = options.collections ?? [];
    const bsonFiles = files.flatMap((file) => {
      const namespace = treeNamespaces.get(file.key);
      return namespace !== undefined && /\.bson(\.gz)?$/i.test(file.key) ? [{file, namespace, name: collectionOfNamespace(namespace)}] : [];
    });
    for (const {file, namespace, name} of bsonFiles) {
      // The bare collection name, unless two databases share it.
      const shared = bsonFiles.filter((other) => other.name === name).length > 1;
      collections[shared ? namespace : name] = file.path;
    }
    if (options.unpack) {
      // Keyed by source and backup: two sources may each hold a backup of the same name.
      const dir = path.join(options.cacheDir, 'unpacked', root, backup.id.replace(/[^\w.-]+/g, '_'));
      for (const file of files) {
        if (packedFormatOf(file.key) === null) continue;
        Object.assign(collections, await options.unpack({key: file.key, path: file.path, dir}, wanted));
      }
    }
    return {backup: backup.id, files, bytesTransferred: context.transferred, resumed: context.resumed, collections};
  } finally {
    options.signal?.removeEventListener('abort', onUserAbort);
  }
}

/**
 * Local paths of a backup's data objects when an earlier fetch left all of them verified in the
 * cache (same ETag and size), else null. Lets a reader use the copy instead of the network.
 */
export async function cachedBackupFiles(store: BackupStore, backup: Backup, cacheDir: string): Promise<Array<{key: string; path: string}> | null> {
  if (store.localPath) return null;
  const root = sourceRoot(cacheDir, store);
  const files: Array<{key: string; path: string}> = [];
  for (const object of backup.objects) {
    if (isSidecarKey(object.key)) continue;
    const relative = safeRelative(object.key);
    const file = path.join(cacheDir, 'downloads', root, relative);
    const meta = await readJson<CacheMeta>(path.join(cacheDir, 'meta', root, `${relative}.json`));
    const present = await stat(file).catch(() => null);
    if (!meta || !present || meta.etag !== (object.etag ?? null) || meta.size !== object.size || present.size !== object.size) return null;
    files.push({key: object.key, path: file});
  }
  return files.length > 0 ? files : null;
}
