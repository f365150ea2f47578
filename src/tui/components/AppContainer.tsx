/**
 * Wires the dashboard together: the store, the daemon connection, the 1 s clock, the terminal size and
 * the keyboard, around the pure {@link App}. Everything it needs from outside is injected (connect
 * function, clock, palette, store), so tests drive it with a fake daemon client.
 */
import { useApp } from 'ink';
import { useState } from 'react';
import type { DaemonClient } from '../../shared/rpc/client.js';
import { REAL_EFFECTS, notifyMode, type AlertEffects, type NotifyMode } from '../approval-alert.js';
import { useApprovalAlerts } from '../hooks/use-approval-alerts.js';
import { useClock } from '../hooks/use-clock.js';
import { useDaemonConnection } from '../hooks/use-daemon-connection.js';
import { useDashboardKeys } from '../hooks/use-dashboard-keys.js';
import { useTerminalSize } from '../hooks/use-terminal-size.js';
import { createDashboardStore, type DashboardStore } from '../state/dashboard-store.js';
import { COLOR_PALETTE, PaletteContext, type Palette } from '../theme.js';
import { App } from './App.js';

/** Seconds of history in the header sparkline. */
const SPARK_SECONDS = 12;

/** Props of {@link AppContainer}. */
export interface AppContainerProps {
  /** Opens a connection to the daemon; called again for every reconnect. */
  connect: () => Promise<DaemonClient>;
  /** An already open connection to start with. */
  initialClient?: DaemonClient;
  /** A notice to show on start, e.g. that a daemon was started. */
  startupNotice?: string;
  store?: DashboardStore;
  palette?: Palette;
  now?: () => number;
  /** Clock tick for ages and countdowns (default 1000 ms). */
  tickMs?: number;
  /** Event batching window (default 100 ms: at most ~10 renders/s from events). */
  batchMs?: number;
  backoffMs?: (attempt: number) => number;
  /** How new approvals are announced (default: from SLUICE_NOTIFY). */
  notify?: NotifyMode;
  /** Bell and desktop-notification effects (default: the real terminal and notifier). */
  alertEffects?: AlertEffects;
}

/** The dashboard with its connection and keyboard. */
export function AppContainer(props: AppContainerProps) {
  const [store] = useState(() => props.store ?? createDashboardStore());
  const [nowFn] = useState(() => props.now ?? Date.now);
  const { state, session, rate } = useDaemonConnection({
    store,
    connect: props.connect,
    initialClient: props.initialClient,
    now: nowFn,
    batchMs: props.batchMs,
    backoffMs: props.backoffMs,
    startupNotice: props.startupNotice,
  });
  const now = useClock(nowFn, props.tickMs);
  const size = useTerminalSize();
  const { exit } = useApp();
  useDashboardKeys({ store, call: session.call, now: nowFn, quit: () => exit() });
  const [notify] = useState(() => props.notify ?? notifyMode(process.env));
  useApprovalAlerts(state, notify, props.alertEffects ?? REAL_EFFECTS);
  return (
    <PaletteContext.Provider value={props.palette ?? COLOR_PALETTE}>
      <App state={state} now={now} columns={size.columns} rows={size.rows} rateSeries={rate.series(now, SPARK_SECONDS)} />
    </PaletteContext.Provider>
  );
}
