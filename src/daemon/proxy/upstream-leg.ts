/**
 * The upstream half of an exchange: the request sluice sends on the client's behalf and the response that
 * comes back, and how that response is relayed to the client.
 *
 * sluice forwards requests itself rather than through http-mitm-proxy's filter chain, which ignores
 * backpressure (a slow client made the daemon buffer a fast upstream's whole response), writes headers,
 * body and end separately (one TLS record and syscall each) and builds ~25 closures per request.
 */
import http from 'node:http';
import https from 'node:https';
import type { Transform } from 'node:stream';
import { bodyCoding, createDecoder } from './content-coding.js';
import { SecretMasker } from './secret-masker.js';
import type { Refusal } from './refusals.js';
import type { Socket } from 'node:net';

/** How long an upstream may take to connect, and then to answer with response headers. */
export interface UpstreamTimeouts {
  /** TCP connect plus TLS handshake of a new connection (a reused kept-alive one skips this). */
  connectMs: number;
  /** From the connection being ready until the response headers arrived. Streams have none after that. */
  headerMs: number;
}

/** The upstream did not connect, or did not send response headers, in time. */
export class UpstreamTimeoutError extends Error {
  readonly code = 'UPSTREAM_TIMEOUT';
  constructor(
    readonly phase: 'connect' | 'headers',
    readonly afterMs: number,
  ) {
    super(phase === 'connect' ? `upstream did not connect within ${afterMs} ms` : `upstream sent no response headers within ${afterMs} ms`);
  }
}

/** Errors on a kept-alive socket the server closed just as the request was written. */
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * Response headers that describe one hop (RFC 9110 §7.6.1) and so never pass a proxy; Node frames the
 * client's response itself. `public-key-pins*` would pin the client to the upstream's key, which it never sees.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

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
   * failed on a reused kept-alive socket before any response is sent once more on a new one. Headers and
   * body leave in one write. An attempt that does not connect, or gets no response headers, within
   * {@link timeouts} is torn down and rejects with an {@link UpstreamTimeoutError}.
   */
  send(options: https.RequestOptions, body: Buffer | null): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      let answered = false;
      let retried = false;
      const attempt = (): void => {
        if (this.closed) return reject(Object.assign(new Error('upstream request cancelled'), { code: 'ECANCELED' }));
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
          if (!retried && !this.closed && req.reusedSocket && STALE_SOCKET.has(err.code ?? '')) {
            retried = true;
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

/** The upstream's response headers minus hop-by-hop ones (and any the `Connection` header names). */
export function forwardableHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = headers.connection
    ? headers.connection
        .toLowerCase()
        .split(',')
        .map((s) => s.trim())
    : null;
  const out: http.OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || name.startsWith('public-key-pins') || named?.includes(name)) continue;
    out[name] = headers[name];
  }
  return out;
}

/** Callbacks of {@link relayResponse}. */
export interface RelayEvents {
  /** Each body chunk's size as it goes to the client. */
  bytes: (n: number) => void;
  /** The upstream's body ended and all of it went to the client. */
  ended: () => void;
  /** The upstream response broke off before its end (or its body could not be decoded). */
  broken: (err: Error) => void;
  /** A real secret of `credentials` was replaced by its phantom at `where` (`header:NAME`, `status`, `body`). */
  masked?: (where: string, credentials: ReadonlySet<string>) => void;
  /**
   * Sees every decoded body chunk the client gets, before masking (usage accounting). It observes only: it
   * must not keep, change or hold back the bytes.
   */
  tap?: (decoded: Buffer) => void;
}

const NO_MASKING = new SecretMasker([]);

/**
 * True when `reply` has a body sluice cannot decode (and so cannot mask): the caller refuses it instead of
 * relaying. Bodiless answers (HEAD, 204, 304, 1xx) never count.
 */
export function undecodableBody(reply: Reply, method: string): string | null {
  if (reply.replacement || !hasResponseBody(method, reply.response.statusCode ?? 0)) return null;
  const c = bodyCoding(reply.response.headers['content-encoding']);
  return c.kind === 'undecodable' ? c.coding : null;
}

function hasResponseBody(method: string | undefined, status: number): boolean {
  return method !== 'HEAD' && status !== 204 && status !== 304 && status >= 200;
}

/**
 * Sends `reply` to `res`: status and headers, then the body, streamed with backpressure (a slow client
 * pauses the upstream socket instead of growing the daemon's memory) and never buffered (each SSE event
 * is written as it arrives). Headers go out at once when no body is waiting, so a client sees a slow
 * stream start. An upstream that breaks off mid-body is reported through `broken`, never as a clean end.
 *
 * Containment: every header value, the reason phrase and the body have each real secret `masker` knows
 * replaced by its phantom, the body across chunk boundaries too (see secret-masker.ts). A gzip, deflate or
 * br body is decoded to be masked and sent decoded. A body in a coding sluice cannot decode is never sent
 * (callers refuse it first with {@link undecodableBody}; here it resets the client).
 */
export function relayResponse(reply: Reply, res: http.ServerResponse, on: RelayEvents, masker: SecretMasker = NO_MASKING): void {
  const up = reply.response;
  const status = up.statusCode ?? 502;
  const headers = forwardableHeaders(up.headers);
  const reportInto = (where: string, found: Set<string>): void => {
    if (found.size > 0) on.masked?.(where, found);
  };
  let statusMessage = up.statusMessage;
  if (!masker.empty) {
    for (const name in headers) {
      const v = headers[name];
      const found = new Set<string>();
      if (typeof v === 'string') headers[name] = masker.maskText(v, found);
      else if (Array.isArray(v)) headers[name] = v.map((x) => masker.maskText(x, found));
      reportInto(`header:${name}`, found);
    }
    if (statusMessage) {
      const found = new Set<string>();
      statusMessage = masker.maskText(statusMessage, found);
      reportInto('status', found);
    }
  }
  const maskWhole = (body: Buffer): Buffer => {
    const found = new Set<string>();
    const out = masker.maskBuffer(body, found);
    reportInto('body', found);
    return out;
  };
  if (reply.replacement) {
    // A replacement is always sluice's own, decoded body.
    delete headers['content-encoding'];
    on.tap?.(reply.replacement);
    const body = maskWhole(reply.replacement);
    headers['content-length'] = body.length;
    res.writeHead(status, headers);
    on.bytes(body.length);
    res.end(body);
    on.ended();
    return;
  }
  const coding = hasResponseBody(res.req?.method, status) ? bodyCoding(up.headers['content-encoding']) : ({ kind: 'identity' } as const);
  if (coding.kind === 'undecodable') {
    // Never pass through what cannot be read; callers refuse it before it gets here.
    up.on('error', ignore);
    up.destroy();
    on.broken(Object.assign(new Error(`undecodable content-encoding ${coding.coding}`), { code: 'EUNDECODABLE' }));
    return;
  }
  if (coding.kind === 'decode') return relayDecoded(reply, res, on, masker, headers, statusMessage, coding.coding);
  if (up.readableEnded) {
    // A peek already read the whole body (it is all in `head`).
    if (reply.head) on.tap?.(reply.head);
    const body = reply.head ? maskWhole(reply.head) : null;
    if (body && reply.head && body.length !== reply.head.length) headers['content-length'] = body.length;
    res.writeHead(status, statusMessage, headers);
    if (body) on.bytes(body.length);
    res.end(body ?? undefined);
    on.ended();
    return;
  }
  if (up.complete && !reply.head) {
    // The whole response arrived with its headers (most small JSON answers): send it in one go instead of
    // streaming it through listeners and ticks. Reading it to the end frees the upstream connection.
    up.on('error', ignore);
    const raw = readBuffered(up);
    if (raw) on.tap?.(raw);
    const body = raw ? maskWhole(raw) : null;
    if (body && raw && body.length !== raw.length) headers['content-length'] = body.length;
    res.writeHead(status, statusMessage, headers);
    if (body) on.bytes(body.length);
    res.end(body ?? undefined);
    on.ended();
    return;
  }
  // A phantom need not be as long as its secret, so a masked stream cannot promise the upstream's length.
  if (!masker.empty && hasResponseBody(res.req?.method, status)) delete headers['content-length'];
  res.writeHead(status, statusMessage, headers);
  const stream = masker.stream();
  let reported = 0;
  const send = (c: Buffer): boolean => {
    on.tap?.(c);
    const out = stream.write(c);
    if (stream.found.size > reported) {
      reported = stream.found.size;
      reportInto('body', stream.found);
    }
    if (out.length === 0) return true;
    on.bytes(out.length);
    return res.write(out);
  };
  // A hand-written relay rather than pipe(): pipe adds and removes some ten listeners per response,
  // measurable at thousands of small responses a second. Same contract: pause on a full client buffer,
  // resume on its drain.
  let done = false;
  const onDrain = (): void => {
    up.resume();
  };
  up.on('data', (c: Buffer) => {
    if (!send(c)) {
      up.pause();
      res.once('drain', onDrain);
    }
  });
  up.once('end', () => {
    done = true;
    const tail = stream.end();
    if (stream.found.size > reported) reportInto('body', stream.found);
    if (tail) on.bytes(tail.length);
    res.end(tail ?? undefined);
    on.ended();
  });
  up.once('close', () => {
    if (!done) on.broken(Object.assign(new Error('upstream response ended early'), { code: 'ECONNRESET' }));
  });
  up.on('error', ignore);
  if (reply.head) {
    send(reply.head);
  } else if (up.readableLength === 0 && !up.complete) {
    res.flushHeaders();
  }
  up.resume();
}

/**
 * The streamed relay for a gzip/deflate/br body: upstream → zlib decoder → masker → client, sent decoded
 * (no content-encoding, no content-length). Backpressure runs through the decoder: a full client buffer
 * pauses the decoder, whose full buffers pause the upstream.
 */
function relayDecoded(
  reply: Reply,
  res: http.ServerResponse,
  on: RelayEvents,
  masker: SecretMasker,
  headers: http.OutgoingHttpHeaders,
  statusMessage: string | undefined,
  coding: 'gzip' | 'deflate' | 'br',
): void {
  const up = reply.response;
  delete headers['content-encoding'];
  delete headers['content-length'];
  res.writeHead(up.statusCode ?? 502, statusMessage, headers);
  const stream = masker.stream();
  let decoder: Transform | null = null;
  let reported = 0;
  let done = false;
  let failed = false;
  const report = (): void => {
    if (stream.found.size > reported) {
      reported = stream.found.size;
      on.masked?.('body', stream.found);
    }
  };
  const fail = (err: Error): void => {
    if (failed || done) return;
    failed = true;
    up.destroy();
    decoder?.destroy();
    on.broken(err);
  };
  // Made on the first body chunk: a deflate body's first bytes say whether it is zlib-wrapped or raw.
  const decoderFor = (first: Buffer | undefined): Transform => {
    const dec = createDecoder(coding, first);
    dec.on('data', (c: Buffer) => {
      on.tap?.(c);
      const out = stream.write(c);
      report();
      if (out.length === 0) return;
      on.bytes(out.length);
      if (!res.write(out)) {
        dec.pause();
        res.once('drain', () => dec.resume());
      }
    });
    dec.once('end', () => {
      if (failed) return;
      done = true;
      const tail = stream.end();
      report();
      if (tail) on.bytes(tail.length);
      res.end(tail ?? undefined);
      on.ended();
    });
    dec.on('error', (err: Error) => fail(Object.assign(new Error(`cannot decode the ${coding} response body`), { code: 'EBADCODING', cause: err })));
    return dec;
  };
  const feed = (c: Buffer): void => {
    decoder ??= decoderFor(c);
    if (!decoder.write(c)) {
      up.pause();
      decoder.once('drain', () => up.resume());
    }
  };
  const finishInput = (): void => {
    if (decoder) return void decoder.end();
    // No body bytes at all (an empty body labelled with a coding): nothing to decode.
    done = true;
    res.end();
    on.ended();
  };
  if (reply.head) feed(reply.head);
  if (up.readableEnded) return finishInput();
  up.on('data', feed);
  up.once('end', finishInput);
  up.once('close', () => {
    if (!up.readableEnded) fail(Object.assign(new Error('upstream response ended early'), { code: 'ECONNRESET' }));
  });
  up.on('error', ignore);
  up.resume();
}

/** Everything already buffered in a paused stream whose data has all arrived (null when there was none). */
function readBuffered(stream: http.IncomingMessage): Buffer | null {
  let body: Buffer | null = null;
  for (let c = stream.read() as Buffer | null; c !== null; c = stream.read() as Buffer | null) body = body ? Buffer.concat([body, c]) : c;
  // Lets 'end' fire even when nothing was buffered (HEAD, 204, 304), which returns the socket to the pool.
  stream.resume();
  return body;
}

function ignore(): void {}
