/**
 * A counting semaphore with an optional bounded FIFO wait. A permit is released exactly once (the release
 * function is idempotent); a waiter that gives up (timeout or abort) leaves the queue without taking a slot.
 * The capacity can change while permits are held: the semaphore counts its holders, so lowering it lets
 * nobody new in until the count drops below the new value, and raising it wakes waiters in arrival order.
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

/** A semaphore with `capacity` permits (`Infinity` = unlimited, still counting holders); see {@link resize}. */
export class Semaphore {
  private inUse = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    private cap: number,
    private readonly clock: Clock,
    private readonly onChange: () => void = () => {},
  ) {}

  /** Permits that may be held at once. */
  get capacity(): number {
    return this.cap;
  }

  /**
   * Changes the capacity in place. Held permits stay held and keep counting (so a lower cap admits nobody
   * until enough of them are released); a higher cap hands the new slots to waiters in arrival order.
   */
  resize(capacity: number): void {
    if (capacity === this.cap) return;
    this.cap = capacity;
    while (this.inUse < this.cap && this.waiters.length > 0) {
      this.inUse++;
      this.waiters.shift()!.grant(this.makeRelease());
    }
    this.onChange();
  }

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
      // Hand the permit straight to the oldest waiter (inUse stays the same), unless a lowered capacity
      // means this slot no longer exists.
      const next = this.inUse <= this.cap ? this.waiters.shift() : undefined;
      if (next) {
        next.grant(this.makeRelease());
      } else {
        this.inUse--;
        this.onChange();
      }
    };
  }
}
