/**
 * The one way tests wait: on the thing itself, with a deadline. A fixed sleep is a bet on the machine's
 * speed and loses on a busy two-core box; a polled condition only costs as long as the machine needs.
 */

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** What is being waited for, in words; the failure message starts with it. */
  what: string;
  /** Deadline (default 10 s: generous, because a condition that holds returns at once). */
  timeoutMs?: number;
  /** Poll interval (default 25 ms). */
  intervalMs?: number;
}

/** Renders what a poll last saw for the failure message (an error's message, else bounded JSON). */
export function describeLast(last: unknown): string {
  if (last instanceof Error) return last.message;
  let text: string;
  try {
    text = typeof last === 'string' ? JSON.stringify(last) : (JSON.stringify(last) ?? String(last));
  } catch {
    text = String(last);
  }
  return text.length > 2000 ? `${text.slice(0, 2000)}… (${text.length} chars)` : text;
}

/**
 * Polls `fn` until it returns a truthy value, which is returned, or the deadline passes: then it throws
 * `timed out after N ms waiting for <what> (last saw: <last value or error>)`. A throwing `fn` counts as
 * "not yet" (so `fn` may use `expect`), and its error is what the message shows.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitForOptions): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what} (last saw: ${describeLast(last)})`);
    await sleep(intervalMs);
  }
}

/**
 * Resolves `p`, or rejects after `timeoutMs` with a message naming `what`. For one-shot things (an event,
 * a process exit, a socket close) where there is nothing to poll.
 */
export function within<T>(p: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A plain delay. Only for waits that are *about* time (a poll interval, "nothing happens for N ms", a
 * cooldown that must expire); every caller says why in a comment.
 */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Retries an assertion block until it passes or the deadline passes (then throws with the assertion's own
 * message, which says what it last saw). For `expect(...)` checks on state that settles asynchronously.
 */
export async function eventually(assertion: () => void | Promise<void>, opts: WaitForOptions): Promise<void> {
  await waitFor(async () => {
    await assertion();
    return true;
  }, opts);
}
