/**
 * `npm run bench`: measures, in one run, each case against a baseline measured in the same run,
 * and appends the results to bench/RESULTS.md with the machine and date.
 *
 * BENCH_DOCS (default 1,000,000) sets the size of the generated collection; BENCH_ONLY=extract|readers|fetch|target|at|diff|compress
 * runs one group.
 */
import {appendFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';

import {benchExtract} from './extract.js';
import {benchFetch} from './fetch.js';
import {benchReaders} from './readers.js';
import {benchTarget} from './target.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const DATA = path.join(here, '.data');
const DOCS = Number(process.env.BENCH_DOCS ?? 1_000_000);
const ONLY = process.env.BENCH_ONLY;

function machine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${os.cpus().length}× ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

const lines: string[] = [`## ${new Date().toISOString().slice(0, 10)} — ${machine()}`, '', `Load average at start: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`, ''];
if (!ONLY || ONLY === 'extract') await benchExtract(lines, DATA, DOCS);
if (!ONLY || ONLY === 'readers') await benchReaders(lines);
if (!ONLY || ONLY === 'fetch') await benchFetch(lines, DATA);
if (!ONLY || ONLY === 'target') await benchTarget(lines);
if (!ONLY || ONLY === 'at') await (await import('./at.js')).benchAt(lines, DATA, Number(process.env.BENCH_DOCS ?? 1_200_000));
if (!ONLY || ONLY === 'diff') await (await import('./diff.js')).benchDiff(lines, DATA, DOCS);
if (!ONLY || ONLY === 'compress') await (await import('./compress.js')).benchCompress(lines);
const text = `${lines.join('\n')}\n`;
process.stdout.write(text);
await appendFile(path.join(here, 'RESULTS.md'), `\n${text}`);
process.stderr.write('bench: appended to bench/RESULTS.md\n');
