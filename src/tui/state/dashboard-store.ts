/**
 * A minimal store around the pure reducer: `getState` is always the latest state, even between a
 * dispatch and the next render, so a key pressed right after another plans against what the screen is
 * about to show rather than a stale closure. React reads it through `useSyncExternalStore`.
 */
import type { DashboardAction } from './dashboard-actions.js';
import { dashboardReducer } from './dashboard-reducer.js';
import { initialDashboardState, type DashboardState } from './dashboard-state.js';

/** The dashboard's state container. */
export interface DashboardStore {
  getState(): DashboardState;
  dispatch(action: DashboardAction): void;
  /** Calls `listener` after every change; returns an unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

/** Creates a store starting from `initial`. */
export function createDashboardStore(initial: DashboardState = initialDashboardState): DashboardStore {
  let state = initial;
  const listeners = new Set<() => void>();
  return {
    getState: () => state,
    dispatch(action) {
      const next = dashboardReducer(state, action);
      if (next === state) return;
      state = next;
      for (const l of listeners) l();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
