import {BaseCommand, oplogFlags, sourceFlags} from '../base-command.js';
import type {OplogReport} from '../oplog/sources/report.js';

export default class Oplog extends BaseCommand<typeof Oplog> {
  static summary = 'Show what the oplog sources cover: the time range of each, its entries and its gaps';
  static description =
    'Reads each --oplog source (oplog dumps are read once, a live oplog only at its two ends) and shows the range it covers, ' +
    'how many entries it holds and where it has gaps: between dump files that do not share a boundary entry, and silences over 60 s ' +
    'inside an unfiltered oplog (an idle primary writes a no-op every 10 s). Point-in-time commands need the oplog unbroken over their window.';
  static examples = [
    '<%= config.bin %> oplog --oplog ./oplog-dumps',
    '<%= config.bin %> oplog --oplog s3://gravity-production-db-backup/oplog/ --oplog production --json',
  ];
  static flags = {
    ...sourceFlags,
    ...oplogFlags,
  };

  async run(): Promise<OplogReport> {
    const {openOplogSources} = await import('../oplog/sources/open.js');
    const {describeOplog} = await import('../oplog/sources/report.js');
    const {renderOplogReport} = await import('../ui/oplog.js');
    const opened = await openOplogSources(this.settings);
    try {
      const report = await describeOplog(opened.sources, {
        signal: this.abort.signal,
        onProgress: (source, p) => this.reporter.spin(`Reading ${source.label}: ${p.entries.toLocaleString('en-US')} entries`),
      });
      this.reporter.succeed(`Read ${report.sources.length} oplog source${report.sources.length === 1 ? '' : 's'}`);
      this.log(renderOplogReport(report, this.flags.tz ? this.settings.tz : this.settings.sourceTz));
      return report;
    } finally {
      await opened.close();
    }
  }
}
