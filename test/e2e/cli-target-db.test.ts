/**
 * The target database is said aloud. A set extracted from `shop` and planned against a URI ending in
 * `/gravity…` names the database it would write to, that it is not the set's, and that it (or a
 * collection) does not exist, in plan's and push's first lines and in --json; production refuses a
 * database other than the set's unless --db names it. Through bin/run.js.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import type {Document} from 'bson';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';
import {withDb} from '../support/mongo-backend.js';
import {rawDocs, startWorld, type PromoteWorld} from '../support/promote-fixture.js';

let world: PromoteWorld;
let dir: string;
let cleanup: () => Promise<void>;
let setDir: string;
let env: NodeJS.ProcessEnv;
const SHOP = `shop${process.pid}`;
const SANDBOX = `gravity${process.pid}`;

interface TargetDatabaseJson {
  name: string;
  sourceDb: string;
  exists: boolean;
  missingCollections: string[];
  chosenBy: string;
}

before(async () => {
  world = await startWorld();
  console.error(`# MongoDB backend: ${world.production.kind}`);
  ({dir, cleanup} = await tempDir('gr-cli-target-db-'));
  setDir = path.join(dir, 'set');
  await writeSet(setDir, [
    {db: SHOP, name: 'customers', docs: Array.from({length: 4}, (_, i) => ({_id: i, name: `c${i}`}))},
    {db: SHOP, name: 'orders', docs: Array.from({length: 2}, (_, i) => ({_id: i, customer: i}))},
  ]);
  // As the sandbox prints them: connection strings ending in another database than the set's.
  env = cleanEnv({GRAVITY_RESTORE_STAGING_URI: withDb(world.staging.uri, SANDBOX), GRAVITY_RESTORE_PRODUCTION_URI: withDb(world.production.uri, SANDBOX)});
});
after(async () => {
  for (const db of [SHOP, SANDBOX, 'nosuchdb']) {
    await world.stagingClient.db(db).dropDatabase().catch(() => undefined);
    await world.productionClient.db(db).dropDatabase().catch(() => undefined);
  }
  await world?.stop();
  await cleanup?.();
});

/** stderr's lines before any other output of the command. */
function firstLines(stderr: string, n: number): string[] {
  return stderr.split('\n').slice(0, n);
}

describe('the target database, said aloud', () => {
  it('plan against a URI naming another, missing database: the first lines and --json say so', async () => {
    const plan = await runCli(['plan', setDir, '--to', 'staging', '--json'], {env});
    assert.equal(plan.code, 0, plan.stderr);
    const t = json<{targetDatabase: TargetDatabaseJson}>(plan).targetDatabase;
    assert.deepEqual(t, {name: SANDBOX, sourceDb: SHOP, exists: false, missingCollections: ['customers', 'orders'], chosenBy: 'uri'});
    assert.deepEqual(firstLines(plan.stderr, 2), [
      `Warning: Target database is ${SANDBOX} (from the connection string's path), not the set's source database ${SHOP}; pass --db ${SHOP} to write there`,
      `Warning: Database ${SANDBOX} does not exist on staging (${withDb(world.staging.uri, SANDBOX)}): a push would create it (check the name, or pass --db)`,
    ]);

    const human = await runCli(['plan', setDir, '--to', 'staging', '--db', 'nosuchdb'], {env});
    assert.equal(human.code, 0, human.stderr);
    assert.match(firstLines(human.stderr, 1)[0]!, /^Warning: Target database is nosuchdb \(from --db\), not the set's source database/);
    assert.match(human.stderr, /Database nosuchdb does not exist on staging/);
  });

  it('the set\'s own database: nothing to say until a collection is missing there', async () => {
    await world.stagingClient.db(SHOP).collection('customers').insertOne({_id: 'someone else'} as unknown as Document);
    const plan = await runCli(['plan', setDir, '--to', 'staging', '--db', SHOP, '--json'], {env});
    assert.equal(plan.code, 0, plan.stderr);
    assert.deepEqual(json<{targetDatabase: TargetDatabaseJson}>(plan).targetDatabase, {name: SHOP, sourceDb: SHOP, exists: true, missingCollections: ['orders'], chosenBy: 'flag'});
    assert.equal(firstLines(plan.stderr, 1)[0], `Warning: ${SHOP} on staging (${withDb(world.staging.uri, SANDBOX)}) has no collection orders: a push would create it`);
    assert.doesNotMatch(plan.stderr, /not the set's source database/);

    await world.stagingClient.db(SHOP).createCollection('orders');
    const quiet = await runCli(['plan', setDir, '--to', 'staging', '--db', SHOP, '--json'], {env});
    assert.doesNotMatch(quiet.stderr, /Warning/);
  });

  it('push says it first too, and --json carries it', async () => {
    const push = await runCli(['push', setDir, '--to', 'staging', '--yes', '--json'], {env});
    assert.equal(push.code, 0, push.stderr);
    assert.match(firstLines(push.stderr, 1)[0]!, new RegExp(`^Warning: Target database is ${SANDBOX} \\(from the connection string's path\\), not the set's source database ${SHOP}`));
    assert.deepEqual(json<{targetDatabase: TargetDatabaseJson}>(push).targetDatabase, {name: SANDBOX, sourceDb: SHOP, exists: false, missingCollections: ['customers', 'orders'], chosenBy: 'uri'});
    assert.equal((await rawDocs(world.stagingClient, SANDBOX, 'customers')).size, 4);
  });

  it('production refuses a database other than the set\'s unless --db names it', async () => {
    const silent = await runCli(['push', setDir, '--to', 'production', '--confirm', SANDBOX, '--skip-staging', '--reason', 'test'], {env});
    assertCleanError(silent, new RegExp(`production would write into database ${SANDBOX} \\(from the connection string's path\\), but the set was extracted from ${SHOP}\\. Name the database on purpose: --db ${SHOP}`));
    assert.equal(silent.code, 7);
    // A configured default is not --db either.
    const configured = await runCli(['push', setDir, '--to', 'production', '--confirm', SANDBOX, '--skip-staging', '--reason', 'test'], {env: {...env, GRAVITY_RESTORE_PRODUCTION_DB: SANDBOX}});
    assertCleanError(configured, /from GRAVITY_RESTORE_PRODUCTION_DB \/ targets\.production\.db/);
    assert.equal((await rawDocs(world.productionClient, SANDBOX, 'customers')).size, 0);

    const named = await runCli(['push', setDir, '--to', 'production', '--db', SANDBOX, '--confirm', SANDBOX, '--skip-staging', '--reason', 'test', '--json'], {env});
    assert.equal(named.code, 0, named.stderr);
    assert.equal(json<{targetDatabase: TargetDatabaseJson}>(named).targetDatabase.chosenBy, 'flag');
    assert.equal((await rawDocs(world.productionClient, SANDBOX, 'customers')).size, 4);

    const own = await runCli(['push', setDir, '--to', 'production', '--db', SHOP, '--confirm', SHOP, '--skip-staging', '--reason', 'test', '--json'], {env});
    assert.equal(own.code, 0, own.stderr);
    assert.equal((await rawDocs(world.productionClient, SHOP, 'customers')).size, 4);
  });
});
