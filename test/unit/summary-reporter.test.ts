/**
 * `npm test`'s reporter (test/support/summary-reporter.mjs), run by Node's test runner on a small
 * generated suite: progress as dots, then the failures with their names and errors, the skipped
 * tests with their reasons, what the tests printed, and the runner's closing counts, in a few lines.
 */
import assert from 'node:assert/strict';
import {spawnSync} from 'node:child_process';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {test} from 'node:test';

import {REPO_ROOT} from '../support/cli.js';

test('the summary reporter shows progress, failures with their errors, skips with reasons and the closing counts', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gr-reporter-'));
  try {
    const passing = Array.from({length: 150}, (_, i) => `  test('case ${i}', () => {});`).join('\n');
    await writeFile(
      path.join(dir, 'sample.test.mjs'),
      [
        "import assert from 'node:assert/strict';",
        "import {describe, test} from 'node:test';",
        "console.log('# MongoDB backend: in-repo test server');",
        "describe('restore', () => {",
        passing,
        "  test('keeps field order', () => { assert.equal('b,a', 'a,b'); });",
        "  test('real mongod', {skip: 'no mongod on this machine'}, () => {});",
        '});',
      ].join('\n'),
    );
    await writeFile(path.join(dir, 'crash.test.mjs'), "throw new Error('cannot load the fixture');\n");
    const run = spawnSync(process.execPath, ['--test', `--test-reporter=${path.join(REPO_ROOT, 'test', 'support', 'summary-reporter.mjs')}`, '--test-reporter-destination=stdout', 'sample.test.mjs', 'crash.test.mjs'], {
      cwd: dir,
      encoding: 'utf8',
      // Inside a test run the runner marks its children; the nested run must be a top-level one.
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT')),
    });
    const out = run.stdout;
    assert.equal(run.status, 1, out);
    const progress = out.slice(0, out.indexOf('\n\n'));
    assert.deepEqual(progress.split('\n').map((l) => l.length), [80, 73], 'progress wraps at 80 marks');
    const marks = progress.replace(/\n/g, '');
    assert.deepEqual([...'.Xs'].map((m) => marks.split(m).length - 1), [150, 2, 1], 'a dot per passing test, X per failure (the crashed file too), s per skip');
    assert.match(out, /✖ restore > keeps field order\n\s+.*sample\.test\.mjs:\d+\n\s+AssertionError \[ERR_ASSERTION\]: Expected values to be strictly equal:[\s\S]*'b,a' !== 'a,b'/);
    assert.match(out, /✖ .*crash\.test\.mjs[\s\S]*stderr of .*crash\.test\.mjs[\s\S]*Error: cannot load the fixture/);
    assert.match(out, /Skipped \(1\):\n {2}- restore > real mongod: no mongod on this machine/);
    assert.match(out, /Notes from the tests:\n {2}# MongoDB backend: in-repo test server/);
    for (const line of ['# tests 153', '# pass 150', '# fail 2', '# skipped 1', '# todo 0']) assert.ok(out.includes(`\n${line}\n`), `${line} missing:\n${out}`);
    assert.ok(out.split('\n').length < 60, `${out.split('\n').length} lines`);
    assert.doesNotMatch(out, /^ok \d+|TAP version/m, 'no TAP');
  } finally {
    await rm(dir, {recursive: true, force: true});
  }
});
