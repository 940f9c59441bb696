/**
 * extract --at at scale: a base backup of BENCH_DOCS documents (the extraction bench's tarball) and
 * an oplog dump (local.oplog.rs, .bson.gz) of BENCH_AT_ENTRIES entries touching BENCH_AT_TOUCHED of
 * its documents (updates as $v:2 diffs, inserts, deletes), against the baseline of inflating both
 * files with Node's fastest streaming gunzip, in the same run, interleaved. The goal: at most 1.5×
 * that baseline plus the CLI's start-up; peak RSS under 300 MB, flat when the oplog grows 10×
 * (BENCH_AT_GROW=1 adds a case with ten times the entries over the same documents).
 */
import {createWriteStream} from 'node:fs';
import {link, mkdir, rename, rm, stat} from 'node:fs/promises';
import {once as onceEvent} from 'node:events';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import {createGzip} from 'node:zlib';

import {BSON, Binary, Int32, Long, ObjectId, Timestamp} from 'bson';

import {ensureBenchTarGz, partnerId} from './data.js';
import {rounds, type Case} from './extract.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
/** The base backup's name time: 2026-11-18T14:00:00Z. */
const BASE = 1_795_010_400;
const UI = new Binary(Buffer.from('0cc57b4ee61c415181f314b06caed22e', 'hex'), 4);

/** The _id the extraction bench gives document i (bench/data.ts): its ObjectId's bytes are fixed by i. */
function benchId(doc: Buffer): ObjectId {
  return new ObjectId(doc.subarray(9, 21));
}

/** Entries in mongod's 6.0+ format (OPLOG.md §1 examples): $v:2 updates, inserts with o2, deletes, a no-op each second. */
async function ensureOplog(dir: string, docs: number, entries: number, touched: number): Promise<string> {
  const file = path.join(dir, `oplog-${docs}-${entries}-${touched}.bson.gz`);
  if (await stat(file).then(() => true, () => false)) return file;
  const {benchDocument} = await import('./data.js');
  const tmp = `${file}.tmp`;
  const gzip = createGzip({level: 6});
  const out = createWriteStream(tmp);
  gzip.pipe(out);
  const write = async (doc: Record<string, unknown>) => {
    if (!gzip.write(BSON.serialize(doc))) await onceEvent(gzip, 'drain');
  };
  const ns = 'gravity.artworks';
  const stride = Math.max(1, Math.floor(docs / touched));
  const perSecond = 2000;
  // A no-op just before the base point: the oplog covers it.
  await write({op: 'n', ns: '', o: {msg: 'periodic noop'}, ts: new Timestamp({t: BASE - 1, i: 1}), t: Long.fromNumber(4), v: Long.fromNumber(2), wall: new Date((BASE - 1) * 1000)});
  for (let k = 0; k < entries; k++) {
    const t = BASE + 1 + Math.floor(k / perSecond);
    const ts = new Timestamp({t, i: (k % perSecond) + 1});
    const common = {ts, t: Long.fromNumber(4), v: Long.fromNumber(2), wall: new Date(t * 1000)};
    const target = ((k * 7919) % touched) * stride;
    const kind = k % 20;
    if (kind === 0) {
      // A new document.
      const doc = BSON.deserialize(benchDocument(docs + k)) as Record<string, unknown>;
      await write({op: 'i', ns, ui: UI, o: doc, o2: {_id: doc._id}, ...common});
    } else if (kind === 1) {
      await write({op: 'd', ns, ui: UI, o: {_id: benchId(benchDocument(target))}, ...common});
    } else {
      const id = benchId(benchDocument(target));
      const diff = kind % 2 === 0 ? {u: {price_cents: k}} : {u: {edition: new Int32(k % 50)}, i: {reviewed_at: new Date(t * 1000)}};
      await write({op: 'u', ns, ui: UI, o: {$v: 2, diff}, o2: {_id: id}, ...common});
    }
  }
  await write({op: 'n', ns: '', o: {msg: 'periodic noop'}, ts: new Timestamp({t: BASE + 2 + Math.ceil(entries / perSecond), i: 1}), t: Long.fromNumber(4), v: Long.fromNumber(2), wall: new Date(BASE * 1000)});
  gzip.end();
  await onceEvent(out, 'finish');
  await rename(tmp, file);
  return file;
}

function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

export async function benchAt(lines: string[], dataDir: string, docs: number): Promise<void> {
  const entries = Number(process.env.BENCH_AT_ENTRIES ?? 2_000_000);
  const touched = Number(process.env.BENCH_AT_TOUCHED ?? 200_000);
  const tarball = await ensureBenchTarGz(dataDir, docs);
  process.stderr.write('bench: generating the oplog\n');
  const oplog = await ensureOplog(dataDir, docs, entries, touched);
  const grown = process.env.BENCH_AT_GROW ? await ensureOplog(dataDir, docs, entries * 10, touched) : null;
  // The catalog reads the base's time from its name.
  const source = path.join(dataDir, `at-source-${docs}`);
  await rm(source, {recursive: true, force: true});
  await mkdir(source, {recursive: true});
  await link(tarball, path.join(source, 'artworks-2026-11-18T14-00-00Z.tar.gz'));
  const last = BASE + 1 + Math.ceil(entries / 2000);
  const at = `Timestamp(${last}, 0)`;
  const env = {GRAVITY_RESTORE_SOURCE: source, GRAVITY_RESTORE_TZ: 'UTC'};
  for (const [k, v] of Object.entries(env)) process.env[k] = v;
  const out = path.join(dataDir, 'at-out');
  const query = JSON.stringify({partner_id: {$oid: partnerId(7).toHexString()}});
  const cli = (label: string, file: string): Case => ({
    label,
    cmd: process.execPath,
    args: [path.join(root, 'bin/run.js'), 'extract', '--at', at, '--oplog', file, '--collection', 'artworks', '--query', query, '--out', out, '--force', '--json'],
    json: true,
    rounds: 3,
  });
  // One bare node process inflating both files one after the other, 4 MiB chunks and reads (the fastest
  // streaming inflate the extraction bench finds): no tsx, no project module, nothing but the inflate.
  const inflate = [
    "const {createReadStream} = require('node:fs'); const {createGunzip} = require('node:zlib');",
    'const size = 4 << 20;',
    '(async () => { for (const f of process.argv.slice(1)) { for await (const c of createReadStream(f, {highWaterMark: size}).pipe(createGunzip({chunkSize: size}))) void c; } })();',
  ].join(' ');
  const gunzip = (label: string, ...files: string[]): Case => ({label, cmd: process.execPath, args: ['-e', inflate, ...files], rounds: 3});
  const cases: Case[] = [
    gunzip('gunzip base and oplog (4 MiB)', tarball, oplog),
    {label: 'CLI start-up (--version)', cmd: process.execPath, args: [path.join(root, 'bin/run.js'), '--version'], rounds: 3},
    cli('extract --at', oplog),
    ...(grown ? [gunzip('gunzip base and oplog ×10 (4 MiB)', tarball, grown), cli('extract --at, oplog ×10', grown)] : []),
  ];
  const best = await rounds(cases, 3);
  const m = (label: string) => best.get(cases.find((c) => c.label === label)!)!;
  const baseline = m('gunzip base and oplog (4 MiB)').ms;
  const startup = m('CLI start-up (--version)').ms;
  lines.push(`### extract --at: ${docs.toLocaleString('en-US')}-document base, ${entries.toLocaleString('en-US')} oplog entries touching ${touched.toLocaleString('en-US')} documents (fastest of 3)`, '');
  lines.push('Baseline: one bare Node process inflating both files (gunzip, 4 MiB chunks and reads); the goal is at most 1.5× that plus start-up.', '');
  lines.push('| case | time | peak RSS | ratio |', '|---|---:|---:|---|');
  for (const c of cases) {
    const r = m(c.label);
    const ratio = c.label.startsWith('extract --at') ? `${((r.ms - startup) / (c.label.includes('×10') ? m('gunzip base and oplog ×10 (4 MiB)').ms : baseline)).toFixed(2)}× gunzip of both (after start-up)` : '';
    lines.push(`| ${c.label} | ${fmt(r.ms)} | ${r.maxRssMb === null ? '?' : `${r.maxRssMb.toFixed(0)} MB`} | ${ratio} |`);
  }
  lines.push('');
  await rm(out, {recursive: true, force: true});
}
