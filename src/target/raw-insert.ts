/**
 * Inserts that send a set's own BSON bytes.
 *
 * The driver's `insertMany` takes objects and serialises them, so a document of the set would be
 * decoded only to be encoded again. For 100,000 documents of about 550 B against the test server that
 * costs 1.3 s of CPU, against 0.15 s sending the bytes as they are (measured, see bench/RESULTS.md,
 * target case), and the decode is where a push spent most of its time.
 *
 * The driver has no public way to send pre-serialised documents. Its own write paths build the
 * `insert` command's `documents` as an OP_MSG kind-1 document sequence of bytes it serialised
 * (`makeDocumentSequence`, in `mongodb/lib/cmap/commands.js`), and any command given to `db.command`
 * whose field holds such a sequence goes out that way. That function is not part of the driver's
 * public API: when it is missing (another driver version), documents are decoded into their exact
 * form and sent in the command as objects, which serialises to the same bytes, only slower. Either
 * way push reads every written document back and compares bytes.
 * https://www.mongodb.com/docs/manual/reference/command/insert/
 * https://github.com/mongodb/specifications/blob/master/source/message/OP_MSG.md#kind-1-document-sequence
 */
import {createRequire} from 'node:module';

import type {Db, Document, WriteConcernSettings} from 'mongodb';
import {MongoWriteConcernError} from 'mongodb';

import {exactForm, writeForm} from './exact.js';

type SequenceMaker = (field: string, documents: unknown[], serialized: Uint8Array[]) => unknown;

function driverSequenceMaker(): SequenceMaker | null {
  try {
    const commands = createRequire(import.meta.url)('mongodb/lib/cmap/commands.js') as {makeDocumentSequence?: unknown};
    return typeof commands.makeDocumentSequence === 'function' ? (commands.makeDocumentSequence as SequenceMaker) : null;
  } catch {
    return null;
  }
}

const makeSequence = driverSequenceMaker();

/** Whether inserts go out as the set's bytes (true with the driver version this project locks). */
export function sendsRawBytes(): boolean {
  return makeSequence !== null;
}

/** A document the server did not insert: its position in the command, and why. */
export interface RawWriteError {
  index: number;
  code?: number;
  errmsg?: string;
  errInfo?: unknown;
  codeName?: string;
}

export interface RawInsertOptions {
  writeConcern: WriteConcernSettings;
  bypassDocumentValidation?: boolean;
}

/**
 * One unordered `insert` command of `docs` (each a whole BSON document). Returns the per-document
 * write errors; a command the server refuses as a whole, or a write-concern error (whether the
 * documents were kept is then unknown), throws.
 */
export async function insertRaw(db: Db, collection: string, docs: readonly Uint8Array[], options: RawInsertOptions): Promise<RawWriteError[]> {
  const documents = makeSequence ? makeSequence('documents', [...docs], [...docs]) : docs.map((bytes) => exactObject(bytes));
  const {w, wtimeoutMS, journal} = options.writeConcern;
  const command: Document = {
    insert: collection,
    documents,
    ordered: false,
    writeConcern: {...(w === undefined ? {} : {w}), ...(wtimeoutMS === undefined ? {} : {wtimeout: wtimeoutMS}), ...(journal === undefined ? {} : {j: journal})},
    ...(options.bypassDocumentValidation ? {bypassDocumentValidation: true} : {}),
  };
  const reply = await db.command(command);
  if (reply.writeConcernError) throw new MongoWriteConcernError(reply as never);
  return (reply.writeErrors as RawWriteError[] | undefined) ?? [];
}

/** The object form that serialises back to `bytes` (only used when the driver cannot take bytes). */
function exactObject(bytes: Uint8Array): Document {
  const quick = writeForm(bytes);
  return (quick.inexact === null ? quick.doc : exactForm(bytes).doc) as Document;
}
