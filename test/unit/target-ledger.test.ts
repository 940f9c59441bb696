import assert from 'node:assert/strict';
import {appendFile, readFile} from 'node:fs/promises';
import path from 'node:path';
import {afterEach, beforeEach, describe, it} from 'node:test';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {allRecords, JournalWriter, listJournals, readJournal} from '../../src/restore-set/journal.js';
import {appendLedger, ledgerPath, readLedger} from '../../src/restore-set/ledger.js';
import type {LedgerEntry} from '../../src/restore-set/ledger.js';
import type {RestoreSet} from '../../src/restore-set/manifest.js';
import {buildReport, renderReportMarkdown} from '../../src/restore-set/report.js';

let set: RestoreSet;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  const tmp = await tempDir();
  cleanup = tmp.cleanup;
  set = await writeSet(tmp.dir, [
    {db: 'gravity', name: 'artworks', docs: [{_id: 1}, {_id: 2}]},
    {db: 'gravity', name: 'sale_artworks', docs: [{_id: 10, artwork_id: 1}]},
  ], {timings: {extractMs: 1234}});
});
afterEach(async () => cleanup());

const entry = (over: Partial<LedgerEntry>): LedgerEntry => ({
  time: '2026-11-20T11:00:00.000Z',
  action: 'push',
  target: 'staging',
  targetLabel: 'staging (mongodb://u:****@h/gravity)',
  setHash: set.hash,
  outcome: 'ok',
  ...over,
});

describe('ledger', () => {
  it('reads back what was appended, in order', async () => {
    assert.deepEqual(await readLedger(set), []);
    await appendLedger(set, entry({action: 'push', counts: {artworks: {inserted: 2}}, durationMs: 50}));
    await appendLedger(set, entry({action: 'verify', time: '2026-11-20T11:01:00.000Z'}));
    const lines = await readLedger(set);
    assert.deepEqual(lines.map((l) => l.action), ['push', 'verify']);
    assert.deepEqual(lines[0]?.counts, {artworks: {inserted: 2}});
    assert.equal((await readFile(ledgerPath(set), 'utf8')).split('\n').length, 3, 'one JSON line per entry');
  });

  it('survives a torn last line from a crash', async () => {
    await appendLedger(set, entry({}));
    await appendFile(ledgerPath(set), '{"time":"2026-11-20T11:0');
    assert.equal((await readLedger(set)).length, 1);
  });
});

describe('journal', () => {
  it('creates, appends, reopens and reports whether it finished', async () => {
    const begin = {type: 'begin' as const, op: 'push' as const, target: 'staging', targetLabel: 's', setHash: set.hash, time: '2026-11-20T11:00:00.000Z'};
    const w = await JournalWriter.create(set, begin);
    assert.equal(path.basename(w.path), 'staging-2026-11-20T11-00-00-000Z.jsonl');
    await w.append({type: 'intent', collection: 'artworks', db: 'gravity', batch: 1, insert: ['1']});
    await w.close();
    // Same start time: a second journal gets its own file instead of clobbering the first.
    const w2 = await JournalWriter.create(set, {...begin, target: 'staging'});
    assert.notEqual(w2.path, w.path);
    await w2.append({type: 'end', outcome: 'ok', counts: {}, time: begin.time});
    await w2.close();

    const first = await readJournal(set, w.path);
    assert.equal(first?.finished, false);
    assert.equal((await allRecords(first!)).length, 2);
    const again = await JournalWriter.reopen(first!);
    await again.append({type: 'end', outcome: 'ok', counts: {}, time: begin.time});
    await again.close();
    assert.equal((await readJournal(set, w.relPath))?.finished, true);
    assert.equal((await listJournals(set, 'staging')).length, 2);
    assert.equal((await listJournals(set, 'production')).length, 0);
  });
});

describe('report', () => {
  it('tells the backup, the query, the counts per stage and the timings', async () => {
    await appendLedger(set, entry({action: 'push', counts: {artworks: {inserted: 2, overwritten: 0, skipped: 0, conflicts: 0}}, durationMs: 40}));
    await appendLedger(set, entry({action: 'override', target: 'production', targetLabel: 'production (x)', reason: 'staging down'}));
    const report = await buildReport(set);
    assert.equal(report.backup.takenAt, '2026-11-18T14:00:00.000Z');
    assert.equal(report.backup.ageAtExtract, '1d 20h');
    assert.equal(report.collections.artworks?.extracted, 2);
    assert.equal(report.timings.extractMs, 1234);
    assert.equal(report.timings['push:staging'], 40);
    assert.deepEqual(report.overrides, [{time: '2026-11-20T11:00:00.000Z', target: 'production (x)', reason: 'staging down'}]);
    const md = renderReportMarkdown(report);
    assert.match(md, /2026-11-18T14:00:00/);
    assert.match(md, /\{"partner_id": 1\}/);
    assert.match(md, /artworks: inserted 2/);
    assert.match(md, /staging down/);
  });
});
