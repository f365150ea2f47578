import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LimitsInfo } from '../../../src/shared/protocol/entities.js';
import { RpcError } from '../../../src/shared/rpc/client.js';
import { AppContainer } from '../../../src/tui/components/AppContainer.js';
import { APPLY_HINT } from '../../../src/tui/components/NumberField.js';
import { FakeDaemonClient, approval, credential, ev, iso, pool, snapshot, T0, tick } from './fixtures.js';

const KEY = { up: '\u001B[A', down: '\u001B[B', tab: '\t', enter: '\r', esc: '\u001B', backspace: '\u007F' };

afterEach(() => cleanup());

function limitsWith(cap: number, global: number | null = null): LimitsInfo {
  return { global, credentials: [{ name: 'anthropic', max_concurrent: cap, queue_timeout_ms: 0, in_flight: 0, queued: 0 }] };
}

function daemon() {
  return new FakeDaemonClient(
    {
      'approval.resolve': (p) => ({ id: p.id, decision: p.decision, waiters: p.id === 'a1' ? 8 : 1 }),
      'pool.rotate': () => ({ pool: pool({ active: 'bob' }), from: 'alice', to: 'bob' }),
      'limits.set': (p) => limitsWith(typeof p.max_concurrent === 'number' ? p.max_concurrent : 8, (p.global as number | null | undefined) ?? null),
    },
    snapshot({
      approvals: [
        approval({ id: 'a1', waiters: 8 }),
        approval({ id: 'a2', host: 'api.openai.com', path: '/v1/responses', created_at: iso(T0 + 1000) }),
      ],
      credentials: [credential({ max_concurrent: 8 })],
      pools: [pool()],
    }),
    3,
  );
}

async function start(client = daemon()) {
  const app = render(<AppContainer connect={async () => client} initialClient={client} now={() => T0 + 10_000} batchMs={1} />);
  await tick();
  await tick();
  return { ...app, client };
}

async function press(app: { stdin: { write(s: string): void } }, ...keys: string[]) {
  for (const k of keys) {
    app.stdin.write(k);
    await tick();
  }
}

describe('approval keys', () => {
  it('a on the focused row calls approval.resolve allow_once with its id and shows the result at once', async () => {
    const app = await start();
    expect(app.lastFrame()).toContain('› api.anthropic.com:443');
    await press(app, 'a');
    expect(app.client.callsTo('approval.resolve')).toEqual([{ id: 'a1', decision: 'allow_once' }]);
    await tick();
    expect(app.lastFrame()).toContain('allowed api.anthropic.com:443 (8 requests)');
    expect(app.lastFrame()).not.toContain('› api.anthropic.com:443');
  });

  it('A always-allows the row the cursor was moved to', async () => {
    const app = await start();
    await press(app, 'j', 'A');
    expect(app.client.callsTo('approval.resolve')).toEqual([{ id: 'a2', decision: 'always_allow' }]);
  });

  it('d and D deny and always-deny', async () => {
    const app = await start();
    await press(app, 'd');
    await tick();
    await press(app, 'D');
    expect(app.client.callsTo('approval.resolve')).toEqual([
      { id: 'a1', decision: 'deny' },
      { id: 'a2', decision: 'always_deny' },
    ]);
  });

  it('an approval that is already resolved disappears with an explanation', async () => {
    const client = daemon();
    client.handlers['approval.resolve'] = () => {
      throw new RpcError('already_resolved', 'Approval already resolved', -32010);
    };
    const app = await start(client);
    await press(app, 'a');
    await tick();
    expect(app.lastFrame()).toContain('api.anthropic.com:443 was already answered');
  });

  it('shows new prompts and waiter counts live from events', async () => {
    const app = await start();
    app.client.emit(ev(4, 'approval.updated', { id: 'a1', waiters: 31 }));
    await vi.waitFor(() => expect(app.lastFrame()).toContain('×31'));
  });
});

describe('pool keys', () => {
  it('r on the selected pool calls pool.rotate and shows the new active member', async () => {
    const app = await start();
    await press(app, KEY.tab, KEY.tab);
    expect(app.lastFrame()).toContain('▶ POOLS');
    await press(app, 'r');
    expect(app.client.callsTo('pool.rotate')).toEqual([{ name: 'codex' }]);
    await tick();
    expect(app.lastFrame()).toMatch(/alice ok · ▶bob ok/);
  });
});

describe('cap field (issue 12)', () => {
  it('c opens the field pre-filled with the cap; 300 shows the inline error and enter sends nothing', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c');
    expect(app.lastFrame()).toContain('cap for anthropic: 8');
    expect(app.lastFrame()).toContain(APPLY_HINT);
    await press(app, '3', '0', '0');
    expect(app.lastFrame()).toContain('cap for anthropic: 300');
    expect(app.lastFrame()).toContain('✗ max_concurrent must be between 1 and 256');
    await press(app, KEY.enter);
    expect(app.client.callsTo('limits.set')).toEqual([]);
    expect(app.lastFrame()).toContain('cap for anthropic: 300');
  });

  it('typing 12 and enter calls limits.set and the row shows cap 12 at once', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c', '1', '2', KEY.enter);
    expect(app.client.callsTo('limits.set')).toEqual([{ cred: 'anthropic', max_concurrent: 12 }]);
    await tick();
    expect(app.lastFrame()).not.toContain('✎');
    expect(app.lastFrame()).toContain('cap 12');
    expect(app.lastFrame()).toContain('cap for anthropic: 8 → 12 (applies to the next request)');
  });

  it('backspace edits the value', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c', '3', '0', '0', KEY.backspace, KEY.backspace, KEY.enter);
    expect(app.client.callsTo('limits.set')).toEqual([{ cred: 'anthropic', max_concurrent: 3 }]);
  });

  it('handles keys that arrive in one read (fast typing, tmux send-keys)', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c', '300');
    expect(app.lastFrame()).toContain('cap for anthropic: 300');
    await press(app, '\u007F\u007F\u007F12\r');
    expect(app.client.callsTo('limits.set')).toEqual([{ cred: 'anthropic', max_concurrent: 12 }]);
  });

  it('esc cancels without a call, and letters typed into the field do nothing', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c', 'a', 'q');
    expect(app.client.callsTo('approval.resolve')).toEqual([]);
    app.stdin.write(KEY.esc);
    await vi.waitFor(() => expect(app.lastFrame()).not.toContain('cap for anthropic:'));
    expect(app.client.callsTo('limits.set')).toEqual([]);
  });

  it('g edits the global cap; an empty value means unlimited', async () => {
    const app = await start();
    await press(app, 'g');
    expect(app.lastFrame()).toContain('global cap: unlimited');
    await press(app, '6', '4', KEY.enter);
    expect(app.client.callsTo('limits.set')).toEqual([{ global: 64 }]);
    await tick();
    expect(app.lastFrame()).toContain('in-flight 0/64');
  });

  it('w edits the queue wait of the selected credential', async () => {
    const app = await start();
    await press(app, KEY.tab, 'w', '5', '0', '0', KEY.enter);
    expect(app.client.callsTo('limits.set')).toEqual([{ cred: 'anthropic', queue_timeout_ms: 500 }]);
  });

  it('a daemon error keeps the field open with the reason', async () => {
    const client = daemon();
    client.handlers['limits.set'] = () => {
      throw new RpcError('cap_out_of_range', 'max_concurrent must be between 1 and 256', -32004);
    };
    const app = await start(client);
    await press(app, KEY.tab, 'c', '9', KEY.enter);
    await tick();
    expect(app.lastFrame()).toContain('cap for anthropic: 9');
    expect(app.lastFrame()).toContain('✗ max_concurrent must be between 1 and 256');
  });
});

describe('help, connection, quit', () => {
  it('? shows every key with its help, and ? closes it', async () => {
    const app = await start();
    await press(app, '?');
    const frame = app.lastFrame() ?? '';
    for (const text of ['allow the selected destination once', 'always allow', 'always deny', 'rotate the selected pool', "selected credential's cap", 'global cap', 'queue wait', 'next panel', 'quit']) {
      expect(frame).toContain(text);
    }
    await press(app, 'a');
    expect(app.client.callsTo('approval.resolve')).toEqual([]);
    await press(app, '?');
    expect(app.lastFrame()).toContain('APPROVALS');
  });

  it('shows "disconnected" when the daemon goes away and recovers by itself', async () => {
    const first = daemon();
    const second = daemon();
    second.snap = snapshot({ approvals: [approval({ id: 'z', host: 'recovered.example' })] });
    const connect = vi.fn(async () => second);
    const app = render(<AppContainer connect={connect} initialClient={first} now={() => T0} batchMs={1} backoffMs={() => 30} />);
    await tick();
    first.close();
    await tick();
    expect(app.lastFrame()).toContain('disconnected — reconnecting');
    await vi.waitFor(() => expect(app.lastFrame()).toContain('recovered.example:443'));
    expect(app.lastFrame()).toContain('● connected');
  });

  it('re-subscribes after a gap and shows the fresh snapshot', async () => {
    const app = await start();
    app.client.snap = snapshot({ approvals: [approval({ id: 'fresh', host: 'after-gap.example' })] });
    app.client.seq = 50;
    app.client.emit(ev(4, 'gap', { dropped: 12 }));
    await vi.waitFor(() => expect(app.lastFrame()).toContain('after-gap.example:443'));
    expect(app.client.callsTo('events.subscribe')).toHaveLength(2);
  });

  it('re-subscribes after a seq jump', async () => {
    const app = await start();
    app.client.emit(ev(9, 'approval.updated', { id: 'a1', waiters: 2 }));
    await vi.waitFor(() => expect(app.client.callsTo('events.subscribe')).toHaveLength(2));
  });

  it('tells the user when it started the daemon', async () => {
    const client = daemon();
    const app = render(<AppContainer connect={async () => client} initialClient={client} startupNotice="started sluiced in the background" />);
    await tick();
    expect(app.lastFrame()).toContain('started sluiced in the background');
  });

  it('q quits and closes the connection', async () => {
    const app = await start();
    await press(app, 'q');
    expect(app.client.closed).toBe(true);
  });
});
