import { describe, expect, it } from 'vitest';
import { DaemonSession, defaultBackoffMs, type Schedule } from '../../../src/tui/daemon-session.js';
import type { DashboardAction } from '../../../src/tui/state/dashboard-actions.js';
import { createDashboardStore } from '../../../src/tui/state/dashboard-store.js';
import { RpcError, type DaemonClient } from '../../../src/shared/rpc/client.js';
import { FakeDaemonClient, approval, ev, snapshot, T0 } from './fixtures.js';

/** Timers that only fire when the test says so. */
class ManualTimers {
  private timers: { fn: () => void; ms: number; cancelled: boolean }[] = [];
  readonly schedule: Schedule = (fn, ms) => {
    const t = { fn, ms, cancelled: false };
    this.timers.push(t);
    return () => {
      t.cancelled = true;
    };
  };
  get pending(): number[] {
    return this.timers.filter((t) => !t.cancelled).map((t) => t.ms);
  }
  fireAll(): void {
    const due = this.timers.filter((t) => !t.cancelled);
    this.timers = [];
    for (const t of due) t.fn();
  }
}

const flush = () => new Promise((r) => setImmediate(r));

function setup(connect?: () => Promise<DaemonClient>, client = new FakeDaemonClient({}, snapshot({ approvals: [approval()] }), 5)) {
  const timers = new ManualTimers();
  const actions: DashboardAction[] = [];
  const store = createDashboardStore();
  const finished: number[] = [];
  const session = new DaemonSession({
    connect: connect ?? (async () => client),
    initialClient: connect ? undefined : client,
    dispatch: (a) => {
      actions.push(a);
      store.dispatch(a);
    },
    now: () => T0,
    schedule: timers.schedule,
    onEvents: (events) => finished.push(events.length),
  });
  return { timers, actions, store, session, client, finished };
}

describe('DaemonSession', () => {
  it('subscribes on connect and dispatches the snapshot', async () => {
    const { session, client, store } = setup();
    session.start();
    await flush();
    expect(client.callsTo('events.subscribe')).toHaveLength(1);
    expect(store.getState().connection.phase).toBe('connected');
    expect(store.getState().approvals.map((a) => a.id)).toEqual(['ap-1']);
  });

  it('batches events into one dispatch per flush', async () => {
    const { session, client, actions, timers, store, finished } = setup();
    session.start();
    await flush();
    client.emit(ev(6, 'approval.updated', { id: 'ap-1', waiters: 2 }));
    client.emit(ev(7, 'approval.updated', { id: 'ap-1', waiters: 3 }));
    client.emit(ev(8, 'approval.updated', { id: 'ap-1', waiters: 4 }));
    expect(timers.pending).toEqual([100]);
    timers.fireAll();
    const batches = actions.filter((a) => a.type === 'events');
    expect(batches).toHaveLength(1);
    expect(batches[0]?.type === 'events' && batches[0].events.map((e) => e.seq)).toEqual([6, 7, 8]);
    expect(store.getState().approvals[0]?.waiters).toBe(4);
    expect(finished).toEqual([3]);
  });

  it('holds events that arrive while subscribing and applies them after the snapshot', async () => {
    let release: (v: unknown) => void = () => {};
    const client = new FakeDaemonClient({
      'events.subscribe': () => new Promise((r) => (release = r)),
    });
    const { session, store, timers } = setup(undefined, client);
    session.start();
    client.emit(ev(5, 'approval.updated', { id: 'ap-1', waiters: 9 }));
    client.emit(ev(6, 'approval.updated', { id: 'ap-1', waiters: 10 }));
    expect(timers.pending).toEqual([]);
    release({ seq: 5, snapshot: snapshot({ approvals: [approval({ waiters: 9 })] }) });
    await flush();
    expect(store.getState().approvals[0]?.waiters).toBe(10);
    expect(store.getState().seq).toBe(6);
  });

  it('re-subscribes on request and replaces the state', async () => {
    const { session, client, store, timers } = setup();
    session.start();
    await flush();
    client.emit(ev(9, 'approval.updated', { id: 'ap-1', waiters: 2 }));
    timers.fireAll();
    expect(store.getState().sync).toBe('resync-needed');
    client.snap = snapshot({ approvals: [approval({ id: 'fresh' })] });
    client.seq = 20;
    session.resubscribe();
    await flush();
    expect(client.callsTo('events.subscribe')).toHaveLength(2);
    expect(store.getState().sync).toBe('live');
    expect(store.getState().approvals.map((a) => a.id)).toEqual(['fresh']);
  });

  it('reconnects with backoff after the daemon goes away', async () => {
    const first = new FakeDaemonClient();
    const second = new FakeDaemonClient({}, snapshot({ approvals: [approval({ id: 'after' })] }));
    const connects: (() => Promise<DaemonClient>)[] = [() => Promise.reject(new RpcError('daemon_unreachable', 'x', -32099)), async () => second];
    const timers = new ManualTimers();
    const store = createDashboardStore();
    const session = new DaemonSession({
      connect: () => connects.shift()!(),
      initialClient: first,
      dispatch: store.dispatch,
      now: () => T0,
      schedule: timers.schedule,
    });
    session.start();
    await flush();
    first.close();
    expect(store.getState().connection).toMatchObject({ phase: 'disconnected', attempt: 1, reason: 'connection closed' });
    expect(timers.pending).toEqual([defaultBackoffMs(1)]);
    timers.fireAll();
    await flush();
    expect(store.getState().connection).toMatchObject({ phase: 'disconnected', attempt: 2, reason: 'daemon not answering' });
    expect(timers.pending).toEqual([defaultBackoffMs(2)]);
    timers.fireAll();
    await flush();
    expect(store.getState().connection.phase).toBe('connected');
    expect(store.getState().approvals.map((a) => a.id)).toEqual(['after']);
    session.stop();
  });

  it('backs off from 250 ms to at most 5 s', () => {
    expect([1, 2, 3, 4, 5, 6, 10].map(defaultBackoffMs)).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
  });

  it('rejects calls while disconnected', async () => {
    const { session, client } = setup();
    session.start();
    await flush();
    client.close();
    await expect(session.call('pool.rotate', { name: 'x' })).rejects.toMatchObject({ code: 'daemon_unreachable' });
    session.stop();
  });

  it('stop closes the connection and does not reconnect', async () => {
    const { session, client, timers } = setup();
    session.start();
    await flush();
    session.stop();
    expect(client.closed).toBe(true);
    expect(timers.pending).toEqual([]);
  });
});
