/**
 * The target steps at scale, through the CLI (bin/run.js, each step its own process so its peak RSS
 * is its own), beside what a short pymongo script does with the same raw documents on the same server
 * in the same run: insert_many for push, an `_id` scan for plan and verify.
 * A second push is killed with SIGKILL at about 40 % and run again (it resumes from its journal); pymongo
 * reads both targets back byte for byte. BENCH_TARGET_DOCS sets the size (default 100,000);
 * MONGODB_TEST_URI points it at a real mongod.
 */
import {execFile, spawn} from 'node:child_process';
import {once} from 'node:events';
import {mkdtemp, rm, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {promisify} from 'node:util';

import {MongoClient} from 'mongodb';

import {extractArtworks} from './extract-set.js';
import {startMongo, withDb} from '../test/support/mongo-backend.js';
import {benchDocument} from './data.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const BIN = path.join(here, '..', 'bin', 'run.js');

interface Step {
  seconds: number;
  /** CPU seconds of the CLI process (user + system): the rest of the wall time is the server's and the network's. */
  cpuSeconds: number;
  maxRssMb: number;
  json: Record<string, unknown>;
}

/** One CLI command under /usr/bin/time: wall seconds, peak RSS, and its --json result. */
async function cli(args: string[]): Promise<Step> {
  const {stdout, stderr} = await run('/usr/bin/time', ['-f', 'BENCH_TIME %e %M %U %S', process.execPath, BIN, ...args, '--json'], {
    maxBuffer: 1 << 30,
    env: {...process.env, CI: 'true'},
  });
  const m = /BENCH_TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/.exec(stderr);
  if (!m) throw new Error(`target bench: no timing for ${args[0]}: ${stderr}`);
  return {seconds: Number(m[1]), cpuSeconds: Number(m[3]) + Number(m[4]), maxRssMb: Number(m[2]) / 1024, json: JSON.parse(stdout) as Record<string, unknown>};
}

interface PyResult {
  seconds: number;
  unequal?: number;
  total?: number;
}

async function pymongo(mode: 'insert' | 'scan' | 'check', uri: string, db: string, file: string): Promise<PyResult> {
  const {stdout} = await run('/usr/bin/python3', [path.join(here, 'pymongo-target.py'), mode, uri, db, 'artworks', file], {maxBuffer: 1 << 20});
  return JSON.parse(stdout) as PyResult;
}

/**
 * The test server in its own process, as a mongod would be: the CLI and the server do not share a
 * heap, and the bench process only drives. A real server (MONGODB_TEST_URI) is used as it is.
 */
async function startServer(): Promise<{uri: string; kind: string; stop: () => Promise<void>}> {
  if (process.env.MONGODB_TEST_URI || process.env.GRAVITY_RESTORE_TEST_MONGO === 'mongod') {
    const mongo = await startMongo({label: 'bench'});
    return {uri: mongo.uri, kind: mongo.kind, stop: () => mongo.stop()};
  }
  const main = path.join(here, '..', 'test', 'support', 'mongo-server', 'main.ts');
  const child = spawn(process.execPath, ['--max-old-space-size=16384', '--import', 'tsx', main], {stdio: ['ignore', 'pipe', 'inherit']});
  const uri = await new Promise<string>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) resolve(text.split('\n')[0]!.trim());
    });
    child.once('exit', (code) => reject(new Error(`test server exited with ${code}`)));
  });
  // A bench that fails leaves no server behind.
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  return {
    uri,
    kind: 'test-server (own process)',
    stop: async () => {
      process.off('exit', orphan);
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/**
 * A CLI step killed with SIGKILL once the target holds `until(count)` documents, as a crash or an
 * OOM kill would: returns how many documents the target held when it was killed.
 */
async function killedStep(args: string[], uri: string, db: string, until: (held: number) => boolean): Promise<number> {
  const child = spawn(process.execPath, [BIN, ...args], {stdio: 'ignore', env: {...process.env, CI: 'true'}});
  const client = new MongoClient(uri);
  try {
    const coll = client.db(db).collection('artworks');
    for (;;) {
      const held = await coll.estimatedDocumentCount();
      if (child.exitCode !== null) throw new Error(`target bench: ${args[0]} ended before it could be killed (exit ${child.exitCode})`);
      if (until(held)) {
        const exited = once(child, 'exit');
        child.kill('SIGKILL');
        await exited;
        return await coll.estimatedDocumentCount();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await client.close();
  }
}

export async function benchTarget(lines: string[]): Promise<void> {
  const docs = Number(process.env.BENCH_TARGET_DOCS ?? 100_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-target-'));
  let mongo: Awaited<ReturnType<typeof startServer>> | null = null;
  try {
    const bson = path.join(dir, 'artworks.bson');
    await writeFile(bson, Buffer.concat(Array.from({length: docs}, (_v, i) => benchDocument(i))));
    const set = path.join(dir, 'set');
    await extractArtworks(bson, set);
    const stamp = Date.now();
    const cliDb = `bench_cli_${stamp}`;
    const killDb = `bench_kill_${stamp}`;
    const pyDb = `bench_py_${stamp}`;
    // Baselines first, in the same run, each side on a server of its own that starts empty: the test
    // server slows as it holds more (a push after pymongo's 1.2 M documents took 23.0 s, before them 20.6 s).
    const baseline = await startServer();
    let pyInsert: number;
    let pyScan: number;
    try {
      pyInsert = (await pymongo('insert', withDb(baseline.uri, pyDb), pyDb, bson)).seconds;
      pyScan = (await pymongo('scan', withDb(baseline.uri, pyDb), pyDb, bson)).seconds;
    } finally {
      await baseline.stop();
    }
    mongo = await startServer();
    const to = withDb(mongo.uri, cliDb);

    const plan = await cli(['plan', set, '--to', to]);
    const push = await cli(['push', set, '--to', to, '--yes']);
    const verify = await cli(['verify', set, '--to', to]);
    const check = await pymongo('check', to, cliDb, bson);
    const replan = await cli(['plan', set, '--to', to]);
    const rollback = await cli(['rollback', set, '--to', to, '--yes']);

    // Killed with SIGKILL at about 40 %, then the same push again: it resumes from its journal.
    const killTo = withDb(mongo.uri, killDb);
    const heldAtKill = await killedStep(['push', set, '--to', killTo, '--yes', '--json'], mongo.uri, killDb, (held) => held >= docs * 0.4);
    const resumed = await cli(['push', set, '--to', killTo, '--yes']);
    const verifyResumed = await cli(['verify', set, '--to', killTo]);
    const checkResumed = await pymongo('check', killTo, killDb, bson);
    // The same for a rollback: killed with about 40 % deleted, then run again.
    const heldAtRollbackKill = await killedStep(['rollback', set, '--to', killTo, '--yes', '--json'], mongo.uri, killDb, (held) => held <= docs * 0.6);
    const rollbackAgain = await cli(['rollback', set, '--to', killTo, '--yes']);
    const left = await pymongo('check', killTo, killDb, bson);

    const inserted = Object.values(push.json.collections as Record<string, {inserted: number}>).reduce((n, c) => n + c.inserted, 0);
    const deleted = Object.values(rollback.json.collections as Record<string, {deleted: number}>).reduce((n, c) => n + c.deleted, 0);
    if (inserted !== docs || verify.json.ok !== true || deleted !== docs) throw new Error('target bench: unexpected result');
    if (check.unequal !== 0 || check.total !== docs) throw new Error(`target bench: pymongo read-back after push: ${JSON.stringify(check)}`);
    if (verifyResumed.json.ok !== true || checkResumed.unequal !== 0 || checkResumed.total !== docs) throw new Error(`target bench: after the killed push and its resume: ${JSON.stringify(checkResumed)}`);
    if (left.total !== 0) throw new Error(`target bench: after the killed rollback and its second run ${left.total} documents are left`);
    const again = rollbackAgain.json.collections as Record<string, {deleted: number; alreadyUndone: number}>;
    const secondRun = Object.values(again).reduce((n, c) => ({deleted: n.deleted + c.deleted, alreadyUndone: n.alreadyUndone + c.alreadyUndone}), {deleted: 0, alreadyUndone: 0});
    const rate = (s: number) => Math.round(docs / s).toLocaleString('en-US');
    const row = (name: string, step: Step, baseline: number | null, baselineName: string) =>
      `| ${name} | ${step.seconds.toFixed(2)} s | ${step.cpuSeconds.toFixed(2)} s | ${rate(step.seconds)} | ${step.maxRssMb.toFixed(0)} MB | ${baseline === null ? '' : `${(step.seconds / baseline).toFixed(2)}× ${baselineName}`} |`;
    const setMb = (await stat(bson)).size / 1e6;
    lines.push(
      `### Target: ${docs.toLocaleString('en-US')} documents (${setMb.toFixed(0)} MB) through the CLI, MongoDB backend: ${mongo.kind}`,
      '',
      'Each step is a whole `bin/run.js` process (start-up included); peak RSS is that process\'s (`/usr/bin/time`). Baselines: a pymongo',
      'script in the same run (`bench/pymongo-target.py`): `insert_many` of the raw documents in batches of 1,000, and',
      '`find({_id: {$in: …}})` over the same `_id`s, on a server of the same kind that starts empty, as the CLI\'s does.',
      '',
      '| step | time | CLI CPU | documents/s | peak RSS | vs baseline |',
      '|---|---:|---:|---:|---:|---|',
      `| pymongo insert_many (baseline) | ${pyInsert.toFixed(2)} s | | ${rate(pyInsert)} | | 1.00× |`,
      `| pymongo _id scan (baseline) | ${pyScan.toFixed(2)} s | | ${rate(pyScan)} | | 1.00× |`,
      row('plan (all inserts)', plan, pyScan, 'scan'),
      row('push after plan (plans each batch again as it writes, reads back, journaled)', push, pyInsert, 'insert_many'),
      row('verify', verify, pyScan, 'scan'),
      row('plan again (all same)', replan, pyScan, 'scan'),
      row('rollback (compare-and-delete, journaled)', rollback, null, ''),
      row(`push again after a SIGKILL at ${((heldAtKill / docs) * 100).toFixed(0)} % (resumes)`, resumed, null, ''),
      row('verify after the resumed push', verifyResumed, pyScan, 'scan'),
      row(`rollback again after a SIGKILL at ${(((docs - heldAtRollbackKill) / docs) * 100).toFixed(0)} % deleted`, rollbackAgain, null, ''),
      '',
      `pymongo read-back (RawBSONDocument, byte for byte) after the push: ${check.total?.toLocaleString('en-US')} documents held, ${check.unequal} missing or different;`,
      `after the killed and resumed push: ${checkResumed.total?.toLocaleString('en-US')} held, ${checkResumed.unequal} missing or different.`,
      `The rollback killed with ${(docs - heldAtRollbackKill).toLocaleString('en-US')} deleted, run again: ${secondRun.deleted.toLocaleString('en-US')} deleted, ${secondRun.alreadyUndone.toLocaleString('en-US')} found already undone, ${left.total} left.`,
      '',
    );
  } finally {
    await mongo?.stop();
    await rm(dir, {recursive: true, force: true});
  }
}
