/**
 * Adapts a {@link DaemonSession} to React: starts it on mount, stops it on unmount, asks it to
 * re-subscribe when the reducer flags a seq gap, and feeds finished requests into the rolling rate.
 * All state lives in the store; this hook only wires.
 */
import { useEffect, useState, useSyncExternalStore } from 'react';
import type { DaemonClient } from '../../shared/rpc/client.js';
import { DaemonSession } from '../daemon-session.js';
import { RollingRate } from '../rolling-rate.js';
import type { DashboardState } from '../state/dashboard-state.js';
import type { DashboardStore } from '../state/dashboard-store.js';

/** Options of {@link useDaemonConnection}. */
export interface DaemonConnectionOptions {
  store: DashboardStore;
  connect: () => Promise<DaemonClient>;
  initialClient?: DaemonClient;
  now: () => number;
  batchMs?: number;
  backoffMs?: (attempt: number) => number;
  /** Shown once as a notice when the dashboard opens (e.g. "started sluiced"). */
  startupNotice?: string;
}

/** What the hook hands to the container. */
export interface DaemonConnection {
  state: DashboardState;
  session: DaemonSession;
  rate: RollingRate;
}

/** Connects the store to the daemon for the lifetime of the component. */
export function useDaemonConnection(opts: DaemonConnectionOptions): DaemonConnection {
  const { store } = opts;
  const [rate] = useState(() => new RollingRate(60));
  const [session] = useState(
    () =>
      new DaemonSession({
        connect: opts.connect,
        initialClient: opts.initialClient,
        dispatch: store.dispatch,
        now: opts.now,
        batchMs: opts.batchMs,
        backoffMs: opts.backoffMs,
        onEvents: (events, at) => {
          for (const e of events) if (e.type === 'request.finished') rate.record(at);
        },
      }),
  );
  const state = useSyncExternalStore(store.subscribe, store.getState);

  useEffect(() => {
    if (opts.startupNotice) {
      store.dispatch({ type: 'notice', level: 'info', kind: 'daemon', message: opts.startupNotice, at: opts.now() });
    }
    session.start();
    return () => session.stop();
    // Mount-once: the session and the store live as long as the component.
  }, [session]);

  useEffect(() => {
    if (state.sync === 'resync-needed') session.resubscribe();
  }, [state.sync, session]);

  return { state, session, rate };
}
