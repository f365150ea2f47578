/**
 * Content codings on the response side. sluice must read every response body to mask real secrets in it,
 * so it asks upstreams only for codings it can decode (gzip, deflate, br, identity) and decodes those with
 * node:zlib streams; a body in any other coding is refused (never passed through unread).
 */
import type http from 'node:http';
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';

/** Codings sluice decodes (`x-gzip` is gzip's old name). */
const DECODABLE = new Set(['gzip', 'x-gzip', 'deflate', 'br']);

/**
 * The `accept-encoding` to send upstream: the client's list narrowed to codings sluice can decode (q values
 * kept); `*` and anything unknown dropped; `identity` when nothing is left. Undefined stays undefined.
 */
export function narrowAcceptEncoding(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const items = (Array.isArray(value) ? value.join(',') : value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const kept = items.filter((item) => {
    const name = item.split(';')[0]!.trim().toLowerCase();
    return DECODABLE.has(name) || name === 'identity';
  });
  return kept.length > 0 ? kept.join(', ') : 'identity';
}

/** Narrows `headers['accept-encoding']` in place (see {@link narrowAcceptEncoding}). */
export function narrowRequestEncoding(headers: http.IncomingHttpHeaders | Record<string, string | string[] | undefined>): void {
  const v = headers['accept-encoding'];
  if (v === undefined) return;
  const narrowed = narrowAcceptEncoding(v);
  if (narrowed !== v) headers['accept-encoding'] = narrowed;
}

/** How a response body is coded, as far as sluice is concerned. */
export type BodyCoding = { kind: 'identity' } | { kind: 'decode'; coding: 'gzip' | 'deflate' | 'br' } | { kind: 'undecodable'; coding: string };

/** Reads `content-encoding`. More than one coding (other than identity) is refused as undecodable. */
export function bodyCoding(contentEncoding: string | string[] | undefined): BodyCoding {
  if (contentEncoding === undefined) return { kind: 'identity' };
  const codings = (Array.isArray(contentEncoding) ? contentEncoding.join(',') : contentEncoding)
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s && s !== 'identity');
  if (codings.length === 0) return { kind: 'identity' };
  if (codings.length > 1) return { kind: 'undecodable', coding: codings.join(', ') };
  const c = codings[0]!;
  if (c === 'gzip' || c === 'x-gzip') return { kind: 'decode', coding: 'gzip' };
  if (c === 'deflate' || c === 'br') return { kind: 'decode', coding: c };
  // The coding name comes from the upstream: keep it short and printable for messages.
  return { kind: 'undecodable', coding: c.replace(/[^a-z0-9._-]/g, '').slice(0, 32) || 'unknown' };
}

/**
 * A streaming decoder for `coding`. `first` is the body's first chunk: HTTP's `deflate` is zlib-wrapped
 * (RFC 9110), but some servers send raw deflate, told apart by the zlib header.
 */
export function createDecoder(coding: 'gzip' | 'deflate' | 'br', first?: Buffer): Transform {
  // Flushing as data arrives keeps an SSE stream's events from waiting for more compressed input.
  if (coding === 'gzip') return zlib.createGunzip({ flush: zlib.constants.Z_SYNC_FLUSH });
  if (coding === 'deflate')
    return first && !isZlibHeader(first)
      ? zlib.createInflateRaw({ flush: zlib.constants.Z_SYNC_FLUSH })
      : zlib.createInflate({ flush: zlib.constants.Z_SYNC_FLUSH });
  return zlib.createBrotliDecompress({ flush: zlib.constants.BROTLI_OPERATION_FLUSH });
}

/** True when `b` starts with a zlib header (CM 8, a window size ≤ 32 KiB, and the header checksum). */
function isZlibHeader(b: Buffer): boolean {
  if (b.length < 2) return true;
  return (b[0]! & 0x0f) === 8 && b[0]! >> 4 <= 7 && ((b[0]! << 8) | b[1]!) % 31 === 0;
}

/**
 * Decodes a whole (small, already read) body. Throws on corrupt data or when it would grow past `limit`
 * bytes (a decompression bomb).
 */
export function decodeWhole(body: Buffer, coding: 'gzip' | 'deflate' | 'br', limit: number): Buffer {
  if (coding === 'gzip') return zlib.gunzipSync(body, { maxOutputLength: limit });
  if (coding === 'deflate')
    return isZlibHeader(body) ? zlib.inflateSync(body, { maxOutputLength: limit }) : zlib.inflateRawSync(body, { maxOutputLength: limit });
  return zlib.brotliDecompressSync(body, { maxOutputLength: limit });
}

/**
 * Decodes as much of `body` — which may be only the start of a compressed body (a bounded peek) — as it
 * can. For classifying an error answer's text, never for relaying it. Null when the bytes are not valid in
 * that coding, or would decode to more than `limit` bytes (the answer then stays unclassified, as before).
 */
export function decodePrefix(body: Buffer, coding: 'gzip' | 'deflate' | 'br', limit: number): Buffer | null {
  try {
    const sync = { maxOutputLength: limit, finishFlush: zlib.constants.Z_SYNC_FLUSH };
    if (coding === 'gzip') return zlib.gunzipSync(body, sync);
    if (coding === 'deflate') return isZlibHeader(body) ? zlib.inflateSync(body, sync) : zlib.inflateRawSync(body, sync);
    return zlib.brotliDecompressSync(body, { maxOutputLength: limit, finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH });
  } catch {
    return null;
  }
}
