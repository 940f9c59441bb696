/**
 * A local file as a dump source. Its `file` tells the reader it may inflate a gzip file on a worker
 * that reads the file itself. Kept apart from the reader so that naming files (a fetched backup's
 * cache, say) does not load it.
 */
import {createReadStream} from 'node:fs';
import path from 'node:path';

import type {DumpStreamSource} from './types.js';

/** Local files are read in 1 MiB chunks: fewer, larger batches for the consumer. */
const LOCAL_CHUNK = 1024 * 1024;

/** `size`, when known, counts toward the reader's progress total. */
export function localSource(file: string, name: string, size?: number): DumpStreamSource {
  return {name, ...(size === undefined ? {} : {size}), file: path.resolve(file), open: async () => createReadStream(file, {highWaterMark: LOCAL_CHUNK})};
}
