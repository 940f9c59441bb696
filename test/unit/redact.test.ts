/**
 * Secrets never printed: random passwords holding every character a connection string treats
 * specially, escaped or not, through `redact` and through every connection error path that can
 * print a URI (a string the driver cannot parse, a server that does not answer).
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import fc from 'fast-check';

import {maskUri, passwordOf, redact, registerSecret, registerUriSecrets} from '../../src/config/redact.js';
import {GravityError} from '../../src/errors.js';
import {connectTarget} from '../../src/target/connect.js';

const SPECIAL = [...':/?#[]@!$&\'()*+,;=% "`<>\\'];
const ALNUM = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'];

/** 8–20 characters, at least one special; a fixed head keeps the text distinct from the rest of the URI. */
const password = fc
  .tuple(fc.array(fc.constantFrom(...SPECIAL, ...ALNUM), {minLength: 6, maxLength: 18}), fc.constantFrom(...SPECIAL))
  .map(([chars, special]) => `Kq7${special}${chars.join('')}`);

/** Pieces of the password long enough to be recognisable, that are not also in the URI around it. */
function fragments(pw: string, around: string): string[] {
  return pw
    .split(/[^A-Za-z0-9]+/)
    .filter((f) => f.length >= 4 && !around.includes(f));
}

function assertNoLeak(text: string, pw: string, around: string): void {
  assert.ok(!text.includes(pw), `password ${JSON.stringify(pw)} printed in: ${text}`);
  assert.ok(!text.includes(encodeURIComponent(pw)), `encoded password printed in: ${text}`);
  for (const f of fragments(pw, around)) assert.ok(!text.includes(f), `fragment ${JSON.stringify(f)} of ${JSON.stringify(pw)} printed in: ${text}`);
}

const around = 'mongodb://restorer:@db-1.example.com:27017/gravity?authSource=admin&tls=true';

describe('redact', () => {
  it('masks the password of a URI whatever it holds, raw or percent-encoded, valid URI or not (registered or not)', () => {
    fc.assert(
      fc.property(password, fc.boolean(), fc.boolean(), (pw, encoded, register) => {
        const spelled = encoded ? encodeURIComponent(pw) : pw;
        const uri = `mongodb://restorer:${spelled}@db-1.example.com:27017/gravity?authSource=admin&tls=true`;
        if (register) registerUriSecrets(uri);
        for (const text of [uri, `Invalid connection string "${uri}"`, `cannot reach ${uri}: timed out`, `(${uri})`]) {
          const out = redact(text);
          if (!/[\s"'`<>]/.test(pw)) assert.match(out, /restorer:\*\*\*\*@/);
          // Unregistered, a password that ends the URI-like token early (space, quote) can only be masked in part.
          if (register || !/[\s"'`<>]/.test(pw)) assertNoLeak(out, pw, around);
        }
      }),
      {numRuns: 400},
    );
  });

  it('keeps what is not secret: user, hosts, database, options', () => {
    assert.equal(redact('mongodb://restorer:Zq9#Xw7@db-1:27017,db-2:27017/gravity?replicaSet=rs0'), 'mongodb://restorer:****@db-1:27017,db-2:27017/gravity?replicaSet=rs0');
    assert.equal(redact('mongodb://db-1:27017/gravity'), 'mongodb://db-1:27017/gravity');
    assert.equal(redact('mongodb://x509user@db-1/gravity'), 'mongodb://x509user@db-1/gravity');
  });

  it('masks TLS key passwords and AWS secrets in query strings', () => {
    assert.equal(
      redact('mongodb://db/g?tls=true&tlsCertificateKeyFilePassword=k3y!pw&sslPEMKeyPassword=old&x=1'),
      'mongodb://db/g?tls=true&tlsCertificateKeyFilePassword=****&sslPEMKeyPassword=****&x=1',
    );
    assert.equal(redact('https://b.s3/k?X-Amz-Signature=abcd&X-Amz-Credential=AKIA'), 'https://b.s3/k?X-Amz-Signature=****&X-Amz-Credential=****');
  });

  it('masks a registered secret anywhere, in any of its spellings', () => {
    registerSecret('wJalrXUtnFEMI/K7MDENG+bPxRfiCY');
    assert.equal(redact('key wJalrXUtnFEMI/K7MDENG+bPxRfiCY used'), 'key **** used');
    assert.equal(redact(`key ${encodeURIComponent('wJalrXUtnFEMI/K7MDENG+bPxRfiCY')}`), 'key ****');
  });

  it('a label never shows what follows an @ that is not followed by a host list', () => {
    assert.equal(maskUri('mongodb://restorer:Kq7:@:3yq2'), 'mongodb://restorer:****@…');
    assert.equal(maskUri('mongodb://restorer:Kq7#V@ NxKW+yaz7;"'), 'mongodb://restorer:****@…');
    assert.equal(maskUri('mongodb://restorer:p@ss@db-1:27017,db-2/gravity?tls=true'), 'mongodb://restorer:****@db-1:27017,db-2/gravity?tls=true');
  });

  it('finds the password between the first colon and the last @', () => {
    assert.equal(passwordOf('mongodb://u:p@ss/w?rd#x@h/db'), 'p@ss/w?rd#x');
    assert.equal(passwordOf('mongodb://h/db'), undefined);
    assert.equal(passwordOf('mongodb://u@h/db'), undefined);
    assert.equal(passwordOf('mongodb://h:27017/db'), undefined);
    assert.equal(passwordOf('mongodb://u:forgot-the-host'), 'forgot-the-host');
    assert.equal(redact('mongodb://u:forgot-the-host'), 'mongodb://u:****');
  });

  it('keeps what is not a secret: ports, placeholders, and the line numbers of stack frames', () => {
    assert.equal(redact('Use --to mongodb://host:port/db'), 'Use --to mongodb://host:port/db');
    assert.equal(redact('Cannot reach mongodb://db-1:27017,db-2:27018/g'), 'Cannot reach mongodb://db-1:27017,db-2:27018/g');
    const frame = '    at connectTarget (file:///app/dist/src/target/connect.js:123:45)';
    assert.equal(redact(frame), frame);
    assert.equal(redact('at file:///app/node_modules/@oclif/core/lib/main.js:97:16'), 'at file:///app/node_modules/@oclif/core/lib/main.js:97:16');
    // A registered password's digit runs do not mask every port or line number that happens to match.
    registerSecret('hunter!27017!x');
    assert.equal(redact('mongodb://h:27017/g and main.js:27017:1'), 'mongodb://h:27017/g and main.js:27017:1');
    assert.equal(redact('pw hunter!27017!x'), 'pw ****');
  });
});

describe('connection errors never print the password', () => {
  // As the command layer builds it (resolveTarget): the label is the masked URI.
  const spec = (uri: string) => ({name: 'adhoc' as const, uri, db: null, label: maskUri(uri)});

  it('an invalid connection string', async () => {
    await fc.assert(
      // Every tail starts with the '@' that ends the password: without one, a password holding '@' is
      // indistinguishable from user:pass@host and no masking can tell which part is the host.
      fc.asyncProperty(password, fc.constantFrom('@', '@host:notaport/db', '@h1,,h2/db', '@[::1/db', '@ db'), async (pw, tail) => {
        const uri = `mongodb://restorer:${pw}${tail}`;
        try {
          const conn = await connectTarget(spec(uri), {timeoutMs: 200});
          await conn.close();
        } catch (error) {
          assert.ok(error instanceof GravityError, String(error));
          assertNoLeak(`${error.message} ${error.hint ?? ''} ${error.line}`, pw, around);
        }
      }),
      {numRuns: 150},
    );
  });

  it('a server that does not answer', async () => {
    await fc.assert(
      fc.asyncProperty(password, async (pw) => {
        const uri = `mongodb://restorer:${encodeURIComponent(pw)}@127.0.0.1:1/gravity`;
        await assert.rejects(connectTarget(spec(uri), {timeoutMs: 150}), (error: unknown) => {
          assert.ok(error instanceof GravityError);
          assert.equal(error.code, 'TARGET_UNREACHABLE');
          assertNoLeak(`${error.message} ${error.hint ?? ''}`, pw, around);
          return true;
        });
      }),
      {numRuns: 12},
    );
  });
});
