/**
 * Adapts key presses to the dashboard: key → command (the key table) → intent (pure plan against the
 * latest state) → run. A read holding several plain keys is handled key by key. Input is only read when stdin supports raw mode, so a non-TTY never crashes.
 */
import { useInput, useStdin } from 'ink';
import type { DaemonClient } from '../../shared/rpc/client.js';
import { runIntent } from '../intent-runner.js';
import { commandForKey, splitKeyPresses } from '../keybindings.js';
import { keyModeOf, planCommand } from '../state/command-plan.js';
import type { DashboardStore } from '../state/dashboard-store.js';

/** Options of {@link useDashboardKeys}. */
export interface DashboardKeysOptions {
  store: DashboardStore;
  call: DaemonClient['call'];
  now: () => number;
  quit: () => void;
}

/** Handles the dashboard's keyboard. */
export function useDashboardKeys({ store, call, now, quit }: DashboardKeysOptions): void {
  const { isRawModeSupported } = useStdin();
  useInput(
    (chunk, chunkKey) => {
      for (const { input, key } of splitKeyPresses(chunk, chunkKey)) {
        // Read the state per key: the previous key's actions are already in the store.
        const state = store.getState();
        const command = commandForKey(keyModeOf(state), input, key);
        if (command === null) continue;
        const intent = planCommand(state, command, input, now());
        void runIntent(intent, { call, dispatch: store.dispatch, now, quit });
        if (intent.kind === 'quit') return;
      }
    },
    { isActive: isRawModeSupported },
  );
}
