/**
 * A password given percent-encoded in a connection string (as a driver requires:
 * https://www.mongodb.com/docs/manual/reference/connection-string/#examples, "percent encoded")
 * reaches the program's own text decoded too (a driver's message, an echo of what it tried): once
 * the URI is registered, the decoded spelling is masked wherever it appears, not only inside a URI.
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import fc from 'fast-check';

import {redact, registerUriSecrets} from '../../src/config/redact.js';

const SPECIAL = [...':/?#[]@!$&\'()*+,;=% "`<>\\'];
const ALNUM = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'];

describe('redact: every spelling of a registered password', () => {
  it('masks the decoded spelling of a percent-encoded password in ordinary text', () => {
    registerUriSecrets('mongodb://restorer:p%40ss%23w%2Frd%3Along9@db-1.example.com:27017/shop');
    for (const text of ['authentication failed for restorer with p@ss#w/rd:long9', 'p@ss#w/rd:long9', '"p@ss#w/rd:long9".']) {
      const out = redact(text);
      assert.ok(!out.includes('p@ss#w/rd:long9'), `decoded password printed in: ${out}`);
      assert.ok(!out.includes('w/rd:long9'), `the end of the decoded password printed in: ${out}`);
    }
    assert.equal(redact('authentication failed for restorer with p@ss#w/rd:long9'), 'authentication failed for restorer with ****');
  });

  it('for any password: registered through its encoded URI, neither spelling is printed in prose', () => {
    const password = fc
      .tuple(fc.array(fc.constantFrom(...SPECIAL, ...ALNUM), {minLength: 6, maxLength: 18}), fc.constantFrom(...SPECIAL))
      .map(([chars, special]) => `Vb4${special}${chars.join('')}`);
    fc.assert(
      fc.property(password, (pw) => {
        const encoded = encodeURIComponent(pw);
        registerUriSecrets(`mongodb://restorer:${encoded}@db-1.example.com:27017/shop`);
        for (const text of [`could not log in as restorer using ${pw} (check it)`, `${encoded} was refused`]) {
          const out = redact(text);
          assert.ok(!out.includes(pw), `password ${JSON.stringify(pw)} printed in: ${out}`);
          assert.ok(!out.includes(encoded), `encoded password printed in: ${out}`);
        }
      }),
      {numRuns: 300},
    );
  });
});
