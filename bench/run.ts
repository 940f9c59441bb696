/**
 * `npm run bench`: measures, in one run, each case against a baseline measured in the same run,
 * and appends the results to bench/RESULTS.md with the machine and date.
 *
 * BENCH_DOCS (default 1,000,000) sets the size of the generated collection; BENCH_ONLY=extract|readers|fetch|target|diff
 * runs one group.
 */
import {execFileSync, spawn} from 'node:child_process';
import {appendFile, stat} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import {ensureBenchTarGz, partnerId} from './data.js';
import {benchFetch} from './fetch.js';
import {benchReaders} from './readers.js';
import {benchTarget} from './target.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const DATA = path.join(here, '.data');
const DOCS = Number(process.env.BENCH_DOCS ?? 1_000_000);
const ONLY = process.env.BENCH_ONLY;

interface Measure {
  ms: number;
  maxRssMb: number;
  matched?: number;
  bytes?: number;
}

function run(cmd: string, args: string[]): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {cwd: root, stdio: ['ignore', 'pipe', 'inherit']});
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Measure);
    });
  });
}

/** The best of `n` runs: the least disturbed by whatever else the machine does. */
async function best(n: number, cmd: string, args: string[]): Promise<Measure> {
  const all: Measure[] = [];
  for (let i = 0; i < n; i++) all.push(await run(cmd, args));
  const fastest = all.reduce((a, b) => (b.ms < a.ms ? b : a));
  return {...fastest, maxRssMb: Math.max(...all.map((m) => m.maxRssMb))};
}

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length}× ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

async function benchExtract(lines: string[]): Promise<void> {
  process.stderr.write(`bench: generating ${DOCS} documents (cached in bench/.data)…\n`);
  const file = await ensureBenchTarGz(DATA, DOCS);
  const gz = (await stat(file)).size;
  const child = path.join(root, 'dist/bench/child.js');
  const eq = `{"partner_id": ObjectId("${partnerId(7).toHexString()}")}`;
  const generic = '{"published": true, "created_at": {"$gte": ISODate("2018-01-01T00:00:00Z"), "$lt": ISODate("2020-01-01T00:00:00Z")}, "dimensions.height": {"$gt": 30}}';
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  process.stderr.write('bench: gunzip\n');
  const gunzip = await best(runs, process.execPath, [child, 'gunzip', file]);
  process.stderr.write('bench: extract (ObjectId equality)\n');
  const extractEq = await best(runs, process.execPath, [child, 'extract', file, eq]);
  process.stderr.write('bench: extract (generic query)\n');
  const extractGeneric = await best(runs, process.execPath, [child, 'extract', file, generic]);
  process.stderr.write('bench: full decode + mingo\n');
  const decode = await best(1, process.execPath, [child, 'decode-mingo', file, generic]);
  let python: Measure | null = null;
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import bson'], {stdio: 'ignore'});
    process.stderr.write('bench: python3-bson\n');
    python = await best(1, '/usr/bin/python3', [path.join(here, 'python-filter.py'), file]);
  } catch {
    process.stderr.write('bench: /usr/bin/python3 with python3-bson not available; skipping that baseline\n');
  }
  if (python && python.matched !== extractGeneric.matched) throw new Error(`python matched ${python.matched}, extract ${extractGeneric.matched}`);
  if (decode.matched !== extractGeneric.matched) throw new Error(`decode+mingo matched ${decode.matched}, extract ${extractGeneric.matched}`);
  const mb = (gunzip.bytes ?? 0) / 1e6;
  const rate = (m: Measure) => `${(mb / (m.ms / 1000)).toFixed(0)} MB/s`;
  lines.push(
    `### Extraction: ${DOCS.toLocaleString('en-US')} documents, ${mb.toFixed(0)} MB of BSON, ${(gz / 1e6).toFixed(0)} MB .tar.gz (best of ${runs})`,
    '',
    '| case | time | throughput (uncompressed) | peak RSS | matched | ratio |',
    '|---|---:|---:|---:|---:|---|',
    `| bare gunzip (Node zlib), baseline | ${(gunzip.ms / 1000).toFixed(2)} s | ${rate(gunzip)} | ${gunzip.maxRssMb.toFixed(0)} MB | | 1.00× |`,
    `| extract, ObjectId equality | ${(extractEq.ms / 1000).toFixed(2)} s | ${rate(extractEq)} | ${extractEq.maxRssMb.toFixed(0)} MB | ${extractEq.matched} | **${(extractEq.ms / gunzip.ms).toFixed(2)}× gunzip** (goal ≤ 1.25×) |`,
    `| extract, generic (boolean + date range + nested number) | ${(extractGeneric.ms / 1000).toFixed(2)} s | ${rate(extractGeneric)} | ${extractGeneric.maxRssMb.toFixed(0)} MB | ${extractGeneric.matched} | ${(extractGeneric.ms / gunzip.ms).toFixed(2)}× gunzip |`,
    `| full decode + mingo, every document | ${(decode.ms / 1000).toFixed(2)} s | ${rate(decode)} | ${decode.maxRssMb.toFixed(0)} MB | ${decode.matched} | generic extract is ${(decode.ms / extractGeneric.ms).toFixed(2)}× faster |`,
    python
      ? `| python3-bson (C) decode + filter | ${(python.ms / 1000).toFixed(2)} s | ${rate(python)} | ${python.maxRssMb.toFixed(0)} MB | ${python.matched} | **generic extract is ${(python.ms / extractGeneric.ms).toFixed(2)}× faster** (goal ≥ 2×) |`
      : '| python3-bson | not available | | | | |',
    '',
  );
}

const lines: string[] = [`## ${new Date().toISOString().slice(0, 10)} — ${machine()}`, '', `Load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`, ''];
if (!ONLY || ONLY === 'extract') await benchExtract(lines);
if (!ONLY || ONLY === 'readers') await benchReaders(lines);
if (!ONLY || ONLY === 'fetch') await benchFetch(lines, DATA);
if (!ONLY || ONLY === 'target') await benchTarget(lines);
if (!ONLY || ONLY === 'diff') await (await import('./diff.js')).benchDiff(lines, DATA, DOCS);
const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
await appendFile(path.join(here, 'RESULTS.md'), `\n${text}`);
process.stderr.write('bench: appended to bench/RESULTS.md\n');
