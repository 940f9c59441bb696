/** What `oplog` shows: each source's range, entry count and gaps, and what they cover together. */
import type {OplogCoverage, OplogGap, OplogSource, OpTime} from '../types.js';
import {CombinedOplog} from './combined.js';
import {DumpOplogSource} from './dump.js';
import {opTimeToIso} from './entry.js';
import {OplogFileSet} from './files.js';
import {LiveOplogSource} from './live.js';

export interface OpTimeJson {
  t: number;
  i: number;
}

export interface GapJson {
  from: OpTimeJson;
  to: OpTimeJson;
  fromTime: string;
  toTime: string;
  seconds: number;
}

export interface SourceReport {
  source: string;
  kind: 'dumps' | 'dump' | 'live';
  from: OpTimeJson | null;
  to: OpTimeJson | null;
  fromTime: string | null;
  toTime: string | null;
  entries: number | null;
  gaps: GapJson[];
  /** Oplog dumps: each file's range. */
  files?: Array<{file: string; from: OpTimeJson | null; to: OpTimeJson | null; entries: number}>;
}

export interface OplogReport {
  sources: SourceReport[];
  /** All sources together: a stretch one misses and another covers is no gap. */
  combined: {from: OpTimeJson | null; to: OpTimeJson | null; fromTime: string | null; toTime: string | null; gaps: GapJson[]};
}

const ts = (t: OpTime | null): OpTimeJson | null => (t === null ? null : {t: t.t, i: t.i});
const iso = (t: OpTime | null): string | null => (t === null ? null : opTimeToIso(t));

export function gapJson(gap: OplogGap): GapJson {
  return {from: {t: gap.from.t, i: gap.from.i}, to: {t: gap.to.t, i: gap.to.i}, fromTime: opTimeToIso(gap.from), toTime: opTimeToIso(gap.to), seconds: gap.to.t - gap.from.t};
}

function kindOf(source: OplogSource): SourceReport['kind'] {
  if (source instanceof LiveOplogSource) return 'live';
  if (source instanceof DumpOplogSource) return 'dump';
  return 'dumps';
}

export async function describeOplog(
  sources: OplogSource[],
  options: {signal?: AbortSignal; onProgress?: (source: OplogSource, p: {entries: number; bytesRead: number; totalBytes?: number}) => void} = {},
): Promise<OplogReport> {
  const combined = new CombinedOplog(sources);
  const all = await combined.coverage(options.signal, options.onProgress);
  const reports = combined.coverages().map((c: OplogCoverage, k): SourceReport => {
    const source = sources[k]!;
    const report: SourceReport = {source: c.source, kind: kindOf(source), from: ts(c.from), to: ts(c.to), fromTime: iso(c.from), toTime: iso(c.to), entries: c.entries, gaps: c.gaps.map(gapJson)};
    if (source instanceof OplogFileSet) report.files = source.fileScans().map(({file, scan}) => ({file, from: ts(scan.first), to: ts(scan.last), entries: scan.entries}));
    return report;
  });
  return {sources: reports, combined: {from: ts(all.from), to: ts(all.to), fromTime: iso(all.from), toTime: iso(all.to), gaps: all.gaps.map(gapJson)}};
}
