/**
 * Rings (and, when asked, notifies) once per approval that appears after the dashboard's first snapshot.
 * Prompts already pending when the dashboard opens are on screen at once and are not announced.
 */
import { useEffect, useRef } from 'react';
import { announceApproval, newApprovalIds, type AlertEffects, type NotifyMode } from '../approval-alert.js';
import type { DashboardState } from '../state/dashboard-state.js';

/** Announces new approvals in `state` with `mode` through `effects`. */
export function useApprovalAlerts(state: DashboardState, mode: NotifyMode, effects: AlertEffects): void {
  const seen = useRef<Set<string> | null>(null);
  useEffect(() => {
    if (state.seq === null) return;
    if (seen.current === null) {
      seen.current = new Set(state.approvals.map((a) => a.id));
      return;
    }
    for (const id of newApprovalIds(seen.current, state.approvals)) {
      seen.current.add(id);
      const approval = state.approvals.find((a) => a.id === id)!;
      announceApproval(approval, mode, effects);
    }
  }, [state.approvals, state.seq, mode, effects]);
}
