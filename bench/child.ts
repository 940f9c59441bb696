/**
 * One measured case, in its own process so peak memory (maxRSS) belongs to that case alone.
 * Prints one JSON line: {ms, maxRssMb, matched, bytes}.
 */
import {createReadStream} from 'node:fs';
import {mkdtemp, rm} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {createGunzip} from 'node:zlib';

// The project's modules load only in the cases that use them: the gunzip baselines stay bare
// processes (whole-process times are compared).

const [kind, file, query] = process.argv.slice(2) as [string, string, string?];
const started = process.hrtime.bigint();
let matched = 0;
let bytes = 0;

if (kind === 'gunzip-16k') {
  for await (const chunk of createReadStream(file).pipe(createGunzip())) bytes += (chunk as Buffer).length;
} else if (kind === 'gunzip') {
  // Chunks and reads of the size given in MiB (default 1).
  const size = Number(query ?? 1) * (1 << 20);
  for await (const chunk of createReadStream(file, {highWaterMark: size}).pipe(createGunzip({chunkSize: size}))) bytes += (chunk as Buffer).length;
} else if (kind === 'extract') {
  const {extractArtworks} = await import('./extract-set.js');
  const out = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-set-'));
  const result = await extractArtworks(file, path.join(out, 'set'), {query: query!});
  matched = result.counts.artworks ?? 0;
  await rm(out, {recursive: true, force: true});
} else if (kind === 'read') {
  // Every document of every namespace as raw bytes (an archive's CRC-64 checked), nothing matched or written.
  const {readDump} = await import('../src/dump/read.js');
  for await (const event of readDump(file)) {
    if (event.type !== 'documents') continue;
    matched += event.docs.length;
    bytes += event.bytes;
  }
} else if (kind === 'decode-mingo') {
  const {BSON} = await import('bson');
  const {readDump} = await import('../src/dump/read.js');
  const {matchesDecoded} = await import('../src/query/compile.js');
  const {parseQuery} = await import('../src/query/parse.js');
  const filter = parseQuery(query!);
  for await (const event of readDump(file)) {
    if (event.type !== 'documents') continue;
    for (const doc of event.docs) {
      bytes += doc.length;
      if (matchesDecoded(filter, BSON.deserialize(doc))) matched++;
    }
  }
} else {
  throw new Error(`unknown case ${kind}`);
}
const ms = Number(process.hrtime.bigint() - started) / 1e6;
process.stdout.write(`${JSON.stringify({ms, maxRssMb: process.resourceUsage().maxRSS / 1024, matched, bytes})}\n`);
