/**
 * The S2/Snappy stream decoder (src/compress/s2.ts).
 *
 * Hand-written vectors follow the format text only: Snappy `framing_format.txt` / `format_description.txt`
 * for chunks and block elements, the S2 README "Format Extensions" for the repeat offset and its
 * lengths, OPLOG.md §6.4 for both. Property tests compare with independent encoders: S2's own Go
 * writer (klauspost/compress, Debian package) with the options PBM and users meet, and
 * python3-snappy's framed writer (Google's snappy).
 */
import assert from 'node:assert/strict';
import {before, describe, it} from 'node:test';

import {crc32c, crc32cNative, crc32cTable, maskCrc32c} from '../../src/compress/crc32c.js';
import {decodeS2Stream} from '../../src/compress/s2.js';
import type {StreamKind} from '../../src/compress/s2.js';
import {GravityError} from '../../src/errors.js';
import {goS2Encoder, goSnappyEncoder, pythonSnappyEncoder} from '../support/s2-encoders.js';
import type {Encode} from '../support/s2-encoders.js';

async function* chunked(data: Buffer, sizes: number[]): AsyncGenerator<Buffer> {
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length]!;
    yield data.subarray(at, at + size);
    at += size;
  }
}

async function decode(stream: Buffer, sizes: number[] = [stream.length || 1]): Promise<{data: Buffer; kind: StreamKind | undefined}> {
  const parts: Buffer[] = [];
  let kind: StreamKind | undefined;
  for await (const part of decodeS2Stream(chunked(stream, sizes), {where: 'x.s2', onIdentifier: (k) => (kind = k)})) parts.push(part);
  return {data: Buffer.concat(parts), kind};
}

async function decodeError(stream: Buffer, sizes?: number[]): Promise<GravityError> {
  try {
    await decode(stream, sizes);
  } catch (error) {
    assert.ok(error instanceof GravityError, `expected a GravityError, got ${String(error)}`);
    assert.equal(error.code, 'DUMP_CORRUPT');
    return error;
  }
  assert.fail('the stream decoded without error');
}

// --- Building streams by hand, from the format text --------------------------------------------

function chunk(type: number, body: Buffer): Buffer {
  const header = Buffer.from([type, body.length & 0xff, (body.length >>> 8) & 0xff, body.length >>> 16]);
  return Buffer.concat([header, body]);
}
const S2_ID = chunk(0xff, Buffer.from('S2sTwO'));
const SNAPPY_ID = chunk(0xff, Buffer.from('sNaPpY'));

function masked(data: Buffer): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(maskCrc32c(crc32c(data)));
  return b;
}
function compressed(block: Buffer, uncompressed: Buffer): Buffer {
  return chunk(0x00, Buffer.concat([masked(uncompressed), block]));
}
function uncompressedChunk(data: Buffer): Buffer {
  return chunk(0x01, Buffer.concat([masked(data), data]));
}
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
function literal(text: Buffer): Buffer {
  const n = text.length - 1;
  if (n < 60) return Buffer.concat([Buffer.from([n << 2]), text]);
  const bytes = n < 0x100 ? 1 : n < 0x10000 ? 2 : n < 0x1000000 ? 3 : 4;
  const len = Buffer.alloc(4);
  len.writeUInt32LE(n);
  return Buffer.concat([Buffer.from([(59 + bytes) << 2]), len.subarray(0, bytes), text]);
}
/** Copy with 1-byte offset: length 4–11, offset 1–2047 (offset 0 = S2 repeat, see `repeat`). */
function copy1(offset: number, length: number): Buffer {
  return Buffer.from([1 | ((length - 4) << 2) | ((offset >>> 8) << 5), offset & 0xff]);
}
function copy2(offset: number, length: number): Buffer {
  return Buffer.from([2 | ((length - 1) << 2), offset & 0xff, offset >>> 8]);
}
function copy4(offset: number, length: number): Buffer {
  const b = Buffer.from([3 | ((length - 1) << 2), 0, 0, 0, 0]);
  b.writeUInt32LE(offset, 1);
  return b;
}
/** S2 repeat-offset element: copy-1 with offset 0, lengths by the README's table. */
function repeat(length: number): Buffer {
  if (length <= 8) return Buffer.from([1 | ((length - 4) << 2), 0]);
  if (length < 260) return Buffer.from([1 | (5 << 2), 0, length - 8]);
  if (length < 65540) return Buffer.from([1 | (6 << 2), 0, (length - 260) & 0xff, (length - 260) >>> 8]);
  const n = length - 65540;
  return Buffer.from([1 | (7 << 2), 0, n & 0xff, (n >>> 8) & 0xff, n >>> 16]);
}
function block(expected: Buffer, ...elements: Buffer[]): Buffer {
  return Buffer.concat([varint(expected.length), ...elements]);
}
/** What copying `length` bytes from `offset` back produces (overlap repeats), for expected values. */
function expand(prefix: string, offset: number, length: number): string {
  let out = prefix;
  for (let i = 0; i < length; i++) out += out[out.length - offset];
  return out;
}

describe('CRC-32C', () => {
  for (const [name, crc] of [['native binding', crc32c], ['JavaScript tables', crc32cTable]] as const) {
    it(`gives the standard check values (RFC 3720 B.4) and continues across pieces: ${name}`, () => {
      assert.equal(crc(Buffer.from('123456789')), 0xe3069283);
      assert.equal(crc(Buffer.alloc(32)), 0x8a9136aa); // 32 bytes of zeroes
      assert.equal(crc(Buffer.alloc(32, 0xff)), 0x62a8ab43); // 32 bytes of 0xff
      const text = Buffer.from('The quick brown fox jumps over the lazy dog, again and again.');
      for (let cut = 0; cut <= text.length; cut++) {
        assert.equal(crc(text, cut, text.length, crc(text, 0, cut)), crc(text), `cut at ${cut}`);
      }
    });
  }

  it('runs on the native binding where it is installed, and agrees with the tables on any length', () => {
    assert.equal(crc32cNative, true, '@node-rs/crc32 did not load: S2 decoding falls back to the slower tables');
    const data = Buffer.alloc(5000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    for (let length = 0; length < 300; length++) assert.equal(crc32c(data, 17, 17 + length), crc32cTable(data, 17, 17 + length));
    assert.equal(crc32c(data), crc32cTable(data));
  });
});

describe('S2/Snappy stream: hand-built vectors', () => {
  it('decodes literals of every length form (1 byte tag, then 1–4 extra length bytes)', async () => {
    for (const size of [1, 59, 60, 61, 256, 257, 65536, 65537, 70000]) {
      const text = Buffer.alloc(size);
      for (let i = 0; i < size; i++) text[i] = (i * 7 + 3) & 0xff;
      const {data} = await decode(Buffer.concat([S2_ID, compressed(block(text, literal(text)), text)]));
      assert.ok(data.equals(text), `literal of ${size}`);
    }
    // A 4-byte length form (tag 63) for a short literal is still valid.
    const text = Buffer.from('four-byte form');
    const el = Buffer.concat([Buffer.from([63 << 2, text.length - 1, 0, 0, 0]), text]);
    assert.equal((await decode(Buffer.concat([S2_ID, compressed(block(text, el), text)]))).data.toString(), 'four-byte form');
  });

  it('decodes copy-1, copy-2 and copy-4 elements, overlapping ones included', async () => {
    const cases: Array<[string, Buffer[], string]> = [
      ['abcd', [copy1(4, 8)], expand('abcd', 4, 8)],
      ['a', [copy1(1, 11)], expand('a', 1, 11)],
      ['abcdef', [copy2(6, 64)], expand('abcdef', 6, 64)],
      ['xy', [copy4(2, 33)], expand('xy', 2, 33)],
    ];
    for (const [lit, copies, want] of cases) {
      const expected = Buffer.from(want);
      const b = block(expected, literal(Buffer.from(lit)), ...copies);
      assert.equal((await decode(Buffer.concat([S2_ID, compressed(b, expected)]))).data.toString(), want);
    }
    // Offsets past one byte: copy-1 with an 11-bit offset, copy-2 and copy-4 with far offsets.
    const base = Buffer.alloc(70000);
    for (let i = 0; i < base.length; i++) base[i] = (i * 131 + (i >>> 8)) & 0xff;
    const want = Buffer.concat([base, base.subarray(base.length - 2047, base.length - 2047 + 10), base.subarray(70000 - 65535 + 10, 70000 - 65535 + 74), base.subarray(10, 74)]);
    const b = block(want, literal(base), copy1(2047, 10), copy2(65535, 64), copy4(70000 + 10 + 64 - 10, 64));
    assert.ok((await decode(Buffer.concat([S2_ID, compressed(b, want)]))).data.equals(want));
  });

  it('decodes S2 repeat offsets with each length code (0–4, 5: +1 byte, 6: +2 bytes, 7: +3 bytes)', async () => {
    for (const length of [4, 5, 8, 9, 259, 260, 65539, 65540, 200000]) {
      const want = Buffer.from(expand(expand('xyz', 3, 6), 3, length));
      const b = block(want, literal(Buffer.from('xyz')), copy2(3, 6), repeat(length));
      assert.ok((await decode(Buffer.concat([S2_ID, compressed(b, want)]))).data.equals(want), `repeat of ${length}`);
    }
    // The repeat takes the offset of the last copy, whichever element kind it was.
    const want = Buffer.from(expand(expand(expand('0123456789', 10, 4), 3, 5), 3, 6));
    const b = block(want, literal(Buffer.from('0123456789')), copy1(10, 4), copy1(3, 5), repeat(6));
    assert.equal((await decode(Buffer.concat([S2_ID, compressed(b, want)]))).data.toString(), want.toString());
  });

  it('refuses a repeat before any copy in a block, and does not carry the offset into the next block', async () => {
    const first = Buffer.from('abcabcabc');
    const firstBlock = block(first, literal(Buffer.from('abc')), copy1(3, 6) /* length 6 */);
    const startsWithRepeat = Buffer.concat([varint(7), literal(Buffer.from('abc')), repeat(4)]);
    let error = await decodeError(Buffer.concat([S2_ID, compressed(startsWithRepeat, Buffer.from('abcabca'))]));
    assert.match(error.message, /repeat offset before any copy/);
    const second = Buffer.concat([S2_ID, compressed(firstBlock, first)]);
    error = await decodeError(Buffer.concat([second, compressed(startsWithRepeat, Buffer.from('abcabca'))]));
    assert.match(error.message, new RegExp(`at byte ${second.length}:`));
  });

  it('reads uncompressed chunks, padding, skippable chunks, the S2 index chunk and concatenated streams', async () => {
    const a = Buffer.from('first part;');
    const b = Buffer.from('second part;');
    const c = Buffer.from(expand('third', 5, 40));
    const stream = Buffer.concat([
      S2_ID,
      uncompressedChunk(a),
      chunk(0xfe, Buffer.alloc(100)),
      chunk(0x80, Buffer.from('skip me')),
      chunk(0xfd, Buffer.alloc(0)),
      compressed(block(b, literal(b)), b),
      SNAPPY_ID,
      compressed(block(c, literal(Buffer.from('third')), copy1(5, 11), copy1(5, 11), copy1(5, 11), copy1(5, 7)), c),
      chunk(0x99, Buffer.concat([Buffer.from('s2idx\x00'), Buffer.alloc(40, 1), Buffer.from('\x00xdi2s')])),
    ]);
    for (const sizes of [[stream.length], [1], [3, 5, 7], [4096]]) {
      const {data, kind} = await decode(stream, sizes);
      assert.equal(data.toString(), `${a.toString()}${b.toString()}${c.toString()}`, `chunk sizes ${sizes.join(',')}`);
      assert.equal(kind, 's2');
    }
    assert.equal((await decode(Buffer.concat([SNAPPY_ID, uncompressedChunk(a)]))).kind, 'snappy');
    assert.equal((await decode(Buffer.alloc(0))).data.length, 0);
  });

  it('refuses reserved chunk types 0x02–0x7f, naming the offset', async () => {
    const good = Buffer.concat([S2_ID, uncompressedChunk(Buffer.from('ok'))]);
    for (const type of [0x02, 0x40, 0x7f]) {
      const error = await decodeError(Buffer.concat([good, chunk(type, Buffer.alloc(3))]));
      assert.match(error.message, new RegExp(`^x\\.s2: corrupt S2/Snappy stream at byte ${good.length}: reserved unskippable chunk type 0x${type.toString(16).padStart(2, '0')}$`));
      assert.equal(error.details?.offset, good.length);
      assert.equal(error.exitCode, 6);
    }
  });

  it('refuses a CRC mismatch in compressed and uncompressed chunks', async () => {
    const data = Buffer.from('payload payload payload');
    for (const bad of [uncompressedChunk(data), compressed(block(data, literal(data)), data)]) {
      const flipped = Buffer.from(bad);
      flipped[flipped.length - 1]! ^= 1;
      const error = await decodeError(Buffer.concat([S2_ID, flipped]));
      assert.match(error.message, /at byte 10: CRC-32C mismatch/);
    }
  });

  it('refuses every truncation of a stream that does not end on a chunk boundary', async () => {
    const data = Buffer.from(expand('truncate', 8, 300));
    const parts = [S2_ID, compressed(block(data, literal(Buffer.from('truncate')), copy2(8, 64), repeat(236)), data), chunk(0x80, Buffer.alloc(20)), uncompressedChunk(data)];
    const stream = Buffer.concat(parts);
    const boundaries = new Set<number>();
    let at = 0;
    for (const part of parts) boundaries.add((at += part.length));
    for (let cut = 1; cut < stream.length; cut++) {
      if (boundaries.has(cut)) continue;
      const error = await decodeError(stream.subarray(0, cut), [7]);
      assert.match(error.message, /truncated file|stream identifier/, `cut at ${cut}: ${error.message}`);
    }
  });

  it('refuses corrupt blocks: bad offsets, wrong lengths, oversize blocks, no identifier', async () => {
    const abc = Buffer.from('abc');
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.concat([S2_ID, compressed(Buffer.concat([varint(8), literal(abc), copy1(4, 5)]), Buffer.alloc(8))]), /copy offset 4 points before the start/],
      [Buffer.concat([S2_ID, compressed(Buffer.concat([varint(3), literal(abc), copy1(3, 4)]), Buffer.alloc(7))]), /copy runs past the decoded length/],
      [Buffer.concat([S2_ID, compressed(Buffer.concat([varint(5), literal(abc)]), abc)]), /block decodes to 3 bytes, its header says 5/],
      [Buffer.concat([S2_ID, compressed(Buffer.concat([varint(2), literal(abc)]), abc)]), /literal runs past the decoded length/],
      [Buffer.concat([S2_ID, compressed(Buffer.concat([varint(10), Buffer.from([20 << 2]), abc]), abc)]), /literal runs past the block/],
      [Buffer.concat([S2_ID, compressed(varint((4 << 20) + 1), Buffer.alloc(0))]), /more than the 4194304 allowed/],
      [Buffer.concat([S2_ID, compressed(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Buffer.alloc(0))]), /bad decoded length/],
      [Buffer.concat([S2_ID, chunk(0x00, Buffer.alloc(2))]), /has no checksum/],
      [uncompressedChunk(abc), /does not begin with an S2 or Snappy stream identifier/],
      [chunk(0xff, Buffer.from('sNaPpX')), /unknown stream identifier/],
    ];
    for (const [stream, pattern] of cases) assert.match((await decodeError(stream)).message, pattern);
  });
});

/** Seeded xorshift32, so a failing case can be reproduced from its seed. */
function random(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** Inputs with the shapes backups have: repetitive BSON-like records, text, runs, noise. */
function sample(seed: number, size: number): Buffer {
  const rand = random(seed);
  const out = Buffer.alloc(size);
  let at = 0;
  const words = ['_id', 'name', 'status', 'created', 'amount', 'ObjectId', 'customer', '\u0000\u0002', 'xyz'];
  while (at < size) {
    const kind = Math.floor(rand() * 4);
    const len = Math.min(size - at, 1 + Math.floor(rand() * (kind === 2 ? 5000 : 300)));
    if (kind === 0) {
      for (let i = 0; i < len; i++) out[at + i] = Math.floor(rand() * 256);
    } else if (kind === 1) {
      let s = '';
      while (s.length < len) s += words[Math.floor(rand() * words.length)]!;
      out.write(s.slice(0, len), at, 'latin1');
    } else if (kind === 2) {
      out.fill(Math.floor(rand() * 256), at, at + len);
    } else if (at > 0) {
      const from = Math.floor(rand() * at);
      out.copyWithin(at, from, Math.min(at, from + len));
      continue;
    }
    at += len;
  }
  return out;
}

describe('S2/Snappy stream: against independent encoders', () => {
  let goEncode: Encode | undefined;
  let goReason: string | undefined;
  let pyEncode: Encode | undefined;
  let pyReason: string | undefined;
  let snappyEncode: Encode | undefined;
  let snappyReason: string | undefined;
  before(async () => {
    ({encode: goEncode, reason: goReason} = await goS2Encoder());
    ({encode: snappyEncode, reason: snappyReason} = await goSnappyEncoder());
    ({encode: pyEncode, reason: pyReason} = await pythonSnappyEncoder());
  });

  it('decodes what klauspost/compress s2.NewWriter writes, for every writer option PBM and users meet', async (t) => {
    if (!goEncode) return t.skip(goReason);
    const options = [
      [], // PBM's default: s2.NewWriter(w, s2.WriterConcurrency(n))
      ['-level', 'uncompressed'], // PBM compression level 1
      ['-level', 'better'],
      ['-level', 'best'],
      ['-block', String(4 << 20), '-level', 'better'],
      ['-block', '65536'],
      ['-index'],
      ['-padding', '4096'],
      ['-snappy'],
      ['-concurrency', '2', '-block', '131072'],
    ];
    let cases = 0;
    for (let seed = 1; seed <= 24; seed++) {
      const size = [0, 1, 100, 65536, 65537, 1 << 20, (1 << 20) + 3, 3_000_000][seed % 8]!;
      const input = sample(seed, size);
      // With no input, s2.Writer's index option writes a lone index chunk and no identifier, which S2's
      // own reader refuses as corrupt (it requires the identifier first, `decode.go`), as this one does.
      const args = size === 0 ? [] : options[seed % options.length]!;
      const stream = await goEncode(input, args);
      const rand = random(seed * 31);
      const sizes = [1 + Math.floor(rand() * 70000), 1 + Math.floor(rand() * 9), 1 + Math.floor(rand() * 1_000_000)];
      const {data, kind} = await decode(stream, sizes);
      assert.ok(data.equals(input), `seed ${seed}, ${size} bytes, options ${args.join(' ') || '(default)'}`);
      if (size > 0) assert.equal(kind, args.includes('-snappy') ? 'snappy' : 's2');
      cases++;
    }
    assert.equal(cases, 24);
  });

  it('finds any flipped byte in a Go-written stream (CRC or structure), never returning wrong data', async (t) => {
    if (!goEncode) return t.skip(goReason);
    const input = sample(99, 200_000);
    const stream = await goEncode(input, ['-block', '65536']);
    const rand = random(7);
    for (let i = 0; i < 60; i++) {
      const damaged = Buffer.from(stream);
      const at = Math.floor(rand() * damaged.length);
      damaged[at]! ^= 1 + Math.floor(rand() * 255);
      let data: Buffer | undefined;
      try {
        data = (await decode(damaged, [8192])).data;
      } catch (error) {
        assert.ok(error instanceof GravityError && error.code === 'DUMP_CORRUPT', String(error));
        continue;
      }
      // A flip inside a skippable or padding chunk changes nothing the reader uses.
      assert.ok(data.equals(input), `flip at ${at} went unnoticed and changed the data`);
    }
  });

  it('decodes what python3-snappy (Google snappy, framed) writes', async (t) => {
    if (!pyEncode) return t.skip(pyReason);
    for (let seed = 1; seed <= 8; seed++) {
      const input = sample(seed + 100, [1, 1000, 65536, 65537, 300_000, 1_000_000, 5, 2_000_000][seed - 1]!);
      const stream = await pyEncode(input);
      const {data, kind} = await decode(stream, [1 + seed * 997]);
      assert.ok(data.equals(input), `seed ${seed}`);
      assert.equal(kind, 'snappy');
    }
  });

  it('decodes what golang/snappy NewBufferedWriter writes (PBM `.snappy` files)', async (t) => {
    if (!snappyEncode) return t.skip(snappyReason);
    for (let seed = 1; seed <= 8; seed++) {
      const input = sample(seed + 200, [0, 1, 65535, 65536, 65537, 500_000, 2_000_000, 10][seed - 1]!);
      const {data, kind} = await decode(await snappyEncode(input), [1 + seed * 4099]);
      assert.ok(data.equals(input), `seed ${seed}`);
      if (input.length > 0) assert.equal(kind, 'snappy');
    }
  });
});
