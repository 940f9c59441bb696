/**
 * Matching with regular expressions that the main thread can always stop.
 *
 * A JavaScript regex that backtracks without end (`/(a+)+$/` against forty a's and a b) holds its
 * thread: no timer, signal handler or abort runs there until it returns. Where a query with regexes
 * is matched on the main thread (a backup streamed from S3, --follow, comparisons, diff), its
 * matching runs instead on a worker thread, asked synchronously, a batch of documents at a time:
 * the main thread waits in short slices, so it can end the worker when one batch has taken longer
 * than the budget (RESOURCE_LIMIT, exit 10, naming the patterns) or on Ctrl-C (the wait runs under
 * `vm`'s breakOnSigint: INTERRUPTED, exit 130). Queries without regexes are never sent there.
 *
 * Batching: asked about the document at [start, end) of a buffer, the worker is sent that document
 * and those that follow it back to back in the same memory (a reader's chunk, a spool's block), up
 * to BATCH_BYTES; later questions about those are answered from the batch once their bytes are
 * found unchanged, so a chunk costs one round trip however many documents it holds.
 */
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import vm from 'node:vm';
import {MessageChannel, receiveMessageOnPort, Worker, type MessagePort} from 'node:worker_threads';

import {GravityError, type ErrorCode} from '../errors.js';

export interface MatchGuardSettings {
  /** The longest one batch may take; 0: no limit (still stoppable by Ctrl-C). */
  timeoutMs: number;
  /** What is being matched, for the error ("collection artworks"). */
  label: string;
}

let settings: MatchGuardSettings | null = null;

/** Turns guarded matching on (or off) for queries compiled from now on in this thread. */
export function configureMatchGuard(next: MatchGuardSettings | null): void {
  settings = next;
}

export function matchGuardSettings(): MatchGuardSettings | null {
  return settings;
}

/** GRAVITY_RESTORE_MATCH_TIMEOUT (seconds) for commands without a --match-timeout flag; default 60 s. */
export function matchTimeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env.GRAVITY_RESTORE_MATCH_TIMEOUT);
  return env.GRAVITY_RESTORE_MATCH_TIMEOUT !== undefined && env.GRAVITY_RESTORE_MATCH_TIMEOUT !== '' && Number.isFinite(value) && value >= 0 ? value * 1000 : 60_000;
}

const BATCH_BYTES = 4 * 1024 * 1024;
const BATCH_DOCS = 8192;
const SLICE_MS = 50;

/** ctrl[0]: 0 idle, 1 asked, 2 answered; ctrl[1]: 1 once the worker has taken the question. */
export const IDLE = 0;
export const ASKED = 1;
export const ANSWERED = 2;

export interface GuardRequest {
  bytes: Uint8Array;
  starts: Int32Array;
  ends: Int32Array;
}

export interface GuardReply {
  /** Per document: 0 no match, 1 match, 2 error (in `errors`). */
  codes: Uint8Array;
  errors: Record<number, {code?: ErrorCode; message: string; hint?: string}>;
}

interface Batch {
  buffer: ArrayBufferLike;
  /** Absolute offset in `buffer` of the batch's first byte. */
  from: number;
  copy: Buffer;
  /** Absolute start → index in the reply. */
  index: Map<number, number>;
  ends: Int32Array;
  reply: GuardReply;
}

function workerEntry(): {entry: URL | string; eval: boolean} {
  const ext = path.extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./match-worker${ext}`, import.meta.url);
  if (ext !== '.ts') return {entry, eval: false};
  // Run from source (the tests), the worker registers tsx first: a worker does not inherit it.
  return {entry: `import('tsx/esm/api').then(({register}) => { register(); return import(${JSON.stringify(entry.href)}); })`, eval: true};
}

/** Documents back to back in `view` from `at`: their [start, end) offsets, up to the batch limits. */
function documentsFrom(view: Buffer, at: number, end: number): {starts: number[]; ends: number[]} {
  const starts = [at];
  const ends = [end];
  let p = end;
  while (starts.length < BATCH_DOCS && p + 5 <= view.length && p - at < BATCH_BYTES) {
    const size = view.readInt32LE(p);
    if (size < 5 || p + size > view.length || view[p + size - 1] !== 0) break;
    starts.push(p);
    ends.push(p + size);
    p += size;
  }
  return {starts, ends};
}

const sigintWait = new vm.Script('wait()');

/** The guarded form of a compiled query's answer on one document. */
export class GuardedMatcher {
  private worker: Worker | null = null;
  private port: MessagePort | null = null;
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(8));
  private batch: Batch | null = null;
  private readonly context: vm.Context;
  private failure: Error | null = null;

  constructor(
    private readonly filter: string,
    private readonly patterns: string[],
    private readonly guard: MatchGuardSettings,
  ) {
    this.context = vm.createContext({wait: () => this.waitForReply()});
  }

  private start(): void {
    const {port1, port2} = new MessageChannel();
    const {entry, eval: isEval} = workerEntry();
    this.worker = new Worker(entry, {eval: isEval, workerData: {filter: this.filter, ctrl: this.ctrl.buffer, port: port2}, transferList: [port2]});
    this.worker.unref();
    this.worker.on('error', (error) => (this.failure = error));
    this.port = port1;
  }

  private stop(): void {
    void this.worker?.terminate().catch(() => undefined);
    this.worker = null;
    this.port?.close();
    this.port = null;
    Atomics.store(this.ctrl, 0, IDLE);
    Atomics.store(this.ctrl, 1, 0);
  }

  /** The verdict on the document at [start, end) of `buffer`. */
  matchesAt(buffer: Buffer, start: number, end: number): boolean {
    const absolute = buffer.byteOffset + start;
    const b = this.batch;
    if (b && b.buffer === buffer.buffer) {
      const i = b.index.get(absolute);
      if (i !== undefined && b.ends[i] === buffer.byteOffset + end && buffer.subarray(start, end).equals(b.copy.subarray(absolute - b.from, absolute - b.from + end - start))) {
        return this.answer(b.reply, i);
      }
    }
    const view = Buffer.from(buffer.buffer, 0, buffer.buffer.byteLength);
    const {starts, ends} = documentsFrom(view, absolute, buffer.byteOffset + end);
    const from = starts[0]!;
    const copy = Buffer.from(view.subarray(from, ends[ends.length - 1]!));
    const request: GuardRequest = {bytes: copy, starts: Int32Array.from(starts, (s) => s - from), ends: Int32Array.from(ends, (e) => e - from)};
    const reply = this.ask(request);
    this.batch = {buffer: buffer.buffer, from, copy, index: new Map(starts.map((s, i) => [s, i])), ends: Int32Array.from(ends), reply};
    return this.answer(reply, 0);
  }

  private answer(reply: GuardReply, i: number): boolean {
    const code = reply.codes[i];
    if (code === 2) {
      const e = reply.errors[i]!;
      throw e.code ? new GravityError(e.code, e.message, e.hint === undefined ? {} : {hint: e.hint}) : new GravityError('INTERNAL', `Matching failed: ${e.message}`);
    }
    return code === 1;
  }

  private ask(request: GuardRequest): GuardReply {
    if (!this.worker) this.start();
    this.port!.postMessage(request);
    Atomics.store(this.ctrl, 1, 0);
    Atomics.store(this.ctrl, 0, ASKED);
    Atomics.notify(this.ctrl, 0);
    try {
      sigintWait.runInContext(this.context, {breakOnSigint: true});
    } catch (error) {
      if ((error as {code?: string}).code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
        this.stop();
        throw new GravityError('INTERRUPTED', 'Interrupted', {hint: 'Run the same command again'});
      }
      throw error;
    }
    const message = receiveMessageOnPort(this.port!)?.message as GuardReply | undefined;
    Atomics.store(this.ctrl, 0, IDLE);
    if (!message) {
      this.stop();
      throw new GravityError('INTERNAL', 'The matching worker gave no answer', {hint: 'Run again with --debug, and report it'});
    }
    return message;
  }

  /** Waits for the worker's reply in slices, ending it when the question has taken longer than the budget. */
  private waitForReply(): void {
    let taken: number | null = null;
    const started = Date.now();
    while (Atomics.load(this.ctrl, 0) !== ANSWERED) {
      Atomics.wait(this.ctrl, 0, ASKED, SLICE_MS);
      if (this.failure) {
        const failure = this.failure;
        this.failure = null;
        this.stop();
        throw new GravityError('INTERNAL', `The matching worker failed: ${failure.message}`, {hint: 'Run again with --debug, and report it', cause: failure});
      }
      if (taken === null && Atomics.load(this.ctrl, 1) === 1) taken = Date.now();
      // The budget counts from when the worker took the question (its start-up is not matching).
      const since = taken ?? started;
      const limit = this.guard.timeoutMs > 0 ? this.guard.timeoutMs : Infinity;
      if (Date.now() - since >= limit && (taken !== null || Date.now() - started >= Math.max(limit, 30_000))) {
        this.stop();
        const seconds = Math.round((Date.now() - since) / 1000);
        throw new GravityError(
          'RESOURCE_LIMIT',
          `Matching made no progress for ${seconds} s on ${this.guard.label} with ${this.patterns.join(', ')}: a regular expression that backtracks without end (nested repetition such as (a+)+) is the likely cause`,
          {
            hint: 'Rewrite the pattern without nested repetition (for example /a+$/ for /(a+)+$/), or give matching more time with --match-timeout SECONDS / GRAVITY_RESTORE_MATCH_TIMEOUT (0: no limit)',
            details: {patterns: this.patterns, label: this.guard.label, timeoutSeconds: this.guard.timeoutMs / 1000},
          },
        );
      }
    }
  }
}
