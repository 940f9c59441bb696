import {GravityError} from '../errors.js';
import type {LedgerEntry} from '../restore-set/ledger.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import type {TargetSpec} from './types.js';

/** What the command should do; gates decide, the command prompts. */
export type GateDecision =
  | {decision: 'allow'; override?: string}
  | {decision: 'prompt-yes'}
  | {decision: 'prompt-db'; db: string; override?: string}
  | {decision: 'refuse'; error: GravityError};

export interface GateInput {
  set: RestoreSet;
  ledger: LedgerEntry[];
  target: TargetSpec;
  staging: TargetSpec | null;
  /** The production target when configured: a staging push that points at it is refused. */
  production?: TargetSpec | null;
  yes: boolean;
  confirm?: string;
  skipStaging?: boolean;
  reason?: string;
  interactive: boolean;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/**
 * Hosts and database a connection string points at, normalised so two spellings of the same
 * server compare equal: lower-case hosts, default port 27017, loopback names merged, no
 * credentials or options. `mongodb+srv` names are compared as written (resolving SRV records
 * would need the network, and a gate must be a pure decision).
 */
export function targetIdentity(uri: string, db: string | null): {hosts: string[]; db: string | null} {
  const m = /^mongodb(\+srv)?:\/\/(?:[^@/]*@)?([^/?#]*)(?:\/([^?#]*))?/i.exec(uri.trim());
  if (!m) return {hosts: [uri.trim()], db};
  const srv = Boolean(m[1]);
  const hosts = m[2]!
    .split(',')
    .filter(Boolean)
    .map((h) => {
      const hp = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(h.toLowerCase());
      let host = hp?.[1] ?? h.toLowerCase();
      if (LOOPBACK.has(host)) host = 'loopback';
      return srv ? `srv:${host}` : `${host}:${hp?.[2] ?? '27017'}`;
    })
    .sort();
  const pathDb = m[3] ? decodeURIComponent(m[3]) : null;
  return {hosts, db: db ?? (pathDb || null)};
}

/** Same server (any shared host) and same database. A null database means "the set's databases". */
export function sameDatabase(a: TargetSpec, b: TargetSpec, setDbs: string[]): boolean {
  const x = targetIdentity(a.uri, a.db);
  const y = targetIdentity(b.uri, b.db);
  if (!x.hosts.some((h) => y.hosts.includes(h))) return false;
  const dbsA = x.db ? [x.db] : setDbs;
  const dbsB = y.db ? [y.db] : setDbs;
  return dbsA.some((d) => dbsB.includes(d));
}

/** The database name a person types to confirm a production write. */
export function confirmationDb(set: RestoreSet, target: TargetSpec): string {
  if (target.db) return target.db;
  const dbs = [...new Set(Object.values(set.manifest.collections).map((c) => c.db))].sort();
  return dbs.join(',');
}

function setDbs(set: RestoreSet): string[] {
  return [...new Set(Object.values(set.manifest.collections).map((c) => c.db))];
}

function refuse(message: string, hint: string, details?: Record<string, unknown>): GateDecision {
  return {decision: 'refuse', error: new GravityError('GATE_REFUSED', message, {hint, ...(details ? {details} : {})})};
}

/**
 * Did staging receive and pass this exact set? A successful push of the same set hash to a
 * staging target, then a successful verify of it on staging, with no rollback of staging since.
 */
export function stagingProof(ledger: LedgerEntry[], setHash: string): {push: LedgerEntry; verify: LedgerEntry} | null {
  const mine = ledger.filter((e) => e.setHash === setHash && e.target === 'staging');
  for (let i = mine.length - 1; i >= 0; i--) {
    const verify = mine[i]!;
    if (verify.action !== 'verify' || verify.outcome !== 'ok') continue;
    const push = mine.slice(0, i).reverse().find((e) => e.action === 'push' && e.outcome === 'ok');
    if (!push) continue;
    const rolledBack = mine.slice(i + 1).some((e) => e.action === 'rollback' && (e.outcome === 'ok' || e.outcome === 'partial'));
    if (rolledBack) return null;
    return {push, verify};
  }
  return null;
}

function sameAsOther(input: GateInput): GateDecision | null {
  const dbs = setDbs(input.set);
  const other = input.target.name === 'production' ? input.staging : input.production ?? null;
  if (other && other !== input.target && sameDatabase(input.target, other, dbs)) {
    return refuse(
      `${input.target.label} and ${other.label} point to the same database`,
      'Staging must be a separate database from production: fix GRAVITY_RESTORE_STAGING_URI or GRAVITY_RESTORE_PRODUCTION_URI',
    );
  }
  return null;
}

function confirmStep(input: GateInput, verb: string, override?: string): GateDecision {
  const db = confirmationDb(input.set, input.target);
  if (input.confirm !== undefined && input.confirm !== '') {
    if (input.confirm === db) return override ? {decision: 'allow', override} : {decision: 'allow'};
    return refuse(`--confirm ${input.confirm} does not match the production database ${db}`, `Pass --confirm ${db} to ${verb} production`);
  }
  if (input.interactive) return override ? {decision: 'prompt-db', db, override} : {decision: 'prompt-db', db};
  return refuse(`Writing to production needs the database name confirmed`, `Pass --confirm ${db} (--yes is not enough for production)`);
}

function stagingLikeStep(input: GateInput, verb: string): GateDecision {
  if (input.yes) return {decision: 'allow'};
  if (input.interactive) return {decision: 'prompt-yes'};
  return refuse(`Refusing to ${verb} ${input.target.label} without confirmation (no terminal to ask on)`, 'Pass --yes to confirm');
}

/**
 * The push gate. staging/adhoc: --yes, or a yes/no prompt on a terminal. production: the ledger
 * must show this set pushed to and verified on staging (or --skip-staging with a reason, which the
 * caller records as an `override` ledger line), and the database name typed or passed with
 * --confirm; --yes alone never reaches production. A target that is the same database as the
 * other named target is refused either way.
 */
export function checkPushGate(input: GateInput): GateDecision {
  const same = sameAsOther(input);
  if (same) return same;
  if (input.target.name !== 'production') return stagingLikeStep(input, 'push to');
  let override: string | undefined;
  if (input.skipStaging) {
    const reason = input.reason?.trim();
    if (!reason) return refuse('--skip-staging needs a reason', 'Pass --reason "why staging is skipped" (it is recorded in the ledger)');
    override = reason;
  } else if (!stagingProof(input.ledger, input.set.hash)) {
    return refuse(
      `This restore set (${input.set.hash.slice(0, 12)}) has not been pushed to and verified on staging`,
      'Run `gravity-restore push SET --to staging` and `gravity-restore verify SET --to staging` first, or pass --skip-staging --reason "…"',
      {setHash: input.set.hash},
    );
  }
  return confirmStep(input, 'push to', override);
}

/**
 * The rollback gate: the same confirmations as a push (staging: --yes or a prompt; production:
 * the database name), but no staging proof: undoing a production push must not wait on staging.
 */
export function checkRollbackGate(input: GateInput): GateDecision {
  const same = sameAsOther(input);
  if (same) return same;
  if (input.target.name !== 'production') return stagingLikeStep(input, 'roll back on');
  return confirmStep(input, 'roll back on');
}
