import assert from 'node:assert/strict';
import {spawn} from 'node:child_process';
import path from 'node:path';
import {it} from 'node:test';

import {REPO_ROOT} from '../support/cli.js';

it('the demo restores production end to end through the real CLI (S3 → list → fetch → extract → plan → push → verify)', {timeout: 300_000}, async () => {
  const run = await new Promise<{code: number | null; out: string}>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'scripts/demo.ts')], {cwd: REPO_ROOT, env: {...process.env, CI: 'true'}});
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({code, out}));
  });
  assert.equal(run.code, 0, run.out.slice(-4000));
  assert.match(run.out, /Selected: gravity-hourly-2026-11-18-14-00\.tar\.gz/, 'the 14:00 New York backup is the one before the 14:30 incident');
  assert.match(run.out, /Production restored/);
  const backend = /MongoDB: ([\w-]+)/.exec(run.out)?.[1];
  console.log(`demo ran against MongoDB backend: ${backend}`);
});
