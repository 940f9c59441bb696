/**
 * What plan shows a person: a list cut short says how many it left out ("… and K more"), and
 * documents left out on purpose carry one word, "excluded", in plan, push and verify alike.
 * Through bin/run.js.
 */
import assert from 'node:assert/strict';
import {after, before, describe, it} from 'node:test';

import type {Document} from 'bson';

import {json, runCli} from '../support/cli.js';
import {scenario, startWorld, type PromoteWorld, type Scenario} from '../support/promote-fixture.js';

let world: PromoteWorld;
const scenarios: Scenario[] = [];

before(async () => {
  world = await startWorld();
});
after(async () => {
  for (const s of scenarios) await s.cleanup();
  await world?.stop();
});

const N = 27;
const customer = (i: number, phone: string | null) => ({_id: i, name: `Customer ${i}`, phone});

describe('plan lists', () => {
  it('say how many they leave out, and name deliberately left-out documents "excluded" as push and verify do', async () => {
    const s = await scenario(world, {customers: Array.from({length: N}, (_, i) => customer(i, `+1 555 ${i}`))});
    scenarios.push(s);
    // 25 phones nulled by a bad patch, 2 re-entered by hand since.
    await world.stagingClient
      .db(s.db)
      .collection('customers')
      .insertMany(Array.from({length: N}, (_, i) => customer(i, i < 25 ? null : `re-entered ${i}`)) as unknown as Document[]);

    const whole = await runCli(['plan', s.setDir, '--to', 'staging'], {env: s.env});
    assert.equal(whole.code, 0, whole.stderr);
    assert.match(whole.stdout, /Conflicts \(changed on the target since the backup[^\n]*\n(?:[^\n]*\n)*? {2}… and 7 more \(20 of 27 shown\)/);

    const flags = ['--fields', 'phone', '--where-target', '{"phone": null}'];
    const repair = await runCli(['plan', s.setDir, '--to', 'staging', ...flags], {env: s.env});
    assert.equal(repair.code, 0, repair.stderr);
    assert.match(repair.stdout, /Repairs \(the target's value is replaced by the backup's\):\n(?: {2}customers _id \d+\n {4}phone: [^\n]*\n){20} {2}… and 5 more \(20 of 25 shown\)/);
    assert.match(repair.stdout, /Excluded \(the target no longer matches --where-target/);
    assert.doesNotMatch(repair.stdout, /skipped/i);
    const planJson = json<{collections: Record<string, {excluded: number}>}>(await runCli(['plan', s.setDir, '--to', 'staging', ...flags, '--json'], {env: s.env}));
    assert.equal(planJson.collections.customers!.excluded, 2);
    const header = repair.stdout.split('\n').find((l) => l.includes('collection'))!;
    assert.match(header, /repair\s+excluded/);
    const row = repair.stdout.split('\n').find((l) => /^\s*customers\s/.test(l))!;
    assert.match(row, /\s25\s+2\s/);

    const push = await runCli(['push', s.setDir, '--to', 'staging', ...flags, '--yes'], {env: s.env});
    assert.equal(push.code, 0, push.stderr);
    const pushHeader = push.stdout.split('\n').find((l) => l.includes('collection') && l.includes('inserted'))!;
    assert.match(pushHeader, /excluded/);
    assert.doesNotMatch(pushHeader, /skipped/);
    const pushed = await runCli(['push', s.setDir, '--to', 'staging', ...flags, '--yes', '--json'], {env: s.env});
    assert.equal(json<{collections: Record<string, {excluded: number}>}>(pushed).collections.customers!.excluded, 2);
    const verify = await runCli(['verify', s.setDir, '--to', 'staging', '--fields', 'phone', '--json'], {env: s.env});
    assert.equal(json<{collections: Record<string, {excluded: number}>}>(verify).collections.customers!.excluded, 2);
  });
});
