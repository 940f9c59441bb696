import path from 'node:path';

// Its own module: the catalog's fetch code (bson, tar-stream) is not every command's start-up.
import {defaultCacheDir} from './cache-dir.js';
import {assertTimeZone} from '../catalog/names.js';
import {GravityError} from '../errors.js';
import type {Relation} from '../restore-set/manifest.js';
import type {ConfigFile} from './config-file.js';
import {maskUri, registerSecret, registerUriSecrets} from './redact.js';

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
  /** --tz, GRAVITY_RESTORE_TZ or the config file named the zone (not the machine's default). */
  tzGiven: boolean;
  relations: Relation[];
  /** Field paths `report` lists the distinct values of (who to notify). */
  notify: string[];
  targets: {staging: string | undefined; production: string | undefined};
  /** The database of each named target, when configured (GRAVITY_RESTORE_<NAME>_DB or targets.<name>.db). */
  targetDbs: {staging: string | undefined; production: string | undefined};
  /** `--db`: the database of the `--to` target, above everything else. */
  db: string | undefined;
  /** Oplog sources (`--oplog`, GRAVITY_RESTORE_OPLOG, config `oplog`): files, folders, s3:// prefixes, targets. */
  oplog: string[];
  configFile: string | null;
}

export interface SettingFlags {
  source?: string;
  'source-tz'?: string;
  endpoint?: string;
  cache?: string;
  tz?: string;
  db?: string;
  oplog?: string[];
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
  // Secrets are registered before anything can print them, whatever characters they hold.
  registerUriSecrets(env.GRAVITY_RESTORE_STAGING_URI || config.targets?.staging);
  registerUriSecrets(env.GRAVITY_RESTORE_PRODUCTION_URI || config.targets?.production);
  registerSecret(env.AWS_SECRET_ACCESS_KEY);
  registerSecret(env.AWS_SESSION_TOKEN);
  const oplog = flags.oplog && flags.oplog.length > 0 ? flags.oplog : oplogFromEnv(env.GRAVITY_RESTORE_OPLOG) ?? config.oplog ?? [];
  for (const source of oplog) if (/^mongodb(\+srv)?:\/\//.test(source)) registerUriSecrets(source);
  const sourceTz = flags['source-tz'] ?? env.GRAVITY_RESTORE_SOURCE_TZ ?? config.sourceTz ?? 'UTC';
  const tz = flags.tz ?? env.GRAVITY_RESTORE_TZ ?? config.tz ?? machineTimezone();
  return {
    source: flags.source ?? env.GRAVITY_RESTORE_SOURCE ?? config.source,
    sourceTz: validateTimezone(sourceTz, 'the source (--source-tz)'),
    endpoint: flags.endpoint ?? env.GRAVITY_RESTORE_S3_ENDPOINT ?? config.endpoint,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? config.region,
    cache: path.resolve(flags.cache ?? env.GRAVITY_RESTORE_CACHE ?? config.cache ?? defaultCacheDir()),
    tz: validateTimezone(tz, 'display (--tz)'),
    tzGiven: (flags.tz ?? env.GRAVITY_RESTORE_TZ ?? config.tz) !== undefined,
    relations: config.relations ?? [],
    notify: config.notify ?? [],
    targets: {
      staging: env.GRAVITY_RESTORE_STAGING_URI || config.targets?.staging,
      production: env.GRAVITY_RESTORE_PRODUCTION_URI || config.targets?.production,
    },
    targetDbs: {
      staging: env.GRAVITY_RESTORE_STAGING_DB || config.targetDbs?.staging,
      production: env.GRAVITY_RESTORE_PRODUCTION_DB || config.targetDbs?.production,
    },
    db: flags.db,
    oplog,
    configFile,
  };
}

/**
 * GRAVITY_RESTORE_OPLOG: one source, or several as a JSON array (`["./oplog", "production"]`): no
 * separator character is safe, since paths hold anything and connection strings hold commas.
 */
export function oplogFromEnv(value: string | undefined): string[] | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (!text.startsWith('[')) return [text];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new GravityError('CONFIG_INVALID', `GRAVITY_RESTORE_OPLOG starts with "[" but is not a JSON array (${(error as Error).message})`, {hint: 'Write one source, or a JSON array of them: ["./oplog-dumps", "production"]'});
  }
  if (!Array.isArray(parsed) || parsed.some((s) => typeof s !== 'string' || s.trim() === '')) {
    throw new GravityError('CONFIG_INVALID', 'GRAVITY_RESTORE_OPLOG must be one source or a JSON array of non-empty strings', {hint: 'e.g. ["./oplog-dumps", "production"]'});
  }
  return parsed as string[];
}

/** The database named in a connection string's path, or null. */
export function databaseFromUri(uri: string): string | null {
  // The host list starts after the last '@' before the first '/' that follows it; a password may hold '/', '?', '#' or '@'.
  const rest = /^mongodb(?:\+srv)?:\/\/(.*)$/s.exec(uri)?.[1];
  if (rest === undefined) return null;
  const hostsAndPath = rest.slice(rest.lastIndexOf('@') + 1);
  const match = /^[^/?]*(?:\/([^?]*))?/.exec(hostsAndPath);
  const raw = match?.[1] ?? '';
  let db: string;
  try {
    db = decodeURIComponent(raw);
  } catch {
    db = raw;
  }
  return db.length > 0 ? db : null;
}

/**
 * In MongoDB a connection string's path is the default authentication database, not a place to
 * write: `mongodb://u:p@host/admin` authenticates against admin. It names the target database only
 * when it is not one that exists for authentication.
 * https://www.mongodb.com/docs/manual/reference/connection-string/#std-label-connections-standard-connection-string-format
 */
const AUTHENTICATION_DATABASES = new Set(['admin', '$external']);

export function targetDbFromUri(uri: string): string | null {
  const db = databaseFromUri(uri);
  return db && !AUTHENTICATION_DATABASES.has(db) ? db : null;
}

/** Where the target database came from: said aloud by plan and push, and production accepts another database only from --db. */
export type TargetDbSource = 'flag' | 'setting' | 'uri' | 'set';

export interface ResolvedTarget {
  name: 'staging' | 'production' | 'adhoc';
  uri: string;
  db: string | null;
  label: string;
  dbFrom: TargetDbSource;
}

/** The setting a source names, in a person's words. */
export function describeDbSource(from: TargetDbSource, name: ResolvedTarget['name']): string {
  if (from === 'flag') return '--db';
  if (from === 'setting') return name === 'adhoc' ? 'the target settings' : `GRAVITY_RESTORE_${name.toUpperCase()}_DB / targets.${name}.db`;
  if (from === 'uri') return 'the connection string\'s path';
  return 'the restore set\'s source database';
}

/**
 * A user name or password with an unencoded \`@\`, \`#\`, \`/\`, \`?\` or \`:\` (\`mongodb://u:p@ss#w/rd@host/db\`)
 * makes the connection string name another host: the driver ends the host list at the first \`/\`,
 * \`?\` or \`#\` and takes the user information up to the last \`@\` before it, so the server is then
 * "unreachable" although it is up. The connection string format requires these characters
 * percent-encoded in the user name and password.
 * https://www.mongodb.com/docs/manual/reference/connection-string/#std-label-connections-standard-connection-string-format
 * ("If the username or password includes the following characters: : / ? # [ ] @ those characters
 * must be converted using percent encoding.")
 */
export function hasUnencodedUserInfo(uri: string): boolean {
  const rest = /^mongodb(?:\+srv)?:\/\/(.*)$/is.exec(uri.trim())?.[1];
  if (rest === undefined) return false;
  const at = rest.lastIndexOf('@');
  if (at < 0) return false;
  const userinfo = rest.slice(0, at);
  // The usual, well-formed case: user[:password]@hosts…
  if (!/[@/?#]/.test(userinfo) && userinfo.indexOf(':') === userinfo.lastIndexOf(':')) return false;
  // The driver, too, takes everything before the last '@' for user information, even an '@' in an
  // option value (appName=a@b): that one needs encoding as well, and the same advice fits.
  return true;
}

/** Refuse a connection string whose user information is not percent-encoded, naming where it came from but never printing it. */
export function assertEncodedUserInfo(uri: string, where: string): void {
  if (!hasUnencodedUserInfo(uri)) return;
  throw new GravityError('TARGET_INVALID', `The connection string of ${where} has an unencoded @, #, /, ? or : in its user name or password, so it names another host`, {
    hint: 'Check it and percent-encode the password (and user name): @ as %40, # as %23, / as %2F, ? as %3F, : as %3A (e.g. encodeURIComponent)',
  });
}

const TARGET_ENV = {staging: 'GRAVITY_RESTORE_STAGING_URI', production: 'GRAVITY_RESTORE_PRODUCTION_URI'} as const;

/**
 * `--to staging|production|mongodb://…`: a raw URI is accepted with staging rules. The database:
 * `--db` (for the target being written, `primary`), else the named target's configured database,
 * else the URI path unless it is an authentication database, else (null) the set's source database.
 */
export function resolveTarget(to: string, settings: Settings, primary = false): ResolvedTarget {
  const override = primary ? settings.db : undefined;
  if (to === 'staging' || to === 'production') {
    const uri = settings.targets[to];
    if (!uri) {
      throw new GravityError('TARGET_INVALID', `No connection string for the ${to} target`, {
        hint: `Set ${TARGET_ENV[to]} (in the environment or .env), or pass --to mongodb://host:port/db`,
      });
    }
    assertEncodedUserInfo(uri, `the ${to} target (${TARGET_ENV[to]})`);
    const configured = settings.targetDbs?.[to];
    const fromUri = targetDbFromUri(uri);
    const [db, dbFrom]: [string | null, TargetDbSource] = override ? [override, 'flag'] : configured ? [configured, 'setting'] : fromUri ? [fromUri, 'uri'] : [null, 'set'];
    return {name: to, uri, db, dbFrom, label: `${to} (${maskUri(uri)})`};
  }
  if (/^mongodb(\+srv)?:\/\//.test(to)) {
    registerUriSecrets(to);
    assertEncodedUserInfo(to, '--to');
    const fromUri = targetDbFromUri(to);
    const [db, dbFrom]: [string | null, TargetDbSource] = override ? [override, 'flag'] : fromUri ? [fromUri, 'uri'] : [null, 'set'];
    return {name: 'adhoc', uri: to, db, dbFrom, label: maskUri(to)};
  }
  throw new GravityError('TARGET_INVALID', `Unknown target "${maskUri(to)}"`, {
    hint: 'Use --to staging, --to production or --to mongodb://host:port/db',
  });
}
