/**
 * Throughput of the query matcher on raw BSON against full decode + reference matcher.
 * Run: node --import tsx bench/query-matcher.ts [documents=200000]
 */
import {BSON, ObjectId} from 'bson';

import {compileQuery, matchesDecoded} from '../src/query/compile.js';
import {FieldPicker} from '../src/query/raw.js';

const count = Number(process.argv[2] ?? 200_000);
const partners = Array.from({length: 1000}, () => new ObjectId());
const words = ['warhol', 'print', 'canvas', 'oil', 'bronze', 'photo', 'edition', 'signed', 'framed', 'unique'];

let seed = 42;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)];

const parts: Buffer[] = [];
for (let i = 0; i < count; i++) {
  const doc = {
    _id: new ObjectId(),
    partner_id: pick(partners),
    artist_id: new ObjectId(),
    title: `${pick(words)} ${pick(words)} #${i}`,
    published: rand() < 0.5,
    created_at: new Date(Date.UTC(2010, 0, 1) + Math.floor(rand() * 15 * 365 * 86_400_000)),
    dimensions: {height: Math.round(rand() * 2000) / 10, width: Math.round(rand() * 2000) / 10, unit: 'cm'},
    price: {amount: Math.floor(rand() * 100_000), currency: 'USD'},
    tags: [pick(words), pick(words), pick(words)],
    description: Array.from({length: 28}, () => pick(words)).join(' '),
  };
  parts.push(Buffer.from(BSON.serialize(doc)));
}
const chunk = Buffer.concat(parts);
const offsets: number[] = [];
for (let at = 0; at < chunk.length; at += chunk.readInt32LE(at)) offsets.push(at);
const mb = chunk.length / 1e6;

function time(label: string, fn: (doc: Buffer) => boolean): number {
  let hits = 0;
  const started = process.hrtime.bigint();
  for (const at of offsets) if (fn(chunk.subarray(at, at + chunk.readInt32LE(at)))) hits++;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`${label.padEnd(58)} ${(mb / seconds).toFixed(0).padStart(6)} MB/s  ${hits} hits  ${seconds.toFixed(2)} s`);
  return hits;
}

console.log(`${count} documents, ${mb.toFixed(1)} MB, ${(chunk.length / count).toFixed(0)} bytes each`);

const byPartner = {partner_id: partners[7]};
const generic = {
  published: true,
  created_at: {$gte: new Date('2015-01-01T00:00:00Z'), $lt: new Date('2018-01-01T00:00:00Z')},
  'dimensions.height': {$gt: 150},
};

for (const [name, q] of [
  ['ObjectId equality', byPartner],
  ['generic (bool, date range, nested number)', generic],
] as const) {
  const compiled = compileQuery(q);
  console.log(`\n${name}: plan ${compiled.plan}`);
  time('BSON.deserialize only (no matching)', (d) => BSON.deserialize(d) !== null);
  const a = time('full BSON.deserialize + reference (mingo, exact ops)', (d) => matchesDecoded(q, BSON.deserialize(d)));
  const b = time('compileQuery().matches', (d) => compiled.matches(d));
  if (a !== b) throw new Error(`hit counts differ: ${a} vs ${b}`);
}

console.log('\nlazy decoding of the generic query\'s fields:');
const picker = new FieldPicker(['published', 'created_at', 'dimensions.height']);
time('FieldPicker: hand walk + decode of only those values', (d) => picker.pick(d) !== null);
const wanted = new Set(['published', 'created_at', 'dimensions']);
time('bson onDemand.parseToElements (walk only, no decode)', (d) => {
  let n = 0;
  for (const e of BSON.onDemand.parseToElements(d, 0)) {
    if (wanted.has(d.toString('utf8', e[1], e[1] + e[2]))) n++;
  }
  return n > 0;
});
