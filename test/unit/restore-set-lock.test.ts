import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {readFile, unlink, writeFile} from 'node:fs/promises';
import os from 'node:os';
import {after, before, describe, it} from 'node:test';

import {tempDir, writeSet} from '../integration/target-fixture.js';
import {GravityError} from '../../src/errors.js';
import {acquireSetLock, lockPath} from '../../src/restore-set/lock.js';
import type {RestoreSet} from '../../src/restore-set/manifest.js';

let set: RestoreSet;
let cleanup: () => Promise<void>;
const target = {identity: '{"hosts":["h:27017"],"db":"g"}', label: 'staging (mongodb://h:27017/g)'};

before(async () => {
  const tmp = await tempDir('gr-lock-');
  cleanup = tmp.cleanup;
  set = await writeSet(tmp.dir, [{db: 'g', name: 'c', docs: [{_id: 1}]}]);
});
after(async () => cleanup());

/** The pid of a process that has exited. */
function deadPid(): number {
  return Number(spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString());
}

function isLocked(error: unknown): boolean {
  assert.ok(error instanceof GravityError);
  assert.equal(error.code, 'LOCKED');
  assert.equal(error.exitCode, 7);
  return true;
}

describe('the set lock', () => {
  it('of many takers at once, exactly one wins; the lock holds pid, host, command and start time', async () => {
    const results = await Promise.allSettled(Array.from({length: 8}, (_, i) => acquireSetLock(set, target, `push #${i}`)));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) if (r.status === 'rejected') isLocked(r.reason);
    const lock = won[0]!.value;
    const held = JSON.parse(await readFile(lock.path, 'utf8')) as Record<string, unknown>;
    assert.equal(held.pid, process.pid);
    assert.equal(held.host, os.hostname());
    assert.match(String(held.command), /^push #\d$/);
    assert.ok(!Number.isNaN(Date.parse(String(held.startedAt))));
    await lock.release();
    await (await acquireSetLock(set, target, 'again')).release();
  });

  it('another target of the same set is another lock', async () => {
    const a = await acquireSetLock(set, target, 'push');
    const b = await acquireSetLock(set, {...target, identity: '{"hosts":["h:27017"],"db":"other"}'}, 'push');
    assert.notEqual(a.path, b.path);
    await a.release();
    await b.release();
  });

  it('a dead holder on this host is taken over; a live one, or one on another host, is not', async () => {
    const file = lockPath(set, target);
    const holder = (pid: number, host = os.hostname()) => JSON.stringify({pid, host, command: 'push --to staging', startedAt: new Date().toISOString(), target: target.label, token: 'x'});
    await writeFile(file, holder(deadPid()));
    const taken = await acquireSetLock(set, target, 'push');
    await taken.release();

    await writeFile(file, holder(process.ppid));
    await assert.rejects(acquireSetLock(set, target, 'push'), (e: unknown) => isLocked(e) && /pid \d+ on /.test((e as Error).message));
    await writeFile(file, holder(deadPid(), 'another-host.example'));
    await assert.rejects(acquireSetLock(set, target, 'push'), isLocked);
    // An empty lock is a run still writing it: not stale within its grace period.
    await writeFile(file, '');
    await assert.rejects(acquireSetLock(set, target, 'push'), (e: unknown) => isLocked(e) && /another run that is starting/.test((e as Error).message));
    await unlink(file);
  });

  it('release removes only the releasing run\'s own lock', async () => {
    const file = lockPath(set, target);
    const lock = await acquireSetLock(set, target, 'push');
    // Someone replaced it (a takeover after this run was judged dead): releasing must not remove theirs.
    const theirs = JSON.stringify({pid: process.ppid, host: os.hostname(), command: 'rollback', startedAt: new Date().toISOString(), target: target.label, token: 'theirs'});
    await writeFile(file, theirs);
    await lock.release();
    assert.equal(await readFile(file, 'utf8'), theirs);
    await unlink(file);
  });
});
