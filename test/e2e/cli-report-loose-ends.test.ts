/**
 * The report closes the incident's loose ends, through bin/run.js: who to notify (the config's
 * `notify` fields among restored documents), a relation the config did not follow (found in the
 * backup's data), the backup's age at the incident, and the incident figures.
 */
import assert from 'node:assert/strict';
import {mkdir, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON, ObjectId} from 'bson';

import {metadataJson, tarFolder, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {cleanEnv, json, runCli} from '../support/cli.js';

const oid = (n: number) => new ObjectId(n.toString(16).padStart(24, '0'));

describe('report: loose ends', () => {
  let dir: string;

  before(async () => {
    dir = await tempDir('cli-report');
    const artworks = Array.from({length: 6}, (_, i) => Buffer.from(BSON.serialize({_id: oid(100 + i), partner_id: oid(i % 2 === 0 ? 1 : 2), title: `w${i}`})));
    const sales = Array.from({length: 3}, (_, i) => Buffer.from(BSON.serialize({_id: oid(200 + i), artwork_id: oid(100 + i * 2)})));
    // shows reference artworks through an array field nobody configured: an unfollowed relation.
    const shows = [
      Buffer.from(BSON.serialize({_id: oid(300), artwork_ids: [oid(100), oid(102)]})),
      Buffer.from(BSON.serialize({_id: oid(301), artwork_ids: [oid(101)]})),
      Buffer.from(BSON.serialize({_id: oid(302), artwork_ids: [oid(104)]})),
    ];
    await writeFolder(path.join(dir, 'src', 'dump'), [
      {db: 'gravity', collection: 'artworks', docs: artworks, metadata: metadataJson('artworks')},
      {db: 'gravity', collection: 'sale_artworks', docs: sales, metadata: metadataJson('sale_artworks')},
      {db: 'gravity', collection: 'shows', docs: shows, metadata: metadataJson('shows')},
    ]);
    await mkdir(path.join(dir, 'backups'));
    tarFolder(path.join(dir, 'src'), 'dump', path.join(dir, 'backups', 'gravity-daily-2026-11-18T14-00-00Z.tar.gz'), {gzip: true, format: 'pax'});
    await writeFile(
      path.join(dir, 'gravity-restore.config.json'),
      JSON.stringify({relations: [{from: 'artworks', to: 'sale_artworks', foreignField: 'artwork_id'}], notify: ['partner_id']}),
    );
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  it('lists who to notify, the unfollowed relation with its counts, and the backup\'s age at the incident', async () => {
    const env = cleanEnv({GRAVITY_RESTORE_SOURCE: path.join(dir, 'backups'), TZ: 'UTC'});
    const set = path.join(dir, 'set');
    const extract = await runCli(['extract', '--from', 'gravity-daily-2026-11-18T14-00-00Z.tar.gz', '--collection', 'artworks', '--query', '{"partner_id": ObjectId("000000000000000000000001")}', '--follow', '--out', set, '--json'], {env, cwd: dir});
    assert.equal(extract.code, 0, extract.stderr);
    const report = await runCli(['report', set, '--incident-at', '2026-11-18T14:30:00Z', '--json'], {env, cwd: dir});
    assert.equal(report.code, 0, report.stderr);
    const ends = json<{looseEnds: {
      notify: Array<{field: string; values: Array<{value: unknown; documents: number}>}>;
      unfollowedRelations: Array<{from: string; to: string; foreignField: string; documents: number; referenced: number}>;
      stale: Array<{collection: string; takenAt: string; ageAtIncidentMs: number; ageAtIncident: string}>;
      figures: {dataLossWindowMs: number; incidentAt: string};
    }}>(report).looseEnds;
    assert.deepEqual(ends.notify, [{field: 'partner_id', values: [{value: {$oid: '000000000000000000000001'}, documents: 3}]}]);
    // Artworks 100, 102, 104 were restored; shows 300 (two of them) and 302 (one) point at them; 301 points at 101, not restored.
    assert.deepEqual(ends.unfollowedRelations, [{from: 'artworks', to: 'shows', foreignField: 'artwork_ids', documents: 2, referenced: 3}]);
    assert.deepEqual(ends.stale.map((s) => [s.collection, s.takenAt, s.ageAtIncidentMs, s.ageAtIncident]), [
      ['artworks', '2026-11-18T14:00:00.000Z', 1_800_000, '30m 0s'],
      ['sale_artworks', '2026-11-18T14:00:00.000Z', 1_800_000, '30m 0s'],
    ]);
    assert.deepEqual([ends.figures.incidentAt, ends.figures.dataLossWindowMs], ['2026-11-18T14:30:00.000Z', 1_800_000]);
    const markdown = await runCli(['report', set, '--incident-at', '2026-11-18T14:30:00Z'], {env, cwd: dir});
    assert.match(markdown.stdout, /shows\.artwork_ids → artworks: 2 document\(s\) not restored reference 3 restored one\(s\)/);
    assert.match(markdown.stdout, /partner_id: `\{"\$oid":"000000000000000000000001"\}` \(3\)/);
    const skipped = json<{looseEnds: {unfollowedRelations: null; unfollowedRelationsNote: string}}>(await runCli(['report', set, '--no-backup-scan', '--json'], {env, cwd: dir}));
    assert.equal(skipped.looseEnds.unfollowedRelations, null);
    assert.match(skipped.looseEnds.unfollowedRelationsNote, /--no-backup-scan/);
  });

  it('a bad notify key in the config is named', async () => {
    await writeFile(path.join(dir, 'bad.json'), JSON.stringify({notify: 'partner_id'}));
    const r = await runCli(['report', path.join(dir, 'set'), '--config', path.join(dir, 'bad.json')], {env: cleanEnv(), cwd: dir});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /"notify" must be a list of field paths/);
  });
});
