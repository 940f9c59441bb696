import {Command, Flags, type Interfaces} from '@oclif/core';
import dotenv from 'dotenv';

import {loadConfigFile} from './config/config-file.js';
import {redact} from './config/redact.js';
import {resolveSettings, type Settings, type SettingFlags} from './config/settings.js';
import {GravityError, isGravityError} from './errors.js';
import {createReporter, type Reporter} from './ui/reporter.js';
import {isParseError, usageErrorFromParse} from './ui/suggest.js';

// `.env` is loaded once, before any flag is parsed, so flags' `env:` fallbacks see it.
// It never overrides variables already set in the environment.
dotenv.config({quiet: true});

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;

/** Flags shared by commands that read backups. */
export const sourceFlags = {
  source: Flags.string({description: 'backup source: s3://bucket/prefix/ or a local folder', env: 'GRAVITY_RESTORE_SOURCE', helpGroup: 'SOURCE'}),
  'source-tz': Flags.string({description: 'IANA timezone of backup names without an offset [default: UTC]', env: 'GRAVITY_RESTORE_SOURCE_TZ', helpGroup: 'SOURCE'}),
  endpoint: Flags.string({description: 'S3-compatible endpoint URL (path-style addressing)', env: 'GRAVITY_RESTORE_S3_ENDPOINT', helpGroup: 'SOURCE'}),
  cache: Flags.string({description: 'local cache of downloads', env: 'GRAVITY_RESTORE_CACHE', helpGroup: 'SOURCE'}),
};

/** Flags shared by the commands that read the oplog. */
export const oplogFlags = {
  oplog: Flags.string({
    description: 'oplog source (repeatable): a file or folder of local.oplog.rs dumps (.bson, .bson.gz), s3://bucket/prefix/ of them, or staging, production, mongodb://… (read only) [default: GRAVITY_RESTORE_OPLOG, config "oplog"]',
    multiple: true,
    helpGroup: 'OPLOG',
  }),
  tz: Flags.string({description: 'timezone of times without an offset, and of the times shown [default: the source timezone]', env: 'GRAVITY_RESTORE_TZ', helpGroup: 'OPLOG'}),
};

export const targetFlag = Flags.string({
  description: 'target: staging, production, or a mongodb:// URI (treated like staging)',
  required: true,
});

/** Field repair: only these paths are compared and written on documents that exist on the target. */
export const fieldsFlag = Flags.string({
  description: 'repair only these fields (comma-separated dotted paths) on documents that exist on the target: $set to the backup\'s value, $unset where the backup lacks it; absent documents are inserted whole',
});

/** With --fields: repair only documents whose current target version matches this filter. */
export const whereTargetFlag = Flags.string({
  description: 'with --fields: only documents whose current target version matches this filter (shell syntax or Extended JSON), e.g. \'{"important_a": null}\'',
  dependsOn: ['fields'],
});

/** The target's database, above its configuration; never admin, local or config. */
export const dbFlag = Flags.string({
  description: 'target database [default: GRAVITY_RESTORE_<TARGET>_DB, targets.<name>.db, the URI path unless it is admin, else the set\'s source database]',
});

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static enableJsonFlag = true;

  static baseFlags = {
    debug: Flags.boolean({description: 'show stack traces and verbose logging', helpGroup: 'GLOBAL'}),
    config: Flags.string({description: 'config file [default: ./gravity-restore.config.json]', env: 'GRAVITY_RESTORE_CONFIG', helpGroup: 'GLOBAL'}),
  };

  protected flags!: BaseFlags<T>;
  protected args!: Interfaces.InferredArgs<T['args']>;
  protected settings!: Settings;
  protected reporter!: Reporter;
  private interruptHandler: (() => void) | null = null;
  /** Aborted on Ctrl-C / SIGTERM so long work stops cleanly (journals flushed, temp files removed). */
  protected readonly abort = new AbortController();

  /** Called as soon as the flags are parsed, before settings are read: work a command can start early. */
  protected onFlagsParsed(): void {}

  public async init(): Promise<void> {
    // Restore sets, the download cache, plans, journals and exports hold production data: every file
    // and folder this program creates is readable by its owner only (0600 / 0700).
    process.umask(0o077);
    await super.init();
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as Interfaces.InferredArgs<T['args']>;
    this.onFlagsParsed();
    this.reporter = await createReporter({json: this.jsonEnabled()});
    const {file, config} = await loadConfigFile(this.flags.config);
    this.settings = resolveSettings(this.flags as SettingFlags, config, file);
    let interrupts = 0;
    this.interruptHandler = () => {
      interrupts++;
      if (interrupts > 1) process.exit(130);
      this.reporter.stop();
      this.abort.abort(new GravityError('INTERRUPTED', 'Interrupted', {hint: 'Run the same command again to resume'}));
    };
    process.on('SIGINT', this.interruptHandler);
    process.on('SIGTERM', this.interruptHandler);
  }

  protected async finally(error: Error | undefined): Promise<unknown> {
    if (this.interruptHandler) {
      process.off('SIGINT', this.interruptHandler);
      process.off('SIGTERM', this.interruptHandler);
    }
    this.reporter?.stop();
    return super.finally(error);
  }

  /** A mistyped flag or a missing argument as one USAGE line, with the closest flag name and where help is. */
  private usageError(error: Error): GravityError {
    const flags = [...Object.keys(this.ctor.flags ?? {}), ...Object.keys(BaseCommand.baseFlags), 'json', 'help'];
    return usageErrorFromParse(error, {id: this.id ?? '', flags, bin: this.config?.bin ?? 'gravity-restore'});
  }

  /** One line on stderr naming the problem and the next step; a stack only with --debug. */
  protected async catch(error: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    this.reporter?.stop();
    // this.exit(n) throws oclif's ExitError (name "Error", code EEXIT): pass it through untouched,
    // or oclif's default catch would print it as a second --json document and exit 1.
    if (error?.oclif?.exit !== undefined && !isGravityError(error) && (error as {code?: string}).code === 'EEXIT') throw error;
    const debug = this.flags?.debug || process.argv.includes('--debug');
    // Parse errors, and the framework's own errors (a flag value it could not read), are usage errors.
    const gravity = isGravityError(error) ? error : isParseError(error) || error?.oclif?.exit !== undefined ? this.usageError(error) : toGravityError(error);
    const json = this.jsonEnabled?.() || process.argv.includes('--json');
    if (json) process.stdout.write(`${errorJsonLine(gravity)}\n`);
    process.stderr.write(`Error: ${redact(gravity.line)}${gravity.code === 'INTERNAL' && !debug ? ' (run with --debug for details)' : ''}\n`);
    if (debug) process.stderr.write(`${redact(String((error as Error).stack ?? error))}\n`);
    return this.exit(gravity.exitCode);
  }
}

/** The one-line `--json` error document: the same keys for every error, `hint` null when there is none. */
export function errorJsonLine(error: GravityError): string {
  return JSON.stringify({
    error: {code: error.code, message: redact(error.message), hint: error.hint ? redact(error.hint) : null, exitCode: error.exitCode, ...(error.details ? {details: error.details} : {})},
  });
}

function toGravityError(error: unknown): GravityError {
  const err = error as NodeJS.ErrnoException;
  if (err?.code === 'ENOSPC') return new GravityError('INTERNAL', 'No space left on device', {hint: 'Free disk space or point --cache / --out elsewhere'});
  if (err?.code === 'EACCES' || err?.code === 'EPERM') return new GravityError('USAGE', `Permission denied: ${err.path ?? err.message}`, {hint: 'Check the path and its permissions'});
  return new GravityError('INTERNAL', `Unexpected error: ${err?.message ?? String(error)}`, {cause: error});
}
