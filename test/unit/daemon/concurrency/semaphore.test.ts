/** The counting semaphore: capacity, idempotent release, FIFO wait, timeout and abort. */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { Semaphore, type AcquireFailure, type Release } from '../../../../src/daemon/concurrency/semaphore.js';

const flush = () => new Promise<void>((r) => setImmediate(r));

function take(s: Semaphore): Release {
  const r = s.tryAcquire();
  if (!r) throw new Error('expected a free permit');
  return r;
}

describe('Semaphore', () => {
  it('admits capacity permits and refuses the next one', () => {
    const s = new Semaphore(3, new FakeClock());
    for (let i = 0; i < 3; i++) expect(s.tryAcquire()).toBeTypeOf('function');
    expect(s.tryAcquire()).toBeNull();
    expect(s.inFlight).toBe(3);
  });

  it('frees exactly one slot when the same release is called twice', () => {
    const s = new Semaphore(2, new FakeClock());
    const a = take(s);
    take(s);
    a();
    a();
    expect(s.inFlight).toBe(1);
    expect(s.tryAcquire()).toBeTypeOf('function');
    expect(s.tryAcquire()).toBeNull();
  });

  it('answers full at once when no wait is allowed', async () => {
    const s = new Semaphore(1, new FakeClock());
    take(s);
    expect(await s.acquire(0)).toBe('full');
    expect(s.queued).toBe(0);
  });

  it('hands freed permits to waiters in arrival order', async () => {
    const s = new Semaphore(1, new FakeClock());
    const holder = take(s);
    const order: string[] = [];
    const releases = new Map<string, Release>();
    const waits = ['b', 'c', 'd'].map((name) =>
      s.acquire(10_000).then((r) => {
        order.push(name);
        if (typeof r === 'function') releases.set(name, r);
      }),
    );
    expect(s.queued).toBe(3);
    holder();
    await flush();
    expect(order).toEqual(['b']);
    expect(s.inFlight).toBe(1);
    releases.get('b')!();
    await flush();
    releases.get('c')!();
    await Promise.all(waits);
    expect(order).toEqual(['b', 'c', 'd']);
    releases.get('d')!();
    expect(s.inFlight).toBe(0);
    expect(s.queued).toBe(0);
  });

  it('gives up after waitMs with timeout and leaves the queue without taking a slot', async () => {
    const clock = new FakeClock();
    const s = new Semaphore(1, clock);
    const holder = take(s);
    let result: Release | AcquireFailure | undefined;
    void s.acquire(500).then((r) => (result = r));
    clock.advance(499);
    await flush();
    expect(result).toBeUndefined();
    clock.advance(1);
    await flush();
    expect(result).toBe('timeout');
    expect(s.queued).toBe(0);
    holder();
    expect(s.inFlight).toBe(0);
  });

  it('lets an aborted waiter leave the queue; the freed permit goes to the next waiter, not to it', async () => {
    const s = new Semaphore(1, new FakeClock());
    const holder = take(s);
    const ac = new AbortController();
    const first = s.acquire(10_000, ac.signal);
    const second = s.acquire(10_000);
    ac.abort();
    expect(await first).toBe('aborted');
    expect(s.queued).toBe(1);
    holder();
    const r = await second;
    expect(r).toBeTypeOf('function');
    expect(s.inFlight).toBe(1);
    (r as Release)();
    expect(s.inFlight).toBe(0);
  });

  it('refuses at once when the signal is already aborted', async () => {
    const s = new Semaphore(1, new FakeClock());
    take(s);
    const ac = new AbortController();
    ac.abort();
    expect(await s.acquire(1_000, ac.signal)).toBe('aborted');
    expect(s.queued).toBe(0);
  });

  it('does not let a new arrival jump ahead of a waiter when a permit is released', async () => {
    const s = new Semaphore(1, new FakeClock());
    const holder = take(s);
    const waiting = s.acquire(1_000);
    holder();
    expect(s.tryAcquire()).toBeNull();
    expect(await waiting).toBeTypeOf('function');
  });
});
