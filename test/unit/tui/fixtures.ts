/** Builders for protocol values and a fake daemon client, shared by the TUI tests. */
import type { ApprovalInfo, CredentialInfo, CredentialStats, DaemonStatus, StatsSnapshot } from '../../../src/shared/protocol/entities.js';
import type { EventPayloads, EventType, PoolInfo, SluiceEvent, Snapshot } from '../../../src/shared/protocol/events.js';
import type { MethodName } from '../../../src/shared/protocol/params.js';
import { RpcError, type DaemonClient } from '../../../src/shared/rpc/client.js';
import { waitFor } from '../../fakes/wait-for.js';

export const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function approval(over: Partial<ApprovalInfo> = {}): ApprovalInfo {
  return {
    id: 'ap-1',
    host: 'api.anthropic.com',
    port: 443,
    method: 'POST',
    path: '/v1/messages',
    waiters: 1,
    created_at: iso(T0),
    expires_at: iso(T0 + 120_000),
    ...over,
  };
}

export function credential(over: Partial<CredentialInfo> = {}): CredentialInfo {
  return {
    name: 'anthropic',
    kind: 'api-key',
    hosts: ['api.anthropic.com'],
    header: 'x-api-key',
    format: null,
    max_concurrent: 8,
    queue_timeout_ms: 0,
    phantom: 'sk-ant-phantom',
    in_flight: 0,
    queued: 0,
    created_at: iso(T0),
    updated_at: iso(T0),
    ...over,
  };
}

export function credStats(over: Partial<CredentialStats> = {}): CredentialStats {
  return {
    name: 'anthropic',
    in_flight: 0,
    queued: 0,
    cap: 8,
    queue_timeout_ms: 0,
    total: 0,
    status_2xx: 0,
    status_3xx: 0,
    status_4xx: 0,
    status_5xx: 0,
    errors: 0,
    rejected: 0,
    ...over,
  };
}

export function stats(over: Partial<StatsSnapshot['global']> = {}, credentials: CredentialStats[] = []): StatsSnapshot {
  return {
    global: { in_flight: 0, cap: null, requests_total: 0, requests_per_s: 0, rejected: 0, ...over },
    credentials,
  };
}

export function pool(over: Partial<PoolInfo> = {}): PoolInfo {
  return {
    name: 'codex',
    phantom: 'pool-phantom',
    active: 'alice',
    members: [
      { name: 'alice', healthy: true, cooldown_until: null, reason: null },
      { name: 'bob', healthy: true, cooldown_until: null, reason: null },
    ],
    ...over,
  };
}

export function daemonStatus(over: Partial<DaemonStatus> = {}): DaemonStatus {
  return {
    version: '0.1.0',
    pid: 4242,
    uptime_s: 10,
    started_at: iso(T0 - 10_000),
    proxy: { listen: '127.0.0.1:8787', auth: 'on' },
    socket: '/tmp/sluiced.sock',
    ca_path: '/tmp/ca.pem',
    home: '/tmp',
    default_verdict: 'ask',
    approval_timeout_ms: 120_000,
    counts: { credentials: 1, rules: 0, pools: 0, pending_approvals: 0, in_flight: 0 },
    ...over,
  };
}

export function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  const credentials = over.credentials ?? [credential()];
  return {
    status: daemonStatus(),
    credentials,
    rules: [],
    pools: [],
    approvals: [],
    limits: {
      global: null,
      credentials: credentials.map((c) => ({
        name: c.name,
        max_concurrent: c.max_concurrent,
        queue_timeout_ms: c.queue_timeout_ms,
        in_flight: 0,
        queued: 0,
      })),
    },
    stats: stats(
      {},
      credentials.map((c) => credStats({ name: c.name, cap: c.max_concurrent })),
    ),
    recent_requests: [],
    notices: [],
    ...over,
  };
}

/** Builds an event with its seq. */
export function ev<K extends EventType>(seq: number, type: K, payload: EventPayloads[K]): SluiceEvent {
  return { seq, type, ...payload } as SluiceEvent;
}

type Handler = (params: Record<string, unknown>) => unknown;

/** A scriptable stand-in for the RPC client: records calls, answers from handlers, emits events. */
export class FakeDaemonClient implements DaemonClient {
  readonly calls: { method: string; params: Record<string, unknown> }[] = [];
  closed = false;
  private readonly listeners = new Set<(e: SluiceEvent) => void>();
  private readonly closeListeners: (() => void)[] = [];

  constructor(
    public handlers: Partial<Record<MethodName, Handler>> = {},
    public snap: Snapshot = snapshot(),
    public seq = 0,
  ) {}

  call: DaemonClient['call'] = (method, params) => {
    const p = (params ?? {}) as Record<string, unknown>;
    this.calls.push({ method, params: p });
    if (this.closed) return Promise.reject(new RpcError('daemon_unreachable', 'closed', -32099));
    const handler = this.handlers[method];
    if (handler) {
      try {
        return Promise.resolve(handler(p)) as never;
      } catch (err) {
        return Promise.reject(err);
      }
    }
    if (method === 'events.subscribe') return Promise.resolve({ seq: this.seq, snapshot: this.snap }) as never;
    return Promise.reject(new RpcError('method_not_found', `no fake for ${method}`, -32601));
  };

  onEvent(listener: (event: SluiceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners) l();
  }

  /** Delivers an event as the daemon would. */
  emit(event: SluiceEvent): void {
    for (const l of this.listeners) l(event);
  }

  callsTo(method: string): Record<string, unknown>[] {
    return this.calls.filter((c) => c.method === method).map((c) => c.params);
  }
}

/**
 * Lets Ink and React flush (see LIBRARY-NOTES §3.3): an explicit flush of the pending callbacks (0 ms), not a
 * bet on time. Assertions on what a flush should have drawn still use {@link waitForFrame}.
 */
export const tick = (): Promise<void> => new Promise((r) => setImmediate(() => setTimeout(r, 0)));

/** Something that renders frames (an ink-testing-library instance). */
export interface FrameSource {
  lastFrame(): string | undefined;
}

/**
 * Waits for the frame that should appear and returns it: `check` is text the frame contains, a pattern it
 * matches, or a predicate. Reading `lastFrame()` once after a tick is a bet on how fast the machine renders;
 * this is not. On timeout the error shows the last frame seen.
 */
export async function waitForFrame(app: FrameSource, check: string | RegExp | ((frame: string) => boolean), what?: string): Promise<string> {
  const test = typeof check === 'string' ? (f: string) => f.includes(check) : check instanceof RegExp ? (f: string) => check.test(f) : check;
  const label = what ?? (typeof check === 'function' ? 'the expected frame' : `a frame with ${String(check)}`);
  let last = '';
  try {
    return await waitFor(
      () => {
        last = app.lastFrame() ?? '';
        return test(last) ? last : null;
      },
      { what: label, timeoutMs: 5_000, intervalMs: 10 },
    );
  } catch {
    throw new Error(`timed out after 5000 ms waiting for ${label}; last frame:\n${last}`);
  }
}

/** Resolves once `release()` is called; lets a test hold a step (a reconnect) until it has seen the state before it. */
export function gate(): { opened: Promise<void>; release: () => void } {
  let release!: () => void;
  const opened = new Promise<void>((r) => (release = r));
  return { opened, release };
}
