/**
 * The production gate at its edges (mutants of gates.ts that survived target-gates.test.ts, see
 * bench/MUTATION.md): how a connection string is reduced to "which server, which database", when a
 * staging proof still stands, and what each refusal says.
 * Connection string format: https://www.mongodb.com/docs/manual/reference/connection-string/
 * (the default port is 27017; IPv6 hosts are written in brackets).
 */
import assert from 'node:assert/strict';
import {after, before, describe, it} from 'node:test';

import {writeSet, tempDir} from '../integration/target-fixture.js';
import type {LedgerEntry} from '../../src/restore-set/ledger.js';
import type {RestoreSet} from '../../src/restore-set/manifest.js';
import {checkPushGate, checkRollbackGate, confirmationDb, sameDatabase, stagingProof, targetIdentity} from '../../src/target/gates.js';
import type {GateDecision, GateInput} from '../../src/target/gates.js';
import type {TargetSpec} from '../../src/target/types.js';

const staging: TargetSpec = {name: 'staging', uri: 'mongodb://u:pw@stage.example:27017/gravity', db: 'gravity', label: 'staging (stage.example)'};
const production: TargetSpec = {name: 'production', uri: 'mongodb://u:pw@prod1.example:27018/gravity', db: 'gravity', label: 'production (prod1.example)'};

let set: RestoreSet;
let twoDbs: RestoreSet;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  const a = await tempDir();
  const b = await tempDir();
  cleanups.push(a.cleanup, b.cleanup);
  set = await writeSet(a.dir, [{db: 'gravity', name: 'artworks', docs: [{_id: 1}]}]);
  twoDbs = await writeSet(b.dir, [
    {db: 'shop', name: 'orders', docs: [{_id: 1}]},
    {db: 'billing', name: 'invoices', docs: [{_id: 1}]},
  ]);
});
after(async () => {
  for (const c of cleanups) await c();
});

function entry(action: LedgerEntry['action'], outcome: LedgerEntry['outcome']): LedgerEntry {
  return {time: new Date().toISOString(), action, target: 'staging', targetLabel: staging.label, setHash: set.hash, outcome};
}

function input(over: Partial<GateInput>): GateInput {
  return {set, ledger: [], target: production, staging, production, yes: false, interactive: false, ...over};
}

function refused(decision: GateDecision): {message: string; hint: string; details: unknown} {
  if (decision.decision !== 'refuse') throw new Error(`expected a refusal, got ${JSON.stringify(decision)}`);
  return {message: decision.error.message, hint: decision.error.hint ?? '', details: decision.error.details};
}

describe('targetIdentity: one spelling per server and database', () => {
  it('loopback names, bracketed or not, are one server on the default port', () => {
    const loopback = {hosts: ['loopback:27017'], db: 'x'};
    for (const uri of ['mongodb://localhost/x', 'mongodb://127.0.0.1:27017/x', 'mongodb://[::1]:27017/x', 'mongodb://[::1]/x', 'mongodb://::1/x']) {
      assert.deepEqual(targetIdentity(uri, null), loopback, uri);
    }
  });

  it('hosts lower-cased, sorted, empty ones dropped; a mistyped port is not the default one', () => {
    assert.deepEqual(targetIdentity('mongodb://u:p@H2:27018,,h1/gravity?tls=true', null), {hosts: ['h1:27017', 'h2:27018'], db: 'gravity'});
    assert.deepEqual(targetIdentity('mongodb://DB-1:27o17/x', null).hosts, ['db-1:27o17:27017']);
    assert.deepEqual(targetIdentity('mongodb+srv://Cluster0.Example.net/shop', null), {hosts: ['srv:cluster0.example.net'], db: 'shop'});
  });

  it('the database: --db first, then the path (decoded), else none', () => {
    assert.equal(targetIdentity('mongodb://h/gravity', null).db, 'gravity');
    assert.equal(targetIdentity('mongodb://h/my%20db', null).db, 'my db');
    assert.equal(targetIdentity('mongodb://h/gravity', 'other').db, 'other');
    assert.equal(targetIdentity('mongodb://h/', null).db, null);
    assert.equal(targetIdentity('mongodb://h', null).db, null);
  });

  it('surrounding spaces are ignored; what does not start as a connection string is kept as it is', () => {
    assert.deepEqual(targetIdentity('  mongodb://h1/g  ', null), {hosts: ['h1:27017'], db: 'g'});
    assert.deepEqual(targetIdentity(' not a uri ', 'g'), {hosts: ['not a uri'], db: 'g'});
    assert.deepEqual(targetIdentity('see mongodb://h1/g', null), {hosts: ['see mongodb://h1/g'], db: null});
  });
});

describe('sameDatabase and confirmationDb', () => {
  const spec = (uri: string, db: string | null): TargetSpec => ({name: 'staging', uri, db, label: 'x'});

  it('a target naming no database means every database of the set: one shared is enough', () => {
    assert.equal(sameDatabase(spec('mongodb://h1', null), spec('mongodb://h1/shop', 'shop'), ['billing', 'shop']), true);
  });

  it('the name to confirm is --db, else the set\'s databases, sorted', () => {
    assert.equal(confirmationDb(set, {...production, db: 'other'}), 'other');
    assert.equal(confirmationDb(twoDbs, {...production, db: null}), 'billing,shop');
  });
});

describe('stagingProof: what voids it and what does not', () => {
  it('the latest push before the verify is the one returned', () => {
    const first = {...entry('push', 'ok'), time: '2026-12-01T00:00:00.000Z'};
    const second = {...entry('push', 'ok'), time: '2026-12-01T01:00:00.000Z'};
    const verify = entry('verify', 'ok');
    assert.deepEqual(stagingProof([first, second, verify], set.hash), {push: second, verify});
  });

  it('later pushes, plans and verifies do not void it; a later rollback (done or partial) does; a failed rollback does not', () => {
    const proven = [entry('push', 'ok'), entry('verify', 'ok')];
    assert.ok(stagingProof([...proven, entry('plan', 'ok'), entry('push', 'ok'), entry('verify', 'failed')], set.hash));
    assert.equal(stagingProof([...proven, entry('rollback', 'partial')], set.hash), null);
    assert.ok(stagingProof([...proven, entry('rollback', 'failed')], set.hash));
  });

  it('a rollback after the push voids it even if a verify follows: what was verified is not what was pushed; a new push and verify prove it again', () => {
    assert.equal(stagingProof([entry('push', 'ok'), entry('rollback', 'ok'), entry('verify', 'ok')], set.hash), null);
    assert.ok(stagingProof([entry('push', 'ok'), entry('rollback', 'ok'), entry('push', 'ok'), entry('verify', 'ok')], set.hash));
  });
});

describe('gate decisions and what they say', () => {
  const proven = () => [entry('push', 'ok'), entry('verify', 'ok')];

  it('a staging or ad-hoc target with no production configured is checked against nothing', () => {
    assert.deepEqual(checkPushGate(input({target: staging, production: undefined, yes: true})), {decision: 'allow'});
    assert.deepEqual(checkPushGate(input({target: staging, production: null, yes: true})), {decision: 'allow'});
  });

  it('staging and production that name no database are compared on the set\'s databases', () => {
    const stagingNoDb = {...staging, uri: 'mongodb://prod1.example:27018', db: null};
    const productionNoDb = {...production, uri: 'mongodb://prod1.example:27018', db: null};
    assert.match(refused(checkPushGate(input({target: stagingNoDb, staging: stagingNoDb, production: productionNoDb, yes: true}))).message, /same database/);
    // Staging naming none writes to the set's database, which production names.
    assert.match(refused(checkPushGate(input({target: stagingNoDb, staging: stagingNoDb, yes: true}))).message, /same database/);
    assert.deepEqual(checkPushGate(input({target: stagingNoDb, staging: stagingNoDb, production: {...production, db: 'elsewhere'}, yes: true})), {decision: 'allow'});
  });

  it('each refusal names what is missing', () => {
    assert.match(refused(checkPushGate(input({target: staging}))).message, /^Refusing to push to staging \(stage\.example\) without confirmation/);
    assert.match(refused(checkRollbackGate(input({target: staging}))).message, /^Refusing to roll back on staging \(stage\.example\) without confirmation/);
    assert.match(refused(checkPushGate(input({skipStaging: true, confirm: 'gravity'}))).message, /^--skip-staging needs a reason/);
    const unproven = refused(checkPushGate(input({confirm: 'gravity'})));
    assert.ok(unproven.message.includes(`(${set.hash.slice(0, 12)}) has not been pushed`), unproven.message);
    assert.deepEqual(unproven.details, {setHash: set.hash});
    assert.match(refused(checkPushGate(input({ledger: proven(), confirm: 'wrong'}))).hint, /^Pass --confirm gravity to push to production$/);
    assert.match(refused(checkRollbackGate(input({confirm: 'wrong'}))).hint, /^Pass --confirm gravity to roll back on production$/);
  });

  it('an empty --confirm is no confirmation: a terminal asks, a script is told to pass it', () => {
    assert.match(refused(checkPushGate(input({ledger: proven(), confirm: ''}))).message, /needs the database name confirmed/);
    assert.deepEqual(checkPushGate(input({ledger: proven(), confirm: '', interactive: true})), {decision: 'prompt-db', db: 'gravity'});
  });

  it('--skip-staging with a reason on a terminal: asks for the database name and keeps the reason', () => {
    assert.deepEqual(checkPushGate(input({skipStaging: true, reason: 'staging is down', interactive: true})), {decision: 'prompt-db', db: 'gravity', override: 'staging is down'});
  });
});
