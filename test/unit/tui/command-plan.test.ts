import { describe, expect, it } from 'vitest';
import { keyModeOf, planCommand } from '../../../src/tui/state/command-plan.js';
import type { DashboardAction } from '../../../src/tui/state/dashboard-actions.js';
import { dashboardReducer } from '../../../src/tui/state/dashboard-reducer.js';
import { initialDashboardState, type DashboardState } from '../../../src/tui/state/dashboard-state.js';
import { approval, credential, iso, pool, snapshot, T0 } from './fixtures.js';

function state(...actions: DashboardAction[]): DashboardState {
  const base = dashboardReducer(initialDashboardState, {
    type: 'snapshot',
    seq: 1,
    snapshot: snapshot({
      approvals: [approval({ id: 'a1' }), approval({ id: 'a2', host: 'api.openai.com', created_at: iso(T0 + 1) })],
      credentials: [credential({ max_concurrent: 8 })],
      pools: [pool()],
    }),
  });
  return actions.reduce(dashboardReducer, base);
}

describe('planCommand', () => {
  it('answers the selected approval of the focused queue with each decision', () => {
    const s = state({ type: 'move', delta: 1 });
    expect(planCommand(s, 'allow-once', 'a', T0)).toEqual({ kind: 'resolve-approval', id: 'a2', decision: 'allow_once', target: 'api.openai.com:443' });
    expect(planCommand(s, 'always-allow', 'A', T0)).toMatchObject({ decision: 'always_allow' });
    expect(planCommand(s, 'deny', 'd', T0)).toMatchObject({ decision: 'deny' });
    expect(planCommand(s, 'always-deny', 'D', T0)).toMatchObject({ decision: 'always_deny' });
  });

  it('does not answer from another panel: it moves focus to the queue instead', () => {
    const intent = planCommand(state({ type: 'focus-panel', panel: 'pools' }), 'allow-once', 'a', T0);
    expect(intent.kind).toBe('dispatch');
    expect(intent.kind === 'dispatch' && intent.actions[0]).toEqual({ type: 'focus-panel', panel: 'approvals' });
  });

  it('does not answer twice while the first answer is on its way', () => {
    const s = state({ type: 'answer-started', id: 'a1', decision: 'allow_once' });
    expect(planCommand(s, 'deny', 'd', T0)).toEqual({ kind: 'none' });
  });

  it('says so when nothing is pending', () => {
    const empty = dashboardReducer(initialDashboardState, { type: 'snapshot', seq: 1, snapshot: snapshot() });
    const intent = planCommand(empty, 'allow-once', 'a', T0);
    expect(intent.kind === 'dispatch' && intent.actions[0]).toMatchObject({ type: 'notice', message: 'no pending approvals' });
  });

  it('rotates the only pool from any panel (several pools: see first-hour.test.tsx)', () => {
    expect(planCommand(state({ type: 'focus-panel', panel: 'pools' }), 'rotate-pool', 'r', T0)).toEqual({ kind: 'rotate-pool', pool: 'codex' });
    expect(planCommand(state(), 'rotate-pool', 'r', T0)).toEqual({ kind: 'rotate-pool', pool: 'codex' });
  });

  it('opens the cap field pre-filled with the current cap', () => {
    const intent = planCommand(state({ type: 'focus-panel', panel: 'credentials' }), 'edit-cap', 'c', T0);
    expect(intent).toEqual({
      kind: 'dispatch',
      actions: [{ type: 'edit-open', target: { kind: 'cred-cap', cred: 'anthropic' }, value: '8' }],
    });
  });

  it('opens the global cap field from any panel', () => {
    const intent = planCommand(state(), 'edit-global-cap', 'g', T0);
    expect(intent).toEqual({ kind: 'dispatch', actions: [{ type: 'edit-open', target: { kind: 'global-cap' }, value: '' }] });
  });

  it('will not save an out-of-bounds value', () => {
    const s = state({ type: 'edit-open', target: { kind: 'cred-cap', cred: 'anthropic' }, value: '8' }, { type: 'edit-type', digits: '300' });
    expect(planCommand(s, 'field-save', '', T0)).toEqual({ kind: 'none' });
  });

  it('saves a valid value as limits.set', () => {
    const s = state({ type: 'edit-open', target: { kind: 'cred-cap', cred: 'anthropic' }, value: '8' }, { type: 'edit-type', digits: '12' });
    expect(planCommand(s, 'field-save', '', T0)).toEqual({
      kind: 'save-limits',
      params: { cred: 'anthropic', max_concurrent: 12 },
      message: 'cap for anthropic: 8 → 12 (applies to the next request)',
    });
  });

  it('closes an unchanged field without a call', () => {
    const s = state({ type: 'edit-open', target: { kind: 'cred-cap', cred: 'anthropic' }, value: '8' });
    const intent = planCommand(s, 'field-save', '', T0);
    expect(intent.kind === 'dispatch' && intent.actions[0]).toEqual({ type: 'edit-cancel' });
  });
});

describe('keyModeOf', () => {
  it('the field captures the keyboard first, then help', () => {
    expect(keyModeOf(state())).toBe('normal');
    expect(keyModeOf(state({ type: 'toggle-help' }))).toBe('help');
    expect(keyModeOf(state({ type: 'edit-open', target: { kind: 'global-cap' }, value: '' }))).toBe('field');
  });
});
