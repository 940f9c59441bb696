/** The worker side of `extractInWorker` (in-worker.ts): one extract, reported as messages. */
import {createReadStream} from 'node:fs';
import {parentPort, workerData} from 'node:worker_threads';

import {EJSON} from 'bson';
import type {Document} from 'bson';

import {extract} from './extract.js';
import {serializeError} from './in-worker.js';
import type {WorkerMessage, WorkerRequest} from './in-worker.js';

const request = workerData as WorkerRequest;
const port = parentPort!;
const post = (message: WorkerMessage) => port.postMessage(message);
const controller = new AbortController();
port.on('message', (message: unknown) => {
  if (message === 'abort') controller.abort();
});

try {
  const input =
    typeof request.input === 'string'
      ? request.input
      : request.input.map((f) => ({name: f.name, open: async () => createReadStream(f.path, {highWaterMark: 1024 * 1024})}));
  const result = await extract({
    ...request.options,
    source: {...request.source, input},
    filter: EJSON.parse(request.filter, {relaxed: false}) as Document,
    signal: controller.signal,
    onProgress: (progress) => post({type: 'progress', progress}),
    onNote: (message) => post({type: 'note', message}),
    onWarning: (message) => post({type: 'warning', message}),
  });
  post({type: 'result', result});
} catch (error) {
  post({type: 'error', error: serializeError(error)});
}
