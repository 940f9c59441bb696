/**
 * Decode speed of the S2/Snappy stream decoder (src/compress/s2.ts) against Node's gunzip and the
 * zstd (fzstd) and LZ4 (lz4.ts) decoders used here, on the same concatenated BSON documents, read
 * from files in 1 MiB reads. The S2 and Snappy files are written by S2's own Go writer
 * (test/support/s2-encode; PBM's default options: s2.NewWriter with 1 MiB blocks; and its
 * Snappy-compatible mode), the gzip file by zlib at level 6, the zstd and lz4 files by the `zstd`
 * (level 3) and `lz4` commands. Rounds are interleaved; best of BENCH_RUNS (default 5).
 * BENCH_COMPRESS_DOCS sets the size (default 300,000).
 */
import {execFileSync} from 'node:child_process';
import {createReadStream} from 'node:fs';
import {mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {createGunzip, gzipSync} from 'node:zlib';

import {crc32c, crc32cTable} from '../src/compress/crc32c.js';
import {decodeLz4Stream} from '../src/compress/lz4.js';
import {decodeS2Stream} from '../src/compress/s2.js';
import {decodeZstdStream} from '../src/compress/zstd.js';
import {goS2Encoder} from '../test/support/s2-encoders.js';
import {benchDocument} from './data.js';

const READ = 1 << 20;

async function drain(chunks: AsyncIterable<Buffer>): Promise<number> {
  let n = 0;
  for await (const chunk of chunks) n += chunk.length;
  return n;
}

function rate(bytes: number, ms: number): string {
  return `${(bytes / 1e6 / (ms / 1000)).toFixed(0)} MB/s`;
}

export async function benchCompress(lines: string[]): Promise<void> {
  const docs = Number(process.env.BENCH_COMPRESS_DOCS ?? 300_000);
  const rounds = Number(process.env.BENCH_RUNS ?? 5);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-compress-'));
  try {
    const plain = Buffer.concat(Array.from({length: docs}, (_v, i) => benchDocument(i)));
    const {encode, reason} = await goS2Encoder();
    lines.push(`### S2 / Snappy decode against gunzip, zstd and lz4 (${docs.toLocaleString('en-US')} documents, ${(plain.length / 1e6).toFixed(0)} MB of BSON)`, '');
    if (!encode) {
      lines.push(`Skipped: no S2 encoder on this machine (${reason}).`, '');
      return;
    }
    const files = new Map<string, string>();
    const write = async (name: string, data: Buffer): Promise<void> => {
      const file = path.join(dir, name);
      await writeFile(file, data);
      files.set(name, file);
    };
    await write('docs.s2', await encode(plain, []));
    await write('docs.better.s2', await encode(plain, ['-level', 'better']));
    await write('docs.snappy', await encode(plain, ['-snappy']));
    await write('docs.gz', gzipSync(plain, {level: 6}));
    let zstd = true;
    try {
      // The zstd command's default level 3 is also the default of the Go writer PBM uses.
      await write('docs.zst', execFileSync('zstd', ['-c', '-3'], {input: plain, maxBuffer: 2 ** 31}));
    } catch {
      zstd = false;
    }
    let lz4 = true;
    try {
      // pierrec/lz4, PBM's writer, defaults to 4 MiB independent blocks with a content checksum, as the command does.
      await write('docs.lz4', execFileSync('lz4', ['-c', '-q'], {input: plain, maxBuffer: 2 ** 31}));
    } catch {
      lz4 = false;
    }

    const cases: Array<[string, string, () => AsyncIterable<Buffer>]> = [
      ['s2 (PBM default writer)', 'docs.s2', () => decodeS2Stream(createReadStream(files.get('docs.s2')!, {highWaterMark: READ}), {where: 'docs.s2'})],
      ['s2 "better"', 'docs.better.s2', () => decodeS2Stream(createReadStream(files.get('docs.better.s2')!, {highWaterMark: READ}), {where: 'docs.better.s2'})],
      ['snappy (framed)', 'docs.snappy', () => decodeS2Stream(createReadStream(files.get('docs.snappy')!, {highWaterMark: READ}), {where: 'docs.snappy'})],
      ['gunzip (zlib, 1 MiB chunks)', 'docs.gz', () => createReadStream(files.get('docs.gz')!, {highWaterMark: READ}).pipe(createGunzip({chunkSize: READ}))],
    ];
    if (lz4) cases.push(['lz4 (frame)', 'docs.lz4', () => decodeLz4Stream(createReadStream(files.get('docs.lz4')!, {highWaterMark: READ}), 'docs.lz4')]);
    if (zstd) cases.push(['zstd (fzstd, XXH64 checked here)', 'docs.zst', () => decodeZstdStream(createReadStream(files.get('docs.zst')!, {highWaterMark: READ}), 'docs.zst')]);
    const best = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      for (const [label, , open] of cases) {
        const t = performance.now();
        const n = await drain(open());
        if (n !== plain.length) throw new Error(`${label}: decoded ${n} bytes, expected ${plain.length}`);
        best.set(label, Math.min(best.get(label) ?? Infinity, performance.now() - t));
      }
    }
    const gunzip = best.get('gunzip (zlib, 1 MiB chunks)')!;
    lines.push('| decoder | file size | best time | decoded MB/s | vs gunzip |', '|---|---:|---:|---:|---:|');
    for (const [label, name] of cases) {
      const ms = best.get(label)!;
      const size = (await stat(files.get(name)!)).size;
      lines.push(`| ${label} | ${(size / 1e6).toFixed(1)} MB | ${(ms / 1000).toFixed(3)} s | ${rate(plain.length, ms)} | ${(gunzip / ms).toFixed(2)}× |`);
    }
    const sample = await readFile(files.get('docs.s2')!);
    const crcBest = (f: (b: Buffer) => number): number => {
      let ms = Infinity;
      for (let r = 0; r < 3; r++) {
        const t = performance.now();
        for (let at = 0; at < sample.length; at += READ) f(sample.subarray(at, at + READ));
        ms = Math.min(ms, performance.now() - t);
      }
      return ms;
    };
    if (!zstd) lines.push('', 'zstd: not measured (no `zstd` command to write the file).');
    if (!lz4) lines.push('', 'lz4: not measured (no `lz4` command to write the file).');
    lines.push('', `CRC-32C over ${(sample.length / 1e6).toFixed(0)} MB in 1 MiB pieces: @node-rs/crc32 ${rate(sample.length, crcBest((b) => crc32c(b)))}, JavaScript slicing-by-8 tables ${rate(sample.length, crcBest((b) => crc32cTable(b)))}.`, '');
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}
