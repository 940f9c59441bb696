/** The worker side of `extractInWorker` (in-worker.ts): one extract, reported as messages. */
import {parentPort, workerData} from 'node:worker_threads';
import type {MessagePort} from 'node:worker_threads';

import {EJSON} from 'bson';
import type {Document} from 'bson';

import {offerFileInflate} from '../dump/inflate.js';
import {HEARTBEAT_MS, serializeError} from './in-worker.js';
import {fileSources} from './source.js';
import type {WorkerMessage, WorkerRequest} from './in-worker.js';

const loading = import('./extract.js');
const port = parentPort!;
const post = (message: WorkerMessage) => port.postMessage(message);
const controller = new AbortController();
// Started early (startWorkerEarly), the worker gets its request as a message once the command knows it.
let received: (request: WorkerRequest) => void = () => undefined;
const asked = new Promise<WorkerRequest>((resolve) => (received = resolve));
port.on('message', (message: unknown) => {
  if (message === 'abort') controller.abort();
  else if ((message as {type?: string}).type === 'request') {
    const {request, inflate} = message as {request: WorkerRequest; inflate?: {file: string; port: MessagePort}};
    // The command started inflating the file already: the reader takes that stream instead of opening its own.
    if (inflate) offerFileInflate(inflate.file, inflate.port);
    received(request);
  }
});
const request = (workerData as WorkerRequest | null) ?? (await asked);
// Signs of life for the main thread's matching budget: none come while a regex holds this thread.
setInterval(() => post({type: 'heartbeat'}), HEARTBEAT_MS).unref();
const {extract} = await loading;

try {
  const input = typeof request.input === 'string' ? request.input : fileSources(request.input);
  const result = await extract({
    ...request.options,
    source: {...request.source, input},
    filter: EJSON.parse(request.filter, {relaxed: false}) as Document,
    signal: controller.signal,
    onProgress: (progress) => post({type: 'progress', progress}),
    onNote: (message) => post({type: 'note', message}),
    onWarning: (message) => post({type: 'warning', message}),
    onTemp: (path) => post({type: 'temp', path}),
  });
  post({type: 'result', result});
} catch (error) {
  post({type: 'error', error: serializeError(error)});
}
