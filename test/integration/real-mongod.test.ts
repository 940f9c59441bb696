/**
 * Makes the test summary say, by name, which suites did not run on a real MongoDB.
 *
 * The suites below start their servers through startMongo() (directly, or through the sandbox),
 * so this file asks the same chooser, in the same environment, for a server. When it hands out
 * the in-repo test server, each suite is listed here as a SKIPPED test with the reason: the test
 * server is more lenient than mongod (ENVIRONMENT.md), so a pass on it is not a pass on mongod.
 */
import assert from 'node:assert/strict';
import {after, describe, it} from 'node:test';

import {MongoClient} from 'mongodb';

import {describeBackend, startMongo} from '../support/mongo-backend.js';

const SUITES = [
  'MongoDB contract suite (test/integration/mongo-contract.test.ts)',
  'target push (test/integration/target-push.test.ts)',
  'target rollback (test/integration/target-rollback.test.ts)',
  'extract with the mongod engine (test/integration/extract.test.ts)',
  'pymongo flow through the sandbox (test/e2e/pymongo-flow.test.ts)',
  'demo through the sandbox (test/e2e/demo.test.ts)',
];

const backend = await startMongo({label: 'real-mongod'});
const real = backend.kind !== 'test-server';
const skip = real ? false : `no real mongod: ${backend.why ?? backend.detail}; set MONGODB_TEST_URI`;
console.log(`# MongoDB backend: ${describeBackend(backend.kind)} (${backend.detail})`);

after(async () => {
  await backend.stop();
});

describe('suites on real MongoDB', () => {
  if (real) {
    it('the chosen server is a MongoDB that answers buildInfo', async () => {
      const client = await new MongoClient(backend.uri, {serverSelectionTimeoutMS: 10_000}).connect();
      try {
        const info = await client.db('admin').command({buildInfo: 1});
        assert.match(String(info.version), /^\d+\.\d+/);
        const hello = await client.db('admin').command({hello: 1});
        console.log(`# real MongoDB ${info.version}${hello.setName ? `, replica set ${hello.setName}` : ''}`);
      } finally {
        await client.close();
      }
    });
  }
  for (const suite of SUITES) {
    it(`${suite} runs on real mongod`, {skip}, () => {
      assert.notEqual(backend.kind, 'test-server');
    });
  }
});
