/** The approval broker: coalescing per host:port, fan-out, first answer wins, timeouts, limits, shutdown. */
import { describe, expect, it } from 'vitest';
import { ApprovalBroker, type ApprovalOutcome, type ApprovalRequest, type BrokerOptions } from '../../../../src/daemon/approval/approval-broker.js';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { SluiceError } from '../../../../src/shared/protocol/error-codes.js';
import type { EventPayloads } from '../../../../src/shared/protocol/events.js';

const TIMEOUT = 120_000;

type BrokerEventType = 'approval.pending' | 'approval.updated' | 'approval.resolved';
type Recorded = { [K in BrokerEventType]: { type: K; payload: EventPayloads[K] } }[BrokerEventType];

function req(host = 'api.anthropic.com', extra: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return { host, port: 443, method: 'POST', path: '/v1/messages', coalesce: true, ...extra };
}

function setup(opts: Partial<BrokerOptions> = {}) {
  const clock = new FakeClock();
  const persisted: { host: string; port: number; verdict: 'allow' | 'deny' }[] = [];
  const events: Recorded[] = [];
  const broker = new ApprovalBroker(
    clock,
    { timeoutMs: TIMEOUT, ...opts },
    (host, port, verdict) => persisted.push({ host, port, verdict }),
    (type, payload) => events.push({ type, payload } as Recorded),
  );
  return { clock, broker, persisted, events };
}

/** Tracks whether a promise has settled, so tests can assert "still waiting". */
function track(p: Promise<ApprovalOutcome>) {
  const t: { done: boolean; value: ApprovalOutcome | undefined; promise: Promise<ApprovalOutcome> } = { done: false, value: undefined, promise: p };
  void p.then((v) => {
    t.done = true;
    t.value = v;
  });
  return t;
}

const flush = () => new Promise<void>((r) => setImmediate(r));

function expectSluiceError(fn: () => unknown, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(SluiceError);
  expect((caught as SluiceError).code).toBe(code);
}

describe('ApprovalBroker coalescing', () => {
  it('folds a burst of 8 asks to one host:port into one prompt with 8 waiters', () => {
    const { broker } = setup();
    for (let i = 0; i < 8; i++) void broker.ask(req());
    const list = broker.list();
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ host: 'api.anthropic.com', port: 443, method: 'POST', path: '/v1/messages', waiters: 8 });
    expect(broker.pendingCount).toBe(1);
  });

  it('keys prompts by host:port: another port or host opens its own prompt, host case does not', () => {
    const { broker } = setup();
    void broker.ask(req('api.anthropic.com'));
    void broker.ask(req('API.Anthropic.COM'));
    void broker.ask(req('api.anthropic.com', { port: 8443 }));
    void broker.ask(req('api.openai.com'));
    expect(broker.list().map((a) => [a.host.toLowerCase(), a.port, a.waiters])).toEqual([
      ['api.anthropic.com', 443, 2],
      ['api.anthropic.com', 8443, 1],
      ['api.openai.com', 443, 1],
    ]);
  });

  it('lists prompts in arrival order with created_at and expires_at one timeout apart', () => {
    const { broker, clock } = setup();
    void broker.ask(req('b.example.com'));
    clock.advance(1_000);
    void broker.ask(req('a.example.com'));
    const list = broker.list();
    expect(list.map((a) => a.host)).toEqual(['b.example.com', 'a.example.com']);
    expect(Date.parse(list[0]!.expires_at) - Date.parse(list[0]!.created_at)).toBe(TIMEOUT);
    expect(list[1]!.created_at).toBe(new Date(clock.now()).toISOString());
  });

  it('answers every waiter with one resolve and returns the waiter count', async () => {
    const { broker } = setup();
    const asks = Array.from({ length: 8 }, () => broker.ask(req()));
    const id = broker.list()[0]!.id;
    expect(broker.resolve(id, 'allow_once')).toMatchObject({ waiters: 8 });
    const outcomes = await Promise.all(asks);
    for (const o of outcomes) expect(o).toEqual({ allowed: true, decision: 'allow_once', approval_id: id });
    expect(broker.list()).toEqual([]);
  });

  it('opens one prompt for 1,000 waiters and answers all of them with one resolve', async () => {
    const { broker, events } = setup({ maxWaiters: 2_000 });
    const asks = Array.from({ length: 1_000 }, () => broker.ask(req()));
    expect(broker.list()).toHaveLength(1);
    expect(broker.list()[0]!.waiters).toBe(1_000);
    expect(events.filter((e) => e.type === 'approval.pending')).toHaveLength(1);
    const id = broker.list()[0]!.id;
    expect(broker.resolve(id, 'deny')).toMatchObject({ waiters: 1_000 });
    const outcomes = await Promise.all(asks);
    expect(outcomes.every((o) => !o.allowed && o.reason === 'denied' && o.approval_id === id)).toBe(true);
  });

  it('opens one prompt per request when coalesce is false', () => {
    const { broker } = setup();
    for (let i = 0; i < 3; i++) void broker.ask(req('api.anthropic.com', { coalesce: false }));
    const list = broker.list();
    expect(list).toHaveLength(3);
    expect(list.every((a) => a.waiters === 1)).toBe(true);
    expect(new Set(list.map((a) => a.id)).size).toBe(3);
  });

  it('does not attach a coalescing request to a prompt opened with coalesce false', () => {
    const { broker } = setup();
    void broker.ask(req('api.anthropic.com', { coalesce: false }));
    void broker.ask(req('api.anthropic.com'));
    expect(broker.list().map((a) => a.waiters)).toEqual([1, 1]);
  });
});

describe('ApprovalBroker answers', () => {
  it('persists an always_allow rule exactly once for host:port, even with many waiters and a second resolve', async () => {
    const { broker, persisted } = setup();
    const asks = Array.from({ length: 20 }, () => broker.ask(req()));
    const id = broker.list()[0]!.id;
    expect(broker.resolve(id, 'always_allow')).toMatchObject({ waiters: 20 });
    expectSluiceError(() => broker.resolve(id, 'always_allow'), 'already_resolved');
    expect(persisted).toEqual([{ host: 'api.anthropic.com', port: 443, verdict: 'allow' }]);
    const outcomes = await Promise.all(asks);
    expect(outcomes.every((o) => o.allowed && o.decision === 'always_allow')).toBe(true);
  });

  it('persists an always_deny rule exactly once and denies every waiter', async () => {
    const { broker, persisted } = setup();
    const asks = Array.from({ length: 5 }, () => broker.ask(req('evil.example.com', { port: 8080 })));
    const id = broker.list()[0]!.id;
    broker.resolve(id, 'always_deny');
    expectSluiceError(() => broker.resolve(id, 'always_deny'), 'already_resolved');
    expect(persisted).toEqual([{ host: 'evil.example.com', port: 8080, verdict: 'deny' }]);
    for (const o of await Promise.all(asks)) expect(o).toEqual({ allowed: false, reason: 'denied', approval_id: id });
  });

  it('does not persist a rule for allow_once or deny', () => {
    const { broker, persisted } = setup();
    void broker.ask(req('a.example.com'));
    void broker.ask(req('b.example.com'));
    const [a, b] = broker.list();
    broker.resolve(a!.id, 'allow_once');
    broker.resolve(b!.id, 'deny');
    expect(persisted).toEqual([]);
  });

  it('keeps the first answer: a later deny throws already_resolved and changes nothing', async () => {
    const { broker } = setup();
    const ask = broker.ask(req());
    const id = broker.list()[0]!.id;
    broker.resolve(id, 'allow_once');
    expectSluiceError(() => broker.resolve(id, 'deny'), 'already_resolved');
    expect(await ask).toEqual({ allowed: true, decision: 'allow_once', approval_id: id });
  });

  it('throws unknown_approval for an id it never issued', () => {
    const { broker } = setup();
    void broker.ask(req());
    expectSluiceError(() => broker.resolve('ap_doesnotexist', 'allow_once'), 'unknown_approval');
    expect(broker.list()[0]!.waiters).toBe(1);
  });

  it('leaves the prompt pending and lets nobody through when persisting an always-* rule fails', async () => {
    const clock = new FakeClock();
    const broker = new ApprovalBroker(clock, { timeoutMs: TIMEOUT }, () => {
      throw new Error('disk full');
    });
    const ask = track(broker.ask(req()));
    const id = broker.list()[0]!.id;
    expect(() => broker.resolve(id, 'always_allow')).toThrow('disk full');
    await flush();
    expect(ask.done).toBe(false);
    expect(broker.list()).toHaveLength(1);
    expect(broker.resolve(id, 'deny')).toMatchObject({ waiters: 1 });
    expect(await ask.promise).toMatchObject({ allowed: false, reason: 'denied' });
  });
});

describe('ApprovalBroker timeout', () => {
  it('denies every waiter with reason timeout once the timeout passes, not before', async () => {
    const { broker, clock, events } = setup();
    const asks = Array.from({ length: 3 }, () => track(broker.ask(req())));
    const id = broker.list()[0]!.id;
    clock.advance(TIMEOUT - 1);
    await flush();
    expect(asks.some((a) => a.done)).toBe(false);
    clock.advance(1);
    for (const a of asks) expect(await a.promise).toEqual({ allowed: false, reason: 'timeout', approval_id: id });
    expect(broker.list()).toEqual([]);
    expect(events.at(-1)).toEqual({ type: 'approval.resolved', payload: { id, decision: 'deny', waiters: 3, reason: 'timeout' } });
  });

  it('reports already_resolved when someone answers a prompt that timed out', () => {
    const { broker, clock } = setup();
    void broker.ask(req());
    const id = broker.list()[0]!.id;
    clock.advance(TIMEOUT);
    expectSluiceError(() => broker.resolve(id, 'allow_once'), 'already_resolved');
  });

  it('does not fire the timeout for a prompt that was answered', async () => {
    const { broker, clock, events } = setup();
    const ask = broker.ask(req());
    broker.resolve(broker.list()[0]!.id, 'allow_once');
    clock.advance(TIMEOUT * 2);
    expect((await ask).allowed).toBe(true);
    expect(events.filter((e) => e.type === 'approval.resolved')).toHaveLength(1);
  });
});

describe('ApprovalBroker waiters that leave', () => {
  it('detaches an aborted waiter while the others still get the answer', async () => {
    const { broker } = setup();
    const leaving = new AbortController();
    const a = broker.ask(req(), leaving.signal);
    const b = broker.ask(req());
    const c = broker.ask(req());
    leaving.abort();
    const id = broker.list()[0]!.id;
    expect(await a).toEqual({ allowed: false, reason: 'aborted', approval_id: id });
    expect(broker.list()[0]!.waiters).toBe(2);
    expect(broker.resolve(id, 'allow_once')).toMatchObject({ waiters: 2 });
    expect((await b).allowed).toBe(true);
    expect((await c).allowed).toBe(true);
  });

  it('keeps the prompt with 0 waiters when the last waiter leaves, and a later ask re-attaches to it', async () => {
    const { broker } = setup();
    const ac = new AbortController();
    const first = broker.ask(req(), ac.signal);
    const id = broker.list()[0]!.id;
    ac.abort();
    expect((await first).allowed).toBe(false);
    expect(broker.list()).toEqual([expect.objectContaining({ id, waiters: 0 })]);
    const second = broker.ask(req());
    expect(broker.list()).toEqual([expect.objectContaining({ id, waiters: 1 })]);
    expect(broker.resolve(id, 'allow_once')).toMatchObject({ waiters: 1 });
    expect(await second).toEqual({ allowed: true, decision: 'allow_once', approval_id: id });
  });

  it('answers a request whose signal is already aborted without making it a waiter', async () => {
    const { broker } = setup();
    void broker.ask(req());
    const ac = new AbortController();
    ac.abort();
    const outcome = await broker.ask(req(), ac.signal);
    expect(outcome).toMatchObject({ allowed: false, reason: 'aborted' });
    expect(broker.list()[0]!.waiters).toBe(1);
  });

  it('ignores an abort that arrives after the answer', async () => {
    const { broker, events } = setup();
    const ac = new AbortController();
    const ask = broker.ask(req(), ac.signal);
    broker.resolve(broker.list()[0]!.id, 'allow_once');
    ac.abort();
    expect((await ask).allowed).toBe(true);
    expect(events.filter((e) => e.type === 'approval.updated')).toEqual([]);
  });
});

describe('ApprovalBroker limits', () => {
  it('refuses the 257th waiter on one prompt with too_many_waiting', async () => {
    const { broker } = setup();
    for (let i = 0; i < 256; i++) void broker.ask(req());
    const id = broker.list()[0]!.id;
    expect(await broker.ask(req())).toEqual({ allowed: false, reason: 'too_many_waiting', approval_id: id });
    expect(broker.list()[0]!.waiters).toBe(256);
    expect(broker.resolve(id, 'deny')).toMatchObject({ waiters: 256 });
  });

  it('refuses a 51st destination with queue_full while requests to pending destinations still coalesce', async () => {
    const { broker } = setup();
    for (let i = 0; i < 50; i++) void broker.ask(req(`h${i}.example.com`));
    expect(await broker.ask(req('h50.example.com'))).toEqual({ allowed: false, reason: 'queue_full', approval_id: null });
    expect(broker.pendingCount).toBe(50);
    void broker.ask(req('h7.example.com'));
    expect(broker.list().find((a) => a.host === 'h7.example.com')!.waiters).toBe(2);
  });

  it('makes room for a new destination once a pending prompt is answered', async () => {
    const { broker } = setup({ maxPending: 1 });
    void broker.ask(req('a.example.com'));
    expect((await broker.ask(req('b.example.com'))).allowed).toBe(false);
    broker.resolve(broker.list()[0]!.id, 'deny');
    void broker.ask(req('b.example.com'));
    expect(broker.list().map((a) => a.host)).toEqual(['b.example.com']);
  });
});

describe('ApprovalBroker shutdown', () => {
  it('denies every pending prompt with reason shutdown and refuses later asks', async () => {
    const { broker, events } = setup();
    const a = broker.ask(req('a.example.com'));
    const b = broker.ask(req('b.example.com'));
    const [pa, pb] = broker.list();
    broker.shutdown();
    expect(await a).toEqual({ allowed: false, reason: 'shutdown', approval_id: pa!.id });
    expect(await b).toEqual({ allowed: false, reason: 'shutdown', approval_id: pb!.id });
    expect(broker.list()).toEqual([]);
    expect(await broker.ask(req('c.example.com'))).toEqual({ allowed: false, reason: 'shutdown', approval_id: null });
    expect(broker.list()).toEqual([]);
    const resolved = events.filter((e) => e.type === 'approval.resolved').map((e) => e.payload);
    expect(resolved).toEqual([
      { id: pa!.id, decision: 'deny', waiters: 1, reason: 'shutdown' },
      { id: pb!.id, decision: 'deny', waiters: 1, reason: 'shutdown' },
    ]);
  });
});

describe('ApprovalBroker events', () => {
  it('emits pending once, updated with each new waiter count, and resolved with the final count', () => {
    const { broker, events } = setup();
    for (let i = 0; i < 3; i++) void broker.ask(req());
    const id = broker.list()[0]!.id;
    broker.resolve(id, 'allow_once');
    expect(events.map((e) => e.type)).toEqual(['approval.pending', 'approval.updated', 'approval.updated', 'approval.resolved']);
    expect(events[0]!.payload).toEqual({ approval: expect.objectContaining({ id, host: 'api.anthropic.com', port: 443, waiters: 1 }) });
    expect(events[1]!.payload).toEqual({ id, waiters: 2 });
    expect(events[2]!.payload).toEqual({ id, waiters: 3 });
    expect(events[3]!.payload).toEqual({ id, decision: 'allow_once', waiters: 3, reason: 'answered' });
  });

  it('emits updated with the lower count when a waiter leaves', () => {
    const { broker, events } = setup();
    const ac = new AbortController();
    void broker.ask(req(), ac.signal);
    void broker.ask(req());
    const id = broker.list()[0]!.id;
    ac.abort();
    expect(events.at(-1)).toEqual({ type: 'approval.updated', payload: { id, waiters: 1 } });
  });

  it('publishes the new waiter count when a request re-attaches to a prompt whose waiters all left', () => {
    const { broker, events } = setup();
    const ac = new AbortController();
    void broker.ask(req(), ac.signal);
    const id = broker.list()[0]!.id;
    ac.abort();
    expect(events.at(-1)).toEqual({ type: 'approval.updated', payload: { id, waiters: 0 } });
    void broker.ask(req());
    // Subscribers last heard "0 waiters"; without a new event the dashboard keeps showing 0.
    expect(events.at(-1)).toEqual({ type: 'approval.updated', payload: { id, waiters: 1 } });
  });
});

describe('ApprovalBroker: which agents ask', () => {
  it('names the agents waiting on a prompt (once each, in arrival order) and announces a newcomer', () => {
    const { broker, events } = setup();
    void broker.ask(req('api.openai.com', { agent: 'claude' }));
    void broker.ask(req('api.openai.com', { agent: 'claude' }));
    void broker.ask(req('api.openai.com', { agent: 'codex' }));
    void broker.ask(req('api.openai.com'));
    const [prompt] = broker.list();
    expect(prompt!.agents).toEqual(['claude', 'codex']);
    expect(prompt!.waiters).toBe(4);
    const updates = events.filter((e) => e.type === 'approval.updated').map((e) => e.payload as EventPayloads['approval.updated']);
    expect(updates.at(-1)).toEqual({ id: prompt!.id, waiters: 4, agents: ['claude', 'codex'] });
  });
});
