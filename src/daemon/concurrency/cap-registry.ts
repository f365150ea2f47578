/**
 * Concurrency caps: one global semaphore and one per credential, sized from the credential's
 * `max_concurrent`. A granted request holds the global slot and then its credential's; release
 * per-credential first. A request that has to wait in a credential's queue holds nothing while it waits and
 * takes its global slot only once its credential slot is granted, so a queued request never shuts out
 * requests for other credentials. Semaphores are resized in place when a cap changes: requests in flight
 * keep counting against the new cap (it is never exceeded by re-setting it), and an unchanged value is a
 * no-op.
 */
import type { Clock } from '../clock.js';
import { Semaphore, type Release } from './semaphore.js';

/** Why a request was refused a permit. */
export type CapRefusal = { reason: 'global_cap' | 'per_credential_cap'; cap: number };

/** Held permits: release them exactly once, or move the credential part to another credential. */
export interface Permit {
  release: Release;
  /** Trades the credential slot for one of `credential`; false (nothing changed) when refused. */
  switchTo(credential: string): Promise<boolean>;
}

/** Live counts for one credential. */
export interface CapCounts {
  in_flight: number;
  queued: number;
}

/** What the registry needs to know about a credential's limits. */
export interface CapConfig {
  max_concurrent: number;
  queue_timeout_ms: number;
}

/** Owns all semaphores and the live in-flight/queued counts. */
export class CapRegistry {
  /** Counts every proxied request in flight; capacity Infinity while there is no global cap. */
  private readonly global: Semaphore;
  private globalCap: number | null = null;
  private readonly perCred = new Map<string, Semaphore>();
  private readonly counts = new Map<string, CapCounts>();

  constructor(
    private readonly clock: Clock,
    private readonly configOf: (name: string) => CapConfig | undefined,
    private readonly onChange: () => void = () => {},
  ) {
    this.global = new Semaphore(Infinity, clock);
  }

  /** The global cap, or null for unlimited. */
  getGlobalCap(): number | null {
    return this.globalCap;
  }

  /**
   * Sets the global cap (null = unlimited). Requests in flight keep their permits and count against the
   * new cap; setting the value it already has changes nothing.
   */
  setGlobalCap(cap: number | null): void {
    if (cap === this.globalCap) return;
    this.globalCap = cap;
    this.global.resize(cap ?? Infinity);
    this.onChange();
  }

  /**
   * Applies `name`'s current configured cap to its semaphore in place (its holders keep counting, its
   * waiters keep their order); forgets it when the credential is gone.
   */
  invalidate(name: string): void {
    const sem = this.perCred.get(name);
    if (sem) {
      const cfg = this.configOf(name);
      if (cfg) sem.resize(cfg.max_concurrent);
      else this.perCred.delete(name);
    }
    this.onChange();
  }

  /** Requests holding a global permit (all proxied requests in flight). */
  globalInFlightCount(): number {
    return this.global.inFlight;
  }

  /** Live counts for `name` (zeros when it has never been used). */
  countsFor(name: string): CapCounts {
    return this.counts.get(name) ?? { in_flight: 0, queued: 0 };
  }

  private bump(name: string, field: keyof CapCounts, by: number): void {
    let c = this.counts.get(name);
    if (!c) this.counts.set(name, (c = { in_flight: 0, queued: 0 }));
    c[field] += by;
  }

  private semaphoreFor(name: string, cfg: CapConfig): Semaphore {
    let s = this.perCred.get(name);
    if (!s) this.perCred.set(name, (s = new Semaphore(cfg.max_concurrent, this.clock)));
    return s;
  }

  /**
   * Takes the permits a request needs: global, then the credential's (when `credential` is set), waiting up
   * to the credential's queue timeout for its slot. Returns one permit for both, or the refusal.
   */
  async acquire(credential: string | null, signal?: AbortSignal | (() => AbortSignal)): Promise<Permit | { refused: CapRefusal } | { aborted: true }> {
    const now = this.tryAcquire(credential, signal);
    if (now) return now;
    // The credential's slots are all taken and it has a queue. A full global cap refuses at once; else wait
    // in the credential's line holding nothing, and take the global slot only once the credential's is
    // granted (never waiting for it while holding the credential's, so no two requests wait on each other).
    if (this.global.inFlight >= this.global.capacity) return { refused: { reason: 'global_cap', cap: this.global.capacity } };
    const cred = await this.acquireCredential(credential!, signal);
    if (!('release' in cred)) return cred;
    const global = this.takeGlobal();
    if ('refused' in global) {
      cred.release();
      return global;
    }
    return this.permit(cred.release, global.drop, signal);
  }

  /**
   * {@link acquire} without waiting: the permit or the refusal at once, or null when the credential's
   * slots are all taken and it has a queue (call `acquire` to wait). The proxy's common path: no promise,
   * no microtask per request.
   */
  tryAcquire(credential: string | null, signal?: AbortSignal | (() => AbortSignal)): Permit | { refused: CapRefusal } | null {
    let sem: Semaphore | null = null;
    if (credential !== null) {
      const cfg = this.configOf(credential);
      if (cfg) {
        sem = this.semaphoreFor(credential, cfg);
        if (sem.inFlight >= sem.capacity && cfg.queue_timeout_ms > 0) return null;
      }
    }
    const global = this.takeGlobal();
    if ('refused' in global) return global;
    if (credential === null || sem === null) {
      this.onChange();
      return this.permit(noop, global.drop, signal);
    }
    const got = sem.tryAcquire();
    if (!got) {
      global.drop();
      return { refused: { reason: 'per_credential_cap', cap: sem.capacity } };
    }
    return this.permit(this.holdCredential(credential, got), global.drop, signal);
  }

  /** Takes a global slot (counted even without a global cap); `drop` gives it back exactly once. */
  private takeGlobal(): { drop: Release } | { refused: CapRefusal } {
    const g = this.global.tryAcquire();
    if (!g) return { refused: { reason: 'global_cap', cap: this.global.capacity } };
    return {
      drop: once(() => {
        g();
        this.onChange();
      }),
    };
  }

  /** One permit over a credential slot and a global one. */
  private permit(releaseCredential: Release, dropGlobal: Release, signal?: AbortSignal | (() => AbortSignal)): Permit {
    let releaseCred = releaseCredential;
    return {
      release: once(() => {
        releaseCred();
        dropGlobal();
      }),
      // Keeps the request's global slot and trades its credential slot for another credential's (a pool
      // replay on the next member): the request never counts twice and never loses its global place.
      switchTo: async (next: string) => {
        const r = await this.acquireCredential(next, signal);
        if (!('release' in r)) return false;
        releaseCred();
        releaseCred = r.release;
        return true;
      },
    };
  }

  /** Counts a held credential slot; the returned release uncounts and frees it exactly once. */
  private holdCredential(credential: string, release: Release): Release {
    this.bump(credential, 'in_flight', 1);
    this.onChange();
    return once(() => {
      this.bump(credential, 'in_flight', -1);
      release();
      this.onChange();
    });
  }

  /** The per-credential part of {@link acquire}. */
  private async acquireCredential(
    credential: string,
    signal?: AbortSignal | (() => AbortSignal),
  ): Promise<{ release: Release } | { refused: CapRefusal } | { aborted: true }> {
    const cfg = this.configOf(credential);
    if (!cfg) return { release: noop };
    const sem = this.semaphoreFor(credential, cfg);
    let got = sem.tryAcquire();
    if (!got && cfg.queue_timeout_ms > 0) {
      this.bump(credential, 'queued', 1);
      this.onChange();
      // The signal is asked for only when the request really has to wait.
      const r = await sem.acquire(cfg.queue_timeout_ms, typeof signal === 'function' ? signal() : signal);
      this.bump(credential, 'queued', -1);
      if (r === 'aborted') return { aborted: true };
      got = typeof r === 'function' ? r : null;
    }
    if (!got) return { refused: { reason: 'per_credential_cap', cap: sem.capacity } };
    return { release: this.holdCredential(credential, got) };
  }
}

function noop(): void {}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
