import type {Settings} from '../config/settings.js';
import {GravityError} from '../errors.js';
import {rollbackSet} from '../target/index.js';
import type {RollbackResult} from '../target/types.js';
import {ask, canPrompt, confirm} from '../ui/prompt.js';
import {openContext, requireTargetDb, withConnection} from './context.js';

/** Rollback writes too, so it is gated like a push: --yes for staging, --confirm <db> for production. */
export async function runRollback(request: {set: string; to: string; yes: boolean; confirm?: string}, settings: Settings, signal: AbortSignal): Promise<RollbackResult> {
  const {set, target} = await openContext(request.set, request.to, settings);
  const db = requireTargetDb(target, set);
  const interactive = canPrompt();
  if (target.name === 'production') {
    if (request.confirm !== undefined && request.confirm !== db) {
      throw new GravityError('GATE_REFUSED', `--confirm ${request.confirm} does not match the production database ${db}; nothing was changed`, {hint: `Pass --confirm ${db}`});
    }
    if (request.confirm === undefined) {
      if (!interactive) throw new GravityError('GATE_REFUSED', 'Rollback on production needs --confirm <db>; nothing was changed', {hint: `Pass --confirm ${db}`});
      const typed = await ask(`Roll back the push on PRODUCTION ${target.label}? Type the database name (${db}): `);
      if (typed !== db) throw new GravityError('GATE_REFUSED', 'The database name did not match; nothing was changed', {hint: `Pass --confirm ${db}`});
    }
  } else if (!request.yes) {
    if (!interactive) throw new GravityError('GATE_REFUSED', `Rollback on ${target.label} needs confirmation; nothing was changed`, {hint: 'Pass --yes'});
    if (!(await confirm(`Roll back the last push to ${target.label}?`))) throw new GravityError('GATE_REFUSED', 'Rollback cancelled; nothing was changed', {hint: 'Pass --yes to skip the question'});
  }
  return withConnection(target, (conn) => rollbackSet(set, conn, {signal}));
}
