import {GravityError} from '../errors.js';
import type {LedgerEntry, PushMode} from '../restore-set/ledger.js';
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
  /** How this push would write; absent: the default mode. Production needs staging to have rehearsed the same. */
  mode?: PushMode;
  /** The set as the user named it, for the commands a refusal suggests (default `SET`). */
  setArg?: string;
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

export const DEFAULT_PUSH_MODE: PushMode = {
  fields: null,
  whereTarget: null,
  onConflict: 'skip',
  inexact: 'fail',
  skipClashes: false,
  bypassDocumentValidation: false,
  matchOn: [],
};

/** A push's settings in canonical form: lists sorted and deduplicated, --where-target only with --fields. */
export function pushMode(given: Partial<PushMode>): PushMode {
  const list = (xs: string[] | null | undefined) => [...new Set(xs ?? [])].sort();
  const fields = given.fields && given.fields.length > 0 ? list(given.fields) : null;
  return {
    fields,
    whereTarget: fields ? given.whereTarget ?? null : null,
    onConflict: given.onConflict ?? DEFAULT_PUSH_MODE.onConflict,
    inexact: given.inexact ?? DEFAULT_PUSH_MODE.inexact,
    skipClashes: given.skipClashes ?? false,
    bypassDocumentValidation: given.bypassDocumentValidation ?? false,
    matchOn: list(given.matchOn),
  };
}

/** The mode a ledger push line records; a line from before modes were recorded is the default mode (and its bypass flag). */
export function modeOfEntry(entry: LedgerEntry): PushMode {
  if (entry.mode) return pushMode(entry.mode);
  return pushMode({bypassDocumentValidation: entry.bypassDocumentValidation === true});
}

/** The flags that give a push this mode, as a person types them. */
export function modeFlags(mode: PushMode): string[] {
  const out: string[] = [];
  if (mode.fields) out.push(`--fields ${mode.fields.join(',')}`);
  // Single-quoted for a POSIX shell, a quote inside closed and escaped.
  if (mode.whereTarget) out.push(`--where-target '${mode.whereTarget.replaceAll("'", "'\\''")}'`);
  if (mode.onConflict !== DEFAULT_PUSH_MODE.onConflict) out.push(`--on-conflict ${mode.onConflict}`);
  if (mode.inexact !== DEFAULT_PUSH_MODE.inexact) out.push(`--inexact ${mode.inexact}`);
  if (mode.skipClashes) out.push('--skip-clashes');
  if (mode.bypassDocumentValidation) out.push('--bypass-document-validation');
  if (mode.matchOn.length > 0) out.push(`--match-on ${mode.matchOn.join(',')}`);
  return out;
}

/** Each setting in which `wanted` differs from `rehearsed`, as `--flag X (staging: Y)`. */
export function modeDifferences(rehearsed: PushMode, wanted: PushMode): string[] {
  type Setting = string[] | string | boolean | null;
  const show = (v: Setting, none: string): string => {
    if (v === null || v === false || (Array.isArray(v) && v.length === 0)) return none;
    if (v === true) return 'on';
    return Array.isArray(v) ? v.join(',') : v;
  };
  const rows: Array<[flag: string, wanted: Setting, rehearsed: Setting, none: string]> = [
    ['--fields', wanted.fields, rehearsed.fields, 'whole documents'],
    ['--where-target', wanted.whereTarget, rehearsed.whereTarget, 'none'],
    ['--on-conflict', wanted.onConflict, rehearsed.onConflict, ''],
    ['--inexact', wanted.inexact, rehearsed.inexact, ''],
    ['--skip-clashes', wanted.skipClashes, rehearsed.skipClashes, 'off'],
    ['--bypass-document-validation', wanted.bypassDocumentValidation, rehearsed.bypassDocumentValidation, 'off'],
    ['--match-on', wanted.matchOn, rehearsed.matchOn, 'none'],
  ];
  return rows.filter(([, a, b]) => JSON.stringify(a) !== JSON.stringify(b)).map(([flag, a, b, none]) => `${flag} ${show(a, none)} (staging: ${show(b, none)})`);
}

/**
 * Did staging receive and pass this exact set, written the same way? A successful push of the same
 * set hash to a staging target in `mode` (any mode when not given), then a successful verify on
 * staging with no push in another mode between them, and no rollback of staging since the push.
 */
export function stagingProof(ledger: LedgerEntry[], setHash: string, mode?: PushMode): {push: LedgerEntry; verify: LedgerEntry} | null {
  const mine = ledger.filter((e) => e.setHash === setHash && e.target === 'staging');
  const wanted = mode ? JSON.stringify(pushMode(mode)) : null;
  for (let i = mine.length - 1; i >= 0; i--) {
    const push = mine[i]!;
    if (push.action !== 'push' || push.outcome !== 'ok') continue;
    const pushed = JSON.stringify(modeOfEntry(push));
    if (wanted !== null && pushed !== wanted) continue;
    const later = mine.slice(i + 1);
    if (later.some((e) => e.action === 'rollback' && (e.outcome === 'ok' || e.outcome === 'partial'))) continue;
    // A verify checks what staging holds then: a push in another mode before it makes it the other push's proof.
    for (const e of later) {
      if (e.action === 'push' && (e.outcome === 'ok' || e.outcome === 'partial') && JSON.stringify(modeOfEntry(e)) !== pushed) break;
      if (e.action === 'verify' && e.outcome === 'ok') return {push, verify: e};
    }
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
 * must show this set pushed to and verified on staging in the same mode (fields, conflict policy and
 * the other write settings: a rehearsal of a field repair proves nothing about a whole overwrite) (or --skip-staging with a reason, which the
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
  } else {
    const refusal = stagingRefusal(input);
    if (refusal) return refusal;
  }
  return confirmStep(input, 'push to', override);
}

/** Null when staging rehearsed this push (same set, same mode, verified); else the refusal, naming what differs. */
function stagingRefusal(input: GateInput): GateDecision | null {
  const mode = pushMode(input.mode ?? {});
  if (stagingProof(input.ledger, input.set.hash, mode)) return null;
  const setArg = input.setArg ?? 'SET';
  const rehearse = ['gravity-restore push', setArg, '--to staging', ...modeFlags(mode), '--yes'].join(' ');
  const verify = ['gravity-restore verify', setArg, '--to staging', ...(mode.fields ? [`--fields ${mode.fields.join(',')}`] : [])].join(' ');
  const other = stagingProof(input.ledger, input.set.hash);
  if (other) {
    const differences = modeDifferences(modeOfEntry(other.push), mode);
    return refuse(
      `Staging verified this set pushed another way: ${differences.join(', ')}`,
      `Rehearse this push on staging first: \`${rehearse}\`, then \`${verify}\``,
      {setHash: input.set.hash, differences, staging: modeOfEntry(other.push), wanted: mode},
    );
  }
  return refuse(
    `This restore set (${input.set.hash.slice(0, 12)}) has not been pushed to and verified on staging`,
    `Run \`${rehearse}\` and \`${verify}\` first, or pass --skip-staging --reason "…"`,
    {setHash: input.set.hash},
  );
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
