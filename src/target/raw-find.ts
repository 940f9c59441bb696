/**
 * `find` whose replies are read as bytes.
 *
 * The driver's cursor with `raw: true` hands back each document as bytes, but on the way it parses
 * every document of the reply into arrays of element offsets: about 1.5 KB of short-lived objects per
 * document of 550 B, the largest allocator of a push (its read-back) and of plan and verify lookups
 * (measured with V8's sampling heap profiler, 100,000 documents: 250 of 656 MB). A `find` sent as a
 * command with `raw: true` gives the reply's `cursor` subdocument as bytes instead; the documents of
 * its batch are found here by their lengths, with nothing decoded. Only public driver API is used
 * (`Db.command` with the `raw` serialisation option).
 * https://www.mongodb.com/docs/manual/reference/command/find/
 * https://www.mongodb.com/docs/manual/reference/command/getMore/
 */
import {Long} from 'bson';
import type {Db, Document} from 'mongodb';

import {valueSize} from '../query/raw.js';

const TYPE_DOCUMENT = 0x03;
const TYPE_ARRAY = 0x04;
const TYPE_INT64 = 0x12;

interface Batch {
  id: bigint;
}

function malformed(what: string): Error {
  return new Error(`the server's find reply is malformed: ${what}`);
}

/** Walk a reply's `cursor` subdocument: each document of its first or next batch to `visit`; the cursor id back. */
export function walkCursor(cursor: Buffer, visit: (raw: Buffer) => void): Batch {
  let id = 0n;
  let sawBatch = false;
  const end = cursor.readInt32LE(0) - 1;
  let at = 4;
  while (at < end) {
    const type = cursor[at]!;
    const nameEnd = cursor.indexOf(0, at + 1);
    if (nameEnd < 0) throw malformed('a field name runs past the end');
    const name = cursor.toString('latin1', at + 1, nameEnd);
    const value = nameEnd + 1;
    const size = valueSize(cursor, type, value);
    if (size < 0 || value + size > end + 1) throw malformed(`field ${name} runs past the end`);
    if (name === 'id' && type === TYPE_INT64) id = cursor.readBigInt64LE(value);
    else if ((name === 'firstBatch' || name === 'nextBatch') && type === TYPE_ARRAY) {
      sawBatch = true;
      const arrayEnd = value + size - 1;
      let el = value + 4;
      while (el < arrayEnd) {
        if (cursor[el] !== TYPE_DOCUMENT) throw malformed('a batch holds something other than documents');
        const docAt = cursor.indexOf(0, el + 1) + 1;
        if (docAt <= 0) throw malformed('an array index runs past the end');
        const length = cursor.readInt32LE(docAt);
        if (length < 5 || docAt + length > arrayEnd) throw malformed('a document runs past its batch');
        visit(cursor.subarray(docAt, docAt + length));
        el = docAt + length;
      }
    }
    at = value + size;
  }
  if (!sawBatch) throw malformed('no firstBatch or nextBatch');
  return {id};
}

/**
 * Every document matching `filter`, as bytes that share the reply's buffer: `visit` copies what it
 * keeps. Further batches are fetched with `getMore`; a cursor left open by a failure is killed.
 */
export async function findRaw(db: Db, collection: string, filter: Document, visit: (raw: Buffer) => void, batchSize: number): Promise<void> {
  const first = (await db.command({find: collection, filter, batchSize}, {raw: true})) as {cursor?: Buffer};
  if (!Buffer.isBuffer(first.cursor)) throw malformed('no cursor');
  let {id} = walkCursor(first.cursor, visit);
  try {
    while (id !== 0n) {
      const more = (await db.command({getMore: Long.fromBigInt(id), collection, batchSize}, {raw: true})) as {cursor?: Buffer};
      if (!Buffer.isBuffer(more.cursor)) throw malformed('no cursor');
      id = walkCursor(more.cursor, visit).id;
    }
  } catch (error) {
    if (id !== 0n) await db.command({killCursors: collection, cursors: [Long.fromBigInt(id)]}).catch(() => undefined);
    throw error;
  }
}
