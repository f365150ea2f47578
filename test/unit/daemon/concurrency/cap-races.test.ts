/** Issue 22 items 1–2: resizing caps under load, and a queued request holding no global slot. */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { CapRegistry, type CapConfig } from '../../../../src/daemon/concurrency/cap-registry.js';
import { Semaphore, type Release } from '../../../../src/daemon/concurrency/semaphore.js';

const flush = () => new Promise<void>((r) => setImmediate(r));

function setup(configs: Record<string, CapConfig>) {
  const clock = new FakeClock();
  const caps = new CapRegistry(clock, (name) => configs[name]);
  return { clock, caps, configs };
}

async function admit(caps: CapRegistry, credential: string | null): Promise<Release> {
  const r = await caps.acquire(credential);
  if (!('release' in r)) throw new Error(`expected a permit, got ${JSON.stringify(r)}`);
  return r.release;
}

describe('issue 22 #1: re-setting the global cap', () => {
  it('setting the same global cap again lets nobody extra in', async () => {
    const { caps } = setup({});
    caps.setGlobalCap(2);
    await admit(caps, null);
    await admit(caps, null);
    caps.setGlobalCap(2);
    expect(await caps.acquire(null)).toEqual({ refused: { reason: 'global_cap', cap: 2 } });
    expect(caps.globalInFlightCount()).toBe(2);
  });

  it('raising the cap from 2 to 3 while 2 are in flight admits exactly one more', async () => {
    const { caps } = setup({});
    caps.setGlobalCap(2);
    await admit(caps, null);
    await admit(caps, null);
    caps.setGlobalCap(3);
    await admit(caps, null);
    expect(await caps.acquire(null)).toEqual({ refused: { reason: 'global_cap', cap: 3 } });
  });

  it('lowering the cap below the in-flight count admits nobody until the count drops below it', async () => {
    const { caps } = setup({});
    caps.setGlobalCap(3);
    const held = [await admit(caps, null), await admit(caps, null), await admit(caps, null)];
    caps.setGlobalCap(1);
    held[0]!();
    expect('refused' in (await caps.acquire(null))).toBe(true);
    held[1]!();
    expect('refused' in (await caps.acquire(null))).toBe(true);
    held[2]!();
    await admit(caps, null);
    expect(caps.globalInFlightCount()).toBe(1);
  });

  it('a cap set while unlimited counts the requests already in flight', async () => {
    const { caps } = setup({});
    await admit(caps, null);
    await admit(caps, null);
    caps.setGlobalCap(2);
    expect(await caps.acquire(null)).toEqual({ refused: { reason: 'global_cap', cap: 2 } });
  });

  it('a per-credential cap change keeps waiters in order and counts holders (invalidate resizes)', async () => {
    const { caps, configs, clock } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 10_000 } });
    const first = await admit(caps, 'a');
    const order: string[] = [];
    const w1 = caps.acquire('a').then((r) => (order.push('w1'), r));
    const w2 = caps.acquire('a').then((r) => (order.push('w2'), r));
    await flush();
    // Same value: nothing changes for anyone.
    caps.invalidate('a');
    const late = caps.tryAcquire('a');
    expect(late).toBeNull(); // still full: the newcomer must queue behind w1 and w2
    configs.a!.max_concurrent = 2;
    caps.invalidate('a');
    await flush();
    expect(order).toEqual(['w1']);
    first();
    await flush();
    expect(order).toEqual(['w1', 'w2']);
    expect(caps.countsFor('a')).toEqual({ in_flight: 2, queued: 0 });
    clock.advance(1);
    for (const w of [await w1, await w2]) if ('release' in w) w.release();
    expect(caps.countsFor('a').in_flight).toBe(0);
  });
});

describe('issue 22 #1: Semaphore.resize', () => {
  it('raising wakes waiters in arrival order; lowering admits nobody new until below the cap', async () => {
    const s = new Semaphore(1, new FakeClock());
    const a = s.tryAcquire()!;
    const got: string[] = [];
    const p1 = s.acquire(10_000).then((r) => (got.push('1'), r));
    const p2 = s.acquire(10_000).then((r) => (got.push('2'), r));
    s.resize(2);
    await flush();
    expect(got).toEqual(['1']);
    s.resize(1);
    a();
    await flush();
    // a's slot no longer exists (cap 1, one holder): waiter 2 keeps waiting.
    expect(got).toEqual(['1']);
    expect(s.inFlight).toBe(1);
    const r1 = (await p1) as Release;
    r1();
    await flush();
    expect(got).toEqual(['1', '2']);
    ((await p2) as Release)();
    expect(s.inFlight).toBe(0);
  });
});

describe('issue 22 #2: a request queued for a credential holds no global slot', () => {
  it('a request for another credential is admitted while one waits in a queue under global cap 2', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 10_000 }, b: { max_concurrent: 4, queue_timeout_ms: 0 } });
    caps.setGlobalCap(2);
    const ra = await admit(caps, 'a');
    const queued = caps.acquire('a');
    await flush();
    expect(caps.countsFor('a')).toEqual({ in_flight: 1, queued: 1 });
    expect(caps.globalInFlightCount()).toBe(1);
    const rb = await admit(caps, 'b');
    expect(caps.globalInFlightCount()).toBe(2);
    // The queued request is granted its credential slot when `a` frees one, and takes the global one then.
    ra();
    const q = await queued;
    expect('release' in q).toBe(true);
    expect(caps.globalInFlightCount()).toBe(2);
    rb();
    if ('release' in q) q.release();
    expect(caps.globalInFlightCount()).toBe(0);
    expect(caps.countsFor('a')).toEqual({ in_flight: 0, queued: 0 });
  });

  it('a queued request takes its global slot only once its credential slot is granted', async () => {
    const { caps } = setup({ a: { max_concurrent: 1, queue_timeout_ms: 10_000 }, b: { max_concurrent: 4, queue_timeout_ms: 0 } });
    caps.setGlobalCap(2);
    const ra = await admit(caps, 'a');
    const queued = caps.acquire('a');
    await flush();
    await admit(caps, 'b');
    ra(); // frees a global slot and hands a's slot to the waiter
    // The waiter takes the global slot ra just freed.
    const q = await queued;
    expect('release' in q).toBe(true);
    expect(caps.countsFor('a').in_flight).toBe(1);
  });
});
