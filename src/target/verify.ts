import {listJournals} from '../restore-set/journal.js';
import type {JournalFile} from '../restore-set/journal.js';
import {appendLedger} from '../restore-set/ledger.js';
import {readSetDocuments} from '../restore-set/manifest.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import {idKey, idKeyFromJson, idOf, idToJson, sameBytes} from './bson-util.js';
import {fetchRawById, guard} from './plan.js';
import type {ProgressCallback, TargetConnection, VerifyCounts, VerifyResult} from './types.js';

const PROBLEM_SAMPLE = 20;

/** Push journals of this set to this target, oldest first. */
export async function pushJournals(set: RestoreSet, conn: TargetConnection): Promise<JournalFile[]> {
  return (await listJournals(set, conn.spec.name)).filter(
    (j) => j.begin.op === 'push' && j.begin.setHash === set.hash && j.begin.targetLabel === conn.spec.label,
  );
}

/** Ids (per collection, by id key) that a push journal recorded as conflicts it did not write. */
export function conflictIdsOf(journal: JournalFile | undefined): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const r of journal?.records ?? []) {
    if (r.type !== 'conflict') continue;
    const set = out.get(r.collection) ?? new Set<string>();
    for (const id of r.ids) set.add(idKeyFromJson(id));
    out.set(r.collection, set);
  }
  return out;
}

/**
 * Does the target hold every document of the set, byte for byte? Documents the last push to this
 * target left alone as conflicts are counted apart (skippedConflicts), not as failures: the
 * user chose to keep the target's version.
 */
export async function verifySet(set: RestoreSet, conn: TargetConnection, options: {onProgress?: ProgressCallback} = {}): Promise<VerifyResult> {
  const started = Date.now();
  const last = (await pushJournals(set, conn)).at(-1);
  const skipped = conflictIdsOf(last);
  const result: VerifyResult = {target: conn.spec.label, ok: true, collections: {}, problems: []};
  for (const name of set.manifest.order) {
    const entry = set.manifest.collections[name]!;
    const coll = conn.client.db(conn.dbName(entry.db)).collection(entry.collection);
    const docs = await readSetDocuments(set, name);
    const ids = docs.map(idOf);
    const current = await guard(conn, 'verify', () => fetchRawById(coll, ids, (done) => options.onProgress?.({collection: name, done, total: docs.length})));
    const counts: VerifyCounts = {present: 0, missing: 0, different: 0, skippedConflicts: 0};
    const skippedHere = skipped.get(name) ?? new Set<string>();
    docs.forEach((raw, i) => {
      const key = idKey(ids[i]);
      const now = current.get(key);
      if (now && sameBytes(now, raw)) counts.present++;
      else if (skippedHere.has(key)) counts.skippedConflicts++;
      else {
        const problem = now ? 'different' : 'missing';
        counts[problem]++;
        if (result.problems.length < PROBLEM_SAMPLE) result.problems.push({collection: name, _id: JSON.parse(idToJson(ids[i])), problem});
      }
    });
    result.collections[name] = counts;
    if (counts.missing > 0 || counts.different > 0) result.ok = false;
  }
  await appendLedger(set, {
    time: new Date().toISOString(),
    action: 'verify',
    target: conn.spec.name,
    targetLabel: conn.spec.label,
    setHash: set.hash,
    ...(last?.begin.planHash ? {planHash: last.begin.planHash} : {}),
    counts: result.collections,
    outcome: result.ok ? 'ok' : 'failed',
    ...(last ? {journal: last.relPath} : {}),
    durationMs: Date.now() - started,
  });
  return result;
}
