import {formatInZone} from '../catalog/names.js';
import type {ChangesResult} from '../oplog/changes.js';
import type {HistoryResult} from '../oplog/history.js';
import type {OplogReport, GapJson} from '../oplog/sources/report.js';
import {renderTable} from './table.js';
import {formatValue} from './values.js';

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

/** `changes`: a table of counts per collection, then each collection's most changed fields. */
export function renderChanges(result: ChangesResult, tz: string): string {
  const names = Object.keys(result.collections);
  const lines = [
    `Oplog ${formatInZone(new Date(result.sinceTime), tz)} → ${result.untilTime ? formatInZone(new Date(result.untilTime), tz) : `its end (${result.oplogTo ? formatInZone(new Date(result.oplogTo.t * 1000), tz) : '-'})`}: ${result.entries.toLocaleString('en-US')} entries read`,
    '',
  ];
  if (names.length === 0) {
    lines.push('No writes to the collections asked about in this window.');
    return lines.join('\n');
  }
  lines.push(renderTable(
    ['collection', 'inserted', 'updated', 'replaced', 'deleted', 'in transactions', 'commands'],
    names.map((n) => {
      const c = result.collections[n]!;
      return [n, c.inserted, c.updated, c.replaced, c.deleted, c.inTransactions, Object.entries(c.commands).map(([k, v]) => `${k} ${v}`).join(', ')];
    }),
  ));
  for (const n of names) {
    const fields = Object.entries(result.collections[n]!.fields).sort((a, b) => b[1].set + b[1].unset - (a[1].set + a[1].unset)).slice(0, 10);
    if (fields.length === 0) continue;
    lines.push('', `${n}: fields updates changed`);
    for (const [path, f] of fields) {
      const parts = [`set ${f.set}`, ...(f.nulled > 0 ? [`to null ${f.nulled}`] : []), ...(f.unset > 0 ? [`unset ${f.unset}`] : [])];
      lines.push(`  ${path}: ${parts.join(', ')}; e.g. ${f.examples.slice(0, 3).map((e) => formatValue(e)).join(', ')}`);
    }
  }
  return lines.join('\n');
}

/** `history`: the base, one line per operation with its time in `tz`, then the state at the end. */
export function renderHistory(result: HistoryResult, tz: string): string {
  const lines: string[] = [];
  lines.push(result.base
    ? `Base: ${result.base.backup} (from ${formatInZone(new Date(result.base.pointTime), tz)})`
    : 'Base: none (no backup given or found; the state is known only from an insert in the window)');
  if (result.events.length === 0) lines.push('', 'No operations on this document in the window.');
  else {
    lines.push('', renderTable(
      ['time', 'ts', 'op', 'fields', 'txn'],
      result.events.map((e) => {
        const fields = [...e.set.map((p) => `+${p}`), ...e.unset.map((p) => `-${p}`)].join(' ');
        const what = e.op === 'rename' ? `→ ${e.to}` : e.missing ? '(no document to change)' : fields;
        return [formatInZone(new Date(e.wall ?? e.ts.t * 1000), tz), `${e.ts.t}:${e.ts.i}`, e.op, what, e.transaction ? 'yes' : ''];
      }),
    ));
  }
  lines.push('', result.stateJson !== null ? `State at the end: ${result.stateJson}` : result.stateKnown ? 'State at the end: absent' : 'State at the end: unknown (give --from a backup that holds it)');
  return lines.join('\n');
}
