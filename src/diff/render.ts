/** The human form of a diff: a table of counts, then the field changes that matter most. */
import {renderTable} from '../ui/table.js';
import type {DiffResult} from './diff.js';

const TOP_FIELDS = 8;

const n = (value: number) => value.toLocaleString('en-US');

export function renderDiff(result: DiffResult): string {
  const lines = [`${result.from} → ${result.against}`, ''];
  const entries = Object.entries(result.collections);
  lines.push(
    renderTable(
      ['collection', 'missing', 'changed', 'same', 'added'],
      entries.map(([name, c]) => [name, c.missing, c.changed, c.same, c.added === null ? 'not scanned' : c.added]),
    ),
  );
  for (const [name, c] of entries) {
    const fields = Object.entries(c.fields).slice(0, TOP_FIELDS);
    if (fields.length === 0) continue;
    lines.push('', `${name}: top field changes`);
    for (const [field, f] of fields) {
      const how = [f.nulled ? `nulled in ${n(f.nulled)}` : '', f.removed ? `removed in ${n(f.removed)}` : '', f.added ? `added in ${n(f.added)}` : ''].filter(Boolean).join(', ');
      lines.push(`  ${field}: changed in ${n(f.changed)} document${f.changed === 1 ? '' : 's'}${how ? ` (${how})` : ''}; e.g. ${f.examples.slice(0, 3).map((e) => JSON.stringify(e)).join(', ')}`);
    }
  }
  const missing = entries.filter(([, c]) => c.missing > 0).map(([name]) => name);
  if (missing.length > 0) {
    lines.push('', `Next: gravity-restore extract --from ${result.from} --collection ${missing[0]} --missing-in ${result.againstArg} --out ./lost-${missing[0]}`);
  }
  return lines.join('\n');
}
