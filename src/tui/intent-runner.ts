/**
 * Carries out an intent planned from a key press: dispatches local actions, or makes the one RPC and
 * dispatches its result, so the outcome shows at once ("allowed api.anthropic.com:443 (8 requests)").
 * Never rejects: every failure becomes a notice or an inline field error.
 */
import type { DaemonClient } from '../shared/rpc/client.js';
import { toRpcError } from '../shared/rpc/client.js';
import type { DashboardAction } from './state/dashboard-actions.js';
import type { Intent } from './state/command-plan.js';

/** What running an intent needs. `call` is the daemon session's call (rejects while disconnected). */
export interface IntentDeps {
  call: DaemonClient['call'];
  dispatch: (action: DashboardAction) => void;
  now: () => number;
  quit: () => void;
}

/** Runs `intent`. Resolves when its RPC (if any) has finished and its result is dispatched. */
export async function runIntent(intent: Intent, deps: IntentDeps): Promise<void> {
  const { call, dispatch, now } = deps;
  switch (intent.kind) {
    case 'none':
      return;
    case 'quit':
      deps.quit();
      return;
    case 'dispatch':
      for (const action of intent.actions) dispatch(action);
      return;
    case 'resolve-approval': {
      const { id, decision, target } = intent;
      dispatch({ type: 'answer-started', id, decision });
      try {
        const result = await call('approval.resolve', { id, decision });
        dispatch({ type: 'answer-succeeded', id, target, decision, waiters: result.waiters, at: now() });
      } catch (err) {
        const e = toRpcError(err);
        dispatch({ type: 'answer-failed', id, target, code: e.code, message: e.message, at: now() });
      }
      return;
    }
    case 'rotate-pool':
      try {
        const result = await call('pool.rotate', { name: intent.pool });
        dispatch({ type: 'pool-rotated', pool: result.pool });
      } catch (err) {
        const message = `could not rotate pool ${intent.pool}: ${toRpcError(err).message}`;
        dispatch({ type: 'notice', level: 'error', kind: 'rotate', message, at: now() });
      }
      return;
    case 'save-limits':
      dispatch({ type: 'edit-saving' });
      try {
        const limits = await call('limits.set', intent.params);
        dispatch({ type: 'limits-saved', limits, message: intent.message, at: now() });
      } catch (err) {
        // The field stays open with the daemon's reason, so the user can correct the value.
        dispatch({ type: 'edit-failed', message: toRpcError(err).message });
      }
      return;
  }
}
