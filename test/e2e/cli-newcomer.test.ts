/**
 * What a newcomer tripped on, through bin/run.js, without a MongoDB server: times where backup ids
 * are taken, mistyped flags and commands, errors under --json, unknown collections, a path that does
 * not exist, --follow with nothing to follow, the list's columns, and a report of a set chosen by
 * comparison. The source is a folder of backups of a `shop` database (names in UTC):
 *
 *   shop-daily-2026-11-17.tar.gz            customers 1–8, orders 100–104      2026-11-17T00:00Z
 *   2026-11-18/                             customers 1–10                     2026-11-18T00:00Z
 *   shop-hourly-2026-11-18T13-00-00Z.tar.gz customers 1–10, orders 100–109     13:00Z
 *   shop-hourly-2026-11-18T14-00-00Z/       customers 1–10, orders 100–109     14:00Z
 *   shop-hourly-2026-11-18T15-00-00Z/       customers without 2, 4, 6; orders  15:00Z
 *
 * Every expected backup and count below follows from that table.
 */
import assert from 'node:assert/strict';
import {mkdir, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {BSON, Int32, ObjectId} from 'bson';

import {metadataJson, tarFolder, tempDir, writeFolder} from '../support/bson-fixtures.js';
import {assertCleanError, cleanEnv, json, runCli, type CliResult} from '../support/cli.js';

const customer = (i: number) => Buffer.from(BSON.serialize({_id: new ObjectId(i.toString(16).padStart(24, '0')), name: `customer ${i}`, phone: `555-01${i}`}));
const order = (i: number) => Buffer.from(BSON.serialize({_id: new Int32(i), customer_id: new ObjectId(((i % 10) + 1).toString(16).padStart(24, '0'))}));
const range = (from: number, to: number) => Array.from({length: to - from + 1}, (_, k) => from + k);
const DELETED = [2, 4, 6];

type Choice = {asked: string; time: string; readIn: string | null; backup: string; takenAt: string; for?: string};
type ErrorJson = {error: {code: string; message: string; hint: string | null; exitCode: number}};

/** The one-line error document --json promises, and nothing else on stdout. */
function jsonError(result: CliResult): ErrorJson['error'] {
  const lines = result.stdout.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `stdout holds ${lines.length} lines:\n${result.stdout.slice(0, 2000)}`);
  const body = JSON.parse(lines[0]!) as ErrorJson;
  assert.deepEqual(Object.keys(body), ['error']);
  for (const key of ['code', 'message', 'hint', 'exitCode']) assert.ok(key in body.error, `no ${key} in ${lines[0]}`);
  assert.equal(body.error.exitCode, result.code, 'the exit code is the one the document names');
  return body.error;
}

describe('a newcomer\'s stumbles, through bin/run.js', () => {
  let dir: string;
  let source: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await tempDir('cli-newcomer');
    source = path.join(dir, 'backups');
    const shop = (customers: number[], orders: number[]) => [
      {db: 'shop', collection: 'customers', docs: customers.map(customer), metadata: metadataJson('customers')},
      ...(orders.length > 0 ? [{db: 'shop', collection: 'orders', docs: orders.map(order), metadata: metadataJson('orders')}] : []),
    ];
    await writeFolder(path.join(dir, 'daily17', 'dump'), shop(range(1, 8), range(100, 104)));
    await writeFolder(path.join(dir, 'hourly13', 'dump'), shop(range(1, 10), range(100, 109)));
    await mkdir(source);
    tarFolder(path.join(dir, 'daily17'), 'dump', path.join(source, 'shop-daily-2026-11-17.tar.gz'), {gzip: true});
    tarFolder(path.join(dir, 'hourly13'), 'dump', path.join(source, 'shop-hourly-2026-11-18T13-00-00Z.tar.gz'), {gzip: true});
    await writeFolder(path.join(source, '2026-11-18'), shop(range(1, 10), []));
    await writeFolder(path.join(source, 'shop-hourly-2026-11-18T14-00-00Z'), shop(range(1, 10), range(100, 109)));
    await writeFolder(path.join(source, 'shop-hourly-2026-11-18T15-00-00Z'), shop(range(1, 10).filter((i) => !DELETED.includes(i)), range(100, 109)));
    env = cleanEnv({GRAVITY_RESTORE_SOURCE: source, GRAVITY_RESTORE_CACHE: path.join(dir, 'cache'), TZ: 'UTC'});
  });
  after(async () => {
    await rm(dir, {recursive: true, force: true});
  });

  describe('a time wherever a backup id is taken', () => {
    it('inspect: a time with an offset selects the newest backup at or before it and says which', async () => {
      const result = await runCli(['inspect', '2026-11-18T14:30:00Z', '--json'], {env});
      assert.equal(result.code, 0, result.stderr);
      const out = json<{backup: string; chosen: Choice; namespaces: Array<{collection: string; documents: number}>}>(result);
      assert.equal(out.backup, 'shop-hourly-2026-11-18T14-00-00Z');
      assert.deepEqual(out.chosen, {asked: '2026-11-18T14:30:00Z', time: '2026-11-18T14:30:00.000Z', readIn: null, backup: 'shop-hourly-2026-11-18T14-00-00Z', takenAt: '2026-11-18T14:00:00.000Z'});
      assert.deepEqual(out.namespaces.map((n) => [n.collection, n.documents]), [['customers', 10], ['orders', 10]]);
      // The choice is a line on stderr, under --json too (stdout holds only the document, which says it as well).
      assert.match(result.stderr, /^2026-11-18T14:30:00Z is a time, not a backup id: using shop-hourly-2026-11-18T14-00-00Z/m);
      const human = await runCli(['inspect', '2026-11-18T14:30:00Z'], {env});
      assert.match(human.stderr, /2026-11-18T14:30:00Z is a time, not a backup id: using shop-hourly-2026-11-18T14-00-00Z, the newest backup at or before it \(taken 2026-11-18T14:00:00\.000Z, 30 min before it\)/);
    });

    it('a time without an offset is read in --tz, else in the source timezone', async () => {
      const ny = json<{backup: string; chosen: Choice}>(await runCli(['inspect', '2026-11-18 09:30', '--tz', 'America/New_York', '--json'], {env}));
      assert.deepEqual([ny.backup, ny.chosen.time, ny.chosen.readIn], ['shop-hourly-2026-11-18T14-00-00Z', '2026-11-18T14:30:00.000Z', 'America/New_York']);
      const utc = json<{backup: string; chosen: Choice}>(await runCli(['inspect', '2026-11-18 13:59', '--json'], {env}));
      assert.deepEqual([utc.backup, utc.chosen.readIn], ['shop-hourly-2026-11-18T13-00-00Z.tar.gz', 'UTC']);
    });

    it('an id that names a backup exactly wins over reading it as a time', async () => {
      // Read as a time in Tokyo, "2026-11-18" is 2026-11-17T15:00Z, which would select the daily of the 17th.
      const exact = json<{backup: string; chosen?: Choice}>(await runCli(['inspect', '2026-11-18', '--tz', 'Asia/Tokyo', '--json'], {env}));
      assert.equal(exact.backup, '2026-11-18');
      assert.equal(exact.chosen, undefined);
      const tokyo = json<{backup: string}>(await runCli(['inspect', '2026-11-18 08:59', '--tz', 'Asia/Tokyo', '--json'], {env}));
      assert.equal(tokyo.backup, 'shop-daily-2026-11-17.tar.gz');
    });

    it('a time before every backup: BACKUP_NOT_FOUND naming the oldest', async () => {
      const result = await runCli(['inspect', '2026-11-16T23:00:00Z', '--json'], {env});
      assert.equal(result.code, 3);
      const error = jsonError(result);
      assert.equal(error.code, 'BACKUP_NOT_FOUND');
      assert.match(error.hint ?? '', /oldest is shop-daily-2026-11-17\.tar\.gz/);
    });

    it('fetch, diff FROM/AGAINST, extract --from and --missing-in take times too', async () => {
      const fetched = await runCli(['fetch', '2026-11-18T13:30:00Z', '--collection', 'orders', '--json'], {env});
      assert.equal(fetched.code, 0, fetched.stderr);
      const f = json<{backup: string; chosen: Choice; collections: Record<string, string>}>(fetched);
      assert.deepEqual([f.backup, f.chosen.backup, Object.keys(f.collections)], ['shop-hourly-2026-11-18T13-00-00Z.tar.gz', 'shop-hourly-2026-11-18T13-00-00Z.tar.gz', ['orders']]);
      assert.match(fetched.stderr, /using shop-hourly-2026-11-18T13-00-00Z\.tar\.gz/);

      const diff = await runCli(['diff', '2026-11-18T14:00:00Z', '2026-11-18T15:30:00+00:00', '--collection', 'customers', '--json'], {env});
      assert.equal(diff.code, 0, diff.stderr);
      const d = json<{from: string; against: string; chosen: Choice[]; collections: Record<string, {missing: number; same: number}>}>(diff);
      assert.deepEqual([d.from, d.against], ['shop-hourly-2026-11-18T14-00-00Z', 'shop-hourly-2026-11-18T15-00-00Z']);
      assert.deepEqual(d.chosen.map((c) => [c.for, c.backup]), [['from', 'shop-hourly-2026-11-18T14-00-00Z'], ['against', 'shop-hourly-2026-11-18T15-00-00Z']]);
      assert.deepEqual([d.collections.customers?.missing, d.collections.customers?.same], [3, 7]);
      assert.match(diff.stderr, /^FROM: 2026-11-18T14:00:00Z is a time.*\nAGAINST: 2026-11-18T15:30:00\+00:00 is a time, not a backup id: using shop-hourly-2026-11-18T15-00-00Z/m);

      const set = path.join(dir, 'set-lost');
      const extract = await runCli(['extract', '--from', '2026-11-18T14:59:59Z', '--collection', 'customers', '--missing-in', '2026-11-18T15:00:00Z', '--out', set, '--json'], {env});
      assert.equal(extract.code, 0, extract.stderr);
      const e = json<{backup: string; counts: Record<string, number>; chosen: Choice[]}>(extract);
      assert.equal(e.backup, 'shop-hourly-2026-11-18T14-00-00Z');
      assert.deepEqual(e.counts, {customers: DELETED.length});
      assert.deepEqual(e.chosen.map((c) => [c.for, c.backup]), [['from', 'shop-hourly-2026-11-18T14-00-00Z'], ['missing-in', 'shop-hourly-2026-11-18T15-00-00Z']]);
      const human = await runCli(['extract', '--from', '2026-11-18T14:59:59Z', '--collection', 'customers', '--missing-in', '2026-11-18T15:00:00Z', '--out', `${set}-again`], {env});
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stderr, /--from: 2026-11-18T14:59:59Z is a time, not a backup id: using shop-hourly-2026-11-18T14-00-00Z/);
      assert.match(human.stderr, /--missing-in: 2026-11-18T15:00:00Z is a time, not a backup id: using shop-hourly-2026-11-18T15-00-00Z/);

      // The report of that set tells how its documents were chosen, not "Query on `customers`: `{}`".
      const report = await runCli(['report', set, '--no-backup-scan'], {env});
      assert.equal(report.code, 0, report.stderr);
      assert.doesNotMatch(report.stdout, /Query on `customers`/);
      assert.match(report.stdout, /Selected: documents of `customers` absent from the backup shop-hourly-2026-11-18T15-00-00Z \(taken 2026-11-18T15:00:00\.000Z\)/);
      const r = json<{selection: {comparisons: Array<{keep: string[]; against: string}>}}>(await runCli(['report', set, '--no-backup-scan', '--json'], {env}));
      assert.deepEqual(r.selection.comparisons.map((c) => [c.keep, c.against]), [[['missing'], 'shop-hourly-2026-11-18T15-00-00Z']]);
    });
  });

  describe('unknown collections and missing paths', () => {
    it('fetch --collection nosuch: UNKNOWN_COLLECTION, exit 3, listing the known ones', async () => {
      const result = await runCli(['fetch', '--collection', 'nosuch', '--json'], {env});
      assert.equal(result.code, 3, result.stderr);
      const error = jsonError(result);
      assert.equal(error.code, 'UNKNOWN_COLLECTION');
      assert.match(error.hint ?? '', /Known collections: customers, orders/);
    });

    it('list --collection nosuch: UNKNOWN_COLLECTION, exit 3, listing the collections of the backups it read', async () => {
      const result = await runCli(['list', '--collection', 'nosuch'], {env});
      assertCleanError(result, /nosuch.*Known collections: customers, orders/);
      assert.equal(result.code, 3);
    });

    it('--from ./nonexistent.tar.gz is "no such file", not a backup missing from the source', async () => {
      const result = await runCli(['extract', '--from', './nonexistent.tar.gz', '--collection', 'customers', '--out', path.join(dir, 'set-none')], {env, cwd: dir});
      assertCleanError(result, /No such file or folder: \.\/nonexistent\.tar\.gz/);
      assert.doesNotMatch(result.stderr, /not found in/);
      assert.equal(result.code, 3);
      assertCleanError(await runCli(['diff', './before.tar.gz', './after', '--json'], {env, cwd: dir}), /No such file or folder: \.\/before\.tar\.gz/);
      const fetched = await runCli(['fetch', './nonexistent.tar.gz'], {env, cwd: dir});
      assertCleanError(fetched, /\.\/nonexistent\.tar\.gz is a local path; fetch downloads a backup of the source/);
      assert.equal(fetched.code, 2);
    });
  });

  describe('--follow with nothing to follow', () => {
    it('says that no relations are configured and how to propose some', async () => {
      const bson = path.join(dir, 'customers.bson');
      await writeFile(bson, Buffer.concat(range(1, 3).map(customer)));
      const result = await runCli(['extract', '--from', bson, '--collection', 'customers', '--follow', '--out', path.join(dir, 'set-follow'), '--json'], {env: cleanEnv({TZ: 'UTC'}), cwd: dir});
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /--follow: no relations are configured.*relations --infer/);
      const out = json<{warnings: string[]; counts: Record<string, number>}>(result);
      assert.ok(out.warnings.some((w) => /no relations are configured.*gravity-restore relations --infer/.test(w)), out.warnings.join('\n'));
      assert.deepEqual(out.counts, {customers: 3});
    });
  });

  describe('usage errors', () => {
    it('a mistyped flag: one line with the closest flag and where help is', async () => {
      const result = await runCli(['extract', '--colection', 'customers'], {env});
      assert.equal(result.code, 2);
      assert.equal(result.stderr.trim(), 'Error: Unknown flag --colection; did you mean --collection? See `gravity-restore extract --help`');
      assert.equal(result.stdout, '');
    });

    it('a mistyped command: one line with the closest command', async () => {
      const result = await runCli(['pussh', './lost', '--to', 'staging'], {env});
      assert.equal(result.code, 2);
      assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
      assert.match(result.stderr, /^Error: Unknown command `pussh`; did you mean `push`\? See `gravity-restore --help`/);
      const typed = await runCli(['lst', '--json'], {env});
      assert.equal(jsonError(typed).code, 'USAGE');
      assert.match(jsonError(typed).message, /did you mean `list`\?/);
    });

    it('with --json every error is one line {"error": {code, message, hint, exitCode}}, parse errors included', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['verify', path.join(dir, 'no-set'), '--to', 'staging', '--where-target', 'x', '--json'], /--fields/],
        [['extract', '--colection', 'x', '--json'], /did you mean --collection\?/],
        [['plan', '--json'], /Missing required argument: SET/],
        [['extract', '--from', 'x', '--collection', 'c', '--out', 'y', '--engine', 'foo', '--json'], /--engine=foo.*stream, mongod/],
        [['push', path.join(dir, 'no-set'), '--json'], /to/],
        [['list', '--limit', '0', '--json'], /^Parsing --limit: Expected an integer greater than or equal to 1/],
      ];
      for (const [args, message] of cases) {
        const result = await runCli(args, {env});
        assert.equal(result.code, 2, `${args.join(' ')}: exit ${result.code}\n${result.stdout.slice(0, 500)}`);
        const error = jsonError(result);
        assert.equal(error.code, 'USAGE', args.join(' '));
        assert.match(error.message, message, args.join(' '));
        assert.doesNotMatch(result.stdout, /"oclif"|"parse"|"argv"/);
      }
    });
  });

  describe('help and list output', () => {
    it('verify --help describes --fields and --where-target in verify\'s own words', async () => {
      const result = await runCli(['verify', '--help'], {env});
      assert.equal(result.code, 0);
      assert.match(result.stdout, /--fields=<value>\s+check only these fields/);
      assert.match(result.stdout, /--where-target=<value>/);
      assert.doesNotMatch(result.stdout, /repair only these fields/);
    });

    it('list shows "taken at (UTC)" once when --tz is UTC, and what a searched backup holds instead of "?"', async () => {
      const utc = await runCli(['list', '--tz', 'UTC'], {env});
      assert.equal(utc.code, 0, utc.stderr);
      assert.equal(utc.stdout.split('taken at (UTC)').length - 1, 1, utc.stdout);
      const ny = await runCli(['list', '--tz', 'America/New_York'], {env});
      assert.match(ny.stdout, /taken at \(UTC\).*taken at \(America\/New_York\)/);

      const result = await runCli(['list', '--before', '2026-11-18T13:30:00Z', '--collection', 'orders', '--tz', 'UTC'], {env: {...env, GRAVITY_RESTORE_CACHE: path.join(dir, 'cache-list')}});
      assert.equal(result.code, 0, result.stderr);
      const row = result.stdout.split('\n').find((l) => l.startsWith('→'));
      assert.ok(row, result.stdout);
      assert.match(row, /shop-hourly-2026-11-18T13-00-00Z\.tar\.gz/);
      assert.doesNotMatch(row, /\?\s*$/, 'the selected backup was read as far as orders: its collections are not "?"');
      // A small tarball is read to its end once opened: its whole list is known, and remembered in the cache.
      assert.match(row, /customers,orders\s*$/);
    });
  });
});
