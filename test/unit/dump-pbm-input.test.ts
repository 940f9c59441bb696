import assert from 'node:assert/strict';
import {rm} from 'node:fs/promises';
import {after, before, describe, it} from 'node:test';

import {BSON, Timestamp} from 'bson';

import {listBackups} from '../../src/catalog/list.js';
import {openStore} from '../../src/catalog/store.js';
import {pbmDumpSources} from '../../src/dump/pbm-input.js';
import type {DumpStreamSource} from '../../src/dump/types.js';
import {metadataJson, tempDir} from '../support/bson-fixtures.js';
import {writePbmBackup} from '../support/pbm-fixture.js';

async function readAll(source: DumpStreamSource): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await source.open()) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

function documents(data: Buffer): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (let at = 0; at < data.length; at += data.readInt32LE(at)) out.push(BSON.deserialize(data.subarray(at, at + data.readInt32LE(at))));
  return out;
}

describe('a PBM logical backup as dump sources', () => {
  let dir: string;
  const base = Date.parse('2026-11-19T02:00:10Z') / 1000;
  const entry = (second: number, increment = 1) => Buffer.from(BSON.serialize({ts: new Timestamp({t: base + second, i: increment}), op: 'i', ns: 'gravity.artworks', o: {_id: second * 10 + increment}}));
  before(async () => {
    dir = await tempDir('pbm-input');
    for (const compression of ['s2', 'gzip', 'none'] as const) {
      await writePbmBackup(`${dir}/${compression}`, {
        name: '2026-11-19T02:00:00Z',
        compression,
        firstWrite: {T: base, I: 1},
        lastWrite: {T: base + 20, I: 1},
        replsets: [
          {name: 'rs0', namespaces: [{db: 'gravity', collection: 'a.b', docs: [Buffer.from(BSON.serialize({_id: 1}))], metadata: metadataJson('a.b')}], oplog: [entry(1), entry(3), entry(3, 2), entry(8), entry(12)]},
          {name: 'rs1', namespaces: [{db: 'gravity', collection: 'a.b', docs: [Buffer.from(BSON.serialize({_id: 2}))], metadata: metadataJson('a.b')}], oplog: [entry(2), entry(3, 1), entry(9), entry(10), entry(11)]},
        ],
      });
    }
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  for (const compression of ['s2', 'gzip', 'none'] as const) {
    it(`${compression}: the oplog merged by ts across replica sets, each chunk boundary once; a dotted collection under its database`, async () => {
      const store = openStore(`${dir}/${compression}`, {});
      const [backup] = await listBackups(store, {sourceTz: 'UTC'});
      const sources = (await pbmDumpSources(backup!, (key) => store.open(key))) as DumpStreamSource[];
      const names = sources.map((source) => source.name).sort();
      assert.deepEqual(names, ['gravity/a.b.bson' + (compression === 'gzip' ? '.gz' : ''), 'gravity/a.b.metadata.json', 'oplog.bson']);
      const oplog = documents(await readAll(sources.find((source) => source.name === 'oplog.bson')!));
      // Equal timestamps on two replica sets are two entries; the boundary entry each rs wrote twice is one.
      assert.deepEqual(oplog.map((doc) => (doc.o as {_id: number})._id), [11, 21, 31, 31, 32, 81, 91, 101, 111, 121]);
    });
  }
});
