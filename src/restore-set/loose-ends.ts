/**
 * The runbook's last step, "tie up loose ends", as data: documents elsewhere in the backup that point
 * at restored ones through relations nobody followed, how stale each collection's data was at the
 * incident, who to tell, and the incident-review figures (data-loss window, time to restore).
 */
import {BSON, ObjectId, type Document} from 'bson';

import {readDump} from '../dump/read.js';
import type {DumpInput} from '../dump/types.js';
import {rawIdKey} from '../target/bson-util.js';
import {exactForm, exactId, orderedJson} from '../target/exact.js';
import type {LedgerEntry} from './ledger.js';
import {ObjectIdTable} from './oid-table.js';
import {setDocumentBatches} from './stream.js';
import type {Relation, RestoreSet} from './manifest.js';

export interface UnfollowedRelation {
  /** The restored collection whose `_id`s are referenced. */
  from: string;
  /** The collection (of the backup) holding the references, and the field. */
  to: string;
  foreignField: string;
  /** Documents of `to` that reference restored documents and are not themselves in the set. */
  documents: number;
  /** Distinct restored documents referenced. */
  referenced: number;
}

export interface StaleEntry {
  collection: string;
  /** When the data of this collection was taken (its backup), UTC. */
  takenAt: string | null;
  /** The same instant in the source timezone. */
  takenAtLocal: string | null;
  /** Incident minus backup time: what changed in between is not in the set. */
  ageAtIncidentMs: number | null;
  ageAtIncident: string | null;
  /** Documents the latest plan per target found changed on the target since the backup. */
  conflicts: Record<string, number>;
}

export interface NotifyEntry {
  field: string;
  /** Distinct values (canonical Extended JSON text) among the restored documents, most frequent first. */
  values: Array<{value: unknown; documents: number}>;
}

export interface IncidentFigures {
  incidentAt: string | null;
  /** RPO as lived: incident − backup taken. */
  dataLossWindowMs: number | null;
  dataLossWindow: string | null;
  /** From the restore set's creation to the first successful verify on production. */
  extractToVerifiedProductionMs: number | null;
  /** RTO as lived, when the incident time is known: incident → verified on production. */
  incidentToVerifiedProductionMs: number | null;
}

export function formatDuration(ms: number): string {
  const abs = Math.abs(ms);
  const d = Math.floor(abs / 86_400_000);
  const h = Math.floor((abs % 86_400_000) / 3_600_000);
  const m = Math.floor((abs % 3_600_000) / 60_000);
  const sign = ms < 0 ? '-' : '';
  if (d > 0) return `${sign}${d}d ${h}h`;
  if (h > 0) return `${sign}${h}h ${m}m`;
  return `${sign}${m}m ${Math.floor((abs % 60_000) / 1000)}s`;
}

function localTime(iso: string, tz: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short'}).formatToParts(new Date(iso));
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}:${get('second')} ${get('timeZoneName')} (${tz})`;
}

export function staleness(set: RestoreSet, incidentAt: string | null, sourceTz: string, conflicts: Array<{target: string; collection: string}>): StaleEntry[] {
  const m = set.manifest;
  return m.order.map((name) => {
    const c = m.collections[name]!;
    const takenAt = c.from?.takenAt ?? m.source.takenAt;
    const age = takenAt && incidentAt ? Date.parse(incidentAt) - Date.parse(takenAt) : null;
    const perTarget: Record<string, number> = {};
    for (const x of conflicts.filter((x) => x.collection === name)) perTarget[x.target] = (perTarget[x.target] ?? 0) + 1;
    return {
      collection: name,
      takenAt,
      takenAtLocal: takenAt ? localTime(takenAt, sourceTz) : null,
      ageAtIncidentMs: age,
      ageAtIncident: age === null ? null : formatDuration(age),
      conflicts: perTarget,
    };
  });
}

/** Value(s) at a dotted path, arrays contributing each element. */
function valuesAt(value: unknown, parts: string[]): unknown[] {
  if (parts.length === 0) return Array.isArray(value) ? value : [value];
  if (value instanceof Map) return value.has(parts[0]!) ? valuesAt(value.get(parts[0]!), parts.slice(1)) : [];
  if (Array.isArray(value)) return value.flatMap((v) => valuesAt(v, parts));
  return [];
}

/**
 * Who to tell: distinct values of the configured fields among the restored documents; with
 * `written` (per collection, the id keys a push actually wrote), only among those.
 */
export async function notifyList(set: RestoreSet, fields: string[], written?: Map<string, Set<string>>): Promise<NotifyEntry[]> {
  const counts = new Map<string, Map<string, number>>(fields.map((f) => [f, new Map()]));
  if (fields.length === 0) return [];
  for (const name of set.manifest.order) {
    const only = written ? (written.get(name) ?? new Set<string>()) : null;
    if (only?.size === 0) continue;
    // A batch of the set at a time: memory holds the distinct values, not the documents.
    for await (const docs of setDocumentBatches(set, name)) {
      for (const raw of docs) {
        if (only && !only.has(rawIdKey(raw))) continue;
        const doc = exactForm(raw).doc;
        for (const f of fields) {
          const seen = new Set(valuesAt(doc, f.split('.')).filter((v) => v !== null && v !== undefined).map((v) => orderedJson(v)));
          const m = counts.get(f)!;
          for (const v of seen) m.set(v, (m.get(v) ?? 0) + 1);
        }
      }
    }
  }
  return fields.map((field) => ({
    field,
    values: [...counts.get(field)!]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .map(([text, documents]) => ({value: JSON.parse(text) as unknown, documents})),
  }));
}

/** ObjectId-valued fields of a document, one level of nesting and arrays included. */
function objectIdFields(doc: Document, prefix = '', depth = 0, out = new Map<string, ObjectId[]>()): Map<string, ObjectId[]> {
  for (const [key, value] of Object.entries(doc)) {
    if (prefix === '' && key === '_id') continue;
    const path = prefix ? `${prefix}.${key}` : key;
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v instanceof ObjectId) out.set(path, [...(out.get(path) ?? []), v]);
      else if (v && typeof v === 'object' && !Array.isArray(v) && !('_bsontype' in v) && !(v instanceof Date) && depth < 1) objectIdFields(v as Document, path, depth + 1, out);
    }
  }
  return out;
}

/**
 * Read the backup once and count, for every collection and ObjectId field, the documents that point
 * at restored `_id`s through a relation the set did not follow. Documents already in the set don't count.
 */
export async function unfollowedRelations(set: RestoreSet, input: DumpInput, followed: Relation[], signal?: AbortSignal, only?: Map<string, Set<string>>): Promise<UnfollowedRelation[]> {
  // The restored ObjectId _ids, and which collections of the set hold each, in a compact table: the
  // set is streamed and the backup read once, so memory is about 30 bytes a restored document.
  const order = set.manifest.order;
  const expected = order.reduce((n, name) => n + (set.manifest.collections[name]?.documents ?? 0), 0);
  const restored = new ObjectIdTable(expected);
  for (const [index, name] of order.entries()) {
    // `only`: the documents whose loss can have taken dependents with it (inserted whole, not repaired in place).
    const keep = only ? (only.get(name) ?? new Set<string>()) : null;
    if (keep?.size === 0) continue;
    for await (const docs of setDocumentBatches(set, name)) {
      for (const raw of docs) {
        if (keep && !keep.has(rawIdKey(raw))) continue;
        const id = exactId(raw);
        if (id instanceof ObjectId) restored.add(id.id, index);
      }
    }
  }
  if (restored.size === 0) return [];
  const db = set.manifest.collections[order[0] ?? '']?.db;
  const isFollowed = (from: string, to: string, field: string) => followed.some((r) => r.from === from && r.to === to && r.foreignField === field && (r.localField ?? '_id') === '_id');
  // Per relation, a mark per table slot: distinct restored documents referenced, counted once.
  const found = new Map<string, {rel: UnfollowedRelation; marks: Uint8Array}>();
  for await (const event of readDump(input, {signal, want: (ns) => ns.db === db && !ns.collection.startsWith('system.')})) {
    if (event.type !== 'documents' || event.db !== db) continue;
    const own = order.indexOf(event.collection);
    for (const raw of event.docs) {
      const doc = BSON.deserialize(raw);
      if (own >= 0 && doc._id instanceof ObjectId && restored.has(doc._id.id, own)) continue;
      for (const [field, values] of objectIdFields(doc)) {
        const hits = new Map<number, number[]>();
        for (const v of values) {
          const slot = restored.slotOf(v.id);
          if (slot < 0) continue;
          for (const from of restored.collectionsAt(slot)) hits.set(from, [...(hits.get(from) ?? []), slot]);
        }
        for (const [fromIndex, slots] of hits) {
          const from = order[fromIndex]!;
          if (isFollowed(from, event.collection, field)) continue;
          const key = `${from}\u0000${event.collection}\u0000${field}`;
          let entry = found.get(key);
          if (!entry) {
            entry = {rel: {from, to: event.collection, foreignField: field, documents: 0, referenced: 0}, marks: new Uint8Array(restored.capacity)};
            found.set(key, entry);
          }
          entry.rel.documents++;
          for (const slot of slots) {
            if (entry.marks[slot]) continue;
            entry.marks[slot] = 1;
            entry.rel.referenced++;
          }
        }
      }
    }
  }
  return [...found.values()].map(({rel}) => rel).sort((a, b) => b.documents - a.documents);
}

export function incidentFigures(set: RestoreSet, incidentAt: string | null, ledger: LedgerEntry[]): IncidentFigures {
  const takenAt = set.manifest.source.takenAt;
  const loss = takenAt && incidentAt ? Date.parse(incidentAt) - Date.parse(takenAt) : null;
  const verified = ledger.find((e) => e.action === 'verify' && e.target === 'production' && e.outcome === 'ok');
  return {
    incidentAt,
    dataLossWindowMs: loss,
    dataLossWindow: loss === null ? null : formatDuration(loss),
    extractToVerifiedProductionMs: verified ? Date.parse(verified.time) - Date.parse(set.manifest.createdAt) : null,
    incidentToVerifiedProductionMs: verified && incidentAt ? Date.parse(verified.time) - Date.parse(incidentAt) : null,
  };
}
