/**
 * gunzip on a thread of its own.
 *
 * Node's zlib stream inflates on the thread pool, but each chunk it inflates is handed back through
 * the event loop of the thread that reads it, and the next inflate starts only then. While that
 * thread splits and matches documents, the inflate waits for it: on the 1.2 million document bench
 * tarball the two mostly took turns (the matching thread sat idle 0.58 s of 1.5 s, waiting, while the
 * whole inflate takes 0.85 s alone). Here a small worker owns the zlib stream; its event loop does
 * nothing else, so it inflates continuously, a few MiB ahead of the reader, and hands over each
 * buffer zlib has filled by transferring its memory, not by copying it.
 *
 * The worker's code is a short CommonJS script evaluated as is (no file to resolve, whether the
 * project runs built or from source). Errors keep zlib's `code` (`Z_BUF_ERROR` for a truncated
 * stream, `Z_DATA_ERROR` for corrupt data) so the caller reports them as it does for the stream on
 * the reading thread.
 */
import {MessageChannel, Worker} from 'node:worker_threads';
import type {MessagePort} from 'node:worker_threads';

import type {Chunks} from './streams.js';

/**
 * zlib's default 16 KiB output chunks cost more in per-chunk overhead than in memory saved. Measured
 * on the 1.2 M-document bench tarball (farm-bench, whole process, medians of 7 runs): a stream
 * with chunks and reads of 1 MiB took 0.930 s, 2 MiB 0.892 s, 4 MiB 0.876 s, 8 MiB 0.892 s and
 * 16 MiB 0.930 s; the 16 KiB default takes about three times as long (bench/RESULTS.md). In the
 * extract pipeline 2 and 4 MiB measured the same (4 % faster than 1 MiB), but with 4 MiB the peak
 * RSS of an extract rose from 181 to 224 MB: 2 MiB it is.
 */
export const GUNZIP_CHUNK = 2 * 1024 * 1024;

/** Inflated bytes in flight before the worker pauses. */
const AHEAD_BYTES = 8 * 1024 * 1024;
/** Bytes taken before the reader tells the worker (fewer messages to its thread, which paces the inflate). */
const ACK_BYTES = 4 * 1024 * 1024;
/** Compressed chunks sent before the worker has taken them. */
const INPUT_AHEAD = 4;

const WORKER_SOURCE = `
const {parentPort, workerData} = require('node:worker_threads');
const fs = require('node:fs');
const zlib = require('node:zlib');
// Replies go to the parent, or to the port a file's inflate was started with (see startFileInflate).
const port = workerData.port || parentPort;
const gz = zlib.createGunzip({chunkSize: workerData.chunkSize});
let ahead = workerData.ahead;
let inFlight = 0;
let file = null;
// zlib writes its output into a buffer of chunkSize, one piece after another (a piece ends where an
// input chunk ran out), and takes a new buffer only once one is full; it never writes again where a
// piece was given out. The pieces of a buffer are sent together when it is full, its memory
// transferred, not copied: the reader gets them as views in the order they came.
let pieces = [];
let bytes = 0;
let current = null;
const send = (buffer) => {
  port.postMessage({type: 'data', buffer, pieces, read: file ? file.bytesRead : 0}, [buffer]);
  inFlight += bytes;
  pieces = [];
  bytes = 0;
  if (inFlight >= ahead) gz.pause();
};
gz.on('data', (chunk) => {
  // zlib has moved on to another buffer: it is done with this one.
  if (chunk.buffer !== current && pieces.length > 0) send(current);
  current = null;
  if (chunk.buffer.byteLength !== workerData.chunkSize) {
    // Not a buffer of zlib's own (a small one may come from the shared pool): copied out.
    const copy = new Uint8Array(chunk.length);
    copy.set(chunk);
    pieces.push(0, chunk.length);
    bytes += chunk.length;
    send(copy.buffer);
    return;
  }
  current = chunk.buffer;
  pieces.push(chunk.byteOffset, chunk.length);
  bytes += chunk.length;
  // Full: zlib takes a new buffer for what comes next.
  if (chunk.byteOffset + chunk.length === current.byteLength) {
    send(current);
    current = null;
  }
});
gz.on('end', () => {
  // The last buffer, part full: zlib is done with it.
  if (pieces.length > 0) send(current);
  port.postMessage({type: 'end', read: file ? file.bytesRead : 0});
});
gz.on('error', (error) => port.postMessage({type: 'error', code: error.code, message: error.message}));
port.on('message', (m) => {
  if (m.type === 'input') gz.write(Buffer.from(m.chunk.buffer, m.chunk.byteOffset, m.chunk.length), () => port.postMessage({type: 'taken'}));
  else if (m.type === 'end') gz.end();
  else if (m.type === 'ack') {
    if (m.ahead) ahead = m.ahead;
    inFlight -= m.bytes;
    if (inFlight < ahead) gz.resume();
  }
});
if (workerData.file) {
  file = fs.createReadStream(workerData.file, {highWaterMark: workerData.chunkSize});
  file.on('error', (error) => port.postMessage({type: 'error', code: error.code, message: error.message}));
  file.pipe(gz);
}
`;

type FromWorker = {type: 'data'; buffer: ArrayBuffer; pieces: number[]; read?: number} | {type: 'taken'} | {type: 'end'; read?: number} | {type: 'error'; code?: string; message: string};

/** A zlib failure as the worker saw it, with zlib's code. */
export class InflateError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

/**
 * The receiving side of an inflate worker, whether its messages come straight from it or through a
 * port: chunks queue up as they arrive and are handed out in order; the bytes taken are
 * acknowledged, so the worker stays a bounded number of bytes ahead. A failure is thrown once the
 * chunks that came before it are out.
 */
class Inbox {
  private readonly ready: Buffer[] = [];
  private ended = false;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private read = 0;

  /** @param onRead told how many more compressed bytes the worker has read (a worker reading a file itself) */
  constructor(private readonly onRead?: (bytes: number) => void) {}

  receive(m: FromWorker): void {
    if (m.type === 'data') {
      for (let i = 0; i < m.pieces.length; i += 2) this.ready.push(Buffer.from(m.buffer, m.pieces[i], m.pieces[i + 1]));
      this.progress(m.read);
    } else if (m.type === 'end') {
      this.progress(m.read);
      this.ended = true;
    } else if (m.type === 'error') this.failure ??= new InflateError(m.message, m.code);
    this.notify();
  }

  fail(error: Error): void {
    this.failure ??= error;
    this.notify();
  }

  /** The worker or its port went away: a failure unless the stream had ended. */
  gone(what: string): void {
    if (!this.ended) this.fail(new Error(`the inflate worker stopped before the end of the ${what}`));
  }

  /**
   * The chunks in order. The bytes taken are acknowledged with `ack(bytes, first)`: the first chunk
   * at once (it may end a head start), then every ACK_BYTES, and always before waiting for more, so
   * a worker held back by chunks not yet acknowledged is never waited for.
   */
  async *chunks(ack: (bytes: number, first: boolean) => void): AsyncGenerator<Buffer> {
    let first = true;
    let untold = 0;
    for (;;) {
      const chunk = this.ready.shift();
      if (chunk) {
        untold += chunk.length;
        if (untold >= ACK_BYTES || first) {
          ack(untold, first);
          untold = 0;
          first = false;
        }
        yield chunk;
        continue;
      }
      if (untold > 0) {
        ack(untold, false);
        untold = 0;
      }
      if (this.failure) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private progress(total: number | undefined): void {
    if (this.onRead && total !== undefined && total > this.read) {
      this.onRead(total - this.read);
      this.read = total;
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/**
 * Inflate a gzip chunk stream (concatenated members too) on a worker thread. Stopping early (the
 * consumer returns) ends the worker and the reading of `chunks`.
 */
export async function* gunzipOffThread(chunks: Chunks, chunkSize: number): AsyncGenerator<Buffer> {
  const worker = new Worker(WORKER_SOURCE, {eval: true, workerData: {chunkSize, ahead: AHEAD_BYTES}});
  const inbox = new Inbox();
  let inputWaiting = 0;
  let inputWake: (() => void) | null = null;
  worker.on('message', (m: FromWorker) => {
    if (m.type !== 'taken') {
      inbox.receive(m);
      return;
    }
    inputWaiting--;
    const w = inputWake;
    inputWake = null;
    w?.();
  });
  worker.on('error', (error) => inbox.fail(error));
  worker.on('exit', () => inbox.gone('stream'));

  let stopped = false;
  const feed = (async () => {
    for await (const chunk of chunks) {
      if (stopped) return;
      // A copy the worker can own: a read chunk may share its memory with the reader's next one.
      const own = new Uint8Array(chunk.length);
      own.set(chunk);
      inputWaiting++;
      worker.postMessage({type: 'input', chunk: own}, [own.buffer]);
      while (inputWaiting >= INPUT_AHEAD && !stopped) await new Promise<void>((resolve) => (inputWake = resolve));
    }
    if (!stopped) worker.postMessage({type: 'end'});
  })();
  feed.catch((error: unknown) => inbox.fail(error instanceof Error ? error : new Error(String(error))));

  try {
    yield* inbox.chunks((bytes) => worker.postMessage({type: 'ack', bytes}));
  } finally {
    stopped = true;
    // Assigned in the feeding loop above: TypeScript does not see it from here.
    (inputWake as (() => void) | null)?.();
    await worker.terminate();
    await feed.catch(() => undefined);
  }
}

/** Inflated bytes a file's inflate may hold before its reader starts (then AHEAD_BYTES): the head start it gets. */
const HEAD_START_BYTES = 32 * 1024 * 1024;

/** A file being inflated by a worker the caller started: the port its chunks come through. */
export interface FileInflate {
  port: MessagePort;
  /** End the worker (when the stream was read to its end, or is no longer wanted). */
  stop(): Promise<void>;
}

/**
 * Inflate a local gzip file on a worker that reads the file itself, its chunks sent through a port
 * that can be handed to another thread (`gunzipFromPort` there). It starts at once and holds up to
 * HEAD_START_BYTES inflated until its reader comes: the extract command starts it as soon as
 * its flags are parsed, and the reading starts some 60 ms later, once its worker has loaded.
 */
export function startFileInflate(file: string, chunkSize = GUNZIP_CHUNK): FileInflate {
  const {port1, port2} = new MessageChannel();
  const worker = new Worker(WORKER_SOURCE, {eval: true, workerData: {chunkSize, ahead: HEAD_START_BYTES, file, port: port1}, transferList: [port1]});
  worker.unref();
  // Its failures reach the reader through the port; a worker that dies says so by closing it.
  worker.on('error', () => undefined);
  return {
    port: port2,
    stop: async () => {
      await worker.terminate();
    },
  };
}

/**
 * The inflated chunks of a `startFileInflate`, read from its port; `onRead` is told how many
 * compressed bytes were read from the file so far, for progress. Errors keep zlib's code.
 */
export async function* gunzipFromPort(port: MessagePort, onRead: (bytes: number) => void): AsyncGenerator<Buffer> {
  const inbox = new Inbox(onRead);
  port.on('message', (m: FromWorker) => inbox.receive(m));
  port.on('close', () => inbox.gone('file'));
  try {
    // The first ack also ends the head start: from here on the worker stays AHEAD_BYTES ahead.
    yield* inbox.chunks((bytes, first) => port.postMessage(first ? {type: 'ack', bytes, ahead: AHEAD_BYTES} : {type: 'ack', bytes}));
  } finally {
    port.close();
  }
}

let offered: {file: string; port: MessagePort} | null = null;

/** Make a file's inflate, started on another thread, available to the next reader of that file. */
export function offerFileInflate(file: string, port: MessagePort): void {
  offered?.port.close();
  offered = {file, port};
}

/** The port of an inflate offered for `file` (taken once), or null. */
export function takeFileInflate(file: string): MessagePort | null {
  if (offered?.file !== file) return null;
  const {port} = offered;
  offered = null;
  return port;
}
