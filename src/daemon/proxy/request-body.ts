/**
 * Request bodies the proxy must inspect for phantoms. A body is read only once the request is known to go
 * upstream (policy, approval and permits passed), whole and bounded, rewritten, and then sent upstream
 * whole with an exact content-length. What all requests hold at once is bounded too ({@link BufferBudget}).
 */
import type http from 'node:http';

/** Largest body sluice inspects; larger requests are refused (fail closed) rather than passed unscanned. */
export const MAX_INSPECTED_BODY_BYTES = 32 * 1024 * 1024;

/** Default for `SLUICE_MAX_BUFFERED_BYTES`: request bytes all requests together may hold in memory. */
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;

/**
 * A process-wide budget of buffered request bytes. A request reserves what it reads (and what decoding
 * it produces) and gives it back when its exchange ends; a reservation past the limit fails, and the
 * request is refused with nothing held. Counting only: it never holds data itself.
 */
export class BufferBudget {
  private inUse = 0;

  constructor(readonly limit: number) {}

  /** Bytes reserved now. */
  get used(): number {
    return this.inUse;
  }

  /** Reserves `n` bytes; false (and nothing reserved) when that would pass the limit. */
  tryReserve(n: number): boolean {
    if (n <= 0) return true;
    if (this.inUse + n > this.limit) return false;
    this.inUse += n;
    return true;
  }

  /** Gives back `n` bytes reserved earlier. */
  release(n: number): void {
    this.inUse = Math.max(0, this.inUse - n);
  }
}

/** Why a body was not read. */
export type BodyFailure = 'too_large' | 'aborted' | 'over_budget';

/** True when the request declares a body. */
export function hasBody(req: http.IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  if (cl !== undefined) return Number(cl) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

/**
 * Reads the whole body; resolves with it, or with why it could not. Never rejects. With `reserve`, every
 * byte is reserved before it is kept (a declared length at once, a chunked body chunk by chunk); a
 * refused reservation stops reading with `over_budget`, and what was reserved stays reserved (the caller
 * owns it and gives it back).
 */
export async function readBody(
  req: import('node:stream').Readable & { headers?: http.IncomingHttpHeaders },
  limit = MAX_INSPECTED_BODY_BYTES,
  reserve?: (n: number) => boolean,
): Promise<Buffer | BodyFailure> {
  const declared = Number(req.headers?.['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) return 'too_large';
  const upFront = reserve && Number.isFinite(declared) ? declared : 0;
  if (reserve && upFront > 0 && !reserve(upFront)) return 'over_budget';
  return new Promise((resolve) => {
    // Unlike peekBody, the stream is finished with once this settles, so its listeners are never removed
    // (removing four listeners per request showed in profiles).
    const parts: Buffer[] = [];
    let size = 0;
    let reserved = upFront;
    let settled = false;
    const done = (v: Buffer | BodyFailure): void => {
      if (settled) return;
      settled = true;
      resolve(v);
    };
    req.on('data', (c: Buffer) => {
      if (settled) return;
      size += c.length;
      if (size > limit) {
        req.pause();
        return done('too_large');
      }
      // Without a declared length (or past it), each chunk is reserved as it comes.
      if (reserve && size > reserved) {
        if (!reserve(size - reserved)) {
          req.pause();
          return done('over_budget');
        }
        reserved = size;
      }
      parts.push(c);
    });
    req.on('end', () => done(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)));
    req.on('error', () => done('aborted'));
    req.on('close', () => {
      if (!req.readableEnded) done('aborted');
    });
  });
}

/** The start of a response body read to classify it; `complete` when that was all of it. */
export interface BodyPeek {
  head: Buffer;
  complete: boolean;
}

/** Bounds a body peek by time: after `ms` (on `setTimer`'s clock) it settles with what has arrived. */
export interface PeekDeadline {
  ms: number;
  setTimer: (fn: () => void, ms: number) => () => void;
}

/**
 * Reads up to about `limit` bytes of a (paused) stream, then pauses it again with the rest unread; with a
 * `deadline`, also stops when that much time has passed (a slowly streamed body is not held back longer).
 * The caller must put `head` back in front of the rest (see {@link PrefixFilter}).
 */
export function peekBody(stream: import('node:stream').Readable, limit: number, deadline?: PeekDeadline): Promise<BodyPeek | 'aborted'> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let size = 0;
    let settled = false;
    let cancelTimer = (): void => {};
    const done = (v: BodyPeek | 'aborted') => {
      if (settled) return;
      settled = true;
      cancelTimer();
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onErr);
      stream.off('close', onClose);
      resolve(v);
    };
    const onData = (c: Buffer) => {
      parts.push(c);
      size += c.length;
      if (size >= limit) {
        stream.pause();
        done({ head: Buffer.concat(parts, size), complete: false });
      }
    };
    const onEnd = () => done({ head: Buffer.concat(parts, size), complete: true });
    const onErr = () => done('aborted');
    const onClose = () => {
      if (!stream.readableEnded) done('aborted');
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onErr);
    stream.on('close', onClose);
    if (deadline) {
      cancelTimer = deadline.setTimer(() => {
        stream.pause();
        done({ head: Buffer.concat(parts, size), complete: false });
      }, deadline.ms);
    }
    stream.resume();
  });
}
