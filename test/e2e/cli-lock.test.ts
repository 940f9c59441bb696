/**
 * One push, field repair or rollback of a set on a target at a time. Two pushes of one set started
 * together: one writes, the other is refused (LOCKED, exit 7) naming the running one; the journal
 * and the ledger describe one push. A lock left by a run that died is taken over. Through bin/run.js.
 */
import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import {readdir, readFile, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {assertCleanError, json, runCli} from '../support/cli.js';
import {artworkDocs, ledger, rawDocs, scenario, startWorld, type PromoteWorld, type Scenario} from '../support/promote-fixture.js';

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

async function fresh(n: number): Promise<Scenario> {
  const s = await scenario(world, {artworks: artworkDocs(n)});
  scenarios.push(s);
  return s;
}

async function lockFiles(setDir: string): Promise<string[]> {
  return (await readdir(path.join(setDir, 'locks')).catch(() => [] as string[])).filter((n) => n.endsWith('.lock'));
}

/** The pid of a process that has exited: certainly not running. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid!;
  await new Promise((resolve) => child.on('close', resolve));
  return pid;
}

describe('the lock of a set on a target', () => {
  it('two pushes of one set at once: one writes, the other is refused naming it; journal and ledger describe one push', async () => {
    const n = 3000;
    const s = await fresh(n);
    const [a, b] = await Promise.all([
      runCli(['push', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env}),
      runCli(['push', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env}),
    ]);
    const codes = [a.code, b.code].sort();
    assert.deepEqual(codes, [0, 7], `exit codes ${a.code} and ${b.code}\n${a.stderr}\n${b.stderr}`);
    const [won, lost] = a.code === 0 ? [a, b] : [b, a];
    assertCleanError(lost, /staging .* is locked for this restore set by push --to staging \(pid \d+ on .+, started .+\)\. Wait for it to finish/);
    assert.equal(json<{error: {code: string}}>(lost).error.code, 'LOCKED');
    assert.equal(json<{collections: Record<string, {inserted: number}>}>(won).collections.artworks!.inserted, n);

    assert.equal((await rawDocs(world.stagingClient, s.db, 'artworks')).size, n);
    const journals = await readdir(path.join(s.setDir, 'journal'));
    assert.equal(journals.length, 1, `journals: ${journals.join(', ')}`);
    const lines = (await readFile(path.join(s.setDir, 'journal', journals[0]!), 'utf8')).split('\n').filter(Boolean);
    const records = lines.map((l) => JSON.parse(l) as {type: string; insert?: unknown[]; collection?: string});
    assert.equal(records.filter((r) => r.type === 'begin').length, 1);
    assert.equal(records.filter((r) => r.type === 'end').length, 1);
    const pushes = (await ledger(s.setDir)).filter((l) => l.action === 'push');
    assert.equal(pushes.length, 1, JSON.stringify(pushes));
    assert.equal((pushes[0] as unknown as {counts: Record<string, {inserted: number}>}).counts.artworks!.inserted, n);
    assert.deepEqual(await lockFiles(s.setDir), [], 'the lock was released');
  });

  it('a running holder refuses a push, a field repair and a rollback; a dead one is taken over', async () => {
    const n = 3000;
    const s = await fresh(n);
    // The lock file a push holds while it runs, seen from outside, as a person would find it.
    const running = runCli(['push', s.setDir, '--to', 'staging', '--yes'], {env: s.env});
    let seen: string[] = [];
    let finished = false;
    void running.then(() => (finished = true));
    while (seen.length === 0 && !finished) {
      seen = await lockFiles(s.setDir);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.equal((await running).code, 0);
    assert.equal(seen.length, 1, 'a lock file while the push ran');
    assert.deepEqual(await lockFiles(s.setDir), [], 'released at the end');
    const file = path.join(s.setDir, 'locks', seen[0]!);
    const holder = (pid: number, command: string) => JSON.stringify({pid, host: os.hostname(), command, startedAt: '2026-12-07T03:00:00.000Z', target: 'staging (test)', token: 'feedfacefeedface'});

    const alive = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      await writeFile(file, holder(alive.pid!, 'rollback --to staging'));
      for (const args of [
        ['push', s.setDir, '--to', 'staging', '--yes'],
        ['push', s.setDir, '--to', 'staging', '--fields', 'title', '--yes'],
        ['rollback', s.setDir, '--to', 'staging', '--yes'],
        // The same server and database named by its connection string is the same target.
        ['rollback', s.setDir, '--to', s.env.GRAVITY_RESTORE_STAGING_URI!, '--yes'],
      ]) {
        const refused = await runCli(args, {env: s.env});
        assertCleanError(refused, new RegExp(`locked for this restore set by rollback --to staging \\(pid ${alive.pid} on `));
        assert.equal(refused.code, 7, `${args.join(' ')}: exit ${refused.code}`);
      }
      assert.equal((await rawDocs(world.stagingClient, s.db, 'artworks')).size, n, 'nothing was rolled back');
    } finally {
      alive.kill();
    }
    // A holder that died (same host, its pid gone) is stale: the next run takes the lock over and ends normally.
    await writeFile(file, holder(await deadPid(), 'push --to staging'));
    const rolled = await runCli(['rollback', s.setDir, '--to', 'staging', '--yes', '--json'], {env: s.env});
    assert.equal(rolled.code, 0, rolled.stderr);
    assert.equal(json<{collections: Record<string, {deleted: number}>}>(rolled).collections.artworks!.deleted, n);
    assert.deepEqual(await lockFiles(s.setDir), []);
  });
});
