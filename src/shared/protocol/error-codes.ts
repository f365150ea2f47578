/**
 * The one error catalogue. Every error that crosses an edge (RPC, CLI, proxy response) carries one of
 * these stable string codes; the numeric `rpc` code is what JSON-RPC clients see in `error.code`.
 * Codes are never renumbered or reused: scripts match on them.
 */
export const ERRORS = {
  invalid_params: { rpc: -32602, message: 'Invalid params' },
  internal: { rpc: -32603, message: 'Internal error' },
  not_found: { rpc: -32001, message: 'Not found' },
  already_exists: { rpc: -32002, message: 'Already exists' },
  in_use: { rpc: -32003, message: 'In use' },
  cap_out_of_range: { rpc: -32004, message: 'Cap out of range' },
  invalid_glob: { rpc: -32005, message: 'Invalid glob' },
  already_resolved: { rpc: -32010, message: 'Approval already resolved' },
  unknown_approval: { rpc: -32011, message: 'Unknown approval' },
  shutting_down: { rpc: -32020, message: 'Daemon is shutting down' },
  not_implemented: { rpc: -32021, message: 'Not available in this version' },
  store_busy: { rpc: -32022, message: 'The database is locked by another process; try again' },
  line_too_long: { rpc: -32600, message: 'Request line too long' },
  daemon_unreachable: { rpc: -32099, message: 'Daemon not running' },
  timeout: { rpc: -32098, message: 'Request timed out' },
} as const;

/** A stable error code from {@link ERRORS}. */
export type ErrorCode = keyof typeof ERRORS;

/**
 * A domain error with a stable code. The message is meant for users and must never contain a secret;
 * `cause` keeps the underlying error for logs only.
 */
export class SluiceError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message ?? ERRORS[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SluiceError';
    this.code = code;
    this.details = options?.details;
  }

  /** The numeric JSON-RPC error code for this error. */
  get rpcCode(): number {
    return ERRORS[this.code].rpc;
  }
}

/** True when `value` is a known catalogue code. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERRORS, value);
}
