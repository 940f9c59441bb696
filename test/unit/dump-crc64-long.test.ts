import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {describe, it} from 'node:test';

import {Crc64, crc64} from '../../src/dump/crc64.js';
import {rng} from '../support/bson-fixtures.js';

/** CRC-64/XZ by liblzma (python3's lzma module, CHECK_CRC64): the stored check of an .xz block. */
const LIBLZMA_CRC64 = `
import lzma, struct, sys
data = sys.stdin.buffer.read()
xz = lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64, preset=0)
index_size = (struct.unpack('<I', xz[-8:-4])[0] + 1) * 4
index_start = len(xz) - 12 - index_size
print(struct.unpack('<Q', xz[index_start - 8:index_start])[0])
`;

function liblzma(data: Buffer): bigint {
  const result = spawnSync('/usr/bin/python3', ['-c', LIBLZMA_CRC64], {input: data, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024});
  assert.equal(result.status, 0, result.stderr);
  return BigInt(result.stdout.trim());
}

describe('crc64 on long inputs (the path archives take)', () => {
  const random = rng(64);
  // Longer than the copy window (256 KiB) and not a multiple of 16, so every branch runs.
  const data = Buffer.from(Array.from({length: 700_001}, () => Math.floor(random() * 256)));

  it('matches liblzma for one long update', () => {
    assert.equal(crc64(data), liblzma(data));
  });

  it('gives the same value fed in pieces of every size, long and short mixed', () => {
    const whole = liblzma(data);
    for (const sizes of [[1], [15, 17, 255, 256, 257], [4096, 3], [262_144, 262_145, 7], [550]]) {
      const c = new Crc64();
      let at = 0;
      for (let k = 0; at < data.length; k++) {
        const size = sizes[k % sizes.length]!;
        c.update(data.subarray(at, at + size));
        at += size;
      }
      assert.equal(c.digest(), whole, `pieces of ${sizes.join(', ')}`);
    }
  });
});
