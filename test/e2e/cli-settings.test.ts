/**
 * Settings precedence through bin/run.js: flag > environment > `.env` > config file > default,
 * each level shown to win over the next for --source and --source-tz.
 */
import assert from 'node:assert/strict';
import {mkdir, rm, writeFile} from 'node:fs/promises';
import path from 'node:path';
import {after, before, describe, it} from 'node:test';

import {tempDir} from '../integration/target-fixture.js';
import {assertCleanError, cleanEnv, json, runCli} from '../support/cli.js';

interface Listing {
  backups: Array<{id: string; takenAt: string}>;
}

describe('settings precedence', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const folder = (level: string) => path.join(dir, 'sources', level);

  before(async () => {
    ({dir, cleanup} = await tempDir('gr-cli-settings-'));
    // One backup per source folder, named after the level that should pick it; the time in the
    // name has no offset, so the source timezone decides when it was taken.
    for (const level of ['config', 'dotenv', 'env', 'flag']) {
      await mkdir(folder(level), {recursive: true});
      await writeFile(path.join(folder(level), `${level}-2026-11-18T14-00.archive.gz`), 'not read by list');
    }
  });
  after(async () => cleanup());

  /** A working folder holding the config file and `.env` of the levels given. */
  async function workdir(name: string, levels: {config?: Record<string, string>; dotenv?: Record<string, string>}): Promise<string> {
    const cwd = path.join(dir, name);
    await rm(cwd, {recursive: true, force: true});
    await mkdir(cwd, {recursive: true});
    if (levels.config) await writeFile(path.join(cwd, 'gravity-restore.config.json'), JSON.stringify(levels.config));
    if (levels.dotenv) await writeFile(path.join(cwd, '.env'), Object.entries(levels.dotenv).map(([k, v]) => `${k}=${v}`).join('\n'));
    return cwd;
  }

  async function list(cwd: string, env: Record<string, string>, flags: string[] = []): Promise<Listing['backups'][number]> {
    const result = await runCli(['list', '--json', ...flags], {cwd, env: cleanEnv(env)});
    assert.equal(result.code, 0, result.stderr);
    const {backups} = json<Listing>(result);
    assert.equal(backups.length, 1, JSON.stringify(backups));
    return backups[0]!;
  }

  it('--source: default (none) < config file < .env < environment < flag', async () => {
    const none = await workdir('none', {});
    assertCleanError(await runCli(['list', '--json'], {cwd: none, env: cleanEnv()}), /source/i);

    const config = {source: folder('config')};
    const dotenv = {GRAVITY_RESTORE_SOURCE: folder('dotenv')};
    const env = {GRAVITY_RESTORE_SOURCE: folder('env')};
    const flag = ['--source', folder('flag')];

    assert.match((await list(await workdir('c', {config}), {})).id, /^config-/, 'the config file beats the default');
    const both = await workdir('cd', {config, dotenv});
    assert.match((await list(both, {})).id, /^dotenv-/, '.env beats the config file');
    assert.match((await list(both, env)).id, /^env-/, 'the environment beats .env');
    assert.match((await list(both, env, flag)).id, /^flag-/, 'the flag beats the environment');
  });

  it('--source-tz: UTC by default < config file < .env < environment < flag', async () => {
    const source = {GRAVITY_RESTORE_SOURCE: folder('flag')};
    const at = async (cwd: string, env: Record<string, string>, flags: string[] = []) => (await list(cwd, {...source, ...env}, flags)).takenAt;

    assert.equal(await at(await workdir('tz-none', {}), {}), '2026-11-18T14:00:00.000Z', 'UTC by default');
    const config = {sourceTz: 'America/New_York'};
    assert.equal(await at(await workdir('tz-c', {config}), {}), '2026-11-18T19:00:00.000Z', 'New York from the config file');
    const both = await workdir('tz-cd', {config, dotenv: {GRAVITY_RESTORE_SOURCE_TZ: 'Europe/Berlin'}});
    assert.equal(await at(both, {}), '2026-11-18T13:00:00.000Z', 'Berlin from .env');
    const env = {GRAVITY_RESTORE_SOURCE_TZ: 'Asia/Tokyo'};
    assert.equal(await at(both, env), '2026-11-18T05:00:00.000Z', 'Tokyo from the environment');
    assert.equal(await at(both, env, ['--source-tz', 'Australia/Sydney']), '2026-11-18T03:00:00.000Z', 'Sydney (UTC+11 in November) from the flag');
  });

  it('a bad value names the setting it came from', async () => {
    const cwd = await workdir('bad', {config: {sourceTz: 'Mars/Olympus'}});
    assertCleanError(await runCli(['list', '--json'], {cwd, env: cleanEnv({GRAVITY_RESTORE_SOURCE: folder('flag')})}), /Unknown timezone "Mars\/Olympus" for the source/);
    const typo = await workdir('typo', {config: {sorce: 'x'} as Record<string, string>});
    assertCleanError(await runCli(['list', '--json'], {cwd: typo, env: cleanEnv({GRAVITY_RESTORE_SOURCE: folder('flag')})}), /"sorce" is not a known key/);
  });
});
