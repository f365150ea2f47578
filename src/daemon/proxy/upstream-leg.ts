/**
 * The upstream half of an exchange: the request sluice sends on the client's behalf and the response that
 * comes back (relay-response.ts relays that response to the client). Requests go out on undici connections
 * from upstream-pool.ts; the response is an {@link UpstreamResponse}.
 */
import { UpstreamPool, type UpstreamConnection, type UpstreamDispatch, type UpstreamTarget } from './upstream-pool.js';
import type { Refusal } from './refusals.js';
import { UpstreamCancelledError, UpstreamTimeoutError } from './upstream-errors.js';
import { headersFromRaw, UpstreamResponse } from './upstream-response.js';

/** How long an upstream may take to connect, and then to answer with response headers. */
export interface UpstreamTimeouts {
  /** TCP connect plus TLS handshake of a new connection (a reused kept-alive one skips this). */
  connectMs: number;
  /** From the connection being ready until the response headers arrived. Streams have none after that. */
  headerMs: number;
}

/**
 * How many times a request is sent again after failing on a reused kept-alive socket. More than once: when
 * the server closes a batch of idle connections together (its keep-alive timeout after a burst), the pool
 * may hand out several dead sockets in a row before the daemon has seen their FINs.
 */
const STALE_RETRIES = 3;

/** Errors on a kept-alive socket the server closed just as the request was written. */
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET']);

/** What the client gets back. */
export interface Reply {
  response: UpstreamResponse;
  /** Body bytes already read from `response` (a peek), sent before the rest of it. */
  head: Buffer | null;
  /** When set, the whole body the client gets instead of `response`'s (which was read to the end). */
  replacement: Buffer | null;
  /** When set, the client gets this refusal instead of the response (fail closed: the body is dropped). */
  refusal?: Refusal;
  /**
   * When set, the client gets this JSON body with a 200 instead of the response (which is dropped): sluice's
   * own token answer, phantoms only (a replayed refresh grant whose refresh token another refresh already spent).
   */
  answer?: Buffer;
}

/** One request as sent upstream: where, and what (headers as given, `host` the client's own). */
export interface UpstreamRequest extends UpstreamTarget {
  method: string;
  path: string;
  headers: string[] | Record<string, string | string[] | undefined>;
}

/** Headers that concern only the hop to sluice: sluice has the whole body, so `expect` means nothing upstream. */
const NOT_FORWARDED = 'expect';

/**
 * One request sent upstream (possibly re-sent: a stale connection, a pool replay). Holds whatever is
 * current so the exchange can tear it down when the client leaves.
 */
export class UpstreamLeg {
  response: UpstreamResponse | null = null;
  /** Set by destroy(): nothing is (re)sent after that. */
  private closed = false;
  /** Tears down the attempt in flight (before its response headers), if any. */
  private cancelAttempt: (() => void) | null = null;

  constructor(
    private readonly pool: UpstreamPool,
    /** The first request; replays start from it. */
    readonly options: UpstreamRequest,
    /** Connect and response-header limits of every attempt; null = none. */
    readonly timeouts: UpstreamTimeouts | null = null,
  ) {}

  /**
   * Sends `body` (the whole of it: sluice has buffered every body it forwards) as `r` and resolves with the
   * response once its headers arrive; rejects with the request's error. A request that failed on a reused
   * kept-alive connection before any response is sent again (up to {@link STALE_RETRIES} times; one that
   * fails on a new connection is not). An attempt that does not connect, or gets no response headers,
   * within {@link timeouts} is torn down and rejects with an {@link UpstreamTimeoutError}.
   */
  send(r: UpstreamRequest, body: Buffer | null): Promise<UpstreamResponse> {
    return new Promise((resolve, reject) => {
      let retries = 0;
      const headers = forwardedHeaders(r.headers);
      const attempt = (): void => {
        if (this.closed) return reject(new UpstreamCancelledError());
        let conn: UpstreamConnection;
        try {
          conn = this.pool.acquire(r);
        } catch (err) {
          return reject(err);
        }
        const reused = conn.served > 0;
        let abort: ((err?: Error) => void) | null = null;
        let response: UpstreamResponse | null = null;
        let settled = false;
        const cancel = (): void => {
          if (settled) return;
          if (abort) abort(new UpstreamCancelledError());
          else this.pool.release(conn, false);
        };
        this.cancelAttempt = cancel;
        const opts: UpstreamDispatch = {
          method: r.method as UpstreamDispatch['method'],
          path: r.path,
          headers,
          body,
          servername: r.servername ?? null,
          headersTimeout: this.timeouts?.headerMs ?? 0,
          bodyTimeout: 0,
        };
        conn.client.dispatch(opts, {
          onConnect: (a) => {
            abort = a;
            if (this.closed) a(new UpstreamCancelledError());
          },
          onHeaders: (status, raw, resume, statusText) => {
            // 1xx answers (103 Early Hints) are not passed on: the final response follows on its own.
            if (status < 200 || response) return true;
            response = new UpstreamResponse(status, statusText, headersFromRaw(raw), resume, (err) => abort?.(err));
            settled = true;
            this.cancelAttempt = null;
            this.response = response;
            resolve(response);
            return true;
          },
          onData: (chunk) => (response ? response.push(chunk) : true),
          onComplete: () => {
            this.pool.release(conn, true);
            if (!response) return;
            response.complete = true;
            response.push(null);
          },
          onError: (err: Error & { code?: string }) => {
            this.pool.release(conn, false);
            if (response) {
              // After the response began: the body side reports it (destroyed without an end).
              if (!response.destroyed) response.destroy(err);
              return;
            }
            if (settled) return;
            settled = true;
            if (this.cancelAttempt === cancel) this.cancelAttempt = null;
            if (this.closed) return reject(new UpstreamCancelledError());
            if (retries < STALE_RETRIES && reused && STALE_SOCKET.has(err.code ?? '')) {
              retries++;
              return attempt();
            }
            reject(this.timeoutOf(err) ?? err);
          },
        });
      };
      attempt();
    });
  }

  /** undici's connect and header timeouts as sluice's own {@link UpstreamTimeoutError}; null for any other error. */
  private timeoutOf(err: { code?: string }): UpstreamTimeoutError | null {
    if (!this.timeouts) return null;
    if (err.code === 'UND_ERR_CONNECT_TIMEOUT') return new UpstreamTimeoutError('connect', this.timeouts.connectMs);
    if (err.code === 'UND_ERR_HEADERS_TIMEOUT') return new UpstreamTimeoutError('headers', this.timeouts.headerMs);
    return null;
  }

  /** Tears down the current request and response (the client left, or the exchange failed). */
  destroy(): void {
    this.closed = true;
    this.cancelAttempt?.();
    this.cancelAttempt = null;
    this.response?.destroy();
  }
}

/** True for a header name that is not forwarded (any case); the length test spares a lower-casing per header. */
function notForwarded(name: string): boolean {
  return name.length === NOT_FORWARDED.length && name.toLowerCase() === NOT_FORWARDED;
}

/**
 * `headers` as the flat [name, value, …] list undici sends as is (a repeated header repeats its name), without
 * `undefined` values and what is not forwarded. The one flattening of request headers for the wire.
 */
function forwardedHeaders(headers: UpstreamRequest['headers']): string[] {
  if (Array.isArray(headers)) {
    if (!headers.some((h, i) => i % 2 === 0 && notForwarded(h))) return headers;
    const out: string[] = [];
    for (let i = 0; i + 1 < headers.length; i += 2) if (!notForwarded(headers[i]!)) out.push(headers[i]!, headers[i + 1]!);
    return out;
  }
  const out: string[] = [];
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || notForwarded(name)) continue;
    if (typeof v === 'string') out.push(name, v);
    else for (const x of v) out.push(name, x);
  }
  return out;
}
