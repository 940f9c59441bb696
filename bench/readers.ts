/** Reader throughput per layout: the same documents as .bson, folders, tarballs and archives. */
import {createReadStream, createWriteStream} from 'node:fs';
import {mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {pipeline} from 'node:stream/promises';
import {createGunzip, createGzip} from 'node:zlib';

import tar from 'tar-stream';

import {Crc64} from '../src/dump/crc64.js';
import {readDump} from '../src/dump/read.js';
import type {DumpEvent} from '../src/dump/types.js';
import {writeArchive} from '../src/dump/write.js';
import {benchDocument} from './data.js';

async function gzipFile(from: string, to: string): Promise<void> {
  await pipeline(createReadStream(from), createGzip({level: 6}), createWriteStream(to));
}

async function tarFolder(root: string, files: string[], to: string, gzip: boolean): Promise<void> {
  const pack = tar.pack();
  const done = gzip ? pipeline(pack, createGzip({level: 6}), createWriteStream(to)) : pipeline(pack, createWriteStream(to));
  for (const rel of files) {
    const data = await readFile(path.join(root, rel));
    await new Promise<void>((resolve, reject) => pack.entry({name: rel, size: data.length}, data, (e) => (e ? reject(e) : resolve())));
  }
  pack.finalize();
  await done;
}

async function count(events: AsyncIterable<DumpEvent>): Promise<number> {
  let n = 0;
  for await (const event of events) if (event.type === 'documents') n += event.docs.length;
  return n;
}

async function gunzipToNowhere(file: string): Promise<void> {
  for await (const _chunk of createReadStream(file, {highWaterMark: 1 << 20}).pipe(createGunzip({chunkSize: 1 << 20}))) {
    // The floor: inflate only.
  }
}

function crcRate(data: Buffer): {whole: number; runs: number} {
  let whole = Infinity;
  let runs = Infinity;
  for (let round = 0; round < 3; round++) {
    let t = performance.now();
    new Crc64().update(data);
    whole = Math.min(whole, performance.now() - t);
    t = performance.now();
    const c = new Crc64();
    for (let at = 0; at < data.length; at += 65536) c.update(data.subarray(at, at + 65536));
    runs = Math.min(runs, performance.now() - t);
  }
  return {whole: data.length / 1e6 / (whole / 1000), runs: data.length / 1e6 / (runs / 1000)};
}

export async function benchReaders(lines: string[]): Promise<void> {
  const docs = Number(process.env.BENCH_READER_DOCS ?? 200_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-readers-'));
  try {
    const meta = JSON.stringify({indexes: [{v: {$numberInt: '2'}, key: {_id: {$numberInt: '1'}}, name: '_id_'}], collectionName: 'artworks', type: 'collection'});
    const plain = path.join(dir, 'plain', 'gravity');
    await mkdir(plain, {recursive: true});
    const bson = path.join(plain, 'artworks.bson');
    await writeFile(bson, Buffer.concat(Array.from({length: docs}, (_v, i) => benchDocument(i))));
    await writeFile(path.join(plain, 'artworks.metadata.json'), meta);
    const gz = path.join(dir, 'gz', 'gravity');
    await mkdir(gz, {recursive: true});
    await gzipFile(bson, path.join(gz, 'artworks.bson.gz'));
    await writeFile(path.join(gz, 'artworks.metadata.json'), meta);
    const files = ['gravity/artworks.metadata.json', 'gravity/artworks.bson'];
    await tarFolder(path.join(dir, 'plain'), files, path.join(dir, 'dump.tar'), false);
    await tarFolder(path.join(dir, 'plain'), files, path.join(dir, 'dump.tar.gz'), true);
    await writeArchive(path.join(dir, 'plain'), path.join(dir, 'dump.archive'));
    await writeArchive(path.join(dir, 'plain'), path.join(dir, 'dump.archive.gz'), {gzip: true});
    const bytes = (await stat(bson)).size;
    const layouts: Array<[string, string]> = [
      ['single .bson', bson],
      ['single .bson.gz', path.join(gz, 'artworks.bson.gz')],
      ['mongodump folder', path.join(dir, 'plain')],
      ['mongodump --gzip folder', path.join(dir, 'gz')],
      ['.tar', path.join(dir, 'dump.tar')],
      ['.tar.gz', path.join(dir, 'dump.tar.gz')],
      ['--archive (CRC-64 checked)', path.join(dir, 'dump.archive')],
      ['--archive --gzip (CRC-64 checked)', path.join(dir, 'dump.archive.gz')],
    ];
    // Two collections of the same size in one --gzip folder: read together, inflated side by side or one by one.
    await gzipFile(bson, path.join(gz, 'sales.bson.gz'));
    await writeFile(path.join(gz, 'sales.metadata.json'), meta.replace('artworks', 'sales'));
    const rounds = Number(process.env.BENCH_RUNS ?? 5);
    const cases: Array<{label: string; run: () => Promise<number>; expect: number; gunzipOf?: string}> = layouts.map(([label, input]) => ({
      label,
      expect: docs,
      run: async () => count(readDump(input, {want: (ns) => ns.collection === 'artworks'})),
      ...(label.includes('--archive --gzip') ? {gunzipOf: input} : label === '.tar.gz' ? {gunzipOf: input} : label === 'single .bson.gz' ? {gunzipOf: input} : {}),
    }));
    cases.push(
      {label: '--gzip folder, 2 collections inflated side by side', expect: 2 * docs, run: async () => count(readDump(path.join(dir, 'gz')))},
      {label: '--gzip folder, 2 collections one by one', expect: 2 * docs, run: async () => count(readDump(path.join(dir, 'gz'), {parallel: 1}))},
    );
    const gunzips = new Map<string, number>();
    const best = new Map<string, number>();
    // Interleaved rounds: each case, then the gunzip of the same file, round after round.
    for (let round = 0; round < rounds; round++) {
      for (const c of cases) {
        const t = performance.now();
        const n = await c.run();
        if (n !== c.expect) throw new Error(`${c.label}: read ${n} documents, expected ${c.expect}`);
        best.set(c.label, Math.min(best.get(c.label) ?? Infinity, performance.now() - t));
        if (c.gunzipOf !== undefined) {
          const g = performance.now();
          await gunzipToNowhere(c.gunzipOf);
          gunzips.set(c.gunzipOf, Math.min(gunzips.get(c.gunzipOf) ?? Infinity, performance.now() - g));
        }
      }
    }
    const crc = crcRate(await readFile(path.join(dir, 'dump.archive')));
    lines.push(
      `### Readers: ${docs.toLocaleString('en-US')} documents, ${(bytes / 1e6).toFixed(0)} MB of BSON, read into raw documents (in-process, fastest of ${rounds} interleaved rounds; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end)`,
      '',
      'Compressed layouts stand beside Node gunzip (1 MiB chunks and reads) of the same file, measured in the same rounds.',
      '',
      '| layout | file size | time | MB/s (uncompressed) | gunzip of the same file | ratio |',
      '|---|---:|---:|---:|---:|---|',
    );
    for (const c of cases) {
      const ms = best.get(c.label)!;
      const input = layouts.find(([label]) => label === c.label)?.[1];
      const size = input === undefined || (await stat(input)).isDirectory() ? null : (await stat(input)).size;
      const g = c.gunzipOf === undefined ? undefined : gunzips.get(c.gunzipOf);
      const goal = c.label.includes('--archive --gzip') ? ' (goal ≤ 1.25×)' : '';
      const ratio = g === undefined ? '' : `**${(ms / g).toFixed(2)}× gunzip**${goal}`;
      lines.push(`| ${c.label} | ${size === null ? 'folder' : `${(size / 1e6).toFixed(0)} MB`} | ${(ms / 1000).toFixed(2)} s | ${((bytes * (c.expect / docs)) / 1e6 / (ms / 1000)).toFixed(0)} | ${g === undefined ? '' : `${(g / 1000).toFixed(2)} s`} | ${ratio} |`);
    }
    const side = best.get('--gzip folder, 2 collections inflated side by side')!;
    const one = best.get('--gzip folder, 2 collections one by one')!;
    lines.push(
      '',
      `Two .bson.gz collections inflated side by side: **${(one / side).toFixed(2)}× the speed** of one by one (${os.availableParallelism()} cores).`,
      `CRC-64 (--archive checksum) over the ${(bytes / 1e6).toFixed(0)} MB archive in one update: ${crc.whole.toFixed(0)} MB/s; in runs of about 64 KiB: ${crc.runs.toFixed(0)} MB/s.`,
      '',
    );
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}
