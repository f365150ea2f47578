/**
 * The one place audit rows about an exchange are built (HTTP requests and WebSocket upgrades alike, from
 * admission to the closing row), and the one way an exchange ends: {@link ExchangeEnd.close} marks it
 * finished, gives its permits back, writes its `secret_masked` and closing rows and tells the observer, once.
 * Rows carry names, numbers and codes only; never a secret.
 */
import type { AuditEntry, AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { RequestExchange } from './request-exchange.js';
import type { RequestObserver } from './request-observer.js';

/** What a row adds to the exchange's who/where/what (`method` only to override the exchange's own, e.g. `WS`). */
export type ExchangeRowFields = Omit<AuditEntry, 'event' | 'client' | 'agent' | 'host' | 'port' | 'path'>;

/** A row about `ex`: `event` with the exchange's client, agent, host, port, method and path, plus `fields`. */
export function exchangeRow(ex: RequestExchange, event: string, fields: ExchangeRowFields = {}): AuditEntry {
  return { event, client: ex.client, agent: ex.agent?.name ?? null, host: ex.host, port: ex.port, method: ex.method, path: ex.path, ...fields };
}

/**
 * The row that closes `ex` (`request`; `websocket` for a socket that was relayed): verdict (the refusal code
 * when sluice answered), rule, credential, status, bytes, duration, and a detail saying how it ended
 * (`detail` overrides it).
 */
export function closingRow(ex: RequestExchange, now: number, event: 'request' | 'websocket' = 'request', detail?: string): AuditEntry {
  return exchangeRow(ex, event, {
    verdict: ex.refusal ?? ex.verdict,
    rule_id: ex.ruleId,
    credential: ex.credential,
    status: ex.status,
    bytes: ex.bytes,
    duration_ms: now - ex.startedAt,
    detail: detail ?? closingDetail(ex),
  });
}

function closingDetail(ex: RequestExchange): string {
  if (ex.protocol === 'websocket') return ex.refusal ? 'websocket upgrade refused' : (ex.errorKind ?? 'websocket');
  return ex.errorKind ?? ex.outcome();
}

/** Where real secrets were masked in what went back to the client (`header:location`, `body`, `ws`, …), and whose. */
export interface Maskings {
  where: Iterable<string>;
  credentials: Iterable<string>;
}

/** The exchange's one `secret_masked` row. */
export function maskedRow(ex: RequestExchange, m: Maskings): AuditEntry {
  return exchangeRow(ex, 'secret_masked', { credential: [...m.credentials].join(','), status: ex.status, detail: [...m.where].join(',') });
}

/** How an exchange's closing row differs from the default. */
export interface CloseOptions {
  masked?: Maskings | null;
  event?: 'request' | 'websocket';
  detail?: string;
}

/** Ends exchanges; see the module comment. */
export class ExchangeEnd {
  constructor(private readonly d: { audit: Pick<AuditLog, 'append'>; observer: Pick<RequestObserver, 'finished'>; clock: Pick<Clock, 'now'> }) {}

  /**
   * Finishes `ex` if it was not yet: permits back, the `secret_masked` row (when something was masked), the
   * closing row (unless a more specific one stands for it) and the observer's `finished`. True only the first
   * time; the caller then tears down what else it holds (upstream leg, buffered bytes).
   */
  close(ex: RequestExchange, o: CloseOptions = {}): boolean {
    if (!ex.finish()) return false;
    ex.releasePermits();
    if (o.masked) this.d.audit.append(maskedRow(ex, o.masked));
    if (ex.needsClosingRow) this.d.audit.append(closingRow(ex, this.d.clock.now(), o.event, o.detail));
    this.d.observer.finished(ex);
    return true;
  }
}
