/**
 * Which compression a PBM file holds (src/compress/detect.ts): PBM's suffixes
 * (`CompressionType.Suffix()`, OPLOG.md §6.1) checked against magic bytes, the `.snappy` files that
 * hold S2 (PBM before 1.7.0, OPLOG.md §6.3 and §10 trap 4), and the decompressing stream.
 */
import assert from 'node:assert/strict';
import {execFileSync} from 'node:child_process';
import {before, describe, it} from 'node:test';
import zlib from 'node:zlib';

import {compressionFromMagic, compressionFromName, detectCompression, openDecompressed} from '../../src/compress/detect.js';
import {crc32c, maskCrc32c} from '../../src/compress/crc32c.js';
import {Xxh32, xxh32} from '../../src/compress/lz4.js';
import {Xxh64, xxh64} from '../../src/compress/xxh64.js';
import {GravityError} from '../../src/errors.js';
import {goLz4Encoder, goS2Encoder} from '../support/s2-encoders.js';

function chunk(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, body.length & 0xff, (body.length >>> 8) & 0xff, body.length >>> 16]), body]);
}
/** A framed stream with one uncompressed chunk (framing_format.txt §4.3), under either identifier. */
function framed(id: 'S2sTwO' | 'sNaPpY', data: Buffer): Buffer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(maskCrc32c(crc32c(data)));
  return Buffer.concat([chunk(0xff, Buffer.from(id)), chunk(0x01, Buffer.concat([crc, data]))]);
}
const hasZstd = (() => {
  try {
    execFileSync('zstd', ['--version']);
    return true;
  } catch {
    return false;
  }
})();
const hasLz4 = (() => {
  try {
    execFileSync('lz4', ['--version']);
    return true;
  } catch {
    return false;
  }
})();
const DOC = Buffer.from('0c0000001069000100000000', 'hex'); // BSON {i: 1}

async function readAll(file: Buffer, name: string, sizes = [3]): Promise<{compression: string; data: Buffer}> {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let at = 0, i = 0; at < file.length; i++) {
      const size = sizes[i % sizes.length]!;
      yield file.subarray(at, at + size);
      at += size;
    }
  }
  const {compression, data} = await openDecompressed(chunks(), name);
  const parts: Buffer[] = [];
  for await (const part of data) parts.push(part);
  return {compression, data: Buffer.concat(parts)};
}

async function refusal(file: Buffer, name: string): Promise<GravityError> {
  try {
    await readAll(file, name);
  } catch (error) {
    assert.ok(error instanceof GravityError, String(error));
    return error;
  }
  assert.fail(`${name} was read`);
}

describe('compression detection', () => {
  it('maps PBM suffixes, for data files and point-in-time chunk names', () => {
    assert.deepEqual(compressionFromName('db.coll.gz'), {compression: 'gzip', base: 'db.coll'});
    assert.deepEqual(compressionFromName('db.coll.s2'), {compression: 's2', base: 'db.coll'});
    assert.deepEqual(compressionFromName('20200715155939-0.20200715160029-1.oplog.snappy'), {compression: 'snappy', base: '20200715155939-0.20200715160029-1.oplog'});
    assert.deepEqual(compressionFromName('db.coll.lz4'), {compression: 'lz4', base: 'db.coll'});
    assert.deepEqual(compressionFromName('db.coll.zst'), {compression: 'zstd', base: 'db.coll'});
    assert.deepEqual(compressionFromName('20200715155939-0.20200715160029-1.oplog'), {compression: 'none', base: '20200715155939-0.20200715160029-1.oplog'});
  });

  it('reads magic bytes of each format', () => {
    assert.equal(compressionFromMagic(zlib.gzipSync(DOC)), 'gzip');
    assert.equal(compressionFromMagic(framed('S2sTwO', DOC)), 's2');
    assert.equal(compressionFromMagic(framed('sNaPpY', DOC)), 'snappy');
    assert.equal(compressionFromMagic(Buffer.from('28b52ffd0000', 'hex')), 'zstd');
    assert.equal(compressionFromMagic(Buffer.from('04224d186440', 'hex')), 'lz4');
    assert.equal(compressionFromMagic(DOC), undefined);
  });

  it('reads a .snappy file holding S2 as S2 (PBM before 1.7.0), and a .s2 file holding Snappy', () => {
    assert.deepEqual(detectCompression('a.oplog.snappy', framed('S2sTwO', DOC)), {compression: 's2', declared: 'snappy'});
    assert.deepEqual(detectCompression('a.s2', framed('sNaPpY', DOC)), {compression: 's2', declared: 's2'});
    assert.deepEqual(detectCompression('a.snappy', framed('sNaPpY', DOC)), {compression: 'snappy', declared: 'snappy'});
  });

  it('trusts an uncompressed name over gzip-looking bytes, which can start a BSON document', () => {
    const doc = Buffer.alloc(0x8b1f);
    doc.writeInt32LE(doc.length);
    assert.deepEqual(detectCompression('db.coll', doc), {compression: 'none', declared: 'none'});
  });

  it('refuses a name that does not match the content, in one line', () => {
    assert.throws(() => detectCompression('db.coll.gz', framed('S2sTwO', DOC)), (e: GravityError) => e.code === 'DUMP_CORRUPT' && e.line === 'db.coll.gz is named as gzip but holds s2 data. The file is damaged or was renamed; fetch the backup again or check the file');
    assert.throws(() => detectCompression('db.coll.s2', DOC), /named as s2 but holds data that is none of gzip, snappy, s2, lz4 or zstd/);
    assert.throws(() => detectCompression('db.coll', framed('S2sTwO', DOC)), /has no compression suffix but holds s2 data/);
  });
});

describe('openDecompressed', () => {
  it('decompresses gzip, s2, snappy and uncompressed files to the same bytes', async () => {
    const docs = Buffer.concat(Array.from({length: 50}, () => DOC));
    assert.deepEqual(await readAll(zlib.gzipSync(docs), 'db.coll.gz'), {compression: 'gzip', data: docs});
    assert.deepEqual(await readAll(framed('S2sTwO', docs), 'db.coll.s2'), {compression: 's2', data: docs});
    assert.deepEqual(await readAll(framed('sNaPpY', docs), 'db.coll.snappy'), {compression: 'snappy', data: docs});
    assert.deepEqual(await readAll(framed('S2sTwO', docs), 'x.oplog.snappy', [1]), {compression: 's2', data: docs});
    assert.deepEqual(await readAll(docs, 'db.coll'), {compression: 'none', data: docs});
    assert.deepEqual(await readAll(Buffer.alloc(0), 'db.coll.s2'), {compression: 's2', data: Buffer.alloc(0)});
  });

  it('decompresses LZ4 frames written by the lz4 command line tool (Debian lz4), every frame option', async (t) => {
    if (!hasLz4) return t.skip('the lz4 command is not installed');
    const docs = Buffer.concat(Array.from({length: 30000}, (_v, i) => Buffer.from(`{"i":${i},"name":"document ${i % 97}","pad":"${'x'.repeat(i % 50)}"}`)));
    // Default (4 MiB independent blocks, content checksum), high compression, linked blocks (copies
    // across blocks), per-block checksums, content size in the header, no content checksum.
    const options = [[], ['-9'], ['-B4', '-BD'], ['-B5', '-BX'], ['-B6', '-BD', '-BX', '--content-size'], ['--no-frame-crc']];
    for (const args of options) {
      const lz4 = execFileSync('lz4', ['-c', '-q', ...args], {input: docs, maxBuffer: 1 << 28});
      assert.deepEqual(await readAll(lz4, 'db.coll.lz4', [65536, 3, 1_000_000]), {compression: 'lz4', data: docs}, args.join(' '));
    }
    // Two frames one after the other, with a skippable frame between them (LZ4 frame format §"Skippable frames").
    const one = execFileSync('lz4', ['-c', '-q'], {input: docs.subarray(0, 1000)});
    const two = execFileSync('lz4', ['-c', '-q'], {input: docs.subarray(1000, 5000)});
    const skippable = Buffer.from('522a4d1803000000616263', 'hex');
    assert.deepEqual(await readAll(Buffer.concat([one, skippable, two]), 'x.lz4'), {compression: 'lz4', data: docs.subarray(0, 5000)});
  });

  it('refuses a truncated or damaged LZ4 frame in one line (content and block checksums)', async (t) => {
    if (!hasLz4) return t.skip('the lz4 command is not installed');
    const docs = Buffer.concat(Array.from({length: 5000}, (_v, i) => Buffer.from(`{"i":${i}}`)));
    const lz4 = execFileSync('lz4', ['-c', '-q', '-BX'], {input: docs});
    const truncated = await refusal(lz4.subarray(0, lz4.length - 3), 'db.coll.lz4');
    assert.equal(truncated.code, 'DUMP_CORRUPT');
    assert.match(truncated.message, /^db\.coll\.lz4: corrupt LZ4 stream at byte \d+: the stream ends inside the content checksum \(truncated file\)$/);
    const damaged = Buffer.from(lz4);
    damaged[40]! ^= 0x10;
    assert.match((await refusal(damaged, 'db.coll.lz4')).message, /at byte 7: (block checksum mismatch|bad compressed block)/);
    const header = Buffer.from(lz4);
    header[5]! ^= 0x40; // BD byte: block size code 4 → 0, caught by the header checksum or the size table
    assert.match((await refusal(header, 'db.coll.lz4')).message, /at byte 0: /);
  });

  it('decompresses zstd written by the zstd command line tool (Debian zstd), and refuses it truncated', async (t) => {
    if (!hasZstd) return t.skip('the zstd command is not installed');
    const docs = Buffer.concat(Array.from({length: 20000}, (_v, i) => Buffer.from(`{"i":${i},"name":"document ${i % 97}"}`)));
    for (const level of ['-1', '-19']) {
      const zst = execFileSync('zstd', ['-c', level], {input: docs, maxBuffer: 1 << 28});
      assert.deepEqual(await readAll(zst, 'db.coll.zst', [4096, 1, 100_000]), {compression: 'zstd', data: docs});
    }
    const zst = execFileSync('zstd', ['-c'], {input: docs, maxBuffer: 1 << 28});
    const error = await refusal(zst.subarray(0, zst.length - 20), 'db.coll.zst');
    assert.equal(error.code, 'DUMP_CORRUPT');
    assert.match(error.message, /^db\.coll\.zst: corrupt zstd stream at byte \d+: .*truncated/);
    // Frames one after another (with and without a checksum) and a skippable frame between them.
    const one = execFileSync('zstd', ['-c', '--no-check'], {input: docs.subarray(0, 5000)});
    const two = execFileSync('zstd', ['-c'], {input: docs.subarray(5000)});
    const skippable = Buffer.from('542a4d1802000000ffff', 'hex');
    assert.deepEqual(await readAll(Buffer.concat([one, skippable, two]), 'db.coll.zst', [999]), {compression: 'zstd', data: docs});
  });

  it('finds every flipped byte in a checksummed zstd file (fzstd alone lets most through)', async (t) => {
    if (!hasZstd) return t.skip('the zstd command is not installed');
    const docs = Buffer.concat(Array.from({length: 3000}, (_v, i) => Buffer.from(`{"i":${i},"name":"document ${i % 97}"}`)));
    const zst = execFileSync('zstd', ['-c'], {input: docs});
    for (let i = 0; i < 80; i++) {
      const damaged = Buffer.from(zst);
      const at = 4 + Math.floor(((i * 2654435761) >>> 0) / 2 ** 32 * (zst.length - 4));
      damaged[at]! ^= 1 << (i % 8);
      const error = await refusal(damaged, 'db.coll.zst');
      assert.equal(error.code, 'DUMP_CORRUPT', `flip at ${at}`);
    }
  });

  it('reports a truncated gzip or S2 file as corrupt', async () => {
    const docs = Buffer.concat(Array.from({length: 50}, () => DOC));
    const gz = zlib.gzipSync(docs);
    assert.equal((await refusal(gz.subarray(0, gz.length - 10), 'db.coll.gz')).code, 'DUMP_CORRUPT');
    const s2 = framed('S2sTwO', docs);
    assert.match((await refusal(s2.subarray(0, s2.length - 1), 'db.coll.s2')).message, /^db\.coll\.s2: corrupt S2\/Snappy stream at byte 10: the stream ends inside a/);
  });
});

describe('zstd and lz4 from the Go libraries PBM writes them with', () => {
  const docs = Buffer.concat(Array.from({length: 60000}, (_v, i) => Buffer.from(`{"_id":${i},"status":"${['new', 'paid', 'shipped'][i % 3]}","n":${i * 7}}`)));
  let s2: Awaited<ReturnType<typeof goS2Encoder>>;
  let lz4: Awaited<ReturnType<typeof goLz4Encoder>>;
  before(async () => {
    [s2, lz4] = await Promise.all([goS2Encoder(), goLz4Encoder()]);
  });

  it('reads klauspost/compress/zstd output (zstd.NewWriter defaults, PBM `.zst`)', async (t) => {
    if (!s2.encode) return t.skip(s2.reason);
    const zst = await s2.encode(docs, ['-zstd']);
    assert.deepEqual(await readAll(zst, 'db.coll.zst', [65536, 7]), {compression: 'zstd', data: docs});
    assert.deepEqual(await readAll(await s2.encode(Buffer.alloc(0), ['-zstd']), 'db.coll.zst'), {compression: 'zstd', data: Buffer.alloc(0)});
  });

  it('reads pierrec/lz4 frame writer output (PBM `.lz4`), with and without checksums', async (t) => {
    if (!lz4.encode) return t.skip(lz4.reason);
    for (const args of [[], ['-block', '65536', '-block-checksum'], ['-no-checksum', '-level', '9'], ['-block', '262144']]) {
      const file = await lz4.encode(docs, args);
      assert.deepEqual(await readAll(file, 'db.coll.lz4', [100_000, 13]), {compression: 'lz4', data: docs}, args.join(' '));
    }
  });
});

describe('XXH32 (LZ4 frame checksums)', () => {
  it('gives the reference value for empty input and the same digest however the input is split', () => {
    assert.equal(xxh32(Buffer.alloc(0)), 0x02cc5d05); // xxHash reference: XXH32("", 0)
    const data = Buffer.from(Array.from({length: 200}, (_v, i) => (i * 37) & 0xff));
    const whole = xxh32(data);
    for (let cut = 0; cut <= data.length; cut += 7) {
      assert.equal(new Xxh32().update(data.subarray(0, cut)).update(data.subarray(cut)).digest(), whole, `cut at ${cut}`);
    }
    for (let length = 0; length < 40; length++) assert.equal(new Xxh32().update(data.subarray(0, length)).digest(), xxh32(data.subarray(0, length)));
  });
});

describe('XXH64 (zstd frame checksums)', () => {
  it('gives the xxHash reference values, and the same digest however the input is split', () => {
    const hex = ([h, l]: [number, number]): string => h.toString(16).padStart(8, '0') + l.toString(16).padStart(8, '0');
    assert.equal(hex(xxh64(Buffer.alloc(0))), 'ef46db3751d8e999');
    assert.equal(hex(xxh64(Buffer.from('abc'))), '44bc2cf5ad770999');
    // Inputs of 32 bytes and more (the four-lane path) are checked against the zstd command's frame
    // checksums in the zstd tests above.
    const data = Buffer.from(Array.from({length: 300}, (_v, i) => (i * 53) & 0xff));
    const whole = xxh64(data);
    for (let cut = 0; cut <= data.length; cut += 11) {
      assert.deepEqual(new Xxh64().update(data.subarray(0, cut)).update(data.subarray(cut)).digest(), whole, `cut at ${cut}`);
    }
  });
});
