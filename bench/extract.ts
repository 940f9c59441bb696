/**
 * Extraction from a .tar.gz against the decompression floor, every case a whole process, all
 * measured in the same run and interleaved round by round (A B C … A B C …), so a load that
 * drifts during the run touches every case alike. Each case's figure is its fastest round.
 *
 * Baselines beside the cases: Node's gunzip with its default 16 KiB chunks and with chunks and
 * reads of 1, 2, 4 and 8 MiB (the fastest of these, in this run, is the fastest streaming inflate
 * Node has: the one the goals are measured against), `pigz -dc`, `libdeflate-gunzip` (reads the
 * whole file into memory: not a streaming option, the floor of inflate itself), and the CLI's
 * start-up (`--version`).
 */
import {execFileSync, spawn} from 'node:child_process';
import {mkdtemp, readFile, rm, stat} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import {ensureBenchArchiveGz, ensureBenchTarGz, partnerId} from './data.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const TIME = '/usr/bin/time';

export interface Measure {
  ms: number;
  maxRssMb: number | null;
  matched?: number;
  bytes?: number;
}

export interface Case {
  label: string;
  cmd: string;
  args: string[];
  /** The command prints one JSON line ({matched}) to check. */
  json?: boolean;
  rounds?: number;
}

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], {stdio: 'ignore'});
    return true;
  } catch {
    return false;
  }
}

/** One whole-process run: wall time measured here, peak RSS from /usr/bin/time when it is installed. */
export async function once(c: Case): Promise<Measure> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-run-'));
  const rssFile = path.join(dir, 'rss');
  const timed = has(TIME);
  const [cmd, args] = timed ? [TIME, ['-f', '%M', '-o', rssFile, c.cmd, ...c.args]] : [c.cmd, c.args];
  try {
    const started = process.hrtime.bigint();
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(cmd, args, {cwd: root, stdio: ['ignore', c.json ? 'pipe' : 'ignore', 'inherit']});
      let text = '';
      child.stdout?.on('data', (b: Buffer) => (text += b.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`${c.cmd} ${c.args.join(' ')} exited with ${code}`))));
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const rss = timed ? Number((await readFile(rssFile, 'utf8')).trim().split('\n').at(-1)) / 1024 : null;
    const measure: Measure = {ms, maxRssMb: rss};
    if (c.json) {
      // The child cases print one JSON line after any noise; the CLI prints one (pretty) JSON document.
      const text = out.trim();
      const line = JSON.parse(text.startsWith('{\n') ? text : text.split('\n').at(-1)!) as {matched?: number; bytes?: number; counts?: Record<string, number>};
      measure.matched = line.matched ?? line.counts?.artworks ?? 0;
      if (line.bytes !== undefined) measure.bytes = line.bytes;
    }
    return measure;
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
}

/** Interleaved rounds; each case keeps its fastest round (and the largest peak RSS seen). */
export async function rounds(cases: Case[], n: number): Promise<Map<Case, Measure>> {
  const best = new Map<Case, Measure>();
  for (let round = 0; round < n; round++) {
    for (const c of cases) {
      if (round >= (c.rounds ?? n)) continue;
      process.stderr.write(`bench: ${c.label} (${round + 1}/${Math.min(n, c.rounds ?? n)})\n`);
      const m = await once(c);
      const prev = best.get(c);
      if (prev && prev.matched !== m.matched) throw new Error(`${c.label}: matched ${m.matched}, earlier ${prev.matched}`);
      best.set(c, prev === undefined ? m : {...(m.ms < prev.ms ? m : prev), maxRssMb: Math.max(prev.maxRssMb ?? 0, m.maxRssMb ?? 0) || null});
    }
  }
  return best;
}

/**
 * How many cores this run really has: one CPU-bound process alone, then two at once. On a shared
 * machine the answer can be 1 on a 2-core box, and then nothing can overlap (inflate on the
 * thread pool, splitting on the main thread): wall time is the sum of the CPU times.
 */
async function coresFree(): Promise<number> {
  // The loop sits in a function called many times, so it runs optimised from the first rounds on
  // (a bare top-level loop runs 10× slower or faster depending on when V8 swaps in optimised code).
  const spin = ['-e', 'function f(n) { let x = 0; for (let i = 0; i < n; i++) x = (x + Math.imul(i, 7) + (x >>> 3)) | 0; return x; } let s = 0; for (let k = 0; k < 60; k++) s ^= f(1e7); if (s === 1) console.log(s);'];
  const one = {label: 'spin', cmd: process.execPath, args: spin};
  const alone = (await once(one)).ms;
  const t = performance.now();
  await Promise.all([once(one), once(one)]);
  return (2 * alone) / (performance.now() - t);
}

export async function benchExtract(lines: string[], dataDir: string, docs: number): Promise<void> {
  process.stderr.write(`bench: generating ${docs} documents (cached in bench/.data)…\n`);
  const file = await ensureBenchTarGz(dataDir, docs);
  const archive = await ensureBenchArchiveGz(dataDir, docs);
  const gz = (await stat(file)).size;
  const child = path.join(root, 'dist/bench/child.js');
  const bin = path.join(root, 'bin/run.js');
  const eq = `{"partner_id": ObjectId("${partnerId(7).toHexString()}")}`;
  const generic = '{"published": true, "created_at": {"$gte": ISODate("2018-01-01T00:00:00Z"), "$lt": ISODate("2020-01-01T00:00:00Z")}, "dimensions.height": {"$gt": 30}}';
  const n = Number(process.env.BENCH_RUNS ?? 5);
  const out = await mkdtemp(path.join(os.tmpdir(), 'gr-bench-cli-'));
  const node = process.execPath;
  const c = {
    gunzip16: {label: 'Node gunzip, default 16 KiB chunks', cmd: node, args: [child, 'gunzip-16k', file], json: true},
    gunzip1: {label: 'Node gunzip, 1 MiB chunks and reads', cmd: node, args: [child, 'gunzip', file, '1'], json: true},
    gunzip2: {label: 'Node gunzip, 2 MiB chunks and reads', cmd: node, args: [child, 'gunzip', file, '2'], json: true},
    gunzip4: {label: 'Node gunzip, 4 MiB chunks and reads', cmd: node, args: [child, 'gunzip', file, '4'], json: true},
    gunzip8: {label: 'Node gunzip, 8 MiB chunks and reads', cmd: node, args: [child, 'gunzip', file, '8'], json: true},
    pigz: {label: '`pigz -dc`', cmd: 'sh', args: ['-c', `exec pigz -dc "${file}" > /dev/null`]},
    libdeflate: {label: '`libdeflate-gunzip -c` (whole file in memory)', cmd: 'sh', args: ['-c', `exec libdeflate-gunzip -c "${file}" > /dev/null`]},
    startup: {label: 'CLI start-up (`--version`)', cmd: node, args: [bin, '--version']},
    eq: {label: 'extract, ObjectId equality (library, in-process)', cmd: node, args: [child, 'extract', file, eq], json: true},
    cli: {label: 'extract, ObjectId equality through the CLI (`bin/run.js extract --json`)', cmd: 'sh', args: ['-c', `exec "${node}" "${bin}" extract --from "${file}" -c artworks -q '${eq}' --out "${out}/set" --force --json`], json: true},
    generic: {label: 'extract, generic (boolean + date range + nested number)', cmd: node, args: [child, 'extract', file, generic], json: true},
    archiveGunzip1: {label: 'Node gunzip, 1 MiB chunks and reads, of the same documents as `--archive --gzip`', cmd: node, args: [child, 'gunzip', archive, '1'], json: true},
    archiveGunzip2: {label: 'Node gunzip, 2 MiB chunks and reads, of the same documents as `--archive --gzip`', cmd: node, args: [child, 'gunzip', archive, '2'], json: true},
    archiveGunzip4: {label: 'Node gunzip, 4 MiB chunks and reads, of the same documents as `--archive --gzip`', cmd: node, args: [child, 'gunzip', archive, '4'], json: true},
    archive: {label: 'read the `--archive --gzip` (library: every document, CRC-64 checked)', cmd: node, args: [child, 'read', archive], json: true},
    decode: {label: 'full decode + mingo, every document', cmd: node, args: [child, 'decode-mingo', file, generic], json: true, rounds: 1},
    python: {label: 'python3-bson (C) decode + filter', cmd: '/usr/bin/python3', args: [path.join(here, 'python-filter.py'), file], json: true, rounds: 1},
  } satisfies Record<string, Case>;
  const gunzips: Case[] = [c.gunzip1, c.gunzip2, c.gunzip4, c.gunzip8];
  const archiveGunzips: Case[] = [c.archiveGunzip1, c.archiveGunzip2, c.archiveGunzip4];
  const cases: Case[] = [c.gunzip16, ...gunzips, c.startup, c.eq, c.cli, c.generic, ...archiveGunzips, c.archive, c.decode];
  const missing: string[] = [];
  for (const [tool, k] of [['pigz', c.pigz], ['libdeflate-gunzip', c.libdeflate]] as const) {
    if (has(tool)) cases.splice(2, 0, k);
    else missing.push(tool);
  }
  let python = true;
  try {
    execFileSync('/usr/bin/python3', ['-c', 'import bson'], {stdio: 'ignore'});
    cases.push(c.python);
  } catch {
    python = false;
  }
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  const cores = await coresFree();
  let m: Map<Case, Measure>;
  try {
    m = await rounds(cases, n);
  } finally {
    await rm(out, {recursive: true, force: true});
  }
  const get = (k: Case): Measure => m.get(k)!;
  // The baseline: the fastest chunk size of this run, for the tarball and for the archive alike.
  const fastest = (list: Case[]) => list.reduce((a, b) => (get(b).ms < get(a).ms ? b : a));
  const baseCase = fastest(gunzips);
  const archiveBaseCase = fastest(archiveGunzips);
  const base = get(baseCase);
  const baseName = baseCase.label.replace('Node gunzip, ', 'gunzip ').replace(' chunks and reads', '');
  if (get(c.cli).matched !== get(c.eq).matched) throw new Error('CLI and library extract disagree');
  if (python && get(c.python).matched !== get(c.generic).matched) throw new Error('python3-bson and extract disagree');
  if (get(c.decode).matched !== get(c.generic).matched) throw new Error('decode+mingo and extract disagree');
  if (get(c.archive).matched !== docs) throw new Error(`the archive read ${get(c.archive).matched} documents, not ${docs}`);
  const mb = (base.bytes ?? 0) / 1e6;
  const s = (x: Measure) => `${(x.ms / 1000).toFixed(2)} s`;
  const rate = (x: Measure) => `${(mb / (x.ms / 1000)).toFixed(0)} MB/s`;
  const rss = (x: Measure) => (x.maxRssMb === null ? '' : `${x.maxRssMb.toFixed(0)} MB`);
  const vs = (x: Measure) => `${(x.ms / base.ms).toFixed(2)}× ${baseName}`;
  const row = (k: Case, ratio: string) => {
    const x = get(k);
    return `| ${k.label} | ${s(x)} | ${rate(x)} | ${rss(x)} | ${k === c.gunzip16 || gunzips.includes(k) || archiveGunzips.includes(k) ? '' : (x.matched ?? '')} | ${ratio} |`;
  };
  const startup = get(c.startup);
  const cliGoal = (get(c.cli).ms - startup.ms) / base.ms;
  lines.push(
    `### Extraction: ${docs.toLocaleString('en-US')} documents, ${mb.toFixed(0)} MB of BSON, ${(gz / 1e6).toFixed(0)} MB .tar.gz (fastest of ${n} interleaved rounds; load average ${load} at the start)`,
    '',
    'Every figure is a whole process (wall time from spawn to exit; peak RSS by `/usr/bin/time`). Goals are measured against',
    `**Node gunzip with the fastest chunk and read size of this run (${baseName.replace('gunzip ', '')})**, the fastest streaming inflate Node has, in this same run.`,
    `Cores free at the start: ${cores.toFixed(1)} of ${os.availableParallelism()} (two CPU-bound processes at once against one alone).`,
    '',
    '| case | time | throughput (uncompressed) | peak RSS | matched | ratio |',
    '|---|---:|---:|---:|---:|---|',
    row(c.gunzip16, vs(get(c.gunzip16))),
    ...gunzips.map((k) => row(k, k === baseCase ? '1.00× (**baseline of the goals**: the fastest chunk size)' : vs(get(k)))),
    ...(m.has(c.pigz) ? [row(c.pigz, vs(get(c.pigz)))] : []),
    ...(m.has(c.libdeflate) ? [row(c.libdeflate, `${vs(get(c.libdeflate))} (not streaming)`)] : []),
    ...missing.map((tool) => `| \`${tool}\` | not installed | | | | skipped |`),
    `| ${c.startup.label} | ${s(startup)} | | ${rss(startup)} | | |`,
    row(c.eq, `**${vs(get(c.eq))}** (goal ≤ 1.15×)`),
    row(c.cli, `**${cliGoal.toFixed(2)}× ${baseName} after start-up** ((CLI − start-up) / gunzip; goal ≤ 1.15×)`),
    row(c.generic, vs(get(c.generic))),
    ...archiveGunzips.map((k) =>
      row(k, k === archiveBaseCase ? `1.00× (baseline of the archive row, the fastest chunk size; ${(get(k).ms / base.ms).toFixed(2)}× the tarball's)` : `${(get(k).ms / get(archiveBaseCase).ms).toFixed(2)}× the fastest`),
    ),
    row(c.archive, `**${(get(c.archive).ms / get(archiveBaseCase).ms).toFixed(2)}× gunzip of the same file** (goal ≤ 1.25×)`),
    row(c.decode, `generic extract is ${(get(c.decode).ms / get(c.generic).ms).toFixed(2)}× faster`),
    python
      ? row(c.python, `**generic extract is ${(get(c.python).ms / get(c.generic).ms).toFixed(2)}× faster** (goal ≥ 5×)`)
      : '| python3-bson | not available | | | | skipped |',
    '',
    `Peak RSS of the extract cases: ${[c.eq, c.cli, c.generic].map((k) => rss(get(k))).join(', ')} (goal < 256 MB).`,
    '',
  );
}
