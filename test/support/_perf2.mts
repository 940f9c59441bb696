import {serialize} from 'bson';
import {Store} from './mongo-server/storage.js';
import {Cursors, runCommand} from './mongo-server/commands.js';
import {encodeReply} from './mongo-server/bson-values.js';
const store = new Store();
const state = {store, cursors: new Cursors(), startedAt: 0, connectionId: 1, connections: () => 1};
const docs = Array.from({length: 1000}, (_, i) => Buffer.from(serialize({n: i, name: `artwork ${i}`, tags: ['a', 'b'], at: new Date(), _id: i})));
let t = performance.now();
for (let b = 0; b < 10; b++) {
  const d = docs.map((x, i) => Buffer.from(serialize({n: i, name: 'a', tags: ['a'], at: new Date(), _id: b * 1000 + i})));
  runCommand({db: 'p', body: {insert: 'c'}, raw: Buffer.alloc(0), sequences: new Map([['documents', d]])}, state);
}
console.log('insert', performance.now() - t);
t = performance.now();
const r = runCommand({db: 'p', body: {find: 'c', batchSize: 20000}, raw: Buffer.alloc(0), sequences: new Map()}, state);
console.log('find', performance.now() - t);
t = performance.now();
const bytes = encodeReply(r);
console.log('encode', performance.now() - t, bytes.length);
