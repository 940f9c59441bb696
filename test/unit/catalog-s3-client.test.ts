import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import {openStore} from '../../src/catalog/store.js';
import {GravityError} from '../../src/errors.js';
import {mapS3Error, parseS3Url} from '../../src/s3/client.js';

function sdkError(name: string, status?: number, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} happened`), {name, Code: name, $metadata: {httpStatusCode: status}, ...extra});
}

describe('parseS3Url', () => {
  it('splits bucket and prefix and normalises the trailing slash', () => {
    assert.deepEqual(parseS3Url('s3://gravity-production-db-backup/db/backup/'), {bucket: 'gravity-production-db-backup', prefix: 'db/backup/'});
    assert.deepEqual(parseS3Url('s3://bucket/db/backup'), {bucket: 'bucket', prefix: 'db/backup/'});
    assert.deepEqual(parseS3Url('s3://bucket'), {bucket: 'bucket', prefix: ''});
    assert.deepEqual(parseS3Url('s3://bucket/'), {bucket: 'bucket', prefix: ''});
  });

  it('returns null for anything that is not an s3 URL', () => {
    assert.equal(parseS3Url('/var/backups'), null);
    assert.equal(parseS3Url('https://bucket.s3.amazonaws.com/x'), null);
    assert.equal(parseS3Url('s3://'), null);
  });
});

describe('mapS3Error', () => {
  const context = {bucket: 'backups', key: 'db/', endpoint: 'http://127.0.0.1:9000'};
  const cases: Array<[string, Error, string]> = [
    ['InvalidAccessKeyId', sdkError('InvalidAccessKeyId', 403), 'S3_CREDENTIALS'],
    ['SignatureDoesNotMatch', sdkError('SignatureDoesNotMatch', 403), 'S3_CREDENTIALS'],
    ['no credentials in the chain', Object.assign(new Error('Could not load credentials from any providers'), {name: 'CredentialsProviderError'}), 'S3_CREDENTIALS'],
    ['AccessDenied', sdkError('AccessDenied', 403), 'S3_ACCESS_DENIED'],
    ['a bare 403 from HEAD', sdkError('Unknown', 403), 'S3_ACCESS_DENIED'],
    ['NoSuchBucket', sdkError('NoSuchBucket', 404), 'S3_NO_BUCKET'],
    ['NoSuchKey', sdkError('NoSuchKey', 404), 'BACKUP_NOT_FOUND'],
    ['connection refused', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {code: 'ECONNREFUSED'}), 'S3_NETWORK'],
    ['refused inside an AggregateError cause', Object.assign(new Error('fetch failed'), {cause: new AggregateError([Object.assign(new Error('x'), {code: 'ECONNREFUSED'})])}), 'S3_NETWORK'],
    ['timeout', sdkError('TimeoutError'), 'S3_NETWORK'],
    ['server error after retries', sdkError('InternalError', 503), 'S3_NETWORK'],
  ];
  for (const [label, error, code] of cases) {
    it(`maps ${label} to ${code}`, () => {
      const mapped = mapS3Error(error, context);
      assert.equal(mapped.code, code);
      assert.ok(mapped.hint && mapped.hint.length > 0, 'every mapped error names a next step');
      assert.ok(!mapped.message.endsWith('.'), 'messages have no trailing period');
    });
  }

  it('names the bucket and endpoint, and never shows a password in an endpoint', () => {
    const mapped = mapS3Error(sdkError('NoSuchBucket', 404), {bucket: 'backups', endpoint: 'http://user:secret@minio:9000'});
    assert.match(mapped.message, /backups/);
    assert.doesNotMatch(`${mapped.message} ${mapped.hint} ${JSON.stringify(mapped.details)}`, /secret/);
  });

  it('passes GravityErrors through unchanged', () => {
    const original = new GravityError('INTERRUPTED', 'stopped');
    assert.equal(mapS3Error(original, {}), original);
  });
});

describe('openStore', () => {
  it('needs a source', () => {
    assert.throws(() => openStore('  ', {}), (error: unknown) => error instanceof GravityError && error.code === 'SOURCE_MISSING');
  });

  it('reports a missing local folder as SOURCE_NOT_FOUND', () => {
    assert.throws(() => openStore('/nonexistent/gravity-backups', {}), (error: unknown) => error instanceof GravityError && error.code === 'SOURCE_NOT_FOUND');
  });

  it('rejects other URL schemes', () => {
    assert.throws(() => openStore('gs://bucket/x', {}), (error: unknown) => error instanceof GravityError && error.code === 'USAGE');
  });

  it('opens an s3 source without contacting S3', () => {
    const store = openStore('s3://bucket/db/backup', {endpoint: 'http://127.0.0.1:1'});
    assert.equal(store.location, 's3://bucket/db/backup/');
    assert.equal(store.kind, 's3');
  });
});
