import {EJSON} from 'bson';

import {GravityError} from '../errors.js';
import {readLedger} from '../restore-set/ledger.js';
import {checkPushGate, pushMode} from '../target/gates.js';
import {planSet, pushSet, savePlan} from '../target/index.js';
import type {PushOptions} from '../target/index.js';
import {plannedWrites} from '../target/push.js';
import {finishPlan, newPlan, shownPlan} from '../target/plan.js';
import type {PlanOptions, ShownPlan} from '../target/plan.js';
import type {RestoreSet} from '../restore-set/manifest.js';
import type {Plan, PushResult} from '../target/types.js';
import {canPrompt, confirm} from '../ui/prompt.js';
import type {Reporter} from '../ui/reporter.js';
import {renderPlan} from '../ui/plan.js';
import type {PushMode} from '../restore-set/ledger.js';
import {lastSavedPlan, newRisks, openContext, promptThroughGate, repairOptions, requireTargetDb, withConnection, withSetLock} from './context.js';
import type {PromoteContext} from './context.js';
import {describeTargetDatabase, refuseSilentProductionDb, targetDatabaseNotes, type TargetDatabase} from './target-db.js';
import type {Settings} from '../config/settings.js';

export interface PushRequest {
  set: string;
  to: string;
  yes: boolean;
  confirm?: string;
  onConflict: 'skip' | 'overwrite' | 'fail';
  inexact?: 'fail' | 'skip' | 'write';
  skipClashes?: boolean;
  bypassDocumentValidation?: boolean;
  matchOn?: string[];
  fields?: string;
  whereTarget?: string;
  skipStaging?: boolean;
  reason?: string;
}

/** Documents a plan would have a push write, over every collection. */
function plannedWritesOf(plan: Plan, overwrite: boolean): number {
  return Object.values(plan.collections).reduce((n, c) => n + plannedWrites(c, overwrite), 0);
}

/**
 * Can a push follow this saved plan and plan each batch again just before writing it? The plan must
 * be for this set, cover every collection document by document, and have been made with the same
 * options (natural key, --fields, --where-target): its classes must mean what a new plan's would.
 */
export function canPlanWhileWriting(set: RestoreSet, saved: Plan, options: PlanOptions): boolean {
  if (saved.formatVersion !== 2 || saved.setHash !== set.hash || !saved.classes || !saved.ids || !saved.collections) return false;
  for (const name of set.manifest.order) {
    const classes = saved.classes[name];
    if (classes === undefined || !saved.ids[name] || !saved.collections[name] || Buffer.from(classes, 'base64').length !== set.manifest.collections[name]?.documents) return false;
  }
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const whereTarget = options.whereTarget ? EJSON.stringify(options.whereTarget, {relaxed: false}) : null;
  return same(saved.matchOn ?? [], options.matchOn ?? []) && same(saved.fields ?? null, options.fields ?? null) && same(saved.fields ? saved.whereTarget ?? null : null, options.fields ? whereTarget : null);
}

/**
 * Gate, then write. A staging or ad-hoc target, with --yes and no terminal (a script), and a plan
 * the user saw: that plan is followed and each batch planned again just before it is written; a
 * batch with a risk the plan did not show stops the push there (PLAN_CHANGED, what was written before
 * it is journaled). Otherwise (production, a terminal, no saved plan): plan again, compare with the
 * plan the user saw (on a terminal, ask), confirm, then write, with every refusal before the first write.
 */
export async function runPush(
  request: PushRequest,
  settings: Settings,
  reporter: Reporter,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<PushResult & {plan: ShownPlan; targetDatabase: TargetDatabase}> {
  const {set, target, staging, production} = await openContext(request.set, request.to, settings);
  const interactive = canPrompt();
  requireTargetDb(target, set);
  refuseSilentProductionDb(set, target, request.set);
  const planOptions = {matchOn: request.matchOn ?? [], ...(await repairOptions(request.fields, request.whereTarget))};
  const mode = pushMode({
    fields: planOptions.fields ?? null,
    whereTarget: planOptions.whereTarget ? EJSON.stringify(planOptions.whereTarget, {relaxed: false}) : null,
    onConflict: request.onConflict,
    inexact: request.inexact ?? 'fail',
    skipClashes: request.skipClashes ?? false,
    bypassDocumentValidation: request.bypassDocumentValidation ?? false,
    matchOn: planOptions.matchOn,
  });
  // One push, field repair or rollback of this set on this target at a time: two would share a journal.
  return withSetLock(set, target, request.fields ? 'push --fields' : 'push', () => gatedPush(request, reporter, signal, log, {set, target, staging, production, interactive, planOptions, mode}));
}

async function gatedPush(
  request: PushRequest,
  reporter: Reporter,
  signal: AbortSignal,
  log: (line: string) => void,
  ctx: PromoteContext & {interactive: boolean; planOptions: PlanOptions; mode: PushMode},
): Promise<PushResult & {plan: ShownPlan; targetDatabase: TargetDatabase}> {
  const {set, target, staging, production, interactive, planOptions, mode} = ctx;
  const gate = checkPushGate({
    set,
    ledger: await readLedger(set),
    target,
    staging,
    production,
    yes: request.yes,
    confirm: request.confirm,
    skipStaging: request.skipStaging,
    reason: request.reason,
    interactive,
    mode,
    setArg: request.set,
  });
  if (gate.decision === 'refuse') throw gate.error;

  return withConnection(target, async (conn) => {
    const targetDatabase = await describeTargetDatabase(set, conn, target);
    for (const note of targetDatabaseNotes(targetDatabase, target)) reporter.warn(note);
    // A plan made for another database of the same server (another --db) says nothing about this one.
    const saved = await lastSavedPlan(set, target.name, target.label);
    const sameNamespaces = (p: Plan) => set.manifest.order.every((c) => p.namespaces?.[c]?.db === conn.dbName(set.manifest.collections[c]!.db));
    const previous = saved && sameNamespaces(saved) ? saved : null;
    const pushOptions = {
      mode,
      onConflict: request.onConflict,
      inexact: request.inexact ?? 'fail',
      skipClashes: request.skipClashes ?? false,
      bypassDocumentValidation: request.bypassDocumentValidation ?? false,
      signal,
      ...((gate.decision === 'allow' || gate.decision === 'prompt-db') && gate.override ? {overrideReason: gate.override} : {}),
    } as const;
    const overwrite = request.onConflict === 'overwrite';
    // Write with a progress bar over the documents the plan would have written.
    const write = async (plan: Plan, total: number, live?: PushOptions['live']): Promise<PushResult> => {
      const bar = reporter.bar('Pushing', Math.max(total, 1), 'docs');
      const done = new Map<string, number>();
      const result = await pushSet(set, conn, plan, {
        ...pushOptions,
        ...(live ? {live} : {}),
        onProgress: (p) => {
          done.set(p.collection, p.done);
          bar.update([...done.values()].reduce((a, b) => a + b, 0));
        },
      });
      bar.done();
      return result;
    };
    if (previous && !interactive && gate.decision === 'allow' && target.name !== 'production' && canPlanWhileWriting(set, previous, planOptions)) {
      // The plan the user saw is followed, and each batch is planned again just before it is written.
      log(`Plan ${previous.hash.slice(0, 12)} (${previous.createdAt}), checked again batch by batch against ${target.label} as it is written:`);
      log(renderPlan(previous));
      const draft = newPlan(set, conn, planOptions);
      const result = await write(previous, plannedWritesOf(previous, overwrite), {plan: draft, options: planOptions});
      const plan = finishPlan(draft);
      await savePlan(set, plan);
      return {...result, plan: shownPlan(plan), targetDatabase};
    }
    reporter.spin(`Planning against ${target.label}`);
    const plan = await planSet(set, conn, planOptions);
    await savePlan(set, plan);
    reporter.succeed(`Plan ${plan.hash.slice(0, 12)} for ${target.label}`);
    log(renderPlan(plan));
    if (previous && previous.hash !== plan.hash) {
      const risks = newRisks(previous, plan);
      if (risks.length > 0) {
        log(`\nThe target changed since plan ${previous.hash.slice(0, 12)}: ${risks.length} new conflict(s), e.g. ${risks.slice(0, 3).join('; ')}`);
        if (!interactive) {
          throw new GravityError('PLAN_CHANGED', `The target changed since the plan you saw (${risks.length} new conflicts); nothing was written`, {
            hint: `Review with \`gravity-restore plan ${request.set} --to ${request.to}\`, then push again`,
          });
        }
        if (!(await confirm('Push with this new plan?'))) throw new GravityError('GATE_REFUSED', 'Push cancelled; nothing was written', {hint: 'Run the push again when ready'});
      }
    }
    if (request.onConflict === 'fail' && Object.values(plan.collections).some((c) => c.conflict > 0)) {
      throw new GravityError('CONFLICT', 'The plan has conflicts (documents changed since the backup) and --on-conflict fail was given; nothing was written', {
        hint: 'Use --on-conflict skip to leave them alone, or --on-conflict overwrite to replace them (pre-images are journaled)',
      });
    }
    const total = plannedWritesOf(plan, overwrite);
    await promptThroughGate(gate, `Write ${total} document(s) to ${target.label}?`, 'nothing was written');
    return {...(await write(plan, total)), plan: shownPlan(plan), targetDatabase};
  });
}
