/** Reader throughput per layout: the same documents as .bson, folders, tarballs and archives. */
import {createReadStream, createWriteStream} from 'node:fs';
import {mkdir, mkdtemp, readFile, rm, stat, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {pipeline} from 'node:stream/promises';
import {createGzip} from 'node:zlib';

import tar from 'tar-stream';

import {readDump} from '../src/dump/read.js';
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
    lines.push(`### Readers: ${docs.toLocaleString('en-US')} documents, ${(bytes / 1e6).toFixed(0)} MB of BSON, read into raw documents (best of 3)`, '', '| layout | file size | time | MB/s (uncompressed) |', '|---|---:|---:|---:|');
    for (const [label, input] of layouts) {
      let bestMs = Infinity;
      for (let run = 0; run < 3; run++) {
        const t = performance.now();
        let n = 0;
        for await (const event of readDump(input)) if (event.type === 'documents') n += event.docs.length;
        if (n !== docs) throw new Error(`${label}: read ${n} documents, expected ${docs}`);
        bestMs = Math.min(bestMs, performance.now() - t);
      }
      const size = (await stat(input)).isDirectory() ? null : (await stat(input)).size;
      lines.push(`| ${label} | ${size === null ? 'folder' : `${(size / 1e6).toFixed(0)} MB`} | ${(bestMs / 1000).toFixed(2)} s | ${(bytes / 1e6 / (bestMs / 1000)).toFixed(0)} |`);
    }
    lines.push('');
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}
