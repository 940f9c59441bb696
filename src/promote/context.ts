import {readdir, readFile} from 'node:fs/promises';
import path from 'node:path';

import {resolveTarget, type ResolvedTarget, type Settings} from '../config/settings.js';
import {GravityError} from '../errors.js';
import {acquireSetLock, type SetLock} from '../restore-set/lock.js';
import {readRestoreSet, type RestoreSet} from '../restore-set/manifest.js';
import {assertWritableDb, connectTarget} from '../target/connect.js';
import {targetIdentity, type GateDecision} from '../target/gates.js';
import type {Plan, TargetConnection, TargetSpec} from '../target/types.js';
import {ask, confirm} from '../ui/prompt.js';

export interface PromoteContext {
  set: RestoreSet;
  target: ResolvedTarget;
  /** The configured staging target, when there is one (production gates look at it). */
  staging: TargetSpec | null;
  /** The configured production target: a staging-like write that points at it is refused. */
  production: TargetSpec | null;
}

export async function openContext(setDir: string, to: string, settings: Settings): Promise<PromoteContext> {
  const set = await readRestoreSet(setDir);
  const target = resolveTarget(to, settings, true);
  const staging = settings.targets.staging ? resolveTarget('staging', settings) : null;
  const production = settings.targets.production ? resolveTarget('production', settings) : null;
  return {set, target, staging, production};
}

/**
 * The exclusive lock of this set on this target, for a run that writes (push, field repair,
 * rollback). The target is identified by its servers and database, not by the name it was given,
 * so `--to staging` and `--to <staging's URI>` take the same lock.
 */
export async function lockSetTarget(set: RestoreSet, target: ResolvedTarget, verb: string): Promise<SetLock> {
  const dbs = [...new Set(Object.values(set.manifest.collections).map((c) => c.db))].sort();
  const id = targetIdentity(target.uri, target.db);
  const identity = JSON.stringify({hosts: id.hosts, db: id.db ?? dbs.join(',')});
  const to = target.name === 'adhoc' ? target.label : target.name;
  return acquireSetLock(set, {identity, label: target.label}, `${verb} --to ${to}`);
}

/** Run `work` holding the set's lock on the target; the lock goes when the work ends, however it ends. */
export async function withSetLock<T>(set: RestoreSet, target: ResolvedTarget, verb: string, work: () => Promise<T>): Promise<T> {
  const lock = await lockSetTarget(set, target, verb);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}

export async function withConnection<T>(target: TargetSpec, work: (conn: TargetConnection) => Promise<T>): Promise<T> {
  const conn = await connectTarget(target);
  try {
    return await work(conn);
  } finally {
    await conn.close();
  }
}

/** The newest plan saved in the set for this target (by name, and by label when given), if any: what the user last saw. */
export async function lastSavedPlan(set: RestoreSet, targetName: string, label?: string): Promise<Plan | null> {
  const dir = path.join(set.dir, 'plans');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return null;
  }
  // Only the newest is kept while reading: a plan holds a byte per document, and a set gathers many.
  let newest: Plan | null = null;
  for (const name of names.filter((n) => n.startsWith(`${targetName}-`) && n.endsWith('.json'))) {
    try {
      const plan = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Plan;
      if (plan.setHash !== set.hash || (label !== undefined && plan.target !== label)) continue;
      if (!newest || plan.createdAt.localeCompare(newest.createdAt) >= 0) newest = plan;
    } catch {
      // A damaged plan file is ignored: the push plans again anyway.
    }
  }
  return newest;
}

/**
 * Ids that are conflicts or key matches now but were not in the plan the user saw: the target
 * moved in a way that matters. Inserts that became `same` (an earlier, interrupted push) do not.
 */
export function newRisks(previous: Plan, current: Plan): string[] {
  const risks: string[] = [];
  for (const [collection, ids] of Object.entries(current.ids)) {
    const before = previous.ids[collection];
    const seen = new Set([...(before?.conflict ?? []), ...(before?.keyMatch ?? []), ...(before?.clash ?? [])]);
    for (const id of [...ids.conflict, ...ids.keyMatch, ...(ids.clash ?? [])]) if (!seen.has(id)) risks.push(`${collection} ${id}`);
  }
  return risks;
}

export function requireTargetDb(target: TargetSpec, set: RestoreSet): string {
  const first = set.manifest.order[0];
  const db = target.db ?? (first ? set.manifest.collections[first]?.db : undefined);
  if (!db) throw new GravityError('TARGET_INVALID', `Cannot tell which database ${target.label} means`, {hint: 'Name it with --db, GRAVITY_RESTORE_<TARGET>_DB or targets.<name>.db'});
  for (const entry of Object.values(set.manifest.collections)) assertWritableDb(target.db ?? entry.db, target.label);
  return db;
}

/**
 * Carry out a gate's decision: refuse, or ask the person at the terminal. Resolves only when
 * the write may go ahead; `unchanged` finishes the refusal message ("nothing was written").
 */
export async function promptThroughGate(gate: GateDecision, question: string, unchanged: string): Promise<void> {
  if (gate.decision === 'refuse') throw gate.error;
  if (gate.decision === 'prompt-yes') {
    if (!(await confirm(question))) throw new GravityError('GATE_REFUSED', `Cancelled; ${unchanged}`, {hint: 'Pass --yes to go ahead without the question'});
  } else if (gate.decision === 'prompt-db') {
    const typed = await ask(`${question} This is PRODUCTION: type the database name (${gate.db}) to go on: `);
    if (typed !== gate.db) throw new GravityError('GATE_REFUSED', `The database name did not match; ${unchanged}`, {hint: `Type ${gate.db} exactly, or pass --confirm ${gate.db}`});
  }
}

/** `--fields` and `--where-target` as plan options. */
export async function repairOptions(fields: string | undefined, whereTarget: string | undefined): Promise<{fields?: string[]; whereTarget?: import('bson').Document}> {
  if (!fields) return {};
  const {parseFieldPaths} = await import('../target/fields.js');
  const {parseQuery} = await import('../query/parse.js');
  return {fields: parseFieldPaths(fields), ...(whereTarget ? {whereTarget: parseQuery(whereTarget)} : {})};
}
