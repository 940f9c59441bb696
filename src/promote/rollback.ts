import type {Settings} from '../config/settings.js';
import {readLedger} from '../restore-set/ledger.js';
import {checkRollbackGate, rollbackSet} from '../target/index.js';
import type {RollbackResult} from '../target/types.js';
import {canPrompt} from '../ui/prompt.js';
import type {Reporter} from '../ui/reporter.js';
import {openContext, promptThroughGate, withConnection, withSetLock} from './context.js';

/** Rollback writes too, so it is gated: --yes for staging, --confirm <db> (or the typed name) for production. */
export async function runRollback(request: {set: string; to: string; yes: boolean; confirm?: string}, settings: Settings, signal: AbortSignal, reporter?: Reporter): Promise<RollbackResult> {
  const {set, target, staging, production} = await openContext(request.set, request.to, settings);
  // Not while a push (or another rollback) of this set runs on this target: both follow the same journals.
  return withSetLock(set, target, 'rollback', async () => {
    const gate = checkRollbackGate({set, ledger: await readLedger(set), target, staging, production, yes: request.yes, confirm: request.confirm, interactive: canPrompt()});
    await promptThroughGate(gate, `Roll back the last push to ${target.label}?`, 'nothing was changed');
    return withConnection(target, async (conn) => {
      const bar = reporter?.bar(`Rolling back on ${target.label}`, 1, 'docs');
      try {
        return await rollbackSet(set, conn, {signal, onProgress: (p) => bar?.update(p.done, p.total)});
      } finally {
        bar?.done();
      }
    });
  });
}
