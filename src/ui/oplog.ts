import {formatInZone} from '../catalog/names.js';
import type {OplogReport, GapJson} from '../oplog/sources/report.js';
import {renderTable} from './table.js';

function when(iso: string | null, ts: {t: number; i: number} | null, tz: string): string {
  return iso === null || ts === null ? '-' : `${formatInZone(new Date(iso), tz)} [${ts.t}, ${ts.i}]`;
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function gapLines(gaps: GapJson[], tz: string): string[] {
  return gaps.map((g) => `  gap ${when(g.fromTime, g.from, tz)} → ${when(g.toTime, g.to, tz)} (${duration(g.seconds)})`);
}

/** `oplog`: one row per source, its gaps under the table, then what they cover together. */
export function renderOplogReport(report: OplogReport, tz: string): string {
  const lines = [
    renderTable(
      ['source', 'kind', 'from', 'to', 'entries', 'gaps'],
      report.sources.map((s) => [s.source, s.kind, when(s.fromTime, s.from, tz), when(s.toTime, s.to, tz), s.entries === null ? '-' : s.entries.toLocaleString('en-US'), s.gaps.length]),
    ),
  ];
  for (const s of report.sources) {
    if (s.gaps.length === 0) continue;
    lines.push('', `${s.source}:`, ...gapLines(s.gaps, tz));
  }
  const c = report.combined;
  lines.push('', `Together: ${when(c.fromTime, c.from, tz)} → ${when(c.toTime, c.to, tz)}, ${c.gaps.length === 0 ? 'no gaps' : `${c.gaps.length} gap${c.gaps.length === 1 ? '' : 's'}`}`);
  lines.push(...gapLines(c.gaps, tz));
  return lines.join('\n');
}
