import {Flags} from '@oclif/core';

import {BaseCommand, sourceFlags} from '../base-command.js';
import {collectionsCell, describeBackups, isUtc, kindCell, type ListResult} from '../ui/backups.js';
import {parseUserTime} from '../catalog/names.js';

import {renderTable} from '../ui/table.js';

export default class List extends BaseCommand<typeof List> {
  static summary = 'List the backups in the source, newest first, with times in UTC and your timezone';
  static description =
    'Backups are folders or objects under the source prefix whose names carry a time. Names without an offset are read in --source-tz. ' +
    '--before marks the newest backup taken at or before that time (the one that still holds data lost after it).';
  static examples = [
    '<%= config.bin %> list --source s3://gravity-production-db-backup/db/backup/ --source-tz America/New_York',
    '<%= config.bin %> list --before "2026-11-18 14:30" --tz America/New_York --collection artworks',
    '<%= config.bin %> list --json | jq .selected',
  ];
  static flags = {
    ...sourceFlags,
    before: Flags.string({description: 'select the newest backup taken at or before this time (ISO 8601; without an offset, read in --tz)'}),
    collection: Flags.string({description: 'only backups that hold this collection'}),
    tz: Flags.string({description: 'display timezone, and the zone of --before without an offset [default: machine timezone]', env: 'GRAVITY_RESTORE_TZ'}),
    limit: Flags.integer({description: 'show at most this many backups (newest first)', min: 1}),
  };

  async run(): Promise<ListResult> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {selectBackup, unknownCollectionError} = await import('../catalog/list.js');
    const {namespaceMatches} = await import('../catalog/members.js');
    const {openSource} = await import('../extract/source.js');
    const {flags, settings} = this;
    const before = flags.before ? parseUserTime(flags.before, settings.tz) : undefined;
    this.reporter.spin(`Listing ${settings.source ?? 'backups'}`);
    const {store, backups} = await openSource(settings);
    this.reporter.succeed(`${backups.length} backups in ${store.location}`);
    let shown = backups;
    let selected = null;
    if (before || flags.collection) {
      selected = await selectBackup(store, backups, {
        before,
        collection: flags.collection,
        cacheDir: settings.cache,
        onSkip: (id, reason) => this.reporter.note(`  skipped ${id}: ${reason}`),
      });
    }
    if (flags.collection) {
      const unknown = selected ? null : unknownCollectionError(store, backups, flags.collection, before);
      if (unknown) throw unknown;
      shown = shown.filter((b) => b.namespaces === null || b.namespaces.some((namespace) => namespaceMatches(namespace, flags.collection!)) || b.id === selected?.id);
    }
    if (flags.limit) shown = shown.slice(0, flags.limit);
    const result = describeBackups(shown, selected, settings.tz, before);
    const warned = result.backups.filter((b) => b.warnings.length > 0);
    // One line per backup is noise when a whole source is off; summarise past a few.
    if (warned.length <= 3) for (const b of warned) for (const w of b.warnings) this.reporter.warn(w);
    else this.reporter.warn(`${warned.length} backups carry warnings, e.g. ${warned[0]!.warnings[0]} (see --json for all)`);
    const local = !isUtc(settings.tz);
    this.log(
      renderTable(
        ['', 'id', 'kind', 'taken at (UTC)', ...(local ? [`taken at (${settings.tz})`] : []), 'age', 'size', 'collections'],
        result.backups.map((b) => [b.id === result.selected ? '→' : '', b.id, kindCell(b), b.takenAt, ...(local ? [b.takenAtLocal] : []), b.age ?? '', b.sizeHuman, collectionsCell(b)]),
      ),
    );
    const cells = result.backups.map(collectionsCell);
    if (cells.some((c) => c === '?' || c.endsWith('…'))) {
      this.log(`\n? / …: not read yet (packed backups are read only as far as a search needs); \`gravity-restore inspect <id>\` lists all of one`);
    }
    if (before || flags.collection) {
      this.log(result.selected ? `\nSelected: ${result.selected}` : `\nNo backup matches${before ? ` at or before ${before.toISOString()}` : ''}${flags.collection ? ` holding ${flags.collection}` : ''}`);
    }
    return result;
  }
}
