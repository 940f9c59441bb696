/**
 * The shapes of connection strings `redact`, `passwordOf`, `maskUri` and `hasValidHostList` meet at
 * their edges: an empty user or user-info, no user-info, a port with nothing after it, prose around
 * a URI, a secret inside a longer one. Connection string format:
 * https://www.mongodb.com/docs/manual/reference/connection-string/#standard-connection-string-format
 * (`mongodb://[username:password@]host1[:port1][,...hostN[:portN]][/[defaultauthdb][?options]]`).
 */
import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {hasValidHostList, maskUri, passwordOf, redact, registerSecret, registerUriSecrets} from '../../src/config/redact.js';

describe('passwordOf: the password of a whole connection string, nothing guessed', () => {
  it('an empty user name still has a password; an empty user-info has none', () => {
    assert.equal(passwordOf('mongodb://:S3cretpw@db-1/shop'), 'S3cretpw');
    assert.equal(passwordOf('mongodb://:Hq7secret'), 'Hq7secret');
    assert.equal(passwordOf('mongodb://@db-1:Qz8pw/shop'), undefined);
  });

  it('a port with nothing after it is not a password; text that is not a connection string has none', () => {
    assert.equal(passwordOf('mongodb://db-1:27017'), undefined);
    assert.equal(passwordOf('not a uri'), undefined);
    // Prose holding a URI-like token is redact's business: a guess registered here would mask the word everywhere.
    assert.equal(passwordOf('see the notes at http://wiki:Runbook'), undefined);
  });
});

describe('registering secrets', () => {
  it('nothing to register is no error; values shorter than four characters are not registered', () => {
    assert.doesNotThrow(() => registerUriSecrets(undefined));
    assert.doesNotThrow(() => registerUriSecrets(''));
    assert.doesNotThrow(() => registerSecret(undefined));
    assert.doesNotThrow(() => registerSecret(null));
    registerSecret('Ab9');
    assert.equal(redact('Ab9 stays, undefined stays'), 'Ab9 stays, undefined stays');
    registerSecret('Wx9z');
    assert.equal(redact('key Wx9z used'), 'key **** used');
    // Not in any spelling either: percent-encoding makes a short value long enough to mask words.
    registerSecret('a#b');
    assert.equal(redact('x a%23b y'), 'x a%23b y');
  });

  it('a secret query parameter is registered by its value, and masked in prose', () => {
    registerUriSecrets('mongodb://db-1/shop?tls=true&tlsCertificateKeyFilePassword=Pq8longsecret');
    assert.equal(redact('the key file password Pq8longsecret was refused'), 'the key file password **** was refused');
    // The parameter's name is not a secret: it stays readable wherever it is mentioned.
    assert.equal(redact('set tlsCertificateKeyFilePassword in the URI'), 'set tlsCertificateKeyFilePassword in the URI');
  });

  it('a secret that holds a shorter one is masked whole, whichever was registered first', () => {
    registerSecret('Tq5wLongerTail9');
    registerSecret('Tq5w');
    registerSecret('Pz8k');
    registerSecret('Pz8kLongerTail7');
    assert.equal(redact('a Tq5wLongerTail9 b Pz8kLongerTail7 c'), 'a **** b **** c');
  });
});

describe('redact: the password of any URI shape', () => {
  it('an empty user name: the password is still masked, inside a URI or without its host', () => {
    assert.equal(redact('mongodb://:Ew5passw0rd@db-1/shop'), 'mongodb://:****@db-1/shop');
    assert.equal(redact('failed: mongodb://:Rt6nohostpw'), 'failed: mongodb://:****');
  });

  it('what is not a password stays: a user without one, a port, an empty user-info', () => {
    assert.equal(redact('mongodb://x509user@db-1:27017/gravity'), 'mongodb://x509user@db-1:27017/gravity');
    assert.equal(redact('mongodb://db-1:27017'), 'mongodb://db-1:27017');
    assert.equal(redact('mongodb://@db-1:abc/x'), 'mongodb://@db-1:abc/x');
  });
});

describe('maskUri: a connection string as a label', () => {
  it('is masked where it stands, prose around it kept', () => {
    assert.equal(maskUri('x mongodb://u:Pw9secret@db-1/db'), 'x mongodb://u:****@db-1/db');
    assert.equal(maskUri('not a uri'), 'not a uri');
    assert.equal(maskUri('x mongodb://u:Pw9@ bad'), 'x mongodb://u:****@ bad');
  });

  it('without user-info, or with an empty one, nothing is hidden', () => {
    assert.equal(maskUri('mongodb://@db-1/x'), 'mongodb://@db-1/x');
    assert.equal(maskUri('mongodb://bad host/db'), 'mongodb://bad host/db');
  });

  it('after an @ that is not followed by a host list, only the user name is shown', () => {
    assert.equal(maskUri('mongodb://admin@ not-a-host:1'), 'mongodb://admin:****@…');
    assert.equal(maskUri('mongodb://:Zx8pw@ bad'), 'mongodb://:****@…');
    assert.equal(maskUri('mongodb://@ x'), 'mongodb://:****@…');
  });
});

describe('hasValidHostList', () => {
  it('is false for what is not a connection string, or does not start as one', () => {
    assert.equal(hasValidHostList('not a uri'), false);
    assert.equal(hasValidHostList(' mongodb://db-1'), false);
    assert.equal(hasValidHostList('mongodb://db-1:27017,db-2/shop'), true);
  });
});
