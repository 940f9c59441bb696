import {Args, Flags} from '@oclif/core';

import {BaseCommand, sourceFlags} from '../base-command.js';
import type {FetchResult} from '../catalog/fetch.js';
import type {BackupChoice} from '../catalog/list.js';
import {parseUserTime} from '../catalog/names.js';
import {GravityError} from '../errors.js';
import {formatBytes} from '../ui/reporter.js';

export default class Fetch extends BaseCommand<typeof Fetch> {
  static summary = 'Download a backup into the local cache (verified, resumable) and unpack the collections you need';
  static description =
    'A second fetch of the same object transfers nothing; an interrupted one (Ctrl-C, lost connection) resumes where it stopped. ' +
    'Sizes, plain-MD5 ETags and .sha256/.md5 sidecar objects are checked; the SHA-256 of every file is recorded.';
  static examples = [
    '<%= config.bin %> fetch latest --collection artworks',
    '<%= config.bin %> fetch --before "2026-11-18T14:30:00-05:00" --collection artworks --collection sale_artworks',
    '<%= config.bin %> fetch 2026-11-18T14:00:00Z --cache /var/tmp/gravity-restore',
  ];
  static args = {backup: Args.string({description: 'backup id from `list`, `latest`, or a time (the newest backup at or before it)'})};
  static flags = {
    ...sourceFlags,
    before: Flags.string({description: 'fetch the newest backup taken at or before this time'}),
    tz: Flags.string({description: 'zone of --before without an offset [default: machine timezone], and of a time given as BACKUP [default: --source-tz]', env: 'GRAVITY_RESTORE_TZ'}),
    collection: Flags.string({description: 'unpack only these collections (repeatable)', multiple: true}),
  };

  async run(): Promise<FetchResult & {chosen?: BackupChoice}> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {fetchBackup} = await import('../catalog/fetch.js');
    const {chooseBackup, describeChoice, selectBackup, unknownCollectionError} = await import('../catalog/list.js');
    const {backupTimeZone, looksLikePath, openSource} = await import('../extract/source.js');
    const {unpackCollections} = await import('../extract/unpack.js');
    const {flags, settings} = this;
    if (this.args.backup && flags.before) throw new GravityError('USAGE', 'Give a backup id or --before, not both', {hint: 'Drop one of them'});
    if (this.args.backup && looksLikePath(this.args.backup)) {
      throw new GravityError('USAGE', `${this.args.backup} is a local path; fetch downloads a backup of the source by its id or a time`, {
        hint: `A local backup needs no fetch: read it with \`gravity-restore inspect ${this.args.backup}\` or \`extract --from ${this.args.backup}\``,
      });
    }
    const {store, backups} = await openSource(settings);
    const before = flags.before ? parseUserTime(flags.before, settings.tz) : undefined;
    const collection = flags.collection?.length === 1 ? flags.collection[0] : undefined;
    const chosen =
      this.args.backup && this.args.backup !== 'latest'
        ? await chooseBackup(store, backups, this.args.backup, {sourceTz: settings.sourceTz, timeZone: backupTimeZone(settings), cacheDir: settings.cache, ...(collection ? {collection} : {})})
        : {backup: await selectBackup(store, backups, {before, collection, cacheDir: settings.cache}), choice: null};
    const {backup, choice} = chosen;
    if (choice) this.reporter.notice(describeChoice(choice));
    if (!backup) {
      const unknown = collection ? unknownCollectionError(store, backups, collection, before) : null;
      if (unknown) throw unknown;
      throw new GravityError('BACKUP_NOT_FOUND', `No backup${before ? ` taken at or before ${before.toISOString()}` : ''}${collection ? ` holds ${collection}` : ''}`, {
        hint: 'Run `gravity-restore list` to see what the source holds',
      });
    }
    this.reporter.note(`Fetching ${backup.id} (${backup.kind}, taken ${backup.takenAt.toISOString()}, ${formatBytes(backup.size)})`);
    const bar = this.reporter.bar('Downloading', backup.size, 'bytes');
    const done = new Map<string, number>();
    const result = await fetchBackup(store, backup, {
      cacheDir: settings.cache,
      collections: flags.collection,
      signal: this.abort.signal,
      onProgress: (p) => {
        done.set(p.key, p.bytes);
        bar.update([...done.values()].reduce((a, b) => a + b, 0));
      },
      unpack: (file, collections) => unpackCollections(file.path, collections, file.dir, this.abort.signal),
    });
    bar.done();
    this.log(`${result.backup}: ${result.files.length} file(s), ${formatBytes(result.bytesTransferred)} transferred${result.resumed ? ' (resumed)' : ''}`);
    for (const f of result.files) this.log(`  ${f.path}  sha256 ${f.sha256.slice(0, 16)}…`);
    for (const [c, p] of Object.entries(result.collections)) this.log(`  ${c} → ${p}`);
    return {...result, ...(choice ? {chosen: choice} : {})};
  }
}
