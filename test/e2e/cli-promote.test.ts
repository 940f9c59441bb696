/**
 * plan → push → verify through bin/run.js against staging and production MongoDB servers:
 * the confirmation gates (prompts on a real pseudo-terminal), re-planning before a push,
 * --skip-staging, --on-conflict and verify's exit code.
 */
import assert from 'node:assert/strict';
import {after, before, describe, it} from 'node:test';

import type {Document} from 'bson';

import {assertCleanError, json, runCli} from '../support/cli.js';
import {hasScript, runCliOnTerminal} from '../support/cli-session.js';
import {artworkDocs, bytesOf, idKeyOf, ledger, rawDocs, scenario, startWorld, type PromoteWorld, type Scenario} from '../support/promote-fixture.js';

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

async function fresh(n = 4): Promise<Scenario> {
  const artworks = artworkDocs(n);
  const sale = artworks.map((a, i) => ({_id: 1000 + i, artwork_id: a._id, lot: i}));
  const s = await scenario(world, {artworks, sale_artworks: sale});
  scenarios.push(s);
  return s;
}

/** True when the target database holds every document of the set byte for byte, and nothing else. */
async function holdsExactly(client: PromoteWorld['stagingClient'], s: Scenario): Promise<void> {
  for (const [collection, docs] of Object.entries(s.docs)) {
    const held = await rawDocs(client, s.db, collection);
    assert.equal(held.size, docs.length, `${collection}: ${held.size} documents, expected ${docs.length}`);
    for (const doc of docs) assert.deepEqual(held.get(idKeyOf(doc._id)), bytesOf(doc), `${collection} ${String(doc._id)} differs`);
  }
}

async function holdsNothing(client: PromoteWorld['stagingClient'], s: Scenario): Promise<void> {
  for (const collection of Object.keys(s.docs)) assert.equal((await rawDocs(client, s.db, collection)).size, 0, `${collection} was written to`);
}

const terminalOnly = hasScript ? false : 'util-linux `script` is not installed (no pseudo-terminal)';

describe('the staging prompt on a terminal', {skip: terminalOnly}, () => {
  it('answering n writes nothing and exits non-zero; answering y writes the set', async () => {
    const s = await fresh();
    const no = await runCliOnTerminal(['push', s.setDir, '--to', 'staging'], {env: s.env, answers: [{when: /\[y\/N\]/, send: 'n\r'}]});
    assert.match(no.output, /Write 8 document\(s\) to staging .*\[y\/N\]/);
    assert.equal(no.code, 7, no.output);
    assert.match(no.output, /Error: Cancelled; nothing was written/);
    await holdsNothing(world.stagingClient, s);

    const yes = await runCliOnTerminal(['push', s.setDir, '--to', 'staging'], {env: s.env, answers: [{when: /\[y\/N\]/, send: 'y\r'}]});
    assert.equal(yes.code, 0, yes.output);
    await holdsExactly(world.stagingClient, s);
  });

  it('without a terminal and without --yes, the push is refused before anything is written', async () => {
    const s = await fresh();
    const result = await runCli(['push', s.setDir, '--to', 'staging'], {env: s.env});
    assertCleanError(result, /without confirmation .*--yes/);
    assert.equal(result.code, 7);
    await holdsNothing(world.stagingClient, s);
  });
});

describe('the production prompt on a terminal', {skip: terminalOnly}, () => {
  it('after a verified staging push: a wrong database name refuses, the right one pushes', async () => {
    const s = await fresh();
    assert.equal((await runCli(['push', s.setDir, '--to', 'staging', '--yes'], {env: s.env})).code, 0);
    assert.equal((await runCli(['verify', s.setDir, '--to', 'staging'], {env: s.env})).code, 0);

    const wrong = await runCliOnTerminal(['push', s.setDir, '--to', 'production'], {env: s.env, answers: [{when: /type the database name/, send: 'production\r'}]});
    assert.match(wrong.output, new RegExp(`This is PRODUCTION: type the database name \\(${s.db}\\)`));
    assert.equal(wrong.code, 7, wrong.output);
    assert.match(wrong.output, /Error: The database name did not match; nothing was written/);
    await holdsNothing(world.productionClient, s);

    const right = await runCliOnTerminal(['push', s.setDir, '--to', 'production'], {env: s.env, answers: [{when: /type the database name/, send: `${s.db}\r`}]});
    assert.equal(right.code, 0, right.output);
    await holdsExactly(world.productionClient, s);
  });
});

describe('production gates without a terminal', () => {
  it('refuses a set not verified on staging, and --yes alone never reaches production', async () => {
    const s = await fresh();
    const unverified = await runCli(['push', s.setDir, '--to', 'production', '--confirm', s.db], {env: s.env});
    assertCleanError(unverified, /has not been pushed to and verified on staging/);
    const yesOnly = await runCli(['push', s.setDir, '--to', 'production', '--yes', '--skip-staging', '--reason', 'x'], {env: s.env});
    assertCleanError(yesOnly, /needs the database name confirmed/);
    await holdsNothing(world.productionClient, s);
  });

  it('--skip-staging needs --reason, and records the reason in the ledger', async () => {
    const s = await fresh();
    const noReason = await runCli(['push', s.setDir, '--to', 'production', '--confirm', s.db, '--skip-staging'], {env: s.env});
    assertCleanError(noReason, /--skip-staging needs a reason/);
    await holdsNothing(world.productionClient, s);

    const reason = 'staging is down, incident #123';
    const pushed = await runCli(['push', s.setDir, '--to', 'production', '--confirm', s.db, '--skip-staging', '--reason', reason, '--json'], {env: s.env});
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.equal(json<{collections: Record<string, {inserted: number}>}>(pushed).collections.artworks!.inserted, 4);
    await holdsExactly(world.productionClient, s);
    const lines = await ledger(s.setDir);
    const override = lines.filter((l) => l.action === 'override');
    assert.equal(override.length, 1, JSON.stringify(lines));
    assert.equal(override[0]!.target, 'production');
    assert.equal(override[0]!.reason, reason);
    const push = lines.filter((l) => l.action === 'push' && l.target === 'production');
    assert.equal(push.length, 1);
    assert.equal(push[0]!.outcome, 'ok');
    assert.match(push[0]!.reason ?? '', /staging is down, incident #123/);
  });
});

describe('push plans again before writing', () => {
  it('refuses with PLAN_CHANGED when new conflicts appeared since the saved plan; nothing is written', async () => {
    const s = await fresh();
    const planned = await runCli(['plan', s.setDir, '--to', 'staging', '--json'], {env: s.env});
    assert.equal(planned.code, 0, planned.stderr);
    assert.equal(json<{collections: Record<string, {insert: number}>}>(planned).collections.artworks!.insert, 4);

    // Someone re-creates one of the lost artworks, edited, after the plan was shown.
    const edited: Document = {...s.docs.artworks![2]!, title: 'edited after the plan'};
    await world.stagingClient.db(s.db).collection('artworks').insertOne(edited);

    const pushed = await runCli(['push', s.setDir, '--to', 'staging', '--yes'], {env: s.env});
    // Without a terminal the push follows the saved plan, planning each batch again just before writing it: the
    // new conflict is in the first batch, so it stops before any write.
    assertCleanError(pushed, /target changed since the plan you saw \([0-9a-f]{12}\): 1 new conflict\(s\) in the next batch, e\.g\. artworks \{"\$oid":"[0-9a-f]{24}"\}; nothing was written/);
    assert.equal(pushed.code, 7);
    const held = await rawDocs(world.stagingClient, s.db, 'artworks');
    assert.equal(held.size, 1, 'only the edited document is there');
    assert.equal((await rawDocs(world.stagingClient, s.db, 'sale_artworks')).size, 0);

    // Once the person has seen the new plan, the push goes ahead and leaves the edit alone.
    assert.equal((await runCli(['plan', s.setDir, '--to', 'staging'], {env: s.env})).code, 0);
    const again = await runCli(['push', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env});
    assert.equal(again.code, 0, again.stderr);
    const counts = json<{collections: Record<string, {inserted: number; conflicts: number}>}>(again).collections;
    assert.equal(counts.artworks!.inserted, 3);
    assert.equal(counts.artworks!.conflicts, 1);
    assert.deepEqual((await rawDocs(world.stagingClient, s.db, 'artworks')).get(idKeyOf(edited._id)), bytesOf(edited));
  });

  it('on a terminal, a changed plan is shown and answering n writes nothing', {skip: terminalOnly}, async () => {
    const s = await fresh();
    assert.equal((await runCli(['plan', s.setDir, '--to', 'staging'], {env: s.env})).code, 0);
    await world.stagingClient.db(s.db).collection('artworks').insertOne({...s.docs.artworks![0]!, title: 'changed'});
    const run = await runCliOnTerminal(['push', s.setDir, '--to', 'staging', '--yes'], {env: s.env, answers: [{when: /Push with this new plan\? \[y\/N\]/, send: 'n\r'}]});
    assert.match(run.output, /The target changed since plan [0-9a-f]{12}: 1 new conflict/);
    assert.equal(run.code, 7, run.output);
    assert.equal((await rawDocs(world.stagingClient, s.db, 'artworks')).size, 1);
    assert.equal((await rawDocs(world.stagingClient, s.db, 'sale_artworks')).size, 0);
  });
});

describe('--on-conflict through the CLI', () => {
  async function withConflict(): Promise<{s: Scenario; edited: Document}> {
    const s = await fresh();
    const edited: Document = {...s.docs.artworks![1]!, title: 'edited on the target'};
    await world.stagingClient.db(s.db).collection('artworks').insertOne(edited);
    return {s, edited};
  }

  it('skip (the default) leaves the changed document as it is and counts it', async () => {
    const {s, edited} = await withConflict();
    const result = await runCli(['push', s.setDir, '--to', 'staging', '--yes', '--on-conflict', 'skip', '--json'], {env: s.env});
    assert.equal(result.code, 0, result.stderr);
    const counts = json<{collections: Record<string, {inserted: number; overwritten: number; conflicts: number}>}>(result).collections.artworks!;
    assert.deepEqual([counts.inserted, counts.overwritten, counts.conflicts], [3, 0, 1]);
    const held = await rawDocs(world.stagingClient, s.db, 'artworks');
    assert.deepEqual(held.get(idKeyOf(edited._id)), bytesOf(edited));
    assert.equal(held.size, 4);
  });

  it('fail stops before writing anything, exit 8', async () => {
    const {s} = await withConflict();
    const result = await runCli(['push', s.setDir, '--to', 'staging', '--yes', '--on-conflict', 'fail'], {env: s.env});
    assertCleanError(result, /conflicts.*nothing was written/);
    assert.equal(result.code, 8);
    assert.equal((await rawDocs(world.stagingClient, s.db, 'artworks')).size, 1);
    assert.equal((await rawDocs(world.stagingClient, s.db, 'sale_artworks')).size, 0);
  });

  it('overwrite replaces the changed document with the backup bytes', async () => {
    const {s} = await withConflict();
    const result = await runCli(['push', s.setDir, '--to', 'staging', '--yes', '--on-conflict', 'overwrite', '--json'], {env: s.env});
    assert.equal(result.code, 0, result.stderr);
    const counts = json<{collections: Record<string, {inserted: number; overwritten: number}>}>(result).collections.artworks!;
    assert.deepEqual([counts.inserted, counts.overwritten], [3, 1]);
    await holdsExactly(world.stagingClient, s);
  });

  it('an unknown mode is a usage error', async () => {
    const s = await fresh();
    const result = await runCli(['push', s.setDir, '--to', 'staging', '--yes', '--on-conflict', 'merge'], {env: s.env});
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /skip, overwrite, fail/);
    await holdsNothing(world.stagingClient, s);
  });
});

describe('verify through the CLI', () => {
  it('exits 8 while documents are missing, 0 once the target holds them, 8 again when one is deleted', async () => {
    const s = await fresh();
    const before = await runCli(['verify', s.setDir, '--to', 'staging', '--json'], {env: s.env});
    assert.equal(before.code, 8, before.stderr);
    const missing = json<{ok: boolean; collections: Record<string, {missing: number; present: number}>}>(before);
    assert.equal(missing.ok, false);
    assert.equal(missing.collections.artworks!.missing, 4);
    assert.equal(missing.collections.sale_artworks!.missing, 4);

    const plain = await runCli(['verify', s.setDir, '--to', 'staging'], {env: s.env});
    assertCleanError(plain, /does not hold everything the set promised/);

    assert.equal((await runCli(['push', s.setDir, '--to', 'staging', '--yes'], {env: s.env})).code, 0);
    const ok = await runCli(['verify', s.setDir, '--to', 'staging', '--json'], {env: s.env});
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(json<{ok: boolean}>(ok).ok, true);

    await world.stagingClient.db(s.db).collection<{_id: number}>('sale_artworks').deleteOne({_id: 1002});
    const gone = await runCli(['verify', s.setDir, '--to', 'staging', '--json'], {env: s.env});
    assert.equal(gone.code, 8);
    const result = json<{ok: boolean; collections: Record<string, {missing: number; present: number}>}>(gone);
    assert.equal(result.ok, false);
    assert.deepEqual([result.collections.sale_artworks!.present, result.collections.sale_artworks!.missing], [3, 1]);
  });
});
