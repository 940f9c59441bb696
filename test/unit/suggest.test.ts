import assert from 'node:assert/strict';
import {test} from 'node:test';

import {closestName, editDistance} from '../../src/ui/suggest.js';

test('edit distance counts a swap of neighbours as one edit', () => {
  assert.equal(editDistance('colection', 'collection'), 1);
  assert.equal(editDistance('pussh', 'push'), 1);
  assert.equal(editDistance('vreify', 'verify'), 1);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});

test('closest name: typos within reach, nothing for strangers or ties', () => {
  const flags = ['collection', 'query', 'follow', 'from', 'out', 'engine', 'json', 'help'];
  assert.equal(closestName('colection', flags), 'collection');
  assert.equal(closestName('COLLECTON', flags), 'collection');
  assert.equal(closestName('folow', flags), 'follow');
  assert.equal(closestName('frobnicate', flags), null);
  assert.equal(closestName('coll', flags), 'collection', 'a unique prefix');
  const commands = ['list', 'fetch', 'inspect', 'extract', 'plan', 'push', 'verify', 'rollback', 'relations', 'diff', 'report', 'export'];
  assert.equal(closestName('pussh', commands), 'push');
  assert.equal(closestName('lst', commands), 'list');
  assert.equal(closestName('rollbak', commands), 'rollback');
  assert.equal(closestName('xyzzy', commands), null);
  // One edit from two names: no guess rather than a wrong one.
  assert.equal(closestName('cat', ['bat', 'hat']), null);
});
