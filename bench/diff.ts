/**
 * `BENCH_ONLY=diff`: `diff` of a generated collection (BENCH_DOCS, default 1,000,000) against a
 * later backup of it, measured against a plain `extract` of the same file and bare gunzip, each
 * in its own process so peak memory belongs to the case alone.
 *
 * The later backup: every 100th document deleted, `title` nulled in every 50th (offset 1), 1,000
 * documents created. Run directly (`node dist/bench/diff.js <case> …`) this file is the child.
 */
import {spawn} from 'node:child_process';
import {createReadStream, createWriteStream} from 'node:fs';
import {mkdtemp, rename, rm, stat} from 'node:fs/promises';
import {once} from 'node:events';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {createGunzip, createGzip} from 'node:zlib';

import {BSON, type Document} from 'bson';
import tar from 'tar-stream';

import {ensureBenchTarGz, benchDocument} from './data.js';
import {extractArtworks} from './extract-set.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', here.includes(`${path.sep}dist${path.sep}`) ? '..' : '');

interface Measure {
  ms: number;
  maxRssMb: number;
  bytes?: number;
  result?: unknown;
}

/** The "after" backup, derived from the "before" one as described above (cached next to it). */
async function ensureAfter(dir: string, before: string, documents: number): Promise<string> {
  const file = path.join(dir, `artworks-after-${documents}.tar.gz`);
  if (await stat(file).then(() => true, () => false)) return file;
  const {readDump} = await import('../src/dump/read.js');
  let size = 0;
  // Two passes keep memory flat: sizes first (tar needs the entry size up front), then the data.
  const transform = async (each: (doc: Buffer) => Promise<void>) => {
    let i = 0;
    for await (const event of readDump(before)) {
      if (event.type !== 'documents') continue;
      for (const doc of event.docs) {
        const n = i++;
        if (n % 100 === 0) continue;
        if (n % 50 === 1) {
          const d = BSON.deserialize(doc, {promoteValues: false}) as Document;
          d.title = null;
          await each(Buffer.from(BSON.serialize(d)));
        } else {
          await each(doc);
        }
      }
    }
    for (let k = 0; k < 1000; k++) await each(benchDocument(documents + k));
  };
  await transform(async (d) => {
    size += d.length;
  });
  const tmp = `${file}.tmp`;
  const pack = tar.pack();
  const out = createWriteStream(tmp);
  const done = once(out, 'finish');
  pack.pipe(createGzip({level: 6})).pipe(out);
  const meta = Buffer.from(JSON.stringify({indexes: [{v: {$numberInt: '2'}, key: {_id: {$numberInt: '1'}}, name: '_id_'}], collectionName: 'artworks', type: 'collection'}));
  pack.entry({name: 'dump/gravity/artworks.metadata.json', size: meta.length}, meta);
  const entry = pack.entry({name: 'dump/gravity/artworks.bson', size});
  await transform(async (d) => {
    if (!entry.write(d)) await once(entry, 'drain');
  });
  entry.end(() => undefined);
  pack.finalize();
  await done;
  await rename(tmp, file);
  return file;
}

function child(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [path.join(root, 'dist/bench/diff.js'), ...args], {cwd: root, env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'inherit']});
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('error', reject);
    proc.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench diff child ${args.join(' ')} exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1)!) as Measure);
    });
  });
}

async function best(n: number, args: string[], env?: NodeJS.ProcessEnv): Promise<Measure> {
  const all: Measure[] = [];
  for (let i = 0; i < n; i++) all.push(await child(args, env));
  const fastest = all.reduce((a, b) => (b.ms < a.ms ? b : a));
  return {...fastest, maxRssMb: Math.max(...all.map((m) => m.maxRssMb))};
}

export async function benchDiff(lines: string[], dataDir: string, documents: number): Promise<void> {
  process.stderr.write(`bench: diff data (${documents} documents, cached in bench/.data)…\n`);
  const before = await ensureBenchTarGz(dataDir, documents);
  const after = await ensureAfter(dataDir, before, documents);
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  process.stderr.write('bench: gunzip (both files)\n');
  const gunzipBefore = await best(runs, ['gunzip', before]);
  const gunzipAfter = await best(runs, ['gunzip', after]);
  process.stderr.write('bench: extract {} (plain extract of the same file)\n');
  const extractAll = await best(runs, ['extract', before]);
  process.stderr.write('bench: diff (default memory limit: the _id table spills to disk)\n');
  const diffSpilled = await best(runs, ['diff', before, after]);
  process.stderr.write('bench: diff (the whole _id table in memory)\n');
  const diffMemory = await best(runs, ['diff', before, after], {GRAVITY_RESTORE_DIFF_MEMORY_IDS: String(documents * 2)});
  process.stderr.write('bench: extract --missing-in AGAINST --changed-in AGAINST\n');
  const extractCompared = await best(runs, ['extract-compared', before, after]);
  const summary = diffSpilled.result as {missing: number; changed: number; same: number; added: number};
  // Known from how the later backup was made: n % 100 === 0 deleted, n % 50 === 1 nulled (never both).
  const expected = {missing: Math.ceil(documents / 100), changed: Math.floor((documents - 2) / 50) + 1, added: 1000};
  if (summary.missing !== expected.missing || summary.changed !== expected.changed || summary.added !== expected.added) throw new Error(`diff counted ${JSON.stringify(summary)}, expected ${JSON.stringify(expected)}`);
  if (JSON.stringify(diffMemory.result) !== JSON.stringify(diffSpilled.result)) throw new Error('in-memory and spilled diffs disagree');
  const mbBefore = (gunzipBefore.bytes ?? 0) / 1e6;
  const mbBoth = mbBefore + (gunzipAfter.bytes ?? 0) / 1e6;
  const s = (m: Measure) => `${(m.ms / 1000).toFixed(2)} s`;
  const rss = (m: Measure) => `${m.maxRssMb.toFixed(0)} MB`;
  lines.push(
    `### Diff: ${documents.toLocaleString('en-US')} documents (${mbBefore.toFixed(0)} MB of BSON) against a later backup of them (best of ${runs})`,
    '',
    `Later backup: 1% deleted, \`title\` nulled in 2%, 1,000 created. Result: ${summary.missing} missing, ${summary.changed} changed, ${summary.same} same, ${summary.added} added; in-memory and spilled runs agree.`,
    '',
    '| case | time | throughput (BSON read, both sides) | peak RSS | ratio |',
    '|---|---:|---:|---:|---|',
    `| bare gunzip of both files (Node zlib), floor | ${(((gunzipBefore.ms + gunzipAfter.ms) / 1000)).toFixed(2)} s | ${(mbBoth / ((gunzipBefore.ms + gunzipAfter.ms) / 1000)).toFixed(0)} MB/s | ${rss(gunzipBefore)} | |`,
    `| extract --query {} of FROM (reads one file, writes every document), baseline | ${s(extractAll)} | ${(mbBefore / (extractAll.ms / 1000)).toFixed(0)} MB/s | ${rss(extractAll)} | 1.00× |`,
    `| diff FROM AGAINST, _id table spilled to disk (default limit) | ${s(diffSpilled)} | ${(mbBoth / (diffSpilled.ms / 1000)).toFixed(0)} MB/s | **${rss(diffSpilled)}** (goal < 300 MB) | ${(diffSpilled.ms / extractAll.ms).toFixed(2)}× extract |`,
    `| diff FROM AGAINST, whole _id table in memory | ${s(diffMemory)} | ${(mbBoth / (diffMemory.ms / 1000)).toFixed(0)} MB/s | ${rss(diffMemory)} | ${(diffMemory.ms / extractAll.ms).toFixed(2)}× extract |`,
    `| extract --missing-in AGAINST --changed-in AGAINST (${JSON.stringify(extractCompared.result)}) | ${s(extractCompared)} | ${(mbBoth / (extractCompared.ms / 1000)).toFixed(0)} MB/s | ${rss(extractCompared)} | ${(extractCompared.ms / extractAll.ms).toFixed(2)}× extract |`,
    '',
  );
}

async function runChild(kind: string, file: string, against?: string): Promise<void> {
  const started = process.hrtime.bigint();
  let bytes = 0;
  let result: unknown;
  if (kind === 'gunzip') {
    for await (const chunk of createReadStream(file, {highWaterMark: 1 << 20}).pipe(createGunzip({chunkSize: 1 << 20}))) bytes += (chunk as Buffer).length;
  } else if (kind === 'extract') {
    const out = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-set-'));
    const r = await extractArtworks(file, path.join(out, 'set'));
    result = r.counts;
    await rm(out, {recursive: true, force: true});
  } else if (kind === 'extract-compared') {
    const {BackupAgainst} = await import('../src/extract/compare.js');
    const out = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-set-'));
    const index = await BackupAgainst.open(against!, {kind: 'backup', label: against!}, {dir: path.join(out, 'against'), want: (_db, c) => c === 'artworks'});
    try {
      const r = await extractArtworks(file, path.join(out, 'set'), {comparisons: [{against: index, missing: true, changed: true}]});
      result = r.counts;
    } finally {
      await index.close();
      await rm(out, {recursive: true, force: true});
    }
  } else if (kind === 'diff') {
    const {runDiff} = await import('../src/diff/diff.js');
    const {resolveSettings} = await import('../src/config/settings.js');
    const r = await runDiff({from: file, against: against!, collections: ['artworks'], added: false}, resolveSettings({}, {}, null, {}));
    const {fields: _fields, ...counts} = r.collections.artworks!;
    result = counts;
  } else {
    throw new Error(`unknown case ${kind}`);
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  process.stdout.write(`${JSON.stringify({ms, maxRssMb: process.resourceUsage().maxRSS / 1024, bytes, result})}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [kind, file, against] = process.argv.slice(2) as [string, string, string?];
  await runChild(kind, file, against);
}
