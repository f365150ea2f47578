/**
 * Turns a command (from the key table) plus the current state into an intent: local actions to dispatch,
 * or one RPC to make. Pure, so "pressing `a` on the focused row answers that row's id" is testable
 * without a terminal. Commands that act on a row only act on a row of the focused panel: a key never
 * answers an approval the user cannot see is selected.
 */
import type { ApprovalDecision } from '../../shared/protocol/entities.js';
import type { ParamsIn } from '../../shared/protocol/params.js';
import type { Command, KeyMode } from '../keybindings.js';
import type { DashboardAction } from './dashboard-actions.js';
import type { DashboardState, EditTarget, PanelId } from './dashboard-state.js';
import { approvalTarget } from './event-reducer.js';
import { editorChanged, editorProblem, limitsParams, savedMessage } from './number-editor.js';
import { currentSettingText, selectedApproval, selectedCredential, selectedPool } from './selectors.js';

/** What a command asks for. */
export type Intent =
  | { kind: 'none' }
  | { kind: 'dispatch'; actions: DashboardAction[] }
  | { kind: 'resolve-approval'; id: string; decision: ApprovalDecision; target: string }
  | { kind: 'rotate-pool'; pool: string }
  | { kind: 'save-limits'; params: ParamsIn<'limits.set'>; message: string }
  | { kind: 'quit' };

/** Which key map is live: the number field and the help overlay capture the keyboard. */
export function keyModeOf(state: DashboardState): KeyMode {
  if (state.editor) return 'field';
  if (state.helpOpen) return 'help';
  return 'normal';
}

const DECISIONS: Partial<Record<Command, ApprovalDecision>> = {
  'allow-once': 'allow_once',
  'always-allow': 'always_allow',
  deny: 'deny',
  'always-deny': 'always_deny',
};

const NONE: Intent = { kind: 'none' };

/** Plans `command`; `input` is the raw key text (digits for the number field), `now` stamps notices. */
export function planCommand(state: DashboardState, command: Command, input: string, now: number): Intent {
  const decision = DECISIONS[command];
  if (decision) return planAnswer(state, decision, now);
  switch (command) {
    case 'rotate-pool':
      return planRotate(state, now);
    case 'edit-cap':
    case 'edit-queue-wait':
      return planCredentialEdit(state, command, now);
    case 'edit-global-cap':
      return openField(state, { kind: 'global-cap' });
    case 'move-up':
      return dispatch({ type: 'move', delta: -1 });
    case 'move-down':
      return dispatch({ type: 'move', delta: 1 });
    case 'next-panel':
      return dispatch({ type: 'cycle-panel', delta: 1 });
    case 'previous-panel':
      return dispatch({ type: 'cycle-panel', delta: -1 });
    case 'toggle-help':
      return dispatch({ type: 'toggle-help' });
    case 'help-close':
      return dispatch({ type: 'close-help' });
    case 'quit':
      return { kind: 'quit' };
    case 'field-digit':
      return dispatch({ type: 'edit-type', digits: input });
    case 'field-erase':
      return dispatch({ type: 'edit-erase' });
    case 'field-cancel':
      return dispatch({ type: 'edit-cancel' });
    case 'field-save':
      return planSave(state, now);
    default:
      return NONE;
  }
}

function dispatch(...actions: DashboardAction[]): Intent {
  return { kind: 'dispatch', actions };
}

/** Moves focus to the panel a command needs and says what to do next. */
function redirect(panel: PanelId, message: string, now: number): Intent {
  return dispatch({ type: 'focus-panel', panel }, { type: 'notice', level: 'info', kind: 'hint', message, at: now });
}

function hint(message: string, now: number): Intent {
  return dispatch({ type: 'notice', level: 'info', kind: 'hint', message, at: now });
}

function planAnswer(state: DashboardState, decision: ApprovalDecision, now: number): Intent {
  const approval = selectedApproval(state);
  if (!approval) return hint('no pending approvals', now);
  if (state.focus !== 'approvals') return redirect('approvals', 'select a destination in the approval queue, then answer it', now);
  // A second key press while the first answer is on its way must not answer anything else.
  if (approval.id in state.answering) return NONE;
  return { kind: 'resolve-approval', id: approval.id, decision, target: approvalTarget(approval) };
}

/**
 * With one pool there is nothing to choose, so `r` rotates it from any panel. With several, only the pools
 * panel's selection says which one: from elsewhere `r` focuses that panel and says so.
 */
function planRotate(state: DashboardState, now: number): Intent {
  const only = state.pools.length === 1 ? state.pools[0]! : null;
  if (only) return { kind: 'rotate-pool', pool: only.name };
  const pool = selectedPool(state);
  if (!pool) return hint('no pools: create one with sluicectl pool create', now);
  if (state.focus !== 'pools') return redirect('pools', `${state.pools.length} pools: select one, then press r to rotate it`, now);
  return { kind: 'rotate-pool', pool: pool.name };
}

function planCredentialEdit(state: DashboardState, command: 'edit-cap' | 'edit-queue-wait', now: number): Intent {
  const cred = selectedCredential(state);
  if (!cred) return hint('no credentials: add one with sluicectl cred add', now);
  const key = command === 'edit-cap' ? 'c' : 'w';
  if (state.focus !== 'credentials') return redirect('credentials', `select a credential, then press ${key}`, now);
  return openField(state, command === 'edit-cap' ? { kind: 'cred-cap', cred: cred.name } : { kind: 'queue-wait', cred: cred.name });
}

function openField(state: DashboardState, target: EditTarget): Intent {
  return dispatch({ type: 'edit-open', target, value: currentSettingText(state, target) });
}

function planSave(state: DashboardState, now: number): Intent {
  const editor = state.editor;
  // An out-of-bounds value stays in the field with its inline reason; nothing is sent.
  if (!editor || editor.saving || editorProblem(editor) !== null) return NONE;
  if (!editorChanged(editor)) {
    return dispatch({ type: 'edit-cancel' }, { type: 'notice', level: 'info', kind: 'limits', message: 'unchanged', at: now });
  }
  return { kind: 'save-limits', params: limitsParams(editor), message: savedMessage(editor) };
}
