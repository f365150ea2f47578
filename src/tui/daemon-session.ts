/**
 * The dashboard's link to the daemon, free of React: connects, subscribes, batches events, re-subscribes
 * on request and reconnects with backoff when the daemon goes away. It only reports what happens as
 * dashboard actions; deciding what that means for the screen is the reducer's job.
 *
 * Ordering: the event listener is attached before `events.subscribe` is sent, and events that arrive
 * while a subscribe is in flight are held and dispatched right after its snapshot, so none fall between
 * the snapshot and the stream (the reducer drops the ones the snapshot already covers, by seq).
 */
import { ERRORS } from '../shared/protocol/error-codes.js';
import type { SluiceEvent } from '../shared/protocol/events.js';
import { RpcError, toRpcError, type DaemonClient } from '../shared/rpc/client.js';
import type { DashboardAction } from './state/dashboard-actions.js';

/** Schedules `fn` after `ms`; returns a cancel function. */
export type Schedule = (fn: () => void, ms: number) => () => void;

/** Reconnect delay for the n-th consecutive attempt (1-based): 250 ms doubling to at most 5 s. */
export function defaultBackoffMs(attempt: number): number {
  return Math.min(5_000, 250 * 2 ** Math.max(0, attempt - 1));
}

/** Options of {@link DaemonSession}. */
export interface DaemonSessionOptions {
  /** Opens a new connection (used for every reconnect, and for the first one without `initialClient`). */
  connect: () => Promise<DaemonClient>;
  /** A connection the caller already opened (e.g. after starting the daemon). */
  initialClient?: DaemonClient;
  dispatch: (action: DashboardAction) => void;
  now?: () => number;
  schedule?: Schedule;
  /** Events are dispatched at most once per this many ms, one batch per flush. */
  batchMs?: number;
  backoffMs?: (attempt: number) => number;
  /** Sees every event batch as it is dispatched (feeds the rolling request rate). */
  onEvents?: (events: readonly SluiceEvent[], at: number) => void;
}

const realSchedule: Schedule = (fn, ms) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

/** One dashboard's connection to the daemon, across reconnects. */
export class DaemonSession {
  private client: DaemonClient | null = null;
  /** Bumped per connection so callbacks of a dead connection are ignored. */
  private generation = 0;
  private started = false;
  private stopped = false;
  private attempt = 0;
  private subscribing = false;
  private held: SluiceEvent[] = [];
  private pending: SluiceEvent[] = [];
  private cancelFlush: (() => void) | null = null;
  private cancelRetry: (() => void) | null = null;
  private readonly now: () => number;
  private readonly schedule: Schedule;

  constructor(private readonly opts: DaemonSessionOptions) {
    this.now = opts.now ?? Date.now;
    this.schedule = opts.schedule ?? realSchedule;
  }

  /** Starts connecting (idempotent). */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    if (this.opts.initialClient && !this.opts.initialClient.closed) this.attach(this.opts.initialClient);
    else this.connectNow();
  }

  /** Stops for good: cancels timers and closes the connection. */
  stop(): void {
    this.stopped = true;
    this.generation++;
    this.cancelFlush?.();
    this.cancelRetry?.();
    this.client?.close();
    this.client = null;
  }

  /** Calls the daemon; rejects with `daemon_unreachable` while disconnected. */
  readonly call: DaemonClient['call'] = (method, params, opts) => {
    const client = this.client;
    if (!client || client.closed) {
      return Promise.reject(new RpcError('daemon_unreachable', 'not connected to sluiced', ERRORS.daemon_unreachable.rpc));
    }
    return client.call(method, params, opts);
  };

  /** Fetches a fresh snapshot (after a seq gap or a `gap` event); no-op while one is on its way. */
  resubscribe(): void {
    if (this.client && !this.subscribing) void this.subscribe(this.client, this.generation);
  }

  private attach(client: DaemonClient): void {
    const gen = ++this.generation;
    this.client = client;
    this.attempt = 0;
    this.opts.dispatch({ type: 'connected', at: this.now() });
    client.onEvent((event) => this.onEvent(gen, event));
    client.onClose(() => this.onClose(gen, 'connection closed'));
    void this.subscribe(client, gen);
  }

  private async subscribe(client: DaemonClient, gen: number): Promise<void> {
    this.subscribing = true;
    this.held = [];
    // Events queued before the gap belong to the stream being replaced.
    this.cancelFlush?.();
    this.cancelFlush = null;
    this.pending = [];
    try {
      const result = await client.call('events.subscribe', {});
      if (gen !== this.generation) return;
      this.opts.dispatch({ type: 'snapshot', seq: result.seq, snapshot: result.snapshot });
      const held = this.held;
      this.held = [];
      this.subscribing = false;
      if (held.length > 0) this.emit(held);
    } catch {
      if (gen !== this.generation) return;
      this.subscribing = false;
      // A connection that cannot subscribe is useless: drop it and let the reconnect loop retry.
      client.close();
    }
  }

  private onEvent(gen: number, event: SluiceEvent): void {
    if (gen !== this.generation) return;
    if (this.subscribing) {
      this.held.push(event);
      return;
    }
    this.pending.push(event);
    this.cancelFlush ??= this.schedule(() => this.flush(), this.opts.batchMs ?? 100);
  }

  private flush(): void {
    this.cancelFlush = null;
    const events = this.pending;
    this.pending = [];
    if (events.length > 0) this.emit(events);
  }

  private emit(events: SluiceEvent[]): void {
    const at = this.now();
    this.opts.onEvents?.(events, at);
    this.opts.dispatch({ type: 'events', events, at });
  }

  private onClose(gen: number, reason: string): void {
    if (gen !== this.generation || this.stopped) return;
    this.generation++;
    this.client = null;
    this.subscribing = false;
    this.held = [];
    this.cancelFlush?.();
    this.cancelFlush = null;
    this.pending = [];
    this.retryLater(reason);
  }

  private retryLater(reason: string): void {
    this.attempt++;
    const delay = (this.opts.backoffMs ?? defaultBackoffMs)(this.attempt);
    const now = this.now();
    this.opts.dispatch({ type: 'disconnected', attempt: this.attempt, retryAt: now + delay, reason, at: now });
    this.cancelRetry = this.schedule(() => this.connectNow(), delay);
  }

  private connectNow(): void {
    this.cancelRetry = null;
    if (this.stopped) return;
    this.opts.dispatch({ type: 'connecting', attempt: this.attempt, at: this.now() });
    this.opts.connect().then(
      (client) => {
        if (this.stopped) client.close();
        else this.attach(client);
      },
      (err: unknown) => {
        if (this.stopped) return;
        const e = toRpcError(err);
        this.retryLater(e.code === 'daemon_unreachable' ? 'daemon not answering' : e.message);
      },
    );
  }
}
