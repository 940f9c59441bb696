import type {Plan} from '../target/types.js';
import {renderTable} from './table.js';
import {formatValue} from './values.js';

/** Rows of a list shown at most at this length; the rest are counted, never dropped silently. */
const LIST_LIMIT = 20;

/** "… and K more" when a list shows `shown` of `total`; nothing when it shows them all. */
export function andMore(shown: number, total: number): string[] {
  return total > shown ? [`  … and ${total - shown} more (${shown} of ${total} shown)`] : [];
}

function total(plan: Plan, key: 'conflict' | 'repair' | 'skipped' | 'keyMatch'): number {
  return Object.values(plan.collections).reduce((n, c) => n + (c[key] ?? 0), 0);
}

/**
 * The plan as a person reads it: counts per collection, then a field diff for a few conflicts.
 * Documents a flag leaves out on purpose (--where-target no longer matching) are "excluded", the
 * word push, verify and report use for them.
 */
export function renderPlan(plan: Plan): string {
  const lines: string[] = [];
  lines.push(
    renderTable(
      ['collection', 'target namespace', 'insert', 'same', plan.fields ? 'repair' : 'conflict', ...(plan.fields ? ['excluded'] : []), 'keyMatch', 'clash', 'not exact'],
      Object.entries(plan.collections).map(([c, n]) => {
        const ns = plan.namespaces[c];
        const middle = plan.fields ? [n.repair ?? 0, n.skipped ?? 0] : [n.conflict];
        return [c, ns ? `${ns.db}.${ns.collection}` : '', n.insert, n.same, ...middle, n.keyMatch, n.clash ?? 0, n.notExact ?? 0];
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
    lines.push(...andMore(plan.conflicts.length, total(plan, 'conflict')));
  }
  if (plan.fields) {
    lines.push('', `Field repair of ${plan.fields.join(', ')}${plan.whereTarget ? ` where the target matches ${plan.whereTarget}` : ''}: other fields are neither compared nor written.`);
    const show = (title: string, samples: NonNullable<typeof plan.repairs>, of: number) => {
      if (samples.length === 0) return;
      lines.push('', title);
      for (const r of samples) {
        lines.push(`  ${r.collection} _id ${formatValue(r._id)}`);
        for (const f of r.fields) lines.push(`    ${f.path}: backup ${f.backup === undefined ? '(missing)' : formatValue(f.backup)} → target now ${f.target === undefined ? '(missing)' : formatValue(f.target)}`);
      }
      lines.push(...andMore(samples.length, of));
    };
    show('Repairs (the target\'s value is replaced by the backup\'s):', plan.repairs ?? [], total(plan, 'repair'));
    show('Excluded (the target no longer matches --where-target: fixed since? left alone):', plan.skippedSamples ?? [], total(plan, 'skipped'));
  }
  if (plan.keyMatches.length > 0) {
    lines.push('', 'Key matches (same natural key under another _id; re-created records?):');
    for (const k of plan.keyMatches) lines.push(`  ${k.collection} _id ${formatValue(k._id)} ~ target _id ${formatValue(k.targetId)} on ${formatValue(k.key)}`);
    lines.push(...andMore(plan.keyMatches.length, total(plan, 'keyMatch')));
  }
  const clashes = Object.entries(plan.clashes ?? {}).flatMap(([c, byId]) => Object.entries(byId).map(([id, clash]) => ({c, id, clash})));
  if (clashes.length > 0) {
    lines.push('', `Clashes (missing by _id, but a unique index holds the key under another _id; the server would refuse them; --skip-clashes leaves them out):`);
    for (const {c, id, clash} of clashes.slice(0, LIST_LIMIT)) {
      lines.push(`  ${c} _id ${formatValue(JSON.parse(id))}: index ${clash.index} holds ${formatValue(clash.key)} for target _id ${formatValue(JSON.parse(clash.targetId))}`);
    }
    lines.push(...andMore(Math.min(clashes.length, LIST_LIMIT), clashes.length));
  }
  const inexact = Object.entries(plan.notExact ?? {}).flatMap(([c, byId]) => Object.entries(byId).map(([id, why]) => ({c, id, why})));
  if (inexact.length > 0) {
    lines.push('', 'Not exact (cannot be written byte for byte; push stops unless --inexact skip or --inexact write):');
    for (const {c, id, why} of inexact.slice(0, LIST_LIMIT)) lines.push(`  ${c} _id ${formatValue(JSON.parse(id))}: ${why}`);
    lines.push(...andMore(Math.min(inexact.length, LIST_LIMIT), inexact.length));
  }
  const validated = Object.entries(plan.targetChecks ?? {}).filter(([, t]) => t.validator);
  if (validated.length > 0) {
    lines.push('', `Validated by the target (documents its validator rejects are refused at push and reported; --bypass-document-validation skips it): ${validated.map(([c, t]) => `${c} (${t.validationLevel}/${t.validationAction})`).join(', ')}`);
  }
  return lines.join('\n');
}
