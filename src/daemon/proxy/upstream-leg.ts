/**
 * The upstream half of an exchange: the request sluice sends on the client's behalf and the response that
 * comes back (relay-response.ts relays that response to the client).
 *
 * sluice forwards requests itself rather than through http-mitm-proxy's filter chain, which ignores
 * backpressure (a slow client made the daemon buffer a fast upstream's whole response), writes headers,
 * body and end separately (one TLS record and syscall each) and builds ~25 closures per request.
 */
import http from 'node:http';
import https from 'node:https';
import type { Refusal } from './refusals.js';
import { UpstreamCancelledError, UpstreamTimeoutError } from './upstream-errors.js';
import type { Socket } from 'node:net';

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
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/** What the client gets back. */
export interface Reply {
  response: http.IncomingMessage;
  /** Body bytes already read from `response` (a peek), sent before the rest of it. */
  head: Buffer | null;
  /** When set, the whole body the client gets instead of `response`'s (which was read to the end). */
  replacement: Buffer | null;
  /** When set, the client gets this refusal instead of the response (fail closed: the body is dropped). */
  refusal?: Refusal;
}

/**
 * One request sent upstream (possibly re-sent: a stale connection, a pool replay). Holds whatever is
 * current so the exchange can tear it down when the client leaves.
 */
export class UpstreamLeg {
  request: http.ClientRequest | null = null;
  response: http.IncomingMessage | null = null;
  /** Set by destroy(): nothing is (re)sent after that. */
  private closed = false;

  constructor(
    /** TLS to the upstream (the client's request arrived inside TLS). */
    readonly secure: boolean,
    /** Options of the first request; replays start from these. */
    readonly options: https.RequestOptions,
    /** Connect and response-header limits of every attempt; null = none. */
    readonly timeouts: UpstreamTimeouts | null = null,
  ) {}

  /**
   * Sends `body` (the whole of it: sluice has buffered every body it forwards) with `options` and
   * resolves with the response once its headers arrive; rejects with the request's error. A request that
   * failed on a reused kept-alive socket before any response is sent again (up to {@link STALE_RETRIES}
   * times; a new connection that fails is not retried). Headers and
   * body leave in one write. An attempt that does not connect, or gets no response headers, within
   * {@link timeouts} is torn down and rejects with an {@link UpstreamTimeoutError}.
   */
  send(options: https.RequestOptions, body: Buffer | null): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      let answered = false;
      let retries = 0;
      const attempt = (): void => {
        if (this.closed) return reject(new UpstreamCancelledError());
        const req = (this.secure ? https : http).request(options);
        this.request = req;
        let timedOut = false;
        const stopTimers = this.timeouts
          ? this.armTimeouts(req, (err) => {
              // Settled first, so the error destroy() causes is ignored below (and never retried).
              timedOut = true;
              reject(err);
              req.destroy();
            })
          : null;
        req.once('response', (res) => {
          stopTimers?.();
          answered = true;
          this.response = res;
          resolve(res);
        });
        req.on('error', (err: NodeJS.ErrnoException) => {
          // After the response began, its own 'close' reports the failure.
          if (answered || timedOut || req !== this.request) return;
          stopTimers?.();
          if (retries < STALE_RETRIES && !this.closed && req.reusedSocket && STALE_SOCKET.has(err.code ?? '')) {
            retries++;
            attempt();
            return;
          }
          reject(err);
        });
        req.end(body ?? undefined);
      };
      attempt();
    });
  }

  /**
   * Starts the connect timer when `req` gets a new socket (the header timer once it connected, or at once
   * on a reused one); on expiry calls `expired`, which tears the request (and its socket, which then never
   * returns to the pool) down. Returns a function that stops both timers.
   */
  private armTimeouts(req: http.ClientRequest, expired: (err: UpstreamTimeoutError) => void): () => void {
    const limits = this.timeouts!;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let stopped = false;
    const stop = (): void => {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
    };
    const expire = (phase: 'connect' | 'headers', ms: number) => (): void => {
      if (stopped) return;
      stop();
      expired(new UpstreamTimeoutError(phase, ms));
    };
    const startHeaderTimer = (): void => {
      if (stopped) return;
      if (timer) clearTimeout(timer);
      timer = setTimeout(expire('headers', limits.headerMs), limits.headerMs);
    };
    req.once('socket', (socket: Socket) => {
      if (stopped) return;
      // A kept-alive socket from the pool is connected already; a new one is not until its TLS handshake ends
      // (the agent hands it over a tick after creating it, long before any I/O could complete).
      if (req.reusedSocket) return startHeaderTimer();
      timer = setTimeout(expire('connect', limits.connectMs), limits.connectMs);
      socket.once(this.secure ? 'secureConnect' : 'connect', startHeaderTimer);
    });
    req.once('close', stop);
    return stop;
  }

  /** Tears down the current request and response (the client left, or the exchange failed). */
  destroy(): void {
    this.closed = true;
    this.request?.destroy();
    this.response?.destroy();
  }
}
