import assert from 'node:assert/strict';
import {after, before, describe, it} from 'node:test';

import {writeSet, tempDir} from '../integration/target-fixture.js';
import type {LedgerEntry} from '../../src/restore-set/ledger.js';
import type {RestoreSet} from '../../src/restore-set/manifest.js';
import {checkPushGate, checkRollbackGate, DEFAULT_PUSH_MODE, modeDifferences, pushMode, sameDatabase, stagingProof} from '../../src/target/gates.js';
import type {GateInput} from '../../src/target/gates.js';
import type {TargetSpec} from '../../src/target/types.js';

const staging: TargetSpec = {name: 'staging', uri: 'mongodb://u:pw@stage.example:27017/gravity', db: 'gravity', label: 'staging (mongodb://u:****@stage.example:27017/gravity)'};
const production: TargetSpec = {name: 'production', uri: 'mongodb://u:secret@prod1.example,prod2.example:27018/gravity?replicaSet=rs0', db: 'gravity', label: 'production (mongodb://u:****@prod1.example,prod2.example:27018/gravity)'};
const adhoc: TargetSpec = {name: 'adhoc', uri: 'mongodb://127.0.0.1:27017/scratch', db: 'scratch', label: 'mongodb://127.0.0.1:27017/scratch'};

let set: RestoreSet;
let cleanup: () => Promise<void>;

function entry(action: LedgerEntry['action'], outcome: LedgerEntry['outcome'], extra: Partial<LedgerEntry> = {}): LedgerEntry {
  return {time: new Date().toISOString(), action, target: 'staging', targetLabel: staging.label, setHash: set.hash, outcome, ...extra};
}

function input(over: Partial<GateInput>): GateInput {
  return {set, ledger: [], target: production, staging, production, yes: false, interactive: false, ...over};
}

function refusal(decision: ReturnType<typeof checkPushGate>) {
  assert.equal(decision.decision, 'refuse');
  if (decision.decision !== 'refuse') throw new Error('unreachable');
  assert.equal(decision.error.code, 'GATE_REFUSED');
  assert.equal(decision.error.exitCode, 7);
  assert.ok(decision.error.hint && decision.error.hint.length > 0, 'a refusal names the next step');
  assert.doesNotMatch(decision.error.message + decision.error.hint, /secret|:pw@/);
  return decision.error;
}

before(async () => {
  const tmp = await tempDir();
  cleanup = tmp.cleanup;
  set = await writeSet(tmp.dir, [{db: 'gravity', name: 'artworks', docs: [{_id: 1, title: 'a'}]}]);
});
after(async () => cleanup());

describe('push gate: staging and ad-hoc targets', () => {
  for (const target of [staging, adhoc]) {
    it(`${target.name}: --yes allows, a terminal prompts, neither refuses`, () => {
      assert.deepEqual(checkPushGate(input({target, yes: true})), {decision: 'allow'});
      assert.deepEqual(checkPushGate(input({target, interactive: true})), {decision: 'prompt-yes'});
      assert.match(refusal(checkPushGate(input({target}))).hint ?? '', /--yes/);
    });
  }
});

describe('push gate: production', () => {
  const proven = () => [entry('push', 'ok'), entry('verify', 'ok')];

  it('refuses a set never pushed and verified on staging, even with --yes and --confirm', () => {
    const error = refusal(checkPushGate(input({yes: true, confirm: 'gravity'})));
    assert.match(error.message, /not been pushed to and verified on staging/);
    assert.match(error.hint ?? '', /--to staging/);
  });

  it('does not count a failed verify, a verify before the push, another set, or another target', () => {
    const cases: LedgerEntry[][] = [
      [entry('push', 'ok'), entry('verify', 'failed')],
      [entry('verify', 'ok'), entry('push', 'ok')],
      [entry('push', 'ok', {setHash: 'f'.repeat(64)}), entry('verify', 'ok', {setHash: 'f'.repeat(64)})],
      [entry('push', 'ok', {target: 'adhoc'}), entry('verify', 'ok', {target: 'adhoc'})],
      [entry('push', 'partial'), entry('verify', 'ok')],
      [entry('push', 'ok'), entry('verify', 'ok'), entry('rollback', 'ok')],
    ];
    for (const ledger of cases) refusal(checkPushGate(input({ledger, confirm: 'gravity'})));
  });

  it('with staging proof: --confirm <db> allows; --yes alone never does', () => {
    assert.deepEqual(checkPushGate(input({ledger: proven(), confirm: 'gravity'})), {decision: 'allow'});
    assert.match(refusal(checkPushGate(input({ledger: proven(), yes: true}))).hint ?? '', /--confirm gravity/);
    assert.match(refusal(checkPushGate(input({ledger: proven(), yes: true, confirm: 'gravity2'}))).message, /does not match/);
  });

  it('with staging proof on a terminal and no --confirm: asks for the database name', () => {
    assert.deepEqual(checkPushGate(input({ledger: proven(), interactive: true, yes: true})), {decision: 'prompt-db', db: 'gravity'});
  });

  it('uses the set database name when the production URI names none', () => {
    const noDb = {...production, uri: 'mongodb://prod1.example:27018', db: null};
    assert.deepEqual(checkPushGate(input({target: noDb, ledger: proven(), interactive: true})), {decision: 'prompt-db', db: 'gravity'});
  });

  it('--skip-staging needs a non-empty reason, and the reason comes back to be recorded', () => {
    refusal(checkPushGate(input({skipStaging: true, confirm: 'gravity'})));
    refusal(checkPushGate(input({skipStaging: true, reason: '   ', confirm: 'gravity'})));
    assert.deepEqual(checkPushGate(input({skipStaging: true, reason: 'staging is down', confirm: 'gravity'})), {decision: 'allow', override: 'staging is down'});
    // The override replaces the staging proof, not the confirmation.
    refusal(checkPushGate(input({skipStaging: true, reason: 'staging is down', yes: true})));
  });

  it('refuses when staging and production are the same database, whatever the spelling', () => {
    const twin: TargetSpec = {name: 'staging', uri: 'mongodb://other:pw@PROD2.example:27018/gravity', db: 'gravity', label: 'staging (twin)'};
    const error = refusal(checkPushGate(input({staging: twin, ledger: proven(), confirm: 'gravity'})));
    assert.match(error.message, /same database/);
    // Pushing to "staging" that is really production is refused too.
    refusal(checkPushGate(input({target: twin, staging: twin, yes: true})));
  });

  it('refuses an ad-hoc URI that is the production database', () => {
    const sneaky: TargetSpec = {name: 'adhoc', uri: 'mongodb://prod2.example:27018/gravity', db: 'gravity', label: 'mongodb://prod2.example:27018/gravity'};
    refusal(checkPushGate(input({target: sneaky, yes: true})));
  });
});

describe('sameDatabase', () => {
  const spec = (uri: string, db: string | null): TargetSpec => ({name: 'staging', uri, db, label: 'x'});
  it('treats loopback names, default ports and credentials as the same server', () => {
    assert.equal(sameDatabase(spec('mongodb://localhost/g', 'g'), spec('mongodb://a:b@127.0.0.1:27017/g', 'g'), ['g']), true);
    assert.equal(sameDatabase(spec('mongodb://h1:27017/g', 'g'), spec('mongodb://h1:27018/g', 'g'), ['g']), false);
    assert.equal(sameDatabase(spec('mongodb://h1/g', 'g'), spec('mongodb://h1/g_staging', 'g_staging'), ['g']), false);
    assert.equal(sameDatabase(spec('mongodb://h1', null), spec('mongodb://h1/gravity', 'gravity'), ['gravity']), true);
    assert.equal(sameDatabase(spec('mongodb+srv://c0.x.net/g', 'g'), spec('mongodb+srv://C0.x.net/g', 'g'), ['g']), true);
  });
});

describe('rollback gate', () => {
  it('production needs the database name but not a staging proof', () => {
    assert.deepEqual(checkRollbackGate(input({confirm: 'gravity'})), {decision: 'allow'});
    refusal(checkRollbackGate(input({yes: true})));
    assert.deepEqual(checkRollbackGate(input({interactive: true})), {decision: 'prompt-db', db: 'gravity'});
  });
  it('staging needs --yes or a prompt, and the same-database check applies', () => {
    assert.deepEqual(checkRollbackGate(input({target: staging, yes: true})), {decision: 'allow'});
    refusal(checkRollbackGate(input({target: staging})));
    const twin: TargetSpec = {...staging, uri: 'mongodb://prod1.example/gravity'};
    refusal(checkRollbackGate(input({target: twin, staging: twin, yes: true})));
  });
});

describe('stagingProof', () => {
  it('returns the push and the verify that prove it', () => {
    const push = entry('push', 'ok');
    const verify = entry('verify', 'ok');
    assert.deepEqual(stagingProof([entry('push', 'failed'), push, entry('plan', 'ok'), verify], set.hash), {push, verify});
  });
});

describe('production gate by push mode', () => {
  const repairMode = pushMode({fields: ['phone'], whereTarget: '{"phone":null}'});
  const whole = pushMode({onConflict: 'overwrite'});
  const rehearsed = (mode = repairMode) => [entry('push', 'ok', {mode}), entry('verify', 'ok')];

  it('a staging rehearsal of a field repair does not let a whole overwrite into production', () => {
    assert.deepEqual(checkPushGate(input({ledger: rehearsed(), confirm: 'gravity', mode: repairMode})), {decision: 'allow'});
    const error = refusal(checkPushGate(input({ledger: rehearsed(), confirm: 'gravity', mode: whole, setArg: './set'})));
    // One line naming each setting that differs, with staging's value, and the command that rehearses it.
    assert.match(error.message, /--fields whole documents \(staging: phone\)/);
    assert.match(error.message, /--where-target none \(staging: \{"phone":null\}\)/);
    assert.match(error.message, /--on-conflict overwrite \(staging: skip\)/);
    assert.doesNotMatch(error.message, /--inexact|--match-on|--skip-clashes/);
    assert.match(error.hint ?? '', /`gravity-restore push \.\/set --to staging --on-conflict overwrite --yes`, then `gravity-restore verify \.\/set --to staging`/);
    assert.doesNotMatch(error.line, /\n/);
  });

  it('each setting of the mode counts: every one that differs refuses', () => {
    const variants: Array<[Partial<typeof DEFAULT_PUSH_MODE>, RegExp]> = [
      [{fields: ['phone']}, /--fields phone \(staging: whole documents\)/],
      [{fields: ['phone'], whereTarget: '{"phone":null}'}, /--fields phone/],
      [{onConflict: 'fail'}, /--on-conflict fail \(staging: skip\)/],
      [{inexact: 'write'}, /--inexact write \(staging: fail\)/],
      [{skipClashes: true}, /--skip-clashes on \(staging: off\)/],
      [{bypassDocumentValidation: true}, /--bypass-document-validation on \(staging: off\)/],
      [{matchOn: ['slug']}, /--match-on slug \(staging: none\)/],
    ];
    for (const [over, message] of variants) {
      const error = refusal(checkPushGate(input({ledger: rehearsed(DEFAULT_PUSH_MODE), confirm: 'gravity', mode: pushMode(over)})));
      assert.match(error.message, message);
      // And rehearsing that very mode on staging lets it through.
      assert.deepEqual(checkPushGate(input({ledger: rehearsed(pushMode(over)), confirm: 'gravity', mode: pushMode(over)})), {decision: 'allow'});
    }
  });

  it('lists are compared as sets, and --where-target counts only with --fields', () => {
    const a = pushMode({fields: ['b', 'a', 'a'], matchOn: ['y', 'x']});
    const b = pushMode({fields: ['a', 'b'], matchOn: ['x', 'y']});
    assert.deepEqual(modeDifferences(a, b), []);
    assert.deepEqual(pushMode({whereTarget: '{"x":1}'}), DEFAULT_PUSH_MODE);
  });

  it('an older ledger line without a mode is the default mode, with the bypass flag it recorded', () => {
    const old = [entry('push', 'ok'), entry('verify', 'ok')];
    assert.deepEqual(checkPushGate(input({ledger: old, confirm: 'gravity', mode: DEFAULT_PUSH_MODE})), {decision: 'allow'});
    assert.deepEqual(checkPushGate(input({ledger: old, confirm: 'gravity'})), {decision: 'allow'});
    refusal(checkPushGate(input({ledger: old, confirm: 'gravity', mode: whole})));
    const bypassed = [entry('push', 'ok', {bypassDocumentValidation: true}), entry('verify', 'ok')];
    assert.deepEqual(checkPushGate(input({ledger: bypassed, confirm: 'gravity', mode: pushMode({bypassDocumentValidation: true})})), {decision: 'allow'});
    refusal(checkPushGate(input({ledger: bypassed, confirm: 'gravity', mode: DEFAULT_PUSH_MODE})));
  });

  it('a verify proves the push before it only when no push in another mode came between', () => {
    const ledger = [entry('push', 'ok', {mode: repairMode}), entry('push', 'ok', {mode: whole}), entry('verify', 'ok')];
    assert.deepEqual(checkPushGate(input({ledger, confirm: 'gravity', mode: whole})), {decision: 'allow'});
    refusal(checkPushGate(input({ledger, confirm: 'gravity', mode: repairMode})));
    // A rollback after a rehearsal voids it; a new rehearsal after the rollback counts again.
    const rolled = [...rehearsed(), entry('rollback', 'ok')];
    refusal(checkPushGate(input({ledger: rolled, confirm: 'gravity', mode: repairMode})));
    assert.deepEqual(checkPushGate(input({ledger: [...rolled, ...rehearsed()], confirm: 'gravity', mode: repairMode})), {decision: 'allow'});
  });
});
