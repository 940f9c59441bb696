import {Readable, pipeline} from 'node:stream';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import {GravityError} from '../errors.js';
import type {MessagePort} from 'node:worker_threads';

import {GUNZIP_CHUNK, gunzipFromPort, gunzipOffThread, InflateError} from './inflate.js';

export type Chunks = AsyncIterable<Buffer>;

function corrupt(message: string, hint: string, cause?: unknown): GravityError {
  return new GravityError('DUMP_CORRUPT', message, {hint, cause});
}

/**
 * The first `min` bytes of a chunk stream (fewer if it is shorter), and the whole stream again
 * (head included) to go on reading without a second open.
 */
export async function peek(chunks: Chunks, min: number): Promise<{head: Buffer; all: Chunks; close: () => Promise<void>}> {
  const iterator = chunks[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let size = 0;
  let done = false;
  while (size < min) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    seen.push(next.value);
    size += next.value.length;
  }
  const head = seen.length === 1 ? seen[0]! : Buffer.concat(seen);
  async function* replay(): AsyncGenerator<Buffer> {
    try {
      for (const chunk of seen) yield chunk;
      seen.length = 0;
      while (!done) {
        const next = await iterator.next();
        if (next.done) break;
        yield next.value;
      }
    } finally {
      // Early exit by the consumer: release the underlying stream now.
      await iterator.return?.();
    }
  }
  return {head, all: replay(), close: async () => {
    await iterator.return?.();
  }};
}

function zlibError(error: unknown, where: string): GravityError {
  const code = (error as {code?: string}).code;
  if (code === 'Z_BUF_ERROR') {
    return corrupt(`${where}: truncated gzip (the compressed data ends early)`, 'The file is incomplete; fetch the backup again', error);
  }
  return corrupt(`${where}: corrupt gzip data (${(error as Error).message})`, 'The file is damaged; fetch the backup again', error);
}

/** A worker's inflate, its zlib failures reported as the reading thread's zlib stream reports them. */
async function* withZlibErrors(inflated: AsyncGenerator<Buffer>, where: string): AsyncGenerator<Buffer> {
  try {
    yield* inflated;
  } catch (error) {
    if (error instanceof InflateError && error.code?.startsWith('Z_')) throw zlibError(error, where);
    throw error;
  }
}

/** The chunks of a file's inflate started on another thread (`startFileInflate`), read from its port. */
export function gunzipPort(port: MessagePort, onRead: (bytes: number) => void, where: string): AsyncGenerator<Buffer> {
  return withZlibErrors(gunzipFromPort(port, onRead), where);
}

/**
 * Decompresses a gzip chunk stream (concatenated members too) with node's zlib stream; `offThread`
 * runs it on a worker thread of its own (`inflate.ts`), for one long stream read while its documents
 * are matched.
 */
export async function* gunzip(chunks: Chunks, where: string, {offThread = false}: {offThread?: boolean} = {}): AsyncGenerator<Buffer> {
  if (offThread) {
    yield* withZlibErrors(gunzipOffThread(chunks, GUNZIP_CHUNK), where);
    return;
  }
  const gz = zlib.createGunzip({chunkSize: GUNZIP_CHUNK});
  const source = Readable.from(chunks, {objectMode: false});
  pipeline(source, gz, () => {
    // Errors surface through the iteration of `gz` below.
  });
  try {
    for await (const chunk of gz) yield chunk as Buffer;
  } catch (error) {
    if (error instanceof GravityError) throw error;
    const code = (error as {code?: string}).code;
    if (typeof code === 'string' && code.startsWith('Z_')) throw zlibError(error, where);
    throw error;
  } finally {
    gz.destroy();
    source.destroy();
  }
}

export interface TarEntry {
  name: string;
  size: number;
  type: string;
  body: Chunks;
  /** Skip the rest of this member's data without keeping it. */
  drain(): Promise<void>;
}

function tarError(error: unknown, where: string): unknown {
  if (error instanceof GravityError) return error;
  const message = (error as Error).message ?? String(error);
  if (/invalid tar header/i.test(message)) {
    return corrupt(`${where}: not a tar archive (${message})`, 'Check that the file is a tarball; fetch the backup again', error);
  }
  if (/unexpected end/i.test(message)) {
    return corrupt(`${where}: truncated tar archive (${message})`, 'The file is incomplete; fetch the backup again', error);
  }
  return error;
}

/** A member's bytes; the tar's own errors (a truncated member) surface here, where they are read. */
async function* memberChunks(entry: AsyncIterable<Buffer>, where: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of entry) yield chunk;
  } catch (error) {
    throw tarError(error, where);
  }
}

/** Members of a tar stream (ustar, GNU and pax headers, long names), read in order. */
export async function* tarEntries(chunks: Chunks, where: string): AsyncGenerator<TarEntry> {
  const extract = tar.extract();
  const source = Readable.from(chunks, {objectMode: false});
  pipeline(source, extract, () => {
    // Errors surface through the iteration of `extract` below.
  });
  try {
    for await (const entry of extract) {
      const header = entry.header;
      let consumed = false;
      const body: Chunks = {
        [Symbol.asyncIterator]: () => {
          consumed = true;
          return memberChunks(entry as AsyncIterable<Buffer>, where)[Symbol.asyncIterator]();
        },
      };
      const drain = async (): Promise<void> => {
        if (consumed) return;
        consumed = true;
        for await (const _chunk of entry as AsyncIterable<Buffer>) {
          // Skipped member: its bytes pass through and are dropped.
        }
      };
      yield {name: header.name, size: header.size ?? 0, type: header.type ?? 'file', body, drain};
      if (!consumed) await drain();
    }
  } catch (error) {
    throw tarError(error, where);
  } finally {
    extract.destroy();
    source.destroy();
  }
}

/** Reads a whole (small) stream into one buffer, refusing more than `limit` bytes. */
export async function slurp(chunks: Chunks, limit: number, where: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of chunks) {
    size += chunk.length;
    if (size > limit) {
      throw corrupt(`${where}: larger than ${limit} bytes, not a metadata file`, 'Check the backup layout');
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/**
 * Runs up to `concurrency` generators at once and yields their items as they come: each
 * generator's own items stay in order, generators interleave. A generator is only asked for its
 * next item once the previous one was taken, so memory stays bounded by what each one buffers.
 */
export async function* interleave<T>(jobs: Array<() => AsyncGenerator<T>>, concurrency: number): AsyncGenerator<T> {
  if (concurrency <= 1 || jobs.length <= 1) {
    for (const job of jobs) yield* job();
    return;
  }
  type Slot = {iterator: AsyncGenerator<T>; pending: Promise<{slot: Slot; result: IteratorResult<T>}>};
  const active = new Set<Slot>();
  let next = 0;
  const arm = (slot: Slot): void => {
    slot.pending = slot.iterator.next().then((result) => ({slot, result}));
  };
  const start = (): void => {
    const iterator = jobs[next++]!();
    const slot = {iterator} as Slot;
    arm(slot);
    active.add(slot);
  };
  try {
    while (active.size < concurrency && next < jobs.length) start();
    while (active.size > 0) {
      const {slot, result} = await Promise.race([...active].map((s) => s.pending));
      if (result.done) {
        active.delete(slot);
        if (next < jobs.length) start();
        continue;
      }
      arm(slot);
      yield result.value;
    }
  } finally {
    // Early exit or a failure in one of them: close the others (each waits for its pending item).
    await Promise.allSettled([...active].map(async (slot) => {
      await slot.pending.catch(() => undefined);
      await slot.iterator.return(undefined);
    }));
  }
}
