/** The worker side of guard.ts: answers batches of documents for one compiled query, synchronously. */
import {receiveMessageOnPort, workerData, type MessagePort} from 'node:worker_threads';

import {EJSON, type Document} from 'bson';

import {GravityError} from '../errors.js';
import {compileQuery} from './compile.js';
import {ANSWERED, ASKED, type GuardReply, type GuardRequest} from './guard.js';

const {filter, ctrl: shared, port} = workerData as {filter: string; ctrl: SharedArrayBuffer; port: MessagePort};
const ctrl = new Int32Array(shared);
const query = compileQuery(EJSON.parse(filter, {relaxed: false}) as Document);

for (;;) {
  const state = Atomics.load(ctrl, 0);
  if (state !== ASKED) {
    Atomics.wait(ctrl, 0, state);
    continue;
  }
  const request = receiveMessageOnPort(port)?.message as GuardRequest | undefined;
  if (!request) continue;
  Atomics.store(ctrl, 1, 1);
  const bytes = Buffer.from(request.bytes.buffer, request.bytes.byteOffset, request.bytes.byteLength);
  const reply: GuardReply = {codes: new Uint8Array(request.starts.length), errors: {}};
  for (let i = 0; i < request.starts.length; i++) {
    try {
      reply.codes[i] = query.matchesAt(bytes, request.starts[i]!, request.ends[i]!) ? 1 : 0;
    } catch (error) {
      // Kept for the document it concerns: the batch may run past the documents the reader will ask about.
      reply.codes[i] = 2;
      reply.errors[i] = error instanceof GravityError ? {code: error.code, message: error.message, ...(error.hint === undefined ? {} : {hint: error.hint})} : {message: (error as Error).message};
    }
  }
  port.postMessage(reply);
  Atomics.store(ctrl, 0, ANSWERED);
  Atomics.notify(ctrl, 0);
}
