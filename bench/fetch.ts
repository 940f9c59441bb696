/** Fetch throughput against a plain GetObject of the same object to nowhere, same run, local S3. */
import {createHash} from 'node:crypto';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import {GetObjectCommand, PutObjectCommand} from '@aws-sdk/client-s3';

import {fetchBackup} from '../src/catalog/fetch.js';
import {listBackups} from '../src/catalog/list.js';
import {openStore} from '../src/catalog/store.js';
import {createS3Client} from '../src/s3/client.js';
import {startS3Server, s3EnvFor} from '../test/support/s3-server.js';
import {extract} from '../src/extract/extract.js';
import {streamSources} from '../src/extract/source.js';
import {parseQuery} from '../src/query/parse.js';
import {ensureBenchTarGz, partnerId} from './data.js';

export async function benchFetch(lines: string[], dataDir: string): Promise<void> {
  const docs = Number(process.env.BENCH_FETCH_DOCS ?? 400_000);
  const file = await ensureBenchTarGz(dataDir, docs);
  const server = await startS3Server();
  const cache = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-cache-'));
  try {
    Object.assign(process.env, s3EnvFor(server));
    await server.createBucket('bench');
    const client = createS3Client({endpoint: server.endpoint, region: server.region});
    const body = await readFile(file);
    const key = 'backups/gravity-daily-2026-11-18.tar.gz';
    await client.send(new PutObjectCommand({Bucket: 'bench', Key: key, Body: body}));
    const runs = Number(process.env.BENCH_RUNS ?? 3);
    let plain = Infinity;
    let digested = Infinity;
    let fetched = Infinity;
    const store = openStore('s3://bench/backups/', {endpoint: server.endpoint, region: server.region});
    const [backup] = await listBackups(store, {sourceTz: 'UTC', cacheDir: cache});
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`bench: GetObject to nowhere (${i + 1}/${runs})\n`);
      let t = performance.now();
      const response = await client.send(new GetObjectCommand({Bucket: 'bench', Key: key}));
      let n = 0;
      for await (const chunk of response.Body as AsyncIterable<Buffer>) n += chunk.length;
      if (n !== body.length) throw new Error('short GetObject');
      plain = Math.min(plain, performance.now() - t);
      // The floor for any verified download on this machine: the same GetObject with the two
      // digests fetch must compute (SHA-256 recorded, MD5 for the plain-MD5 ETag), in line, no disk.
      process.stderr.write(`bench: GetObject + SHA-256 + MD5 (${i + 1}/${runs})\n`);
      t = performance.now();
      const hashed = await client.send(new GetObjectCommand({Bucket: 'bench', Key: key}));
      const sha = createHash('sha256');
      const md5 = createHash('md5');
      for await (const chunk of hashed.Body as AsyncIterable<Buffer>) {
        sha.update(chunk);
        md5.update(chunk);
      }
      sha.digest();
      md5.digest();
      digested = Math.min(digested, performance.now() - t);
      process.stderr.write(`bench: fetch into an empty cache (${i + 1}/${runs})\n`);
      await rm(path.join(cache, 'downloads'), {recursive: true, force: true});
      t = performance.now();
      const result = await fetchBackup(store, backup!, {cacheDir: cache});
      fetched = Math.min(fetched, performance.now() - t);
      if (result.bytesTransferred !== body.length) throw new Error(`fetch transferred ${result.bytesTransferred}`);
    }
    const t = performance.now();
    const again = await fetchBackup(store, backup!, {cacheDir: cache});
    const cached = performance.now() - t;
    // Stream-extract (GetObject → gunzip → tar → match, no file) against download-then-extract.
    const query = `{"partner_id": ObjectId("${partnerId(7).toHexString()}")}`;
    const runExtract = async (input: Parameters<typeof extract>[0]['source']['input'], out: string) =>
      extract({source: {input, backup: backup!.id, location: 'bench', takenAt: null, objects: []}, collection: 'artworks', queryText: query, filter: parseQuery(query), follow: false, relations: [], out: path.join(cache, out), force: true, engine: 'stream', toolVersion: 'bench'});
    let streamed = Infinity;
    let downloaded = Infinity;
    for (let i = 0; i < runs; i++) {
      process.stderr.write(`bench: extract streaming from S3 (${i + 1}/${runs})\n`);
      let s = performance.now();
      const a = await runExtract(streamSources(store, backup!), 'set-stream');
      streamed = Math.min(streamed, performance.now() - s);
      process.stderr.write(`bench: download, then extract (${i + 1}/${runs})\n`);
      await rm(path.join(cache, 'downloads'), {recursive: true, force: true});
      s = performance.now();
      const got = await fetchBackup(store, backup!, {cacheDir: cache});
      const b = await runExtract(got.files[0]!.path, 'set-local');
      downloaded = Math.min(downloaded, performance.now() - s);
      if (a.counts.artworks !== b.counts.artworks) throw new Error('stream and download extracts differ');
    }
    const mb = body.length / 1e6;
    lines.push(
      `### Fetch: one ${mb.toFixed(0)} MB object from a local S3 server (s3rver on 127.0.0.1), best of ${runs}`,
      '',
      '| case | time | throughput | ratio |',
      '|---|---:|---:|---|',
      `| GetObject streamed to nowhere, baseline | ${(plain / 1000).toFixed(2)} s | ${(mb / (plain / 1000)).toFixed(0)} MB/s | 1.00× |`,
      `| GetObject + SHA-256 + MD5 in line, no disk (the verification floor) | ${(digested / 1000).toFixed(2)} s | ${(mb / (digested / 1000)).toFixed(0)} MB/s | ${(digested / plain).toFixed(2)}× GetObject |`,
      `| fetch (ranged parallel download, size/ETag check, SHA-256, rename) | ${(fetched / 1000).toFixed(2)} s | ${(mb / (fetched / 1000)).toFixed(0)} MB/s | **${(fetched / plain).toFixed(2)}× GetObject** (goal ≤ 1.10×) |`,
      `| second fetch (cache hit, ${again.bytesTransferred} bytes transferred) | ${(cached / 1000).toFixed(3)} s | | |`,
      '',
      '| extract of an ObjectId equality from this backup | time | ratio |',
      '|---|---:|---|',
      `| download (fetch), then extract from the local file, baseline | ${(downloaded / 1000).toFixed(2)} s | 1.00× |`,
      `| extract --from <backup-id>, streamed from S3 | ${(streamed / 1000).toFixed(2)} s | ${(streamed / downloaded).toFixed(2)}× |`,
      '',
    );
  } finally {
    await rm(cache, {recursive: true, force: true});
    await server.stop();
  }
}
