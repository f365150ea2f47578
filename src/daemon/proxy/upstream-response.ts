/**
 * An upstream response as the rest of the proxy reads it: status, headers in Node's shape, and the body as a
 * Readable fed by the HTTP client (undici, see upstream-pool.ts) with backpressure both ways. It stands in
 * for the `http.IncomingMessage` Node's own client made, at a fraction of the cost per response.
 */
import type http from 'node:http';
import { Readable } from 'node:stream';

/** What usage metering and classification read of a response: its status and headers. */
export interface ResponseHead {
  statusCode?: number | undefined;
  headers: http.IncomingHttpHeaders;
}

/**
 * Headers Node keeps only the first of when repeated (`http.IncomingMessage#headers`); sluice keeps the same
 * rule, so a second `content-length` or `location` can never be smuggled in by joining.
 */
const FIRST_ONLY: ReadonlySet<string> = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);

/**
 * Raw `[name, value, …]` header bytes (as the parser gives them) in Node's `IncomingHttpHeaders` shape: names
 * lower case, `set-cookie` always a list, {@link FIRST_ONLY} headers the first value, other repeats joined
 * with `, `. Header bytes are read as latin1, as Node does.
 */
export function headersFromRaw(raw: readonly Buffer[] | readonly string[]): http.IncomingHttpHeaders {
  const out: http.IncomingHttpHeaders = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!;
    const v = raw[i + 1]!;
    const name = (typeof n === 'string' ? n : n.toString('latin1')).toLowerCase();
    const value = typeof v === 'string' ? v : v.toString('latin1');
    const prev = out[name];
    if (prev === undefined) {
      out[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      (prev as string[]).push(value);
    } else if (!FIRST_ONLY.has(name)) {
      out[name] = `${prev as string}, ${value}`;
    }
  }
  return out;
}

/**
 * The body side of one upstream response. `push` returns false when the consumer's buffer is full; the
 * client then pauses its parser until {@link _read} asks for more. Destroying it (the client left, a failover
 * dropped it) aborts the upstream request, so its connection is never reused mid-body.
 */
export class UpstreamResponse extends Readable implements ResponseHead {
  /** True once the whole body arrived (it may still be buffered here, unread). */
  complete = false;

  constructor(
    readonly statusCode: number,
    readonly statusMessage: string,
    readonly headers: http.IncomingHttpHeaders,
    /** Resumes a parser paused by a full buffer. */
    private readonly resumeUpstream: () => void,
    /** Aborts the upstream request (and closes its connection). */
    private readonly abortUpstream: (err: Error) => void,
  ) {
    super();
  }

  override _read(): void {
    this.resumeUpstream();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.complete) this.abortUpstream(err ?? new Error('upstream response dropped'));
    cb(err);
  }
}
