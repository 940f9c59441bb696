/** plan and push throughput for 10,000 documents against a sandbox target. */
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {extract} from '../src/extract/extract.js';
import {readRestoreSet} from '../src/restore-set/manifest.js';
import {connectTarget, planSet, pushSet, rollbackSet, verifySet} from '../src/target/index.js';
import {startMongo} from '../test/support/mongo-backend.js';
import {benchDocument} from './data.js';

export async function benchTarget(lines: string[]): Promise<void> {
  const docs = Number(process.env.BENCH_TARGET_DOCS ?? 10_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-target-'));
  const mongo = await startMongo({label: 'bench'});
  try {
    const bson = path.join(dir, 'artworks.bson');
    await writeFile(bson, Buffer.concat(Array.from({length: docs}, (_v, i) => benchDocument(i))));
    const out = path.join(dir, 'set');
    await extract({source: {input: bson, backup: null, location: bson, takenAt: null, objects: []}, collection: 'artworks', queryText: '{}', filter: {}, follow: false, relations: [], out, engine: 'stream', toolVersion: 'bench'});
    const set = await readRestoreSet(out);
    const uri = `${mongo.uri.replace(/\/[^/:]*$/, '')}/bench_${Date.now()}`;
    const conn = await connectTarget({name: 'adhoc', uri, db: uri.split('/').pop()!, label: 'bench'}, {monitorCommands: true});
    // Round trips: every command the driver sends (the connection is already open and pinged).
    let commands = 0;
    conn.client.on('commandStarted', () => commands++);
    const measure = async <T>(work: () => Promise<T>): Promise<{value: T; ms: number; trips: number}> => {
      const before = commands;
      const t = performance.now();
      const value = await work();
      return {value, ms: performance.now() - t, trips: commands - before};
    };
    try {
      const {value: plan, ms: planMs, trips: planTrips} = await measure(() => planSet(set, conn));
      const {value: pushed, ms: pushMs, trips: pushTrips} = await measure(() => pushSet(set, conn, plan, {onConflict: 'skip'}));
      const {value: replan, ms: replanMs, trips: replanTrips} = await measure(() => planSet(set, conn));
      const {value: verified, ms: verifyMs, trips: verifyTrips} = await measure(() => verifySet(set, conn));
      const {value: rolled, ms: rollbackMs, trips: rollbackTrips} = await measure(() => rollbackSet(set, conn));
      if (rolled.collections.artworks?.deleted !== docs) throw new Error('target bench: rollback did not delete every inserted document');
      const inserted = Object.values(pushed.collections).reduce((n, c) => n + c.inserted, 0);
      if (inserted !== docs || !verified.ok || replan.collections.artworks?.same !== docs) throw new Error('target bench: unexpected result');
      const rate = (ms: number) => Math.round(docs / (ms / 1000)).toLocaleString('en-US');
      lines.push(
        `### Target: ${docs.toLocaleString('en-US')} documents of ~500 bytes, MongoDB backend: ${mongo.kind}`,
        '',
        '| step | time | documents/s | round trips |',
        '|---|---:|---:|---:|',
        `| plan (all inserts) | ${(planMs / 1000).toFixed(2)} s | ${rate(planMs)} | ${planTrips} |`,
        `| push (unordered batches of 1,000, journaled) | ${(pushMs / 1000).toFixed(2)} s | ${rate(pushMs)} | ${pushTrips} |`,
        `| plan again (all same) | ${(replanMs / 1000).toFixed(2)} s | ${rate(replanMs)} | ${replanTrips} |`,
        `| verify | ${(verifyMs / 1000).toFixed(2)} s | ${rate(verifyMs)} | ${verifyTrips} |`,
        `| rollback (compare-and-delete, journaled) | ${(rollbackMs / 1000).toFixed(2)} s | ${rate(rollbackMs)} | ${rollbackTrips} |`,
        '',
      );
    } finally {
      await conn.close();
    }
  } finally {
    await mongo.stop();
    await rm(dir, {recursive: true, force: true});
  }
}
