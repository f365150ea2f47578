/**
 * A counting semaphore with an optional bounded FIFO wait. A permit is released exactly once (the release
 * function is idempotent); a waiter that gives up (timeout or abort) leaves the queue without taking a slot.
 */
import type { Clock } from '../clock.js';

/** Releases a permit; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  grant: (r: Release) => void;
  cancel: () => void;
}

/** Why an acquire failed. */
export type AcquireFailure = 'full' | 'timeout' | 'aborted';

/** A semaphore with `capacity` permits. Capacity never changes: to change a cap, make a new semaphore. */
export class Semaphore {
  private inUse = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly capacity: number,
    private readonly clock: Clock,
    private readonly onChange: () => void = () => {},
  ) {}

  /** Permits held now. */
  get inFlight(): number {
    return this.inUse;
  }

  /** Requests waiting for a permit now. */
  get queued(): number {
    return this.waiters.length;
  }

  /** Takes a permit at once if one is free. */
  tryAcquire(): Release | null {
    if (this.inUse >= this.capacity) return null;
    this.inUse++;
    this.onChange();
    return this.makeRelease();
  }

  /**
   * Takes a permit, waiting up to `waitMs` in FIFO order when none is free (0 = do not wait).
   * Resolves with a release function, or with the reason it failed; never rejects.
   */
  acquire(waitMs: number, signal?: AbortSignal): Promise<Release | AcquireFailure> {
    const now = this.tryAcquire();
    if (now) return Promise.resolve(now);
    if (waitMs <= 0) return Promise.resolve('full');
    if (signal?.aborted) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: Release | AcquireFailure) => {
        if (done) return;
        done = true;
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(waiter);
        if (i !== -1) this.waiters.splice(i, 1);
        this.onChange();
        resolve(v);
      };
      const waiter: Waiter = { grant: (r) => finish(r), cancel: () => finish('aborted') };
      const onAbort = () => finish('aborted');
      const cancelTimer = this.clock.setTimer(() => finish('timeout'), waitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.onChange();
    });
  }

  private makeRelease(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) {
        // Hand the permit straight to the oldest waiter: inUse stays the same.
        next.grant(this.makeRelease());
      } else {
        this.inUse--;
        this.onChange();
      }
    };
  }
}
