/**
 * Issue 23 in the dashboard, through the Ink test renderer: one key rotates, new approvals ring the bell
 * (and notify the desktop when asked), changes made from the CLI show as notices, long notices wrap, and
 * "connecting…" says what it waits for.
 */
import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { announceApproval, notifyMode, type AlertEffects } from '../../../src/tui/approval-alert.js';
import { AppContainer } from '../../../src/tui/components/AppContainer.js';
import { NoticesPanel } from '../../../src/tui/components/NoticesPanel.js';
import { planCommand } from '../../../src/tui/state/command-plan.js';
import { dashboardReducer } from '../../../src/tui/state/dashboard-reducer.js';
import { initialDashboardState } from '../../../src/tui/state/dashboard-state.js';
import { connectionLabel, headerView } from '../../../src/tui/state/selectors.js';
import { FakeDaemonClient, approval, credential, ev, pool, snapshot, T0, tick } from './fixtures.js';

afterEach(() => cleanup());

function recorder(): AlertEffects & { bells: number; runs: [string, string[]][] } {
  const fx = {
    bells: 0,
    runs: [] as [string, string[]][],
    platform: 'linux' as NodeJS.Platform,
    bell: () => {
      fx.bells++;
    },
    run: (file: string, args: string[]) => {
      fx.runs.push([file, args]);
    },
  };
  return fx;
}

async function start(opts: { pools?: ReturnType<typeof pool>[]; notify?: 'bell' | 'desktop' | 'off'; fx?: AlertEffects } = {}) {
  const client = new FakeDaemonClient(
    { 'pool.rotate': (p) => ({ pool: pool({ name: String(p.name), active: 'bob' }), from: 'alice', to: 'bob' }) },
    snapshot({ approvals: [approval({ id: 'a1' })], credentials: [credential({ max_concurrent: 8 })], pools: opts.pools ?? [pool()] }),
    3,
  );
  const app = render(
    <AppContainer
      connect={async () => client}
      initialClient={client}
      now={() => T0 + 10_000}
      batchMs={1}
      notify={opts.notify ?? 'bell'}
      alertEffects={opts.fx ?? recorder()}
    />,
  );
  await tick();
  await tick();
  return { ...app, client };
}

describe('r rotates', () => {
  it('the only pool from the approvals panel', async () => {
    const app = await start();
    app.stdin.write('r');
    await vi.waitFor(() => expect(app.client.callsTo('pool.rotate')).toEqual([{ name: 'codex' }]));
  });

  it('with several pools: from another panel it focuses the pools panel and says so; there it rotates the selected one', async () => {
    const app = await start({ pools: [pool(), pool({ name: 'claude' })] });
    app.stdin.write('r');
    await vi.waitFor(() => expect(app.lastFrame()).toContain('2 pools: select one, then press r to rotate it'));
    expect(app.lastFrame()).toContain('▶ POOLS');
    expect(app.client.callsTo('pool.rotate')).toEqual([]);
    app.stdin.write('r');
    await vi.waitFor(() => expect(app.client.callsTo('pool.rotate')).toHaveLength(1));
  });

  it('plans the same without a terminal', () => {
    const s = dashboardReducer(initialDashboardState, { type: 'snapshot', seq: 1, snapshot: snapshot({ pools: [pool({ name: 'only' })] }) });
    expect(planCommand(s, 'rotate-pool', 'r', T0)).toEqual({ kind: 'rotate-pool', pool: 'only' });
  });
});

describe('new approval alerts', () => {
  it('ring the bell once per new approval, not for prompts pending at start or waiter updates', async () => {
    const fx = recorder();
    const app = await start({ fx });
    expect(fx.bells).toBe(0);
    app.client.emit(ev(4, 'approval.pending', { approval: approval({ id: 'a2', host: 'api.openai.com' }) }));
    await vi.waitFor(() => expect(fx.bells).toBe(1));
    app.client.emit(ev(5, 'approval.updated', { id: 'a2', waiters: 5 }));
    await vi.waitFor(() => expect(app.lastFrame()).toContain('×5'));
    expect(fx.bells).toBe(1);
    expect(fx.runs).toEqual([]);
  });

  it('with SLUICE_NOTIFY=desktop also run notify-send with host and waiter count; off silences both', async () => {
    const fx = recorder();
    const app = await start({ fx, notify: 'desktop' });
    app.client.emit(ev(4, 'approval.pending', { approval: approval({ id: 'a2', host: 'api.openai.com', waiters: 3 }) }));
    await vi.waitFor(() => expect(fx.runs).toHaveLength(1));
    expect(fx.bells).toBe(1);
    expect(fx.runs[0]![0]).toBe('notify-send');
    expect(fx.runs[0]![1].join(' ')).toContain('api.openai.com:443 (3 requests waiting)');

    const quiet = recorder();
    const off = await start({ fx: quiet, notify: 'off' });
    off.client.emit(ev(4, 'approval.pending', { approval: approval({ id: 'a3' }) }));
    await vi.waitFor(() => expect(off.lastFrame()).toMatch(/×1/));
    expect(quiet.bells + quiet.runs.length).toBe(0);
  });

  it('reads SLUICE_NOTIFY and uses osascript on macOS', () => {
    expect(notifyMode({})).toBe('bell');
    expect(notifyMode({ SLUICE_NOTIFY: 'desktop' })).toBe('desktop');
    expect(notifyMode({ SLUICE_NOTIFY: 'off' })).toBe('off');
    const fx = { ...recorder(), platform: 'darwin' as NodeJS.Platform };
    announceApproval(approval({ host: 'x.test', waiters: 1 }), 'desktop', fx);
    expect(fx.runs[0]![0]).toBe('osascript');
    expect(fx.runs[0]![1][1]).toContain('x.test:443 (1 request waiting)');
  });
});

describe('changes from the CLI', () => {
  it('appear as notices: credentials, caps, pools and rules', async () => {
    const app = await start();
    app.client.emit(ev(4, 'cred.changed', { action: 'added', name: 'openai', credential: credential({ name: 'openai' }) }));
    app.client.emit(
      ev(5, 'limits.changed', {
        limits: { global: 16, credentials: [{ name: 'anthropic', max_concurrent: 4, queue_timeout_ms: 0, in_flight: 0, queued: 0 }] },
      }),
    );
    app.client.emit(
      ev(6, 'pool.changed', { pool: pool({ members: [...pool().members, { name: 'carol', healthy: true, cooldown_until: null, reason: null }] }) }),
    );
    app.client.emit(
      ev(7, 'rule.changed', {
        action: 'added',
        rule: { id: 4, verdict: 'allow', host: 'api.openai.com', port: 443, method: null, path: null, coalesce: true, source: 'user', created_at: 'x' },
      }),
    );
    await vi.waitFor(() => expect(app.lastFrame()).toContain('rule 4 added: allow api.openai.com:443'));
    const frame = app.lastFrame()!;
    expect(frame).toContain('credential openai added');
    expect(frame).toContain('limits changed: global cap unlimited → 16, anthropic cap 8 → 4');
    expect(frame).toContain('pool codex members: alice, bob, carol');
  });
});

describe('notices and connecting', () => {
  it('long notices wrap instead of being cut at the terminal width', () => {
    const message = `pool codex: alice rate limited; switched to bob after a very long explanation that ends here END-OF-NOTICE`;
    const app = render(<NoticesPanel notices={[{ id: 1, at: T0, level: 'warn', kind: 'x', message, repeats: 1 }]} height={4} now={T0} width={80} />);
    expect(app.lastFrame()).toContain('END-OF-NOTICE');
  });

  it('"connecting…" says what it waits for after 2 s', () => {
    const s = dashboardReducer(initialDashboardState, { type: 'connecting', attempt: 0, at: T0 });
    expect(connectionLabel(headerView(s), T0 + 1_000).text).toBe('… connecting');
    expect(connectionLabel(headerView(s), T0 + 3_000).text).toContain('waiting 3s for sluiced to answer on its socket');
  });
});
