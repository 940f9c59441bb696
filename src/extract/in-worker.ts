/**
 * A streaming extract run on a worker thread, for large local backups.
 *
 * Inflating, splitting and matching a backup is one long stream of short-lived 1 MiB buffers. In
 * the CLI's main isolate, whose heap already holds the command framework, V8 answers that stream
 * with a full mark-compact every few dozen megabytes (31 during 666 MB); a worker's fresh isolate
 * collects the same garbage with scavenges alone. Measured on the 1.2 million document bench
 * tarball, with the framework loaded in the main thread: 1.19 s in a worker against 1.33 s in the
 * main thread, worker start-up included (bench/RESULTS.md). Below WORKER_MIN_BYTES the worker's
 * start-up (about 50 ms) is not worth it.
 *
 * Only what can cross a thread boundary goes: local files by path, the parsed query as canonical
 * Extended JSON, callbacks as messages. An abort is passed on as a message, so the worker's
 * extract stops as it would in the main thread, leaving nothing half-written.
 */
import {rm} from 'node:fs/promises';
import {Worker} from 'node:worker_threads';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import {isGzipFile} from '../dump/detect.js';
import {startFileInflate} from '../dump/inflate.js';
import type {FileInflate} from '../dump/inflate.js';
import {GravityError} from '../errors.js';
import type {ErrorCode} from '../errors.js';
import type {ExtractOptions, ExtractProgress, ExtractResult} from './extract.js';

/** Local backups at least this large are read on a worker thread. */
export const WORKER_MIN_BYTES = 32 * 1024 * 1024;

/**
 * Whether an extract reads on a worker: the stream engine, nothing to follow or compare (those need
 * what only the main thread holds), and a local or cached backup (`localBytes`, null for one read
 * from the store) of WORKER_MIN_BYTES or more, or of any size when the query runs a regular
 * expression: a JavaScript regex cannot be interrupted on its own thread, and one that backtracks
 * without end must stay stoppable (the main thread ends the worker, see MatchGuard).
 */
export function readsOnWorker(extract: {engine: string; follow: boolean; comparing: boolean; localBytes: number | null; regex?: boolean}): boolean {
  if (extract.engine !== 'stream' || extract.follow || extract.comparing || extract.localBytes === null) return false;
  return extract.regex === true || extract.localBytes >= WORKER_MIN_BYTES;
}

/** The matching time budget of a worker extract whose query runs regular expressions. */
export interface MatchGuard {
  /** How long the worker may go without a sign of progress; 0: no limit. */
  timeoutMs: number;
  /** The regexes of the query (`/pattern/options`), for the error. */
  patterns: string[];
  collection: string;
}

/** How often the worker says it is alive; a thread stuck in one regex cannot. */
export const HEARTBEAT_MS = 250;
/** After Ctrl-C, how long a worker gets to stop by itself before it is ended. */
const ABORT_GRACE_MS = 1000;

/** What the worker needs: the options that are plain data, and the backup as paths. */
export interface WorkerRequest {
  options: Omit<ExtractOptions, 'filter' | 'source' | 'signal' | 'onProgress' | 'onNote' | 'onWarning' | 'onTemp' | 'createSelector' | 'olderBackup' | 'comparisons'>;
  source: Omit<ExtractOptions['source'], 'input'>;
  /** One local path (file or folder), or the files of a cached backup by name. */
  input: string | Array<{name: string; path: string}>;
  /**
   * The parsed query as canonical Extended JSON (what `parseQuery` itself ends with), so the worker
   * needs no query parser: with the shell-syntax parser loaded, its heap grew past the size at which
   * V8 answers external-memory pressure with mark-compacts (25 instead of 1 over 666 MB).
   */
  filter: string;
}

export type WorkerMessage =
  | {type: 'progress'; progress: ExtractProgress}
  | {type: 'note'; message: string}
  | {type: 'warning'; message: string}
  | {type: 'result'; result: ExtractResult}
  | {type: 'heartbeat'}
  | {type: 'temp'; path: string}
  | {type: 'error'; error: SerializedError};

export interface SerializedError {
  gravity: boolean;
  code?: ErrorCode;
  message: string;
  hint?: string;
  details?: Record<string, unknown>;
  exitCode?: number;
  stack?: string;
}

export function serializeError(error: unknown): SerializedError {
  if (error instanceof GravityError) {
    return {
      gravity: true,
      code: error.code,
      message: error.message,
      ...(error.hint === undefined ? {} : {hint: error.hint}),
      ...(error.details === undefined ? {} : {details: error.details}),
      exitCode: error.exitCode,
      ...(error.stack ? {stack: error.stack} : {}),
    };
  }
  const e = error instanceof Error ? error : new Error(String(error));
  return {gravity: false, message: e.message, ...(e.stack ? {stack: e.stack} : {})};
}

function deserializeError(s: SerializedError): Error {
  const error = s.gravity
    ? new GravityError(s.code!, s.message, {...(s.hint === undefined ? {} : {hint: s.hint}), ...(s.details === undefined ? {} : {details: s.details}), ...(s.exitCode === undefined ? {} : {exitCode: s.exitCode})})
    : new Error(s.message);
  if (s.stack) error.stack = s.stack;
  return error;
}

/**
 * A worker on the entry beside this module: `extract-worker.js` when built. Run from source (the
 * tests), the entry is `.ts` and the worker first registers tsx, which a worker does not inherit.
 */
function startWorker(request: WorkerRequest | null): Worker {
  const ext = path.extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./extract-worker${ext}`, import.meta.url);
  if (ext !== '.ts') return new Worker(entry, {workerData: request});
  const boot = `import('tsx/esm/api').then(({register}) => { register(); return import(${JSON.stringify(entry.href)}); })`;
  return new Worker(boot, {eval: true, workerData: request});
}

let early: Worker | null = null;
/** A gzip file's inflate, started with the early worker, for it to read (startFileInflate). */
let earlyInflate: {file: string; inflate: FileInflate} | null = null;

/**
 * Start the worker before the request is known, so that its start-up (a thread, and the extractor's
 * modules: about 50 ms) overlaps the command's own (settings, the query parser, resolving the
 * backup). It waits for its request; `extractInWorker` hands it one, and `dropEarlyWorker` ends it
 * when the extract runs in process after all.
 */
export function startWorkerEarly(file?: string): void {
  if (early) return;
  // A gzip file starts inflating now too, on a thread of its own, ahead of its reader.
  if (file !== undefined && isGzipFile(file)) earlyInflate = {file: path.resolve(file), inflate: startFileInflate(file)};
  early = startWorker(null);
  early.unref();
  // Until an extract takes it, its failure is nobody's: the extract then starts a worker of its own.
  early.on('error', () => {
    early = null;
  });
}

/** End a worker started early that no extract took, and the inflate started with it. */
export function dropEarlyWorker(): void {
  const worker = early;
  early = null;
  void worker?.terminate();
  void earlyInflate?.inflate.stop();
  earlyInflate = null;
}

/**
 * Runs the extract on a worker. The main thread stays free, so it can end the worker: on Ctrl-C or
 * SIGTERM when the worker does not stop within ABORT_GRACE_MS by itself (a thread spinning in a
 * regex reads no messages), and with a `guard`, when the worker has given no sign of life for
 * its budget. An ended worker's temporary set folder is removed here, as the worker would have.
 */
export function extractInWorker(request: WorkerRequest, callbacks: Pick<ExtractOptions, 'onProgress' | 'onNote' | 'onWarning' | 'signal'>, guard?: MatchGuard): Promise<ExtractResult> {
  return new Promise<ExtractResult>((resolve, reject) => {
    let worker: Worker;
    // The inflate started with the early worker goes to it when it is this request's file; it ends with the extract either way.
    const inflate = earlyInflate;
    earlyInflate = null;
    if (early) {
      worker = early;
      early = null;
      worker.ref();
      const handOver = inflate !== null && typeof request.input === 'string' && path.resolve(request.input) === inflate.file;
      if (handOver) worker.postMessage({type: 'request', request, inflate: {file: inflate.file, port: inflate.inflate.port}}, [inflate.inflate.port]);
      else worker.postMessage({type: 'request', request});
    } else worker = startWorker(request);
    let settled = false;
    let temp: string | null = null;
    let lastSign = Date.now();
    const timers: NodeJS.Timeout[] = [];
    /** Ends a worker that did not finish by itself, removes what it left, then settles. */
    const end = (error: Error) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearInterval(t);
      callbacks.signal?.removeEventListener('abort', onAbort);
      void inflate?.inflate.stop();
      const left = temp;
      void worker
        .terminate()
        .catch(() => undefined)
        .then(() => (left ? rm(left, {recursive: true, force: true}) : undefined))
        .catch(() => undefined)
        .then(() => reject(error));
    };
    const onAbort = () => {
      worker.postMessage('abort');
      const reason = callbacks.signal?.reason;
      const grace = setTimeout(() => end(reason instanceof Error ? reason : new GravityError('INTERRUPTED', 'Interrupted', {hint: 'Run the same command again'})), ABORT_GRACE_MS);
      grace.unref();
      timers.push(grace);
    };
    callbacks.signal?.addEventListener('abort', onAbort, {once: true});
    if (callbacks.signal?.aborted) onAbort();
    if (guard && guard.timeoutMs > 0) {
      const watch = setInterval(() => {
        const quiet = Date.now() - lastSign;
        if (quiet < guard.timeoutMs) return;
        const seconds = Math.round(quiet / 1000);
        end(
          new GravityError(
            'RESOURCE_LIMIT',
            `Matching made no progress for ${seconds} s on collection ${guard.collection} with ${guard.patterns.join(', ')}: a regular expression that backtracks without end (nested repetition such as (a+)+) is the likely cause`,
            {
              hint: 'Rewrite the pattern without nested repetition (for example /a+$/ for /(a+)+$/), or give matching more time with --match-timeout SECONDS (0: no limit)',
              details: {patterns: guard.patterns, collection: guard.collection, timeoutSeconds: guard.timeoutMs / 1000},
            },
          ),
        );
      }, Math.min(1000, Math.max(50, guard.timeoutMs / 4)));
      timers.push(watch);
    }
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clearInterval(t);
      callbacks.signal?.removeEventListener('abort', onAbort);
      void inflate?.inflate.stop();
      // Its work is done (or failed and cleaned up): the thread must not keep the process alive.
      void worker.terminate();
      fn();
    };
    worker.on('message', (message: WorkerMessage) => {
      lastSign = Date.now();
      if (message.type === 'heartbeat') return;
      if (message.type === 'temp') temp = message.path;
      else if (message.type === 'progress') callbacks.onProgress?.(message.progress);
      else if (message.type === 'note') callbacks.onNote?.(message.message);
      else if (message.type === 'warning') (callbacks.onWarning ?? callbacks.onNote)?.(message.message);
      else if (message.type === 'result') finish(() => resolve(message.result));
      else finish(() => reject(deserializeError(message.error)));
    });
    worker.on('error', (error) => finish(() => reject(new GravityError('INTERNAL', `The extract worker failed: ${error.message}`, {hint: 'Run again with --debug, and report it', cause: error}))));
    worker.on('exit', (code) => finish(() => reject(new GravityError('INTERNAL', `The extract worker stopped (exit ${code}) before it finished`, {hint: 'Run again with --debug, and report it'}))));
  });
}
