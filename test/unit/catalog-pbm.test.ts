import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {parsePbmMeta, pbmNamespaceOfFile, pbmRefusal, pbmSuffix} from '../../src/catalog/pbm.js';

/** `<name>.pbm.json` as Go's encoding/json writes BackupMeta (PBM pbm/backup/types.go): timestamps {"T","I"}, the dump path under backup_name. */
const meta = (extra: Record<string, unknown> = {}) =>
  JSON.stringify(
    {
      type: 'logical',
      name: '2026-11-18T14:00:00Z',
      replsets: [{name: 'rs0', backup_name: '2026-11-18T14:00:00Z/rs0/metadata.json', oplog_name: '2026-11-18T14:00:00Z/rs0/oplog', status: 'done', last_write_ts: {T: 1763474600, I: 3}}],
      compression: 's2',
      last_write_ts: {T: 1763474600, I: 3},
      status: 'done',
      pbm_version: '2.9.1',
      ...extra,
    },
    null,
    '\t',
  );

describe('PBM backup metadata', () => {
  it('reads the keys PBM writes', () => {
    const info = parsePbmMeta('2026-11-18T14:00:00Z', meta({nss: ['gravity.artworks']}));
    assert.equal(info.invalid, null);
    assert.deepEqual(info.lastWriteTs, {T: 1763474600, I: 3});
    assert.deepEqual(info.replsets, [{name: 'rs0', status: 'done', dumpName: '2026-11-18T14:00:00Z/rs0/metadata.json', oplogName: '2026-11-18T14:00:00Z/rs0/oplog'}]);
    assert.deepEqual(info.selective, ['gravity.artworks']);
    assert.equal(info.compression, 's2');
    assert.equal(pbmRefusal(info), null);
  });

  it('says what is wrong with metadata it cannot use', () => {
    assert.match(parsePbmMeta('x', '{"type": ').invalid ?? '', /x\.pbm\.json is not valid JSON/);
    assert.match(parsePbmMeta('2026-11-18T14:00:00Z', meta({last_write_ts: 1763474600})).invalid ?? '', /"last_write_ts" is not a \{"T","I"\} timestamp/);
    assert.match(parsePbmMeta('2026-11-18T14:00:00Z', meta({replsets: []})).invalid ?? '', /"replsets" is missing or empty/);
    assert.match(parsePbmMeta('other', meta()).invalid ?? '', /"name" is "2026-11-18T14:00:00Z", not "other"/);
  });

  it('refuses physical backups and backups that are not done', () => {
    assert.match(pbmRefusal(parsePbmMeta('2026-11-18T14:00:00Z', meta({type: 'incremental'})))!.message, /incremental backup: it holds WiredTiger data files/);
    assert.equal(pbmRefusal(parsePbmMeta('2026-11-18T14:00:00Z', meta({type: 'physical'})))!.code, 'DUMP_UNKNOWN_FORMAT');
    assert.match(pbmRefusal(parsePbmMeta('2026-11-18T14:00:00Z', meta({status: 'running'})))!.message, /status "running"/);
  });
});

describe('PBM namespace file names', () => {
  it('splits at the first dot: database names hold none, collection names may', () => {
    assert.deepEqual(pbmNamespaceOfFile('gravity.sale.items.s2', '.s2'), {db: 'gravity', collection: 'sale.items'});
    assert.deepEqual(pbmNamespaceOfFile('admin.system.users', ''), {db: 'admin', collection: 'system.users'});
    assert.equal(pbmNamespaceOfFile('gravity.artworks.gz', '.s2'), null);
  });
  it('leaves out the metadata and the 2.0 – 2.3 oplog file', () => {
    for (const file of ['metadata.json', 'meta.pbm', 'local.oplog.rs.bson.gz']) assert.equal(pbmNamespaceOfFile(file, file.endsWith('.gz') ? '.gz' : ''), null, file);
  });
  it('uses the suffixes of CompressionType.Suffix()', () => {
    assert.deepEqual(['none', 'gzip', 'pgzip', 'snappy', 'lz4', 's2', 'zstd'].map(pbmSuffix), ['', '.gz', '.gz', '.snappy', '.lz4', '.s2', '.zst']);
  });
});
