import {Args, Flags} from '@oclif/core';

import {BaseCommand, sourceFlags} from '../base-command.js';
import type {Report, ReportOptions} from '../restore-set/report.js';

export default class ReportCommand extends BaseCommand<typeof ReportCommand> {
  static summary = 'The incident record of a restore set: backup, query, what was done, and the loose ends';
  static description =
    'Loose ends: documents the targets refused, relations the set did not follow (read from the backup: documents elsewhere that point at restored ones), ' +
    'how stale each collection was at the incident, who to notify (config "notify" fields) and the incident figures (data-loss window, time to a verified production).';
  static examples = [
    '<%= config.bin %> report ./restore-artworks > incident-2026-11-18.md',
    '<%= config.bin %> report ./restore-artworks --incident-at "2026-11-18 14:30" --tz America/New_York --json',
    '<%= config.bin %> report ./restore-artworks --no-backup-scan',
  ];
  static args = {set: Args.string({description: 'restore set folder', required: true})};
  static flags = {
    ...sourceFlags,
    tz: Flags.string({description: 'timezone of --incident-at without an offset [default: this machine\'s]', env: 'GRAVITY_RESTORE_TZ'}),
    'incident-at': Flags.string({description: 'when the incident happened (ISO 8601, or a time read in --tz) [default: extract --incident-at]'}),
    backup: Flags.string({description: 'backup id or path to read for unfollowed relations [default: the set\'s source backup]'}),
    'no-backup-scan': Flags.boolean({description: 'do not read the backup (unfollowed relations are then not reported)'}),
  };

  async run(): Promise<Report> {
    // Loaded here, not at start-up: `--help` and the other commands need none of it.
    const {buildReport, renderReportMarkdown} = await import('../restore-set/report.js');
    const {readRestoreSet} = await import('../restore-set/manifest.js');
    const {parseUserTime} = await import('../catalog/names.js');
    const set = await readRestoreSet(this.args.set);
    const options: ReportOptions = {
      sourceTz: this.settings.sourceTz,
      notify: this.settings.notify,
      signal: this.abort.signal,
      ...(this.flags['incident-at'] ? {incidentAt: parseUserTime(this.flags['incident-at'], this.settings.tz).toISOString()} : {}),
    };
    if (this.flags['no-backup-scan']) options.backup = {skipped: '--no-backup-scan'};
    else {
      const from = this.flags.backup ?? set.manifest.source.backup ?? set.manifest.source.location;
      try {
        const {resolveInput} = await import('../extract/source.js');
        const source = await resolveInput(from, this.settings);
        if (source.choice) this.reporter.notice(`--backup: ${(await import('../catalog/list.js')).describeChoice(source.choice)}`);
        options.backup = {input: source.input};
        this.reporter.spin(`Reading ${source.location} for relations the set did not follow`);
      } catch (error) {
        options.backup = {skipped: `the backup ${from} could not be opened (${(error as Error).message}); pass --backup or --no-backup-scan`};
      }
    }
    const report = await buildReport(set, options);
    this.reporter.stop();
    this.log(renderReportMarkdown(report));
    return report;
  }
}
