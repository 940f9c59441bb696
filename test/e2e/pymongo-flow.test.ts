import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import path from 'node:path';
import {it} from 'node:test';

import {REPO_ROOT} from '../support/cli.js';

const PYTHON = '/usr/bin/python3';
const hasPymongo = spawnSync(PYTHON, ['-c', 'import pymongo, bson'], {stdio: 'ignore'}).status === 0;

it(
  'an outside pymongo script starts the sandbox, fills it, drives extract/plan/push/verify/rollback and reads the results back',
  {skip: hasPymongo ? false : `${PYTHON} lacks pymongo (apt-get install python3-pymongo); .ci/run installs it`, timeout: 240_000},
  async () => {
    const run = await new Promise<{code: number | null; stdout: string; stderr: string}>((resolve, reject) => {
      const child = spawn(PYTHON, [path.join(REPO_ROOT, 'test/support/pymongo-flow.py'), REPO_ROOT], {cwd: REPO_ROOT, env: {...process.env, CI: 'true'}});
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({code, stdout, stderr}));
    });
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const result = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as {ok: boolean; mongo: string; rollback: Record<string, {deleted: number; skipped: number}>};
    console.log(`pymongo flow ran against MongoDB backend: ${result.mongo}`);
    assert.equal(result.ok, true);
    assert.equal(result.rollback.artworks!.deleted, 19);
    assert.equal(result.rollback.artworks!.skipped, 1);
  },
);
