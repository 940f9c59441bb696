/**
 * The production gate checks what is pushed, not only which set: a `--fields phone` repair
 * rehearsed and verified on staging does not let the whole set into production with
 * `--on-conflict overwrite` (which would clobber phones users re-entered by hand). Through bin/run.js.
 */
import assert from 'node:assert/strict';
import {after, before, describe, it} from 'node:test';

import type {Document} from 'bson';

import {assertCleanError, json, runCli} from '../support/cli.js';
import {bytesOf, idKeyOf, ledger, rawDocs, scenario, startWorld, type PromoteWorld, type Scenario} from '../support/promote-fixture.js';

let world: PromoteWorld;
const scenarios: Scenario[] = [];

before(async () => {
  world = await startWorld();
  console.error(`# MongoDB backend: ${world.production.kind}`);
});
after(async () => {
  for (const s of scenarios) await s.cleanup();
  await world?.stop();
});

const customer = (i: number, phone: string | null, name = `Customer ${i}`) => ({_id: i, name, phone});

/** Customers as the backup has them, and a target where a bad patch nulled the phones and users edited names and re-entered two phones since. */
async function incident(client: PromoteWorld['stagingClient'], s: Scenario): Promise<void> {
  const docs = Array.from({length: 6}, (_, i) => customer(i, i >= 4 ? `re-entered ${i}` : null, `Customer ${i} (edited)`));
  await client.db(s.db).collection('customers').insertMany(docs as unknown as Document[]);
}

describe('production gate by push mode', () => {
  it('a --fields repair verified on staging does not let a whole --on-conflict overwrite push into production', async () => {
    const s = await scenario(world, {customers: Array.from({length: 6}, (_, i) => customer(i, `+1 555 010${i}`))});
    scenarios.push(s);
    await incident(world.stagingClient, s);
    await incident(world.productionClient, s);
    const repair = ['--fields', 'phone', '--where-target', '{phone: null}'];

    const staged = await runCli(['push', s.setDir, '--to', 'staging', ...repair, '--yes', '--json'], {env: s.env});
    assert.equal(staged.code, 0, staged.stderr);
    assert.equal(json<{collections: Record<string, {repaired: number}>}>(staged).collections.customers!.repaired, 4);
    const verified = await runCli(['verify', s.setDir, '--to', 'staging', '--fields', 'phone'], {env: s.env});
    assert.equal(verified.code, 0, verified.stderr);

    // The staging push recorded its mode, in canonical form (the query as canonical Extended JSON).
    const stagingPush = (await ledger(s.setDir)).find((l) => l.action === 'push' && l.target === 'staging') as unknown as {mode: Record<string, unknown>};
    assert.deepEqual(stagingPush.mode, {fields: ['phone'], whereTarget: '{"phone":null}', onConflict: 'skip', inexact: 'fail', skipClashes: false, bypassDocumentValidation: false, matchOn: []});

    const before = await rawDocs(world.productionClient, s.db, 'customers');
    const whole = await runCli(['push', s.setDir, '--to', 'production', '--on-conflict', 'overwrite', '--confirm', s.db], {env: s.env});
    assertCleanError(whole, /Staging verified this set pushed another way: --fields whole documents \(staging: phone\), --where-target none \(staging: \{"phone":null\}\), --on-conflict overwrite \(staging: skip\)\. Rehearse this push on staging first: `gravity-restore push \S+ --to staging --on-conflict overwrite --yes`/);
    assert.equal(whole.code, 7);
    assert.deepEqual(await rawDocs(world.productionClient, s.db, 'customers'), before, 'production was written to');

    // --json gives the same refusal as the one-line error document.
    const asJson = await runCli(['push', s.setDir, '--to', 'production', '--on-conflict', 'overwrite', '--confirm', s.db, '--json'], {env: s.env});
    assert.equal(asJson.code, 7);
    const error = (JSON.parse(asJson.stdout.trim() || asJson.stderr.trim().split('\n').at(-1)!) as {error: {code: string; details?: {differences?: string[]}}}).error;
    assert.equal(error.code, 'GATE_REFUSED');
    assert.deepEqual(error.details?.differences, ['--fields whole documents (staging: phone)', '--where-target none (staging: {"phone":null})', '--on-conflict overwrite (staging: skip)']);

    // The same repair, in the same mode (the filter spelled another way), passes the gate and writes only the phones.
    const same = await runCli(['push', s.setDir, '--to', 'production', '--fields', 'phone', '--where-target', '{"phone": null}', '--confirm', s.db, '--json'], {env: s.env});
    assert.equal(same.code, 0, same.stderr);
    assert.equal(json<{collections: Record<string, {repaired: number}>}>(same).collections.customers!.repaired, 4);
    const after = await rawDocs(world.productionClient, s.db, 'customers');
    for (const i of [4, 5]) assert.deepEqual(after.get(idKeyOf(i)), before.get(idKeyOf(i)), `customer ${i}'s re-entered phone was touched`);
    for (const i of [0, 1, 2, 3]) assert.deepEqual(after.get(idKeyOf(i)), bytesOf(customer(i, `+1 555 010${i}`, `Customer ${i} (edited)`)));
  });

  it('a whole push rehearsed on staging in the default mode does not cover --on-conflict overwrite, until staging rehearses that', async () => {
    const s = await scenario(world, {customers: Array.from({length: 3}, (_, i) => customer(i, `+1 555 020${i}`))});
    scenarios.push(s);
    assert.equal((await runCli(['push', s.setDir, '--to', 'staging', '--yes'], {env: s.env})).code, 0);
    assert.equal((await runCli(['verify', s.setDir, '--to', 'staging'], {env: s.env})).code, 0);

    const overwrite = await runCli(['push', s.setDir, '--to', 'production', '--on-conflict', 'overwrite', '--skip-clashes', '--confirm', s.db], {env: s.env});
    assertCleanError(overwrite, /pushed another way: --on-conflict overwrite \(staging: skip\), --skip-clashes on \(staging: off\)\. Rehearse .*--on-conflict overwrite --skip-clashes --yes/);
    assert.equal((await rawDocs(world.productionClient, s.db, 'customers')).size, 0);

    // The default mode is proven already.
    assert.equal((await runCli(['push', s.setDir, '--to', 'production', '--confirm', s.db], {env: s.env})).code, 0);

    // After rehearsing the overwrite on staging, production takes it.
    assert.equal((await runCli(['push', s.setDir, '--to', 'staging', '--on-conflict', 'overwrite', '--skip-clashes', '--yes'], {env: s.env})).code, 0);
    assert.equal((await runCli(['verify', s.setDir, '--to', 'staging'], {env: s.env})).code, 0);
    const proven = await runCli(['push', s.setDir, '--to', 'production', '--on-conflict', 'overwrite', '--skip-clashes', '--confirm', s.db], {env: s.env});
    assert.equal(proven.code, 0, proven.stderr);
  });
});
