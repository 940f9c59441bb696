import {describeDbSource, type ResolvedTarget, type TargetDbSource} from '../config/settings.js';
import {GravityError} from '../errors.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import type {TargetConnection} from '../target/types.js';

/** Which database a plan or push writes to, and what is (not) there: said before anything else. */
export interface TargetDatabase {
  /** The database written to (several, comma-separated, when the set spans databases and none is named). */
  name: string;
  /** The set's source database(s), comma-separated. */
  sourceDb: string;
  /** False when the server has no such database (MongoDB creates one on its first write). */
  exists: boolean;
  /** Collections of the set the target database does not have (they would be created). */
  missingCollections: string[];
  /** Where the name came from: --db, the target's configured database, the connection string's path, or the set. */
  chosenBy: TargetDbSource;
}

function setDbs(set: RestoreSet): string[] {
  return [...new Set(set.manifest.order.map((c) => set.manifest.collections[c]!.db))];
}

/**
 * Production writes into the set's own database unless --db names another one on purpose: a
 * connection string's path or a configured default that differs from the set (the sandbox's
 * `/gravity` against a set of `shop`) is a mistake there until said otherwise.
 */
export function refuseSilentProductionDb(set: RestoreSet, target: ResolvedTarget, setArg: string): void {
  if (target.name !== 'production' || target.db === null || target.dbFrom === 'flag') return;
  const sources = setDbs(set);
  if (sources.every((d) => d === target.db)) return;
  throw new GravityError(
    'GATE_REFUSED',
    `production would write into database ${target.db} (from ${describeDbSource(target.dbFrom, target.name)}), but the set was extracted from ${sources.join(', ')}`,
    {hint: `Name the database on purpose: --db ${sources.length === 1 ? sources[0] : target.db} (or \`gravity-restore plan ${setArg} --to production --db ${target.db}\` to see what would go there)`},
  );
}

/**
 * What the target holds of the set's databases and collections. A database exists when it holds a
 * collection: MongoDB creates a database, and a collection, when data is first stored in it
 * (https://www.mongodb.com/docs/manual/core/databases-and-collections/#create-a-database).
 */
export async function describeTargetDatabase(set: RestoreSet, conn: TargetConnection, target: ResolvedTarget): Promise<TargetDatabase> {
  const names = new Map<string, string[]>();
  for (const c of set.manifest.order) {
    const entry = set.manifest.collections[c]!;
    const db = conn.dbName(entry.db);
    names.set(db, [...(names.get(db) ?? []), c]);
  }
  let exists = true;
  const missing: string[] = [];
  for (const [db, collections] of names) {
    const held = new Set((await conn.client.db(db).listCollections({}, {nameOnly: true}).toArray()).map((c) => c.name));
    if (held.size === 0) exists = false;
    for (const c of collections) if (!held.has(set.manifest.collections[c]!.collection)) missing.push(c);
  }
  return {name: [...names.keys()].join(','), sourceDb: setDbs(set).join(','), exists, missingCollections: missing, chosenBy: target.dbFrom};
}

/** The lines a person must read before a plan or push: a database other than the set's, or one that is not there. */
export function targetDatabaseNotes(t: TargetDatabase, target: ResolvedTarget): string[] {
  const notes: string[] = [];
  if (t.name !== t.sourceDb) {
    notes.push(`Target database is ${t.name} (from ${describeDbSource(t.chosenBy, target.name)}), not the set's source database ${t.sourceDb}; pass --db ${t.sourceDb} to write there`);
  }
  if (!t.exists) notes.push(`Database ${t.name} does not exist on ${target.label}: a push would create it (check the name, or pass --db)`);
  else if (t.missingCollections.length > 0) notes.push(`${t.name} on ${target.label} has no collection ${t.missingCollections.join(', ')}: a push would create ${t.missingCollections.length === 1 ? 'it' : 'them'}`);
  return notes;
}
