/** Bounds shared by the daemon, the CLI and the TUI so that every edge rejects the same values. */

/** Per-credential `max_concurrent` bounds (inclusive); also a CHECK in the DB. */
export const MAX_CONCURRENT_MIN = 1;
export const MAX_CONCURRENT_MAX = 256;
export const MAX_CONCURRENT_DEFAULT = 8;

/** Global cap bounds (inclusive); `null` means unlimited. */
export const GLOBAL_CAP_MIN = 1;
export const GLOBAL_CAP_MAX = 100_000;

/** Queue wait bounds in milliseconds; 0 means refuse at once. */
export const QUEUE_TIMEOUT_MIN_MS = 0;
export const QUEUE_TIMEOUT_MAX_MS = 600_000;

/** `--rotate-below PCT` bounds (inclusive); null means off. */
export const ROTATE_BELOW_MIN = 1;
export const ROTATE_BELOW_MAX = 99;

/** Daily budget bounds (inclusive); null means no budget. Past 1e12 a number stops being a budget. */
export const DAILY_BUDGET_MIN = 1;
export const DAILY_BUDGET_MAX = 1_000_000_000_000;

/** Approval broker limits. */
export const MAX_WAITERS_PER_PROMPT = 256;
export const MAX_PENDING_PROMPTS = 50;
export const DEFAULT_APPROVAL_TIMEOUT_MS = 120_000;

/** The longest NDJSON line either end of the RPC socket accepts. */
export const MAX_RPC_LINE_BYTES = 1024 * 1024;

/** Names of credentials and pools: what may appear in argv, URLs and logs. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * Checks a per-credential cap. Returns a user-facing reason when the value is out of bounds, else null.
 * Used by the TUI as you type, by the CLI before sending, and by the daemon before the DB.
 */
export function capProblem(value: number): string | null {
  if (!Number.isInteger(value)) return 'max_concurrent must be a whole number';
  if (value < MAX_CONCURRENT_MIN || value > MAX_CONCURRENT_MAX) {
    return `max_concurrent must be between ${MAX_CONCURRENT_MIN} and ${MAX_CONCURRENT_MAX}`;
  }
  return null;
}

/** Checks a global cap (`null` = unlimited). Returns a reason or null. */
export function globalCapProblem(value: number | null): string | null {
  if (value === null) return null;
  if (!Number.isInteger(value)) return 'global cap must be a whole number';
  if (value < GLOBAL_CAP_MIN || value > GLOBAL_CAP_MAX) {
    return `global cap must be between ${GLOBAL_CAP_MIN} and ${GLOBAL_CAP_MAX}, or none`;
  }
  return null;
}

/** Checks a queue timeout. Returns a reason or null. */
export function queueTimeoutProblem(value: number): string | null {
  if (!Number.isInteger(value)) return 'queue_timeout_ms must be a whole number';
  if (value < QUEUE_TIMEOUT_MIN_MS || value > QUEUE_TIMEOUT_MAX_MS) {
    return `queue_timeout_ms must be between ${QUEUE_TIMEOUT_MIN_MS} and ${QUEUE_TIMEOUT_MAX_MS}`;
  }
  return null;
}

/** Checks a `--rotate-below` percentage (`null` = off). Returns a reason or null. */
export function rotateBelowProblem(value: number | null): string | null {
  if (value === null) return null;
  if (!Number.isInteger(value) || value < ROTATE_BELOW_MIN || value > ROTATE_BELOW_MAX) {
    return `rotate_below must be a whole percentage between ${ROTATE_BELOW_MIN} and ${ROTATE_BELOW_MAX}, or off`;
  }
  return null;
}

/** Checks a daily budget (`null` = none). `what` names it in the reason. Returns a reason or null. */
export function dailyBudgetProblem(what: 'daily_tokens' | 'daily_requests', value: number | null): string | null {
  if (value === null) return null;
  if (!Number.isInteger(value) || value < DAILY_BUDGET_MIN || value > DAILY_BUDGET_MAX) {
    return `${what} must be a whole number between ${DAILY_BUDGET_MIN} and ${DAILY_BUDGET_MAX}, or none`;
  }
  return null;
}
