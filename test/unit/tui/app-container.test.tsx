import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { eventually } from '../../fakes/wait-for.js';
import type { LimitsInfo } from '../../../src/shared/protocol/entities.js';
import { RpcError } from '../../../src/shared/rpc/client.js';
import { AppContainer } from '../../../src/tui/components/AppContainer.js';
import { APPLY_HINT } from '../../../src/tui/components/NumberField.js';
import { FakeDaemonClient, approval, credential, ev, gate, iso, pool, snapshot, T0, tick, waitForFrame } from './fixtures.js';

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
      approvals: [approval({ id: 'a1', waiters: 8 }), approval({ id: 'a2', host: 'api.openai.com', path: '/v1/responses', created_at: iso(T0 + 1000) })],
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
    await waitForFrame(app, '› api.anthropic.com:443');
    await press(app, 'a');
    await eventually(() => expect(app.client.callsTo('approval.resolve')).toEqual([{ id: 'a1', decision: 'allow_once' }]), { what: 'approval.resolve' });
    await tick();
    await waitForFrame(app, 'allowed api.anthropic.com:443 (8 requests)');
    await waitForFrame(app, (f) => !f.includes('› api.anthropic.com:443'), 'a frame without › api.anthropic.com:443');
  });

  it('A always-allows the row the cursor was moved to', async () => {
    const app = await start();
    await press(app, 'j', 'A');
    await eventually(() => expect(app.client.callsTo('approval.resolve')).toEqual([{ id: 'a2', decision: 'always_allow' }]), { what: 'approval.resolve' });
  });

  it('d and D deny and always-deny', async () => {
    const app = await start();
    await press(app, 'd');
    await tick();
    await press(app, 'D');
    await eventually(
      () =>
        expect(app.client.callsTo('approval.resolve')).toEqual([
          { id: 'a1', decision: 'deny' },
          { id: 'a2', decision: 'always_deny' },
        ]),
      { what: 'approval.resolve' },
    );
  });

  it('an approval that is already resolved disappears with an explanation', async () => {
    const client = daemon();
    client.handlers['approval.resolve'] = () => {
      throw new RpcError('already_resolved', 'Approval already resolved', -32010);
    };
    const app = await start(client);
    await press(app, 'a');
    await tick();
    await waitForFrame(app, 'api.anthropic.com:443 was already answered');
  });

  it('shows new prompts and waiter counts live from events', async () => {
    const app = await start();
    app.client.emit(ev(4, 'approval.updated', { id: 'a1', waiters: 31 }));
    await waitForFrame(app, '×31');
  });
});

describe('pool keys', () => {
  it('r on the selected pool calls pool.rotate and shows the new active member', async () => {
    const app = await start();
    await press(app, KEY.tab, KEY.tab);
    await waitForFrame(app, '▶ POOLS');
    await press(app, 'r');
    await eventually(() => expect(app.client.callsTo('pool.rotate')).toEqual([{ name: 'codex' }]), { what: 'pool.rotate' });
    await tick();
    await waitForFrame(app, /alice ok · ▶bob ok/);
  });
});

describe('cap field (issue 12)', () => {
  it('c opens the field pre-filled with the cap; 300 shows the inline error and enter sends nothing', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c');
    await waitForFrame(app, 'cap for anthropic: 8');
    await waitForFrame(app, APPLY_HINT);
    await press(app, '3', '0', '0');
    await waitForFrame(app, 'cap for anthropic: 300');
    await waitForFrame(app, '✗ max_concurrent must be between 1 and 256');
    await press(app, KEY.enter);
    expect(app.client.callsTo('limits.set')).toEqual([]);
    await waitForFrame(app, 'cap for anthropic: 300');
  });

  it('typing 12 and enter calls limits.set and the row shows cap 12 at once', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c', '1', '2', KEY.enter);
    await eventually(() => expect(app.client.callsTo('limits.set')).toEqual([{ cred: 'anthropic', max_concurrent: 12 }]), { what: 'limits.set' });
    await tick();
    await waitForFrame(app, (f) => !f.includes('✎'), 'a frame without ✎');
    await waitForFrame(app, 'cap 12');
    await waitForFrame(app, 'cap for anthropic: 8 → 12 (applies to the next request)');
  });

  it('backspace edits the value', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c', '3', '0', '0', KEY.backspace, KEY.backspace, KEY.enter);
    await eventually(() => expect(app.client.callsTo('limits.set')).toEqual([{ cred: 'anthropic', max_concurrent: 3 }]), { what: 'limits.set' });
  });

  it('handles keys that arrive in one read (fast typing, tmux send-keys)', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c', '300');
    await waitForFrame(app, 'cap for anthropic: 300');
    await press(app, '\u007F\u007F\u007F12\r');
    await eventually(() => expect(app.client.callsTo('limits.set')).toEqual([{ cred: 'anthropic', max_concurrent: 12 }]), { what: 'limits.set' });
  });

  it('esc cancels without a call, and letters typed into the field do nothing', async () => {
    const app = await start();
    await press(app, KEY.tab, 'c', 'a', 'q');
    expect(app.client.callsTo('approval.resolve')).toEqual([]);
    app.stdin.write(KEY.esc);
    await waitForFrame(app, (f) => !f.includes('cap for anthropic:'), 'a frame without cap for anthropic:');
    expect(app.client.callsTo('limits.set')).toEqual([]);
  });

  it('g edits the global cap; an empty value means unlimited', async () => {
    const app = await start();
    await press(app, 'g');
    await waitForFrame(app, 'global cap: unlimited');
    await press(app, '6', '4', KEY.enter);
    await eventually(() => expect(app.client.callsTo('limits.set')).toEqual([{ global: 64 }]), { what: 'limits.set' });
    await tick();
    await waitForFrame(app, 'in-flight 0/64');
  });

  it('w edits the queue wait of the selected credential', async () => {
    const app = await start();
    await press(app, KEY.tab, 'w', '5', '0', '0', KEY.enter);
    await eventually(() => expect(app.client.callsTo('limits.set')).toEqual([{ cred: 'anthropic', queue_timeout_ms: 500 }]), { what: 'limits.set' });
  });

  it('a daemon error keeps the field open with the reason', async () => {
    const client = daemon();
    client.handlers['limits.set'] = () => {
      throw new RpcError('cap_out_of_range', 'max_concurrent must be between 1 and 256', -32004);
    };
    const app = await start(client);
    await press(app, KEY.tab, 'c', '9', KEY.enter);
    await tick();
    await waitForFrame(app, 'cap for anthropic: 9');
    await waitForFrame(app, '✗ max_concurrent must be between 1 and 256');
  });
});

describe('help, connection, quit', () => {
  it('? shows every key with its help, and ? closes it', async () => {
    const app = await start();
    await press(app, '?');
    const frame = await waitForFrame(app, 'allow the selected destination once');
    for (const text of [
      'allow the selected destination once',
      'always allow',
      'always deny',
      'rotate the selected pool',
      "selected credential's cap",
      'global cap',
      'queue wait',
      'next panel',
      'quit',
    ]) {
      expect(frame).toContain(text);
    }
    await press(app, 'a');
    expect(app.client.callsTo('approval.resolve')).toEqual([]);
    await press(app, '?');
    await waitForFrame(app, 'APPROVALS');
  });

  it('shows "disconnected" when the daemon goes away and recovers by itself', async () => {
    const first = daemon();
    const second = daemon();
    second.snap = snapshot({ approvals: [approval({ id: 'z', host: 'recovered.example' })] });
    // The reconnect is held until the test has seen the disconnected frame: with only a 30 ms backoff
    // between them, a busy machine could reconnect before the disconnected state was ever looked at.
    const reconnect = gate();
    const connect = vi.fn(async () => {
      await reconnect.opened;
      return second;
    });
    const app = render(<AppContainer connect={connect} initialClient={first} now={() => T0} batchMs={1} backoffMs={() => 30} />);
    await waitForFrame(app, 'api.anthropic.com:443', "the first daemon's approval row");
    first.close();
    const down = await waitForFrame(app, 'disconnected — reconnecting');
    expect(down).not.toContain('● connected');
    reconnect.release();
    const up = await waitForFrame(app, 'recovered.example:443');
    expect(up).toContain('● connected');
    expect(up).not.toContain('api.anthropic.com:443');
    expect(connect).toHaveBeenCalledTimes(1);
  });

  it('re-subscribes after a gap and shows the fresh snapshot', async () => {
    const app = await start();
    app.client.snap = snapshot({ approvals: [approval({ id: 'fresh', host: 'after-gap.example' })] });
    app.client.seq = 50;
    app.client.emit(ev(4, 'gap', { dropped: 12 }));
    await waitForFrame(app, 'after-gap.example:443');
    expect(app.client.callsTo('events.subscribe')).toHaveLength(2);
  });

  it('re-subscribes after a seq jump', async () => {
    const app = await start();
    app.client.emit(ev(9, 'approval.updated', { id: 'a1', waiters: 2 }));
    await eventually(() => expect(app.client.callsTo('events.subscribe')).toHaveLength(2), { what: 'a second events.subscribe' });
  });

  it('tells the user when it started the daemon', async () => {
    const client = daemon();
    const app = render(<AppContainer connect={async () => client} initialClient={client} startupNotice="started sluiced in the background" />);
    await tick();
    await waitForFrame(app, 'started sluiced in the background');
  });

  it('q quits and closes the connection', async () => {
    const app = await start();
    await press(app, 'q');
    expect(app.client.closed).toBe(true);
  });
});
