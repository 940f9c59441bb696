import assert from 'node:assert/strict';
import {describe, it} from 'node:test';

import fc from 'fast-check';

import {formatInZone, parseBackupName, parseUserTime, zonedTimeToUtc} from '../../src/catalog/names.js';
import {GravityError} from '../../src/errors.js';

const iso = (name: string, tz = 'UTC') => parseBackupName(name, tz)?.takenAt.toISOString();

describe('parseBackupName: every name form in the contract', () => {
  const cases: Array<[string, string]> = [
    ['2026-11-18T14:00:00Z', '2026-11-18T14:00:00.000Z'],
    ['2026-11-18T14-00-00Z', '2026-11-18T14:00:00.000Z'],
    ['2026-11-18-14-00', '2026-11-18T14:00:00.000Z'],
    ['2026-11-18_14-00', '2026-11-18T14:00:00.000Z'],
    ['20261118T1400', '2026-11-18T14:00:00.000Z'],
    ['202611181400', '2026-11-18T14:00:00.000Z'],
    ['20261118140512', '2026-11-18T14:05:12.000Z'],
    ['2026-11-18 14:00:00.250', '2026-11-18T14:00:00.250Z'],
    ['2026-11-18', '2026-11-18T00:00:00.000Z'],
    ['20261118', '2026-11-18T00:00:00.000Z'],
    ['gravity-1763500000.gz', '2025-11-18T21:06:40.000Z'],
    ['gravity-1763500000123.archive', '2025-11-18T21:06:40.123Z'],
  ];
  for (const [name, expected] of cases) {
    it(`reads ${name}`, () => assert.equal(iso(name), expected));
  }

  it('finds the time inside longer keys and folder paths', () => {
    assert.equal(iso('db/backup/hourly/gravity-2026-11-18T14-00-00Z/dump.tar.gz'), '2026-11-18T14:00:00.000Z');
    assert.equal(iso('gravity_production_20261118T1400.tar'), '2026-11-18T14:00:00.000Z');
  });

  it('applies an offset in the name and ignores the source timezone then', () => {
    assert.equal(iso('2026-11-18T14:00:00+01:00', 'America/New_York'), '2026-11-18T13:00:00.000Z');
    assert.equal(iso('2026-11-18T09:00-05:00', 'Asia/Tokyo'), '2026-11-18T14:00:00.000Z');
    assert.equal(iso('20261118T1400+0530', 'Europe/Berlin'), '2026-11-18T08:30:00.000Z');
    assert.equal(iso('2026-11-18T14-00-00-0500'), '2026-11-18T19:00:00.000Z');
    assert.equal(parseBackupName('2026-11-18T14:00:00Z', 'America/New_York')?.hasOffset, true);
    assert.equal(iso('gravity-1763500000.gz', 'Asia/Tokyo'), '2025-11-18T21:06:40.000Z');
  });

  it('reads names without an offset in the source timezone', () => {
    assert.equal(iso('2026-11-18-09-00', 'America/New_York'), '2026-11-18T14:00:00.000Z'); // EST, -05:00
    assert.equal(iso('2026-07-18-09-00', 'America/New_York'), '2026-07-18T13:00:00.000Z'); // EDT, -04:00
    assert.equal(iso('2026-11-18', 'Asia/Kolkata'), '2026-11-17T18:30:00.000Z');
  });

  it('handles the DST boundaries of America/New_York', () => {
    // 2026-03-08: 02:00 EST jumps to 03:00 EDT.
    assert.equal(iso('2026-03-08-01-59', 'America/New_York'), '2026-03-08T06:59:00.000Z');
    assert.equal(iso('2026-03-08-03-00', 'America/New_York'), '2026-03-08T07:00:00.000Z');
    const skipped = parseBackupName('2026-03-08-02-30', 'America/New_York');
    assert.equal(skipped?.ambiguity, 'skipped');
    assert.equal(skipped?.takenAt.toISOString(), '2026-03-08T07:30:00.000Z'); // moved forward, read as 03:30 EDT
    // 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice.
    const repeated = parseBackupName('2026-11-01-01-30', 'America/New_York');
    assert.equal(repeated?.ambiguity, 'repeated');
    assert.equal(repeated?.takenAt.toISOString(), '2026-11-01T05:30:00.000Z'); // the first, EDT
    assert.equal(iso('2026-11-01-02-00', 'America/New_York'), '2026-11-01T07:00:00.000Z');
    assert.equal(iso('2026-11-01-00-59', 'America/New_York'), '2026-11-01T04:59:00.000Z');
    assert.equal(parseBackupName('2026-11-18-14-00', 'America/New_York')?.ambiguity, undefined);
  });

  it('gives the kind from the words hourly/daily, and daily for a date-only name', () => {
    assert.equal(parseBackupName('hourly/2026-11-18T14-00-00Z', 'UTC')?.kind, 'hourly');
    assert.equal(parseBackupName('gravity-daily-2026-11-18T03-00', 'UTC')?.kind, 'daily');
    assert.equal(parseBackupName('2026-11-18', 'UTC')?.kind, 'daily');
    assert.equal(parseBackupName('hourly/2026-11-18', 'UTC')?.kind, 'hourly');
    assert.equal(parseBackupName('2026-11-18T14-00-00Z', 'UTC')?.kind, 'unknown');
    assert.equal(parseBackupName('hourlyish/2026-11-18T14-00-00Z', 'UTC')?.kind, 'unknown');
  });

  it('returns null for names without a valid time', () => {
    for (const name of ['README.md', 'gravity.tar.gz', '2026-13-18', '2026-02-30', '123456789', 'v1.2.3']) {
      assert.equal(parseBackupName(name, 'UTC'), null, name);
    }
  });

  it('rejects an unknown timezone with a USAGE error', () => {
    assert.throws(() => parseBackupName('2026-11-18', 'Mars/Olympus'), (error: unknown) => error instanceof GravityError && error.code === 'USAGE');
  });

  it('round-trips any wall-clock time outside DST transitions (property)', () => {
    fc.assert(
      fc.property(fc.date({min: new Date('2000-01-01T00:00:00Z'), max: new Date('2090-12-31T00:00:00Z'), noInvalidDate: true}), (date) => {
        const whole = new Date(Math.floor(date.getTime() / 60_000) * 60_000);
        const text = formatInZone(whole, 'America/New_York').slice(0, 16).replace(' ', 'T');
        const parsed = parseBackupName(text, 'America/New_York');
        assert.ok(parsed);
        if (parsed.ambiguity === undefined) assert.equal(parsed.takenAt.toISOString(), whole.toISOString());
      }),
      {numRuns: 300},
    );
  });
});

describe('zonedTimeToUtc', () => {
  it('converts across zones with half-hour offsets', () => {
    const fields = {year: 2026, month: 6, day: 1, hour: 12, minute: 0, second: 0, millisecond: 0};
    assert.equal(zonedTimeToUtc(fields, 'Asia/Kathmandu').date.toISOString(), '2026-06-01T06:15:00.000Z');
    assert.equal(zonedTimeToUtc(fields, 'Australia/Lord_Howe').date.toISOString(), '2026-06-01T01:30:00.000Z');
  });
});

describe('parseUserTime (--before)', () => {
  it('accepts ISO 8601 with an offset regardless of --tz', () => {
    assert.equal(parseUserTime('2026-11-18T14:00:00Z', 'Asia/Tokyo').toISOString(), '2026-11-18T14:00:00.000Z');
    assert.equal(parseUserTime('2026-11-18T09:00:00-05:00', 'UTC').toISOString(), '2026-11-18T14:00:00.000Z');
  });

  it('reads a time without an offset in --tz', () => {
    assert.equal(parseUserTime('2026-11-18 09:00', 'America/New_York').toISOString(), '2026-11-18T14:00:00.000Z');
    assert.equal(parseUserTime('2026-11-18T09:00:30', 'America/New_York').toISOString(), '2026-11-18T14:00:30.000Z');
    assert.equal(parseUserTime('2026-11-18', 'America/New_York').toISOString(), '2026-11-18T05:00:00.000Z');
  });

  it("accepts 'now' and epochs", () => {
    const before = Date.now();
    const now = parseUserTime('now', 'UTC').getTime();
    assert.ok(now >= before && now <= Date.now());
    assert.equal(parseUserTime('1763500000', 'UTC').toISOString(), '2025-11-18T21:06:40.000Z');
  });

  it('rejects anything else with USAGE and examples', () => {
    for (const text of ['yesterday', '', '2026-11-18T25:00', 'gravity-2026-11-18', '2026-11-18 9am']) {
      assert.throws(
        () => parseUserTime(text, 'UTC'),
        (error: unknown) => error instanceof GravityError && error.code === 'USAGE' && /2026-11-18T14:00:00Z/.test(error.hint ?? ''),
        text,
      );
    }
  });
});

describe('formatInZone', () => {
  it('shows the wall time with abbreviation and offset', () => {
    assert.equal(formatInZone(new Date('2026-11-18T14:00:00Z'), 'America/New_York'), '2026-11-18 09:00:00 EST (-05:00)');
    assert.equal(formatInZone(new Date('2026-07-18T14:00:00Z'), 'America/New_York'), '2026-07-18 10:00:00 EDT (-04:00)');
    assert.equal(formatInZone(new Date('2026-07-18T14:00:00Z'), 'UTC'), '2026-07-18 14:00:00 UTC');
    assert.equal(formatInZone(new Date('2026-07-18T14:00:00Z'), 'Asia/Kolkata'), '2026-07-18 19:30:00 Asia/Kolkata (+05:30)');
  });
});
