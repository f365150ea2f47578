/**
 * Immutable list edits shared by the reducers: upsert by key, and removal that keeps the selection on
 * the row that takes the removed row's place (so a vanished approval does not jump the cursor to the top).
 */
import type { DashboardState, PanelId } from './dashboard-state.js';

/** Replaces the item with the same key in place, or appends it. */
export function upsertBy<T>(items: readonly T[], item: T, key: (t: T) => string): T[] {
  const k = key(item);
  const index = items.findIndex((x) => key(x) === k);
  if (index === -1) return [...items, item];
  return items.map((x, i) => (i === index ? item : x));
}

/**
 * The selection after removing `removedKey` from `keys` (the panel's keys before removal): unchanged
 * unless the removed row was selected, then the next row, else the previous one, else none.
 */
export function selectionAfterRemoval(keys: readonly string[], selected: string | null, removedKey: string): string | null {
  if (selected !== removedKey) return selected;
  const index = keys.indexOf(removedKey);
  if (index === -1) return selected;
  return keys[index + 1] ?? keys[index - 1] ?? null;
}

/** Sets the selection of one panel. */
export function withSelection(state: DashboardState, panel: PanelId, key: string | null): DashboardState {
  if (state.selected[panel] === key) return state;
  return { ...state, selected: { ...state.selected, [panel]: key } };
}
