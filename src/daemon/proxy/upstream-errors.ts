/**
 * What can go wrong on the upstream side of an exchange, and the one mapping from such a failure to what
 * the client gets (status, refusal code, message) and what the audit row says (`errorKind`). Failures
 * sluice detects itself are typed errors below, never errors dressed up with a borrowed errno `code`; socket
 * and TLS errors from Node keep their own `code`, which the mapping reads.
 */
import type { RefusalCode } from '../../shared/protocol/refusal-codes.js';

/** The upstream did not connect, or did not send response headers (or its WebSocket upgrade answer), in time. */
export class UpstreamTimeoutError extends Error {
  readonly code = 'UPSTREAM_TIMEOUT';
  constructor(
    readonly phase: 'connect' | 'headers',
    readonly afterMs: number,
  ) {
    super(phase === 'connect' ? `upstream did not connect within ${afterMs} ms` : `upstream sent no response headers within ${afterMs} ms`);
  }
}

/** The exchange tore its upstream leg down before a (re)send could start. */
export class UpstreamCancelledError extends Error {
  constructor() {
    super('upstream request cancelled');
  }
}

/**
 * Why an upstream response could not be passed on: it broke off before its end (`cut_short`), came in a
 * content-encoding sluice cannot decode (`undecodable`), did not decode (`bad_coding`), or was larger than
 * sluice reads (`too_large`, token answers).
 */
export type ResponseFault = 'cut_short' | 'undecodable' | 'bad_coding' | 'too_large';

/**
 * The label each fault has always had in audit rows (`upstream_response_error:ECONNRESET`, …): kept so
 * that rows, and whatever reads them, stay comparable across versions. Labels only; nothing here is an errno.
 */
const FAULT_LABELS: Record<ResponseFault, string> = {
  cut_short: 'ECONNRESET',
  undecodable: 'EUNDECODABLE',
  bad_coding: 'EBADCODING',
  too_large: 'ETOOBIG',
};

/** An upstream response sluice could not relay whole; see {@link ResponseFault}. */
export class UpstreamResponseError extends Error {
  constructor(
    readonly fault: ResponseFault,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** How an upstream failure is answered and recorded. */
export interface UpstreamFailure {
  status: number;
  code: RefusalCode;
  /** For the client; names the host and the cause, never a secret. */
  message: string;
  /** For the audit row's detail (`upstream_timeout:connect`, `upstream_request_error:ECONNREFUSED`, …). */
  errorKind: string;
}

/** Where the failure happened: before any response (`request`), while reading one (`response`), or on a WebSocket upgrade. */
export type FailurePhase = 'request' | 'response' | 'upgrade';

/** Node's codes for a certificate or TLS handshake that does not verify. */
const TLS_FAILURE = /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|HOSTNAME/;
/** Socket-level timeouts (not sluice's own limits, which are {@link UpstreamTimeoutError}). */
const SOCKET_TIMEOUTS = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT']);

/**
 * undici's codes for what Node's client reported with an errno: audit rows keep the errno labels they always
 * had (a peer that closed the connection is `ECONNRESET` whichever client noticed it).
 */
const CLIENT_CODES: Readonly<Record<string, string>> = { UND_ERR_SOCKET: 'ECONNRESET', UND_ERR_CLOSED: 'ECONNRESET' };

/** The short label of `err` for logs and audit rows: a fault's label, a Node error's code, or ''. */
export function errorLabel(err: unknown): string {
  if (err instanceof UpstreamResponseError) return FAULT_LABELS[err.fault];
  if (err instanceof UpstreamCancelledError) return 'ECANCELED';
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? (CLIENT_CODES[code] ?? code) : '';
}

/**
 * The one mapping of an upstream failure (`err`, on the way to `host:port`, in `phase`) to the client's
 * answer and the audit detail. A timeout sluice enforced is a 504 `upstream_timeout`; a certificate that
 * does not verify is a 502 `upstream_tls`; a socket timeout a 504, anything else a 502 `upstream_error`.
 */
export function mapUpstreamError(err: unknown, host: string, port: number, phase: FailurePhase): UpstreamFailure {
  if (err instanceof UpstreamTimeoutError) {
    const what =
      err.phase === 'connect'
        ? `did not connect within ${err.afterMs} ms`
        : phase === 'upgrade'
          ? `did not answer the WebSocket upgrade within ${err.afterMs} ms`
          : `sent no response headers within ${err.afterMs} ms`;
    return { status: 504, code: 'upstream_timeout', message: `sluice: upstream ${host}:${port} ${what}`, errorKind: `upstream_timeout:${err.phase}` };
  }
  const label = errorLabel(err);
  const errorKind = `upstream_${phase === 'upgrade' ? 'request' : phase}_error${label ? ':' + label : ''}`;
  if (TLS_FAILURE.test(label))
    return { status: 502, code: 'upstream_tls', message: `sluice: upstream ${host} presented a certificate that does not verify (${label})`, errorKind };
  return {
    status: SOCKET_TIMEOUTS.has(label) ? 504 : 502,
    code: 'upstream_error',
    message: `sluice: upstream ${host}:${port} failed (${label || 'error'})`,
    errorKind,
  };
}
