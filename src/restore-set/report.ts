import {readdir, readFile} from 'node:fs/promises';
import path from 'node:path';

import type {DumpInput} from '../dump/types.js';
import {idKeyFromJson} from '../target/bson-util.js';
import {journalRecords, listJournals, type JournalFile} from './journal.js';
import {formatDuration, incidentFigures, notifyList, staleness, unfollowedRelations} from './loose-ends.js';
import type {IncidentFigures, NotifyEntry, StaleEntry, UnfollowedRelation} from './loose-ends.js';
import type {LedgerEntry} from './ledger.js';
import {readLedger} from './ledger.js';
import type {Relation, RestoreSet} from './manifest.js';

/** The incident record of a restore set: what was recovered from where, and what was done with it. */
export interface Report {
  set: {dir: string; hash: string; createdAt: string; tool: string};
  backup: {id: string | null; location: string; takenAt: string | null; ageAtExtract: string | null; ageMs: number | null};
  query: {collection: string; text: string};
  /** How documents were chosen: the query, and the comparisons of --missing-in / --changed-in when used. */
  selection: {collection: string; query: string; comparisons: Array<{keep: Array<'missing' | 'changed'>; against: string; kind: 'backup' | 'target'; takenAt: string | null; kept: number}>};
  /** The latest push to each target and how it wrote: whole documents, or a field repair (--fields, --where-target). */
  pushes: PushSummary[];
  follow: boolean;
  relations: Relation[];
  /** Per collection: documents extracted, and the latest plan / push / verify counts per target. */
  collections: Record<string, {db: string; extracted: number; scanned: number | null; selectedBy: string}>;
  stages: Array<{action: LedgerEntry['action']; target: string; time: string; outcome: LedgerEntry['outcome']; counts: Record<string, unknown> | null; durationMs: number | null}>;
  timings: Record<string, number>;
  conflicts: Array<{target: string; plan: string; collection: string; _id: unknown; fields: string[]}>;
  overrides: Array<{time: string; target: string; reason: string}>;
  /** What is still open after the pushes. */
  looseEnds: {
    /** Relations the set did not follow, found in the backup's data, with the documents that reference restored ones; null when the backup was not read. */
    unfollowedRelations: UnfollowedRelation[] | null;
    /** Why unfollowedRelations is null. */
    unfollowedRelationsNote?: string;
    stale: StaleEntry[];
    notify: NotifyEntry[];
    /** Which documents `notify` counts: those a push wrote (named), or every document of the set when nothing was pushed. */
    notifyBasis: string;
    /** Documents the latest push to each target did not restore (the server refused them or stored other bytes), with why. */
    refused: RefusedEntry[];
    figures: IncidentFigures;
  };
  ledger: LedgerEntry[];
}

export interface RefusedEntry {
  target: string;
  collection: string;
  _id: unknown;
  reason: string;
  code?: number;
}

export interface PushSummary {
  target: string;
  time: string;
  /** --fields: only these paths were written on documents that exist; null: whole documents. */
  fields: string[] | null;
  whereTarget: string | null;
  onConflict: string | null;
  inexact: string | null;
  bypassDocumentValidation: boolean;
  written: {inserted: number; overwritten: number; repaired: number};
  excluded: number;
  conflicts: number;
}

const REFUSED_LIMIT = 200;

interface PushRecord {
  summary: PushSummary;
  journal: JournalFile;
}

/** The latest push journal of this set to each target, with what it wrote. */
async function latestPushes(set: RestoreSet): Promise<PushRecord[]> {
  const latest = new Map<string, JournalFile>();
  for (const j of await listJournals(set)) if (j.begin.op === 'push' && j.begin.setHash === set.hash) latest.set(j.begin.targetLabel, j);
  const out: PushRecord[] = [];
  for (const journal of latest.values()) {
    const b = journal.begin;
    const summary: PushSummary = {
      target: b.targetLabel,
      time: b.time,
      fields: b.fields ?? null,
      whereTarget: b.fields ? (b.whereTarget ?? null) : null,
      onConflict: b.onConflict ?? null,
      inexact: b.inexact ?? null,
      bypassDocumentValidation: Boolean(b.bypassDocumentValidation),
      written: {inserted: 0, overwritten: 0, repaired: 0},
      excluded: 0,
      conflicts: 0,
    };
    for await (const r of journalRecords(journal)) {
      if (r.type === 'inserted' || r.type === 'overwritten' || r.type === 'repaired') summary.written[r.type] += r.ids.length;
      else if (r.type === 'excluded') summary.excluded += r.ids.length;
      else if (r.type === 'conflict') summary.conflicts += r.ids.length;
    }
    out.push({summary, journal});
  }
  return out;
}

/** Id keys per collection of the documents a push journal records as written (of `types`). */
async function writtenIds(journal: JournalFile, types: ReadonlyArray<'inserted' | 'overwritten' | 'repaired'>): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for await (const r of journalRecords(journal)) {
    if (r.type !== 'inserted' && r.type !== 'overwritten' && r.type !== 'repaired') continue;
    if (!types.includes(r.type)) continue;
    const ids = out.get(r.collection) ?? new Set<string>();
    for (const id of r.ids) ids.add(idKeyFromJson(id));
    out.set(r.collection, ids);
  }
  return out;
}

async function looseEnds(set: RestoreSet, options: ReportOptions, ledger: LedgerEntry[], conflicts: Report['conflicts'], pushes: PushRecord[]): Promise<Report['looseEnds']> {
  const incidentAt = options.incidentAt ?? set.manifest.incidentAt ?? null;
  const followed = set.manifest.follow ? set.manifest.relations : [];
  // Who was affected is who got documents back: the push to production when there is one, else the latest push.
  const basis = pushes.find((p) => p.journal.begin.target === 'production') ?? [...pushes].sort((a, b) => a.summary.time.localeCompare(b.summary.time)).at(-1);
  const written = basis ? await writtenIds(basis.journal, ['inserted', 'overwritten', 'repaired']) : undefined;
  const writtenCount = basis ? basis.summary.written.inserted + basis.summary.written.overwritten + basis.summary.written.repaired : 0;
  const notifyBasis = basis ? `the ${writtenCount} document(s) the latest push wrote to ${basis.summary.target}` : 'every document of the set (nothing pushed yet)';
  // A field repair rewrites fields of documents that still exist: only documents it inserted whole can have lost dependents with them.
  const repairOnly = basis?.summary.fields ? await writtenIds(basis.journal, ['inserted']) : undefined;
  let unfollowed: UnfollowedRelation[] | null = null;
  let note: string | undefined;
  if (repairOnly && [...repairOnly.values()].every((ids) => ids.size === 0)) {
    unfollowed = [];
    note = `the push to ${basis!.summary.target} was a field repair of ${basis!.summary.fields!.join(', ')} on documents that still exist: no dependents were lost with them`;
  } else if (options.backup && 'input' in options.backup) {
    try {
      unfollowed = await unfollowedRelations(set, options.backup.input, followed, options.signal, repairOnly);
      if (repairOnly) note = `only the documents the field repair inserted whole were checked; those it repaired in place still exist`;
    } catch (error) {
      note = `reading the backup failed: ${(error as Error).message}`;
    }
  } else note = options.backup?.skipped ?? 'the backup was not read';
  return {
    unfollowedRelations: unfollowed,
    ...(note ? {unfollowedRelationsNote: note} : {}),
    stale: staleness(set, incidentAt, options.sourceTz ?? 'UTC', conflicts),
    notify: await notifyList(set, options.notify ?? [], written),
    notifyBasis,
    refused: await refusedDocuments(set),
    figures: incidentFigures(set, incidentAt, ledger),
  };
}

/** Refusals recorded by the latest push journal of each target. */
async function refusedDocuments(set: RestoreSet): Promise<RefusedEntry[]> {
  const latest = new Map<string, Awaited<ReturnType<typeof listJournals>>[number]>();
  for (const j of await listJournals(set)) if (j.begin.op === 'push' && j.begin.setHash === set.hash) latest.set(j.begin.targetLabel, j);
  const out: RefusedEntry[] = [];
  for (const j of latest.values()) {
    for await (const r of journalRecords(j)) {
      if (r.type !== 'refused') continue;
      for (const id of r.ids) {
        if (out.length >= REFUSED_LIMIT) return out;
        out.push({target: j.begin.targetLabel, collection: r.collection, _id: JSON.parse(id) as unknown, reason: r.reason, ...(r.code === undefined ? {} : {code: r.code})});
      }
    }
  }
  return out;
}


interface PlanFile {
  target: string;
  hash: string;
  createdAt: string;
  conflicts?: Array<{collection: string; _id: unknown; fields: Array<{path: string}>}>;
}

async function readPlans(set: RestoreSet): Promise<PlanFile[]> {
  let names: string[];
  try {
    names = await readdir(path.join(set.dir, 'plans'));
  } catch {
    return [];
  }
  const plans: PlanFile[] = [];
  for (const name of names.filter((n) => n.endsWith('.json'))) {
    try {
      plans.push(JSON.parse(await readFile(path.join(set.dir, 'plans', name), 'utf8')) as PlanFile);
    } catch {
      // A plan being written by another process (temp file) or damaged: the ledger still tells the story.
    }
  }
  return plans.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

export interface ReportOptions {
  /** The incident time (ISO UTC); default: the manifest's `incidentAt`. */
  incidentAt?: string;
  sourceTz?: string;
  notify?: string[];
  /** The backup to read for unfollowed relations, or why it is not read. */
  backup?: {input: DumpInput} | {skipped: string};
  signal?: AbortSignal;
}

export async function buildReport(set: RestoreSet, options: ReportOptions = {}): Promise<Report> {
  const m = set.manifest;
  const ledger = await readLedger(set);
  const ageMs = m.source.takenAt ? Date.parse(m.createdAt) - Date.parse(m.source.takenAt) : null;
  const timings: Record<string, number> = {...(m.timings ?? {})};
  for (const e of ledger) {
    if (e.durationMs === undefined) continue;
    const key = `${e.action}:${e.target}`;
    timings[key] = (timings[key] ?? 0) + e.durationMs;
  }
  const plans = await readPlans(set);
  const pushes = await latestPushes(set);
  // The newest plan per target is the one that describes the state pushed against.
  const latest = new Map<string, PlanFile>();
  for (const p of plans) latest.set(p.target, p);
  const conflicts = [...latest.values()].flatMap((p) =>
    (p.conflicts ?? []).map((c) => ({target: p.target, plan: p.hash.slice(0, 12), collection: c.collection, _id: c._id, fields: c.fields.map((f) => f.path)})),
  );
  return {
    set: {dir: set.dir, hash: set.hash, createdAt: m.createdAt, tool: `${m.tool.name} ${m.tool.version}`},
    backup: {
      id: m.source.backup,
      location: m.source.location,
      takenAt: m.source.takenAt,
      ageAtExtract: ageMs === null || Number.isNaN(ageMs) ? null : formatDuration(ageMs),
      ageMs: ageMs === null || Number.isNaN(ageMs) ? null : ageMs,
    },
    query: {collection: m.query.collection, text: m.query.text},
    selection: {
      collection: m.query.collection,
      query: m.query.text,
      comparisons: (m.comparison ?? []).map((c) => ({
        keep: c.keep,
        against: c.against.label,
        kind: c.against.kind,
        takenAt: c.against.takenAt ?? null,
        kept: Object.values(c.counts).reduce((n, x) => n + x.kept, 0),
      })),
    },
    pushes: pushes.map((p) => p.summary),
    follow: m.follow,
    relations: m.relations,
    collections: Object.fromEntries(
      m.order.map((name) => {
        const c = m.collections[name]!;
        const selectedBy = c.selectedBy === 'query' ? 'query' : `${c.selectedBy.relation.from}.${c.selectedBy.relation.localField ?? '_id'} → ${c.selectedBy.relation.to}.${c.selectedBy.relation.foreignField} (level ${c.selectedBy.level})`;
        return [name, {db: c.db, extracted: c.documents, scanned: c.scanned ?? null, selectedBy}];
      }),
    ),
    stages: ledger.map((e) => ({action: e.action, target: e.targetLabel || e.target, time: e.time, outcome: e.outcome, counts: e.counts ?? null, durationMs: e.durationMs ?? null})),
    timings,
    conflicts,
    overrides: ledger.filter((e) => e.action === 'override').map((e) => ({time: e.time, target: e.targetLabel || e.target, reason: e.reason ?? ''})),
    looseEnds: await looseEnds(set, options, ledger, conflicts, pushes),
    ledger,
  };
}

const KEEP_TEXT = {missing: 'absent from', changed: 'different in'} as const;

/** "Documents of `customers` absent from X (a backup taken …) that match `{…}`", or the query alone. */
function selectionText(selection: Report['selection']): string {
  if (selection.comparisons.length === 0) return `Query on \`${selection.collection}\`: \`${selection.query}\``;
  const compared = selection.comparisons
    .map((c) => `${c.keep.map((k) => KEEP_TEXT[k]).join(' or ')} ${c.kind === 'target' ? 'the target' : 'the backup'} ${c.against}${c.takenAt ? ` (taken ${c.takenAt})` : ''}`)
    .join(', or ');
  const query = /^\s*\{\s*\}\s*$/.test(selection.query) ? '' : ` that match \`${selection.query}\``;
  return `Selected: documents of \`${selection.collection}\`${query} ${compared}`;
}

function pushText(p: PushSummary): string {
  const how = p.fields
    ? `field repair of ${p.fields.map((f) => `\`${f}\``).join(', ')} (--fields ${p.fields.join(',')}${p.whereTarget ? ` --where-target '${p.whereTarget}'` : ''}): only those fields were written on documents that exist`
    : `whole documents${p.onConflict ? ` (--on-conflict ${p.onConflict})` : ''}`;
  const flags = [p.inexact && p.inexact !== 'fail' ? `--inexact ${p.inexact}` : '', p.bypassDocumentValidation ? '--bypass-document-validation' : ''].filter(Boolean);
  const w = p.written;
  const counts = p.fields ? `repaired ${w.repaired}, inserted ${w.inserted}` : `inserted ${w.inserted}, overwritten ${w.overwritten}`;
  return `Push to ${p.target} at ${p.time}: ${how}${flags.length ? `, ${flags.join(' ')}` : ''}; ${counts}, excluded ${p.excluded}, conflicts left alone ${p.conflicts}`;
}

function cell(value: unknown): string {
  return String(value).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function countsText(counts: Record<string, unknown> | null): string {
  if (!counts) return '';
  return Object.entries(counts)
    .map(([coll, c]) =>
      c && typeof c === 'object'
        ? `${coll}: ${Object.entries(c as Record<string, unknown>).map(([k, v]) => `${k} ${String(v)}`).join(', ')}`
        : `${coll}: ${String(c)}`,
    )
    .join('; ');
}

export function renderReportMarkdown(report: Report): string {
  const lines: string[] = [];
  lines.push(`# Restore report — set ${report.set.hash.slice(0, 12)}`, '');
  lines.push(`- Set: \`${report.set.dir}\` (created ${report.set.createdAt} by ${report.set.tool})`);
  lines.push(`- Backup: ${report.backup.id ?? '(local path)'} at \`${report.backup.location}\``);
  lines.push(`- Taken at: ${report.backup.takenAt ?? 'unknown'}${report.backup.ageAtExtract ? ` (${report.backup.ageAtExtract} before extract)` : ''}`);
  lines.push(`- ${selectionText(report.selection)}`);
  lines.push(`- Relations followed: ${report.follow && report.relations.length ? '' : 'none'}`);
  if (report.follow) for (const r of report.relations) lines.push(`  - ${r.from}.${r.localField ?? '_id'} → ${r.to}.${r.foreignField}`);
  lines.push('', '## Collections', '', '| collection | db | extracted | scanned | selected by |', '|---|---|---:|---:|---|');
  for (const [name, c] of Object.entries(report.collections)) lines.push(`| ${cell(name)} | ${cell(c.db)} | ${c.extracted} | ${c.scanned ?? ''} | ${cell(c.selectedBy)} |`);
  lines.push('', '## What was done', '');
  for (const p of report.pushes) lines.push(`- ${pushText(p)}`);
  if (report.pushes.length > 0) lines.push('');
  if (report.stages.length === 0) lines.push('Nothing yet: the set was extracted and not planned or pushed.');
  else {
    lines.push('| time | action | target | outcome | counts | duration |', '|---|---|---|---|---|---:|');
    for (const s of report.stages) {
      lines.push(`| ${s.time} | ${s.action} | ${cell(s.target)} | ${s.outcome} | ${cell(countsText(s.counts))} | ${s.durationMs === null ? '' : `${s.durationMs} ms`} |`);
    }
  }
  if (report.overrides.length > 0) {
    lines.push('', '## Overrides', '');
    for (const o of report.overrides) lines.push(`- ${o.time} ${o.target}: ${o.reason}`);
  }
  lines.push('', '## Conflicts (changed on the target since the backup)', '');
  if (report.conflicts.length === 0) lines.push('None found by the latest plans.');
  else for (const c of report.conflicts) lines.push(`- ${c.target} ${c.collection} \`${JSON.stringify(c._id)}\`: ${c.fields.join(', ')}`);
  const ends = report.looseEnds;
  lines.push('', '## Loose ends', '', '### Not restored (refused by the target)', '');
  if (ends.refused.length === 0) lines.push('None: every document the pushes meant to write is on its target.');
  else for (const r of ends.refused) lines.push(`- ${r.target} ${r.collection} \`${JSON.stringify(r._id)}\`: ${r.reason}`);
  lines.push('', '### Relations not followed', '');
  if (ends.unfollowedRelations === null) lines.push(`Not checked: ${ends.unfollowedRelationsNote ?? 'the backup was not read'}.`);
  else if (ends.unfollowedRelations.length === 0) lines.push(ends.unfollowedRelationsNote ? `None: ${ends.unfollowedRelationsNote}.` : 'None: no other collection of the backup references the restored documents.');
  else for (const u of ends.unfollowedRelations) lines.push(`- ${u.to}.${u.foreignField} → ${u.from}: ${u.documents} document(s) not restored reference ${u.referenced} restored one(s)`);
  lines.push('', '### Stale since the backup', '');
  for (const st of ends.stale) {
    const conflictText = Object.entries(st.conflicts).map(([t, n]) => `${n} changed on ${t}`).join(', ');
    lines.push(`- ${st.collection}: taken ${st.takenAtLocal ?? 'at an unknown time'}${st.ageAtIncident ? `, ${st.ageAtIncident} before the incident` : ''}${conflictText ? `; ${conflictText}` : ''}`);
  }
  lines.push('', '### Who to notify', '');
  if (ends.notify.length > 0) lines.push(`Among ${ends.notifyBasis}:`, '');
  if (ends.notify.length === 0) lines.push('No `notify` fields configured (config file key "notify", e.g. ["partner_id", "user_id"]).');
  for (const n of ends.notify) lines.push(`- ${n.field}: ${n.values.length === 0 ? 'no values' : n.values.slice(0, 20).map((v) => `\`${JSON.stringify(v.value)}\` (${v.documents})`).join(', ')}`);
  const f = ends.figures;
  lines.push('', '### Incident figures', '');
  lines.push(`- Incident at: ${f.incidentAt ?? 'unknown (pass --incident-at)'}`);
  lines.push(`- Data-loss window (incident − backup): ${f.dataLossWindow ?? 'unknown'}`);
  lines.push(`- Extract to verified production: ${f.extractToVerifiedProductionMs === null ? 'not verified on production yet' : formatDuration(f.extractToVerifiedProductionMs)}`);
  lines.push(`- Incident to verified production: ${f.incidentToVerifiedProductionMs === null ? 'unknown' : formatDuration(f.incidentToVerifiedProductionMs)}`);
  lines.push('', '## Timings', '');
  for (const [k, v] of Object.entries(report.timings)) lines.push(`- ${k}: ${v} ms`);
  return `${lines.join('\n')}\n`;
}
