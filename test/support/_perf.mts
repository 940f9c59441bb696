import {MongoClient} from 'mongodb';
import {startTestMongoServer} from './mongo-server/index.js';
const s = await startTestMongoServer();
const c = await new MongoClient(s.uri).connect();
const coll = c.db('p').collection('bulk');
for (let run = 0; run < 3; run++) {
  await coll.deleteMany({});
  const t0 = performance.now();
  for (let b = 0; b < 10; b++) await coll.insertMany(Array.from({length: 1000}, (_, i) => ({n: b * 1000 + i, name: `artwork ${i}`, tags: ['a', 'b'], at: new Date()})));
  const t1 = performance.now();
  const all = await coll.find().toArray();
  const t2 = performance.now();
  console.log(all.length, 'insert', (t1 - t0).toFixed(0), 'find', (t2 - t1).toFixed(0));
}
await c.close(); await s.close();
