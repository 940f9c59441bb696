import type {Plan} from '../target/types.js';
import {renderTable} from './table.js';
import {formatValue} from './values.js';

/** The plan as a person reads it: counts per collection, then a field diff for a few conflicts. */
export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  lines.push(
    renderTable(
      ['collection', 'target namespace', 'insert', 'same', 'conflict', 'keyMatch'],
      Object.entries(plan.collections).map(([c, n]) => {
        const ns = plan.namespaces[c];
        return [c, ns ? `${ns.db}.${ns.collection}` : '', n.insert, n.same, n.conflict, n.keyMatch];
      }),
    ),
  );
  if (plan.conflicts.length > 0) {
    lines.push('', 'Conflicts (changed on the target since the backup; left alone unless --on-conflict overwrite):');
    for (const c of plan.conflicts) {
      lines.push(`  ${c.collection} _id ${formatValue(c._id)}`);
      for (const f of c.fields.slice(0, 8)) {
        lines.push(`    ${f.path}: backup ${f.backup === undefined ? '(missing)' : formatValue(f.backup)} → target ${f.target === undefined ? '(missing)' : formatValue(f.target)}`);
      }
    }
  }
  if (plan.keyMatches.length > 0) {
    lines.push('', 'Key matches (same natural key under another _id; re-created records?):');
    for (const k of plan.keyMatches) lines.push(`  ${k.collection} _id ${formatValue(k._id)} ~ target _id ${formatValue(k.targetId)} on ${formatValue(k.key)}`);
  }
  return lines.join('\n');
}
