import path from 'node:path';

import {defaultCacheDir} from '../catalog/fetch.js';
import {assertTimeZone} from '../catalog/names.js';
import {GravityError} from '../errors.js';
import type {Relation} from '../restore-set/manifest.js';
import type {ConfigFile} from './config-file.js';
import {maskUri} from './redact.js';

/**
 * Effective settings. Precedence: flag > environment > `.env` > config file > default.
 * Flags carry the environment through oclif's `env:` fallbacks and `.env` is loaded into the
 * environment (without overriding it) before flags are parsed, so here only the config file
 * and the defaults remain to be applied.
 */
export interface Settings {
  source: string | undefined;
  sourceTz: string;
  endpoint: string | undefined;
  region: string | undefined;
  cache: string;
  tz: string;
  relations: Relation[];
  targets: {staging: string | undefined; production: string | undefined};
  configFile: string | null;
}

export interface SettingFlags {
  source?: string;
  'source-tz'?: string;
  endpoint?: string;
  cache?: string;
  tz?: string;
}

export function machineTimezone(): string {
  return process.env.TZ || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

/** The catalog's zone check, with the setting it came from named in the message. */
export function validateTimezone(tz: string, what: string): string {
  try {
    assertTimeZone(tz);
  } catch (error) {
    throw new GravityError('USAGE', `Unknown timezone "${tz}" for ${what}`, {hint: 'Use an IANA name such as UTC, America/New_York or Europe/Berlin', cause: error});
  }
  return tz;
}

export function resolveSettings(flags: SettingFlags, config: ConfigFile, configFile: string | null, env: NodeJS.ProcessEnv = process.env): Settings {
  const sourceTz = flags['source-tz'] ?? env.GRAVITY_RESTORE_SOURCE_TZ ?? config.sourceTz ?? 'UTC';
  const tz = flags.tz ?? env.GRAVITY_RESTORE_TZ ?? config.tz ?? machineTimezone();
  return {
    source: flags.source ?? env.GRAVITY_RESTORE_SOURCE ?? config.source,
    sourceTz: validateTimezone(sourceTz, 'the source (--source-tz)'),
    endpoint: flags.endpoint ?? env.GRAVITY_RESTORE_S3_ENDPOINT ?? config.endpoint,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? config.region,
    cache: path.resolve(flags.cache ?? env.GRAVITY_RESTORE_CACHE ?? config.cache ?? defaultCacheDir()),
    tz: validateTimezone(tz, 'display (--tz)'),
    relations: config.relations ?? [],
    targets: {
      staging: env.GRAVITY_RESTORE_STAGING_URI || config.targets?.staging,
      production: env.GRAVITY_RESTORE_PRODUCTION_URI || config.targets?.production,
    },
    configFile,
  };
}

/** The database named in a connection string's path, or null. */
export function databaseFromUri(uri: string): string | null {
  const match = /^mongodb(?:\+srv)?:\/\/(?:[^@/]*@)?[^/?]*(?:\/([^?]*))?/.exec(uri);
  if (!match) return null;
  const db = match[1] ? decodeURIComponent(match[1]) : '';
  return db.length > 0 ? db : null;
}

export interface ResolvedTarget {
  name: 'staging' | 'production' | 'adhoc';
  uri: string;
  db: string | null;
  label: string;
}

const TARGET_ENV = {staging: 'GRAVITY_RESTORE_STAGING_URI', production: 'GRAVITY_RESTORE_PRODUCTION_URI'} as const;

/** `--to staging|production|mongodb://…`: a raw URI is accepted with staging rules. */
export function resolveTarget(to: string, settings: Settings): ResolvedTarget {
  if (to === 'staging' || to === 'production') {
    const uri = settings.targets[to];
    if (!uri) {
      throw new GravityError('TARGET_INVALID', `No connection string for the ${to} target`, {
        hint: `Set ${TARGET_ENV[to]} (in the environment or .env), or pass --to mongodb://host:port/db`,
      });
    }
    return {name: to, uri, db: databaseFromUri(uri), label: `${to} (${maskUri(uri)})`};
  }
  if (/^mongodb(\+srv)?:\/\//.test(to)) {
    return {name: 'adhoc', uri: to, db: databaseFromUri(to), label: maskUri(to)};
  }
  throw new GravityError('TARGET_INVALID', `Unknown target "${maskUri(to)}"`, {
    hint: 'Use --to staging, --to production or --to mongodb://host:port/db',
  });
}
