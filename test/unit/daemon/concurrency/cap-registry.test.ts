/** The cap registry: per-credential and global caps, bounded wait queue, live counts, cap changes. */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { CapRegistry, type CapConfig } from '../../../../src/daemon/concurrency/cap-registry.js';
import type { Release } from '../../../../src/daemon/concurrency/semaphore.js';

const flush = () => new Promise<void>((r) => setImmediate(r));

function setup(configs: Record<string, CapConfig>) {
  const clock = new FakeClock();
  let changes = 0;
  const caps = new CapRegistry(
    clock,
    (name) => configs[name],
    () => changes++,
  );
  return { clock, caps, configs, changes: () => changes };
}

async function admit(caps: CapRegistry, credential: string | null, signal?: AbortSignal): Promise<Release> {
  const r = await caps.acquire(credential, signal);
  if (!('release' in r)) throw new Error(`expected a permit, got ${JSON.stringify(r)}`);
  return r.release;
}

describe('CapRegistry per-credential cap', () => {
  it('admits N requests under cap N and refuses the next with per_credential_cap and the cap', async () => {
    const { caps } = setup({ a: { max_concurrent: 2, queue_timeout_ms: 0 } });
    await admit(caps, 'a');
    await admit(caps, 'a');
    expect(await caps.acquire('a')).toEqual({ refused: { reason: 'per_credential_cap', cap: 2 } });
    expect(caps.countsFor('a')).toEqual({ in_flight: 2, queued: 0 });
  });

  it('does not count a refused request as in flight, globally or for the credential', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 0 } });
    await admit(caps, 'a');
    await caps.acquire('a');
    expect(caps.globalInFlightCount()).toBe(1);
    expect(caps.countsFor('a').in_flight).toBe(1);
  });

  it('keeps caps separate per credential', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 0 }, b: { max_concurrent: 1, queue_timeout_ms: 0 } });
    await admit(caps, 'a');
    await admit(caps, 'b');
    expect(caps.countsFor('a').in_flight).toBe(1);
    expect(caps.countsFor('b').in_flight).toBe(1);
  });

  it('frees one slot only when a release is called twice', async () => {
    const { caps } = setup({ a: { max_concurrent: 2, queue_timeout_ms: 0 } });
    const r1 = await admit(caps, 'a');
    await admit(caps, 'a');
    r1();
    r1();
    expect(caps.countsFor('a').in_flight).toBe(1);
    expect(caps.globalInFlightCount()).toBe(1);
    await admit(caps, 'a');
    expect(await caps.acquire('a')).toEqual({ refused: { reason: 'per_credential_cap', cap: 2 } });
  });

  it('returns every count to exactly 0 when all requests finish', async () => {
    const { caps } = setup({ a: { max_concurrent: 3, queue_timeout_ms: 0 }, b: { max_concurrent: 3, queue_timeout_ms: 0 } });
    const releases = [await admit(caps, 'a'), await admit(caps, 'a'), await admit(caps, 'b'), await admit(caps, null)];
    expect(caps.globalInFlightCount()).toBe(4);
    for (const r of releases) {
      r();
      r();
    }
    expect(caps.globalInFlightCount()).toBe(0);
    expect(caps.countsFor('a')).toEqual({ in_flight: 0, queued: 0 });
    expect(caps.countsFor('b')).toEqual({ in_flight: 0, queued: 0 });
  });

  it('reports zeros for a credential it has never seen', () => {
    const { caps } = setup({});
    expect(caps.countsFor('nobody')).toEqual({ in_flight: 0, queued: 0 });
  });

  it('admits requests without a credential, or with an unknown one, under the global cap only', async () => {
    const { caps } = setup({});
    await admit(caps, null);
    await admit(caps, 'unknown');
    expect(caps.globalInFlightCount()).toBe(2);
  });
});

describe('CapRegistry global cap', () => {
  it('refuses a second credential that still has its own budget once the global cap is reached', async () => {
    const { caps } = setup({ a: { max_concurrent: 8, queue_timeout_ms: 0 }, b: { max_concurrent: 8, queue_timeout_ms: 0 } });
    caps.setGlobalCap(2);
    await admit(caps, 'a');
    await admit(caps, 'a');
    expect(await caps.acquire('b')).toEqual({ refused: { reason: 'global_cap', cap: 2 } });
    expect(caps.countsFor('b')).toEqual({ in_flight: 0, queued: 0 });
    expect(caps.globalInFlightCount()).toBe(2);
  });

  it('gives back the global permit when the per-credential cap refuses', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 0 }, b: { max_concurrent: 1, queue_timeout_ms: 0 } });
    caps.setGlobalCap(2);
    await admit(caps, 'a');
    expect(await caps.acquire('a')).toMatchObject({ refused: { reason: 'per_credential_cap' } });
    // Had the refused request kept its global permit, b would now hit the global cap.
    await admit(caps, 'b');
    expect(caps.globalInFlightCount()).toBe(2);
  });

  it('admits again after a release frees a global slot', async () => {
    const { caps } = setup({});
    caps.setGlobalCap(1);
    const r = await admit(caps, null);
    expect(await caps.acquire(null)).toEqual({ refused: { reason: 'global_cap', cap: 1 } });
    r();
    await admit(caps, null);
  });

  it('treats setGlobalCap(null) as unlimited', async () => {
    const { caps } = setup({});
    caps.setGlobalCap(1);
    await admit(caps, null);
    caps.setGlobalCap(null);
    expect(caps.getGlobalCap()).toBeNull();
    for (let i = 0; i < 500; i++) await admit(caps, null);
    expect(caps.globalInFlightCount()).toBe(501);
  });

  it('reports the configured global cap and notifies listeners of the change', () => {
    const { caps, changes } = setup({});
    const before = changes();
    caps.setGlobalCap(5);
    expect(caps.getGlobalCap()).toBe(5);
    expect(changes()).toBeGreaterThan(before);
  });
});

describe('CapRegistry wait queue', () => {
  it('queues while full and hands slots out in FIFO order', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 5_000 } });
    const holder = await admit(caps, 'a');
    const order: string[] = [];
    const releases = new Map<string, Release>();
    const waits = ['w1', 'w2', 'w3'].map((name) =>
      caps.acquire('a').then((r) => {
        order.push(name);
        if ('release' in r) releases.set(name, r.release);
      }),
    );
    await flush();
    expect(caps.countsFor('a')).toEqual({ in_flight: 1, queued: 3 });
    holder();
    await flush();
    expect(order).toEqual(['w1']);
    expect(caps.countsFor('a')).toEqual({ in_flight: 1, queued: 2 });
    releases.get('w1')!();
    await flush();
    releases.get('w2')!();
    await Promise.all(waits);
    expect(order).toEqual(['w1', 'w2', 'w3']);
    releases.get('w3')!();
    expect(caps.countsFor('a')).toEqual({ in_flight: 0, queued: 0 });
    expect(caps.globalInFlightCount()).toBe(0);
  });

  it('refuses with per_credential_cap when queue_timeout_ms passes, and leaves no queued or global count', async () => {
    const { caps, clock } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 2_000 } });
    const holder = await admit(caps, 'a');
    let outcome: unknown;
    void caps.acquire('a').then((r) => (outcome = r));
    await flush();
    expect(caps.countsFor('a').queued).toBe(1);
    // A queued request holds no global slot (issue 22 #2).
    expect(caps.globalInFlightCount()).toBe(1);
    clock.advance(1_999);
    await flush();
    expect(outcome).toBeUndefined();
    clock.advance(1);
    await flush();
    expect(outcome).toEqual({ refused: { reason: 'per_credential_cap', cap: 1 } });
    expect(caps.countsFor('a')).toEqual({ in_flight: 1, queued: 0 });
    expect(caps.globalInFlightCount()).toBe(1);
    holder();
    expect(caps.globalInFlightCount()).toBe(0);
  });

  it('lets an aborted waiter leave the queue without taking the slot that frees later', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 5_000 } });
    const holder = await admit(caps, 'a');
    const ac = new AbortController();
    const waiting = caps.acquire('a', ac.signal);
    await flush();
    ac.abort();
    expect(await waiting).toEqual({ aborted: true });
    expect(caps.countsFor('a')).toEqual({ in_flight: 1, queued: 0 });
    holder();
    expect(caps.countsFor('a')).toEqual({ in_flight: 0, queued: 0 });
    expect(caps.globalInFlightCount()).toBe(0);
    await admit(caps, 'a');
  });

  it('reads queue_timeout_ms through configOf: 0 refuses at once without queueing', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 0 } });
    await admit(caps, 'a');
    expect(await caps.acquire('a')).toMatchObject({ refused: { reason: 'per_credential_cap' } });
    expect(caps.countsFor('a').queued).toBe(0);
  });
});

describe('CapRegistry cap changes', () => {
  it('applies a lowered cap to the next request and counts the permits still held against it', async () => {
    const { caps, configs } = setup({ a: { max_concurrent: 2, queue_timeout_ms: 0 } });
    const old1 = await admit(caps, 'a');
    const old2 = await admit(caps, 'a');
    configs.a = { max_concurrent: 1, queue_timeout_ms: 0 };
    caps.invalidate('a');
    expect(await caps.acquire('a')).toEqual({ refused: { reason: 'per_credential_cap', cap: 1 } });
    expect(caps.countsFor('a').in_flight).toBe(2);
    // One release leaves one holder: still at the new cap of 1.
    old1();
    expect(await caps.acquire('a')).toEqual({ refused: { reason: 'per_credential_cap', cap: 1 } });
    old2();
    const fresh = await admit(caps, 'a');
    fresh();
    expect(caps.countsFor('a').in_flight).toBe(0);
    expect(caps.globalInFlightCount()).toBe(0);
    await admit(caps, 'a');
  });

  it('keeps using the old cap until invalidate is called', async () => {
    const { caps, configs } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 0 } });
    await admit(caps, 'a');
    configs.a = { max_concurrent: 5, queue_timeout_ms: 0 };
    expect(await caps.acquire('a')).toEqual({ refused: { reason: 'per_credential_cap', cap: 1 } });
    caps.invalidate('a');
    await admit(caps, 'a');
  });

  it('raising a cap with invalidate admits up to the new cap at once, counting the holder', async () => {
    const { caps, configs } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 0 } });
    await admit(caps, 'a');
    configs.a = { max_concurrent: 3, queue_timeout_ms: 0 };
    caps.invalidate('a');
    await admit(caps, 'a');
    await admit(caps, 'a');
    expect(await caps.acquire('a')).toEqual({ refused: { reason: 'per_credential_cap', cap: 3 } });
  });
});

describe('CapRegistry.tryAcquire (the proxy path: no promise when nothing waits)', () => {
  it('gives a permit at once while slots are free, counted like acquire and released once', () => {
    const { caps } = setup({ a: { max_concurrent: 2, queue_timeout_ms: 0 } });
    const p = caps.tryAcquire('a');
    expect(p && 'release' in p).toBe(true);
    expect(caps.countsFor('a').in_flight).toBe(1);
    expect(caps.globalInFlightCount()).toBe(1);
    (p as { release: Release }).release();
    (p as { release: Release }).release();
    expect(caps.countsFor('a').in_flight).toBe(0);
    expect(caps.globalInFlightCount()).toBe(0);
  });

  it('refuses at once, holding nothing, when the credential is full and has no queue', () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 0 } });
    caps.tryAcquire('a');
    expect(caps.tryAcquire('a')).toEqual({ refused: { reason: 'per_credential_cap', cap: 1 } });
    expect(caps.globalInFlightCount()).toBe(1);
    expect(caps.countsFor('a')).toEqual({ in_flight: 1, queued: 0 });
  });

  it('returns null, taking nothing, when the credential is full and has a queue (acquire then waits)', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 1000 } });
    const first = caps.tryAcquire('a') as { release: Release };
    expect(caps.tryAcquire('a')).toBeNull();
    expect(caps.globalInFlightCount()).toBe(1);
    let got: unknown = null;
    void caps.acquire('a').then((r) => (got = r));
    await flush();
    expect(caps.countsFor('a')).toEqual({ in_flight: 1, queued: 1 });
    first.release();
    await flush();
    expect(got && typeof got === 'object' && 'release' in got).toBe(true);
    expect(caps.countsFor('a')).toEqual({ in_flight: 1, queued: 0 });
  });

  it('refuses at once on the global cap, whatever the credential', () => {
    const { caps } = setup({ a: { max_concurrent: 5, queue_timeout_ms: 1000 } });
    caps.setGlobalCap(1);
    caps.tryAcquire(null);
    expect(caps.tryAcquire('a')).toEqual({ refused: { reason: 'global_cap', cap: 1 } });
    expect(caps.countsFor('a').in_flight).toBe(0);
  });
});
