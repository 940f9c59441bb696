import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {hasUnencodedUserInfo, resolveTarget, resolveSettings} from '../../src/config/settings.js';
import {GravityError} from '../../src/errors.js';

describe('unencoded user information in a connection string', () => {
  it('finds an unencoded @ # / ? or : in the user name or password', () => {
    for (const uri of [
      'mongodb://u:p@ss#w/rd@host/db',
      'mongodb://u:p@ss@host:27017/db',
      'mongodb://u:pa#ss@host/db',
      'mongodb://u:pa/ss@host/db',
      'mongodb://u:pa?ss@host/db',
      'mongodb://u:pa:ss@host/db',
      'mongodb://us@er:pass@host/db',
      'mongodb+srv://u:p/w@cluster0.example.net/db',
    ]) {
      assert.equal(hasUnencodedUserInfo(uri), true, uri);
    }
  });

  it('accepts well-formed strings, encoded or without credentials', () => {
    for (const uri of [
      'mongodb://host/db',
      'mongodb://host:27017,host2:27018/db?replicaSet=rs0',
      `mongodb://u:${encodeURIComponent('p@ss#w/rd:?')}@host/db?authSource=admin`,
      'mongodb://u@host/db',
      'mongodb://u:@host/db',
      'mongodb+srv://u:p@cluster0.example.net/',
    ]) {
      assert.equal(hasUnencodedUserInfo(uri), false, uri);
    }
  });

  it('resolveTarget refuses it with TARGET_INVALID, exit 2, without printing the password', () => {
    const settings = resolveSettings({}, {}, null, {GRAVITY_RESTORE_STAGING_URI: 'mongodb://u:Zq9@Xw7#k@host/db'});
    for (const to of ['staging', 'mongodb://u:Zq9@Xw7#k@host/db']) {
      assert.throws(
        () => resolveTarget(to, settings, true),
        (error: unknown) => {
          assert.ok(error instanceof GravityError);
          assert.equal(error.code, 'TARGET_INVALID');
          assert.equal(error.exitCode, 2);
          assert.match(error.line, /percent-encode the password/);
          assert.doesNotMatch(error.line, /Zq9|Xw7/);
          return true;
        },
      );
    }
  });
});
