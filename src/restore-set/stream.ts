/**
 * A set's documents in batches, read from disk as they are needed: memory holds one batch, not the
 * collection. The file is checked against the manifest (sha256, size, document count) in a first
 * streaming pass, so no batch of a tampered set is ever handed out.
 */
import {createHash} from 'node:crypto';
import {createReadStream} from 'node:fs';
import path from 'node:path';

import {BsonSplitter} from '../dump/split.js';
import {GravityError} from '../errors.js';
import {tampered} from './manifest.js';
import type {RestoreSet} from './manifest.js';

const READ_CHUNK = 1024 * 1024;

function entryOf(set: RestoreSet, collection: string) {
  const entry = set.manifest.collections[collection];
  if (!entry) {
    throw new GravityError('UNKNOWN_COLLECTION', `Collection ${collection} is not in the restore set`, {
      hint: `The set holds: ${Object.keys(set.manifest.collections).join(', ')}`,
    });
  }
  return entry;
}

async function checkFile(set: RestoreSet, collection: string): Promise<void> {
  const entry = entryOf(set, collection);
  const hash = createHash('sha256');
  const splitter = new BsonSplitter(entry.file);
  let bytes = 0;
  let documents = 0;
  for await (const chunk of createReadStream(path.join(set.dir, entry.file), {highWaterMark: READ_CHUNK})) {
    const data = chunk as Buffer;
    hash.update(data);
    bytes += data.length;
    documents += splitter.push(data).length;
  }
  splitter.end();
  if (hash.digest('hex') !== entry.sha256) throw tampered(entry.file, 'does not match its sha256 in the manifest');
  if (bytes !== entry.bytes) throw tampered(entry.file, `holds ${bytes} bytes but the manifest says ${entry.bytes}`);
  if (documents !== entry.documents) throw tampered(entry.file, `holds ${documents} documents but the manifest says ${entry.documents}`);
}

/** The collection's documents in backup order, `batchDocs` at a time, each its own copy. */
export async function* setDocumentBatches(set: RestoreSet, collection: string, batchDocs = 1000): AsyncGenerator<Buffer[]> {
  await checkFile(set, collection);
  const entry = entryOf(set, collection);
  const splitter = new BsonSplitter(entry.file);
  let batch: Buffer[] = [];
  for await (const chunk of createReadStream(path.join(set.dir, entry.file), {highWaterMark: READ_CHUNK})) {
    // Copies: a subarray would keep its whole 1 MiB read chunk alive as long as the document.
    for (const doc of splitter.push(chunk as Buffer)) {
      batch.push(Buffer.from(doc));
      if (batch.length >= batchDocs) {
        yield batch;
        batch = [];
      }
    }
  }
  splitter.end();
  if (batch.length > 0) yield batch;
}
