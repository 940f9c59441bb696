import {ObjectId} from 'bson';
import {startTestMongoServer} from './test/support/mongo-server/index.js';
import {tempDir, writeSet} from './test/integration/target-fixture.js';
import {connectTarget, planSet, pushSet, verifySet, rollbackSet} from './src/target/index.js';
const own = await startTestMongoServer();
const tmp = await tempDir();
const docs = Array.from({length: 20000}, (_, i) => ({_id: new ObjectId(), i, title: 'x'.repeat(900), tags: ['a', 'b']}));
const set = await writeSet(tmp.dir, [{db: 'gravity', name: 'artworks', docs}]);
const conn = await connectTarget({name: 'staging', uri: own.uri, db: 'bench', label: 'staging (bench)'});
const time = async <T,>(label: string, fn: () => Promise<T>) => { const t = performance.now(); const r = await fn(); console.log(label, Math.round(performance.now() - t), 'ms'); return r; };
process.on('exit', (c) => console.log('exit', c));
try {
const plan = await time('plan (20k missing)', () => planSet(set, conn));
await time('push (20k inserts)', () => pushSet(set, conn, plan, {onConflict: 'skip'}));
await time('plan (20k same)', () => planSet(set, conn, {}));
await time('verify (20k)', () => verifySet(set, conn));
await time('rollback (20k)', () => rollbackSet(set, conn));
} catch (e) { console.log('ERR', e); }
await conn.close(); await own.close(); await tmp.cleanup();
