/**
 * The target steps at scale, through the CLI (bin/run.js, each step its own process so its peak RSS
 * is its own), beside what a short pymongo script does with the same raw documents on the same server
 * in the same run: insert_many for push, an `_id` scan for plan and verify.
 * BENCH_TARGET_DOCS sets the size (default 100,000); MONGODB_TEST_URI points it at a real mongod.
 */
import {execFile} from 'node:child_process';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';

import {extract} from '../src/extract/extract.js';
import {startMongo} from '../test/support/mongo-backend.js';
import {benchDocument} from './data.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'run.js');

interface Step {
  seconds: number;
  maxRssMb: number;
  json: Record<string, unknown>;
}

/** One CLI command under /usr/bin/time: wall seconds, peak RSS, and its --json result. */
async function cli(args: string[]): Promise<Step> {
  const {stdout, stderr} = await run('/usr/bin/time', ['-f', 'BENCH_TIME %e %M', process.execPath, BIN, ...args, '--json'], {
    maxBuffer: 1 << 30,
    env: {...process.env, CI: 'true'},
  });
  const m = /BENCH_TIME ([\d.]+) (\d+)/.exec(stderr);
  if (!m) throw new Error(`target bench: no timing for ${args[0]}: ${stderr}`);
  return {seconds: Number(m[1]), maxRssMb: Number(m[2]) / 1024, json: JSON.parse(stdout) as Record<string, unknown>};
}

async function pymongo(mode: 'insert' | 'scan', uri: string, db: string, file: string): Promise<number> {
  const {stdout} = await run('/usr/bin/python3', [path.join(here, 'pymongo-target.py'), mode, uri, db, 'artworks', file], {maxBuffer: 1 << 20});
  return (JSON.parse(stdout) as {seconds: number}).seconds;
}

function withDb(uri: string, db: string): string {
  const m = /^(mongodb(?:\+srv)?:\/\/[^/?]+)(?:\/[^?]*)?(\?.*)?$/.exec(uri)!;
  return `${m[1]}/${db}${m[2] ?? ''}`;
}

export async function benchTarget(lines: string[]): Promise<void> {
  const docs = Number(process.env.BENCH_TARGET_DOCS ?? 100_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-target-'));
  const mongo = await startMongo({label: 'bench'});
  try {
    const bson = path.join(dir, 'artworks.bson');
    await writeFile(bson, Buffer.concat(Array.from({length: docs}, (_v, i) => benchDocument(i))));
    const set = path.join(dir, 'set');
    await extract({source: {input: bson, backup: null, location: bson, takenAt: null, objects: []}, collection: 'artworks', queryText: '{}', filter: {}, follow: false, relations: [], out: set, engine: 'stream', toolVersion: 'bench'});
    const stamp = Date.now();
    const cliDb = `bench_cli_${stamp}`;
    const pyDb = `bench_py_${stamp}`;
    const to = withDb(mongo.uri, cliDb);

    const plan = await cli(['plan', set, '--to', to]);
    const push = await cli(['push', set, '--to', to, '--yes']);
    const verify = await cli(['verify', set, '--to', to]);
    const replan = await cli(['plan', set, '--to', to]);
    const rollback = await cli(['rollback', set, '--to', to, '--yes']);
    const pyInsert = await pymongo('insert', withDb(mongo.uri, pyDb), pyDb, bson);
    const pyScan = await pymongo('scan', withDb(mongo.uri, pyDb), pyDb, bson);

    const inserted = Object.values(push.json.collections as Record<string, {inserted: number}>).reduce((n, c) => n + c.inserted, 0);
    const deleted = Object.values(rollback.json.collections as Record<string, {deleted: number}>).reduce((n, c) => n + c.deleted, 0);
    if (inserted !== docs || verify.json.ok !== true || deleted !== docs) throw new Error('target bench: unexpected result');
    const rate = (s: number) => Math.round(docs / s).toLocaleString('en-US');
    const row = (name: string, step: Step, baseline: number | null, baselineName: string) =>
      `| ${name} | ${step.seconds.toFixed(2)} s | ${rate(step.seconds)} | ${step.maxRssMb.toFixed(0)} MB | ${baseline === null ? '' : `${(step.seconds / baseline).toFixed(2)}× ${baselineName}`} |`;
    lines.push(
      `### Target: ${docs.toLocaleString('en-US')} documents of ~500 bytes through the CLI, MongoDB backend: ${mongo.kind}`,
      '',
      'Each step is a whole `bin/run.js` process (start-up included); peak RSS is that process\'s. Baselines: a pymongo',
      'script on the same server in the same run (`bench/pymongo-target.py`): `insert_many` of the raw documents in',
      'batches of 1,000, and `find({_id: {$in: …}})` over the same `_id`s.',
      '',
      '| step | time | documents/s | peak RSS | vs baseline |',
      '|---|---:|---:|---:|---|',
      `| pymongo insert_many (baseline) | ${pyInsert.toFixed(2)} s | ${rate(pyInsert)} | | 1.00× |`,
      `| pymongo _id scan (baseline) | ${pyScan.toFixed(2)} s | ${rate(pyScan)} | | 1.00× |`,
      row('plan (all inserts)', plan, pyScan, 'scan'),
      row('push (journaled, read back, parallel writers)', push, pyInsert, 'insert_many'),
      row('verify', verify, pyScan, 'scan'),
      row('plan again (all same)', replan, pyScan, 'scan'),
      row('rollback (compare-and-delete, journaled)', rollback, null, ''),
      '',
    );
  } finally {
    await mongo.stop();
    await rm(dir, {recursive: true, force: true});
  }
}
