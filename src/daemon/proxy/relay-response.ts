/**
 * How an upstream response reaches the client: hop-by-hop headers dropped, real secrets masked in headers,
 * status phrase and body, gzip/deflate/br bodies decoded to be masked, streamed with backpressure. Split out
 * of upstream-leg.ts, which sends the request and receives the response.
 */
import type http from 'node:http';
import type { Transform } from 'node:stream';
import { bodyCoding, createDecoder } from './content-coding.js';
import { SecretMasker } from './secret-masker.js';
import type { Reply } from './upstream-leg.js';
import { UpstreamResponseError } from './upstream-errors.js';
import { connectionNamed, isHopByHop } from './hop-by-hop.js';

/**
 * The upstream's response headers minus hop-by-hop ones (hop-by-hop.ts, with any the `Connection` header
 * names). `public-key-pins*` would pin the client to the upstream's key, which it never sees.
 */
export function forwardableHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const named = connectionNamed(headers.connection);
  const out: http.OutgoingHttpHeaders = {};
  for (const name in headers) {
    if (isHopByHop(name, named) || name.startsWith('public-key-pins')) continue;
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
 * replaced by its phantom (a header whose name holds one, in any case, is dropped), the body across chunk boundaries too (see secret-masker.ts). A gzip, deflate or
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
      const owner = masker.secretInName(name);
      if (owner !== null) {
        // A header *named* by a real secret cannot be renamed to the phantom faithfully (case is lost): dropped.
        delete headers[name];
        reportInto('header-name', new Set([owner]));
        continue;
      }
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
    on.broken(new UpstreamResponseError('undecodable', `undecodable content-encoding ${coding.coding}`));
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
    if (!done) on.broken(new UpstreamResponseError('cut_short', 'upstream response ended early'));
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
    dec.on('error', (err: Error) => fail(new UpstreamResponseError('bad_coding', `cannot decode the ${coding} response body`, { cause: err })));
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
    if (!up.readableEnded) fail(new UpstreamResponseError('cut_short', 'upstream response ended early'));
  });
  up.on('error', ignore);
  up.resume();
}

/** Everything already buffered in a paused stream whose data has all arrived (null when there was none). */
function readBuffered(stream: import('node:stream').Readable): Buffer | null {
  let body: Buffer | null = null;
  for (let c = stream.read() as Buffer | null; c !== null; c = stream.read() as Buffer | null) body = body ? Buffer.concat([body, c]) : c;
  // Lets 'end' fire even when nothing was buffered (HEAD, 204, 304), which returns the socket to the pool.
  stream.resume();
  return body;
}

function ignore(): void {}
