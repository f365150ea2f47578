import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../../../src/tui/components/App.js';
import { NumberField, APPLY_HINT } from '../../../src/tui/components/NumberField.js';
import { PoolsPanel } from '../../../src/tui/components/PoolsPanel.js';
import type { DashboardAction } from '../../../src/tui/state/dashboard-actions.js';
import { dashboardReducer } from '../../../src/tui/state/dashboard-reducer.js';
import { initialDashboardState } from '../../../src/tui/state/dashboard-state.js';
import { openEditor, typeDigits } from '../../../src/tui/state/number-editor.js';
import { poolRows } from '../../../src/tui/state/selectors.js';
import { COLOR_PALETTE, PLAIN_PALETTE, PaletteContext, paletteFor } from '../../../src/tui/theme.js';
import { approval, credStats, credential, iso, pool, snapshot, stats, T0, tick } from './fixtures.js';

afterEach(() => cleanup());

function busyState(...actions: DashboardAction[]) {
  const creds = Array.from({ length: 12 }, (_, i) => credential({ name: `credential-number-${i}`, max_concurrent: 256 }));
  const base = dashboardReducer(initialDashboardState, {
    type: 'snapshot',
    seq: 1,
    snapshot: snapshot({
      credentials: creds,
      limits: { global: 100_000, credentials: [] },
      stats: stats(
        { in_flight: 200, cap: 100_000, requests_per_s: 1234 },
        creds.map((c) =>
          credStats({
            name: c.name,
            in_flight: 256,
            queued: 99,
            cap: 256,
            status_2xx: 123_456,
            status_4xx: 9_999,
            status_5xx: 999,
            rejected: 12_345,
          }),
        ),
      ),
      approvals: Array.from({ length: 9 }, (_, i) =>
        approval({
          id: `a${i}`,
          host: `very-long-subdomain-${i}.api.example-provider.com`,
          path: '/v1/some/really/long/path/that/goes/on',
          waiters: 256,
          created_at: iso(T0 + i),
        }),
      ),
      pools: [
        pool({
          members: ['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => ({
            name: n,
            healthy: false,
            cooldown_until: iso(T0 + 300_000),
            reason: 'rate_limited',
          })),
        }),
      ],
    }),
  });
  return actions.reduce(dashboardReducer, base);
}

describe('App layout', () => {
  it('fits 80×24 with long names and many rows (one row short of the terminal)', async () => {
    const app = render(<App state={busyState()} now={T0 + 5000} columns={80} rows={24} rateSeries={[1, 2, 3]} />);
    await tick();
    const lines = (app.lastFrame() ?? '').split('\n');
    expect(lines.length).toBeLessThanOrEqual(23);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(app.lastFrame()).toContain('more, ↑/↓ to scroll');
  });

  it('still fits with the number field open', async () => {
    const state = busyState(
      { type: 'focus-panel', panel: 'credentials' },
      { type: 'edit-open', target: { kind: 'cred-cap', cred: 'credential-number-0' }, value: '256' },
    );
    const app = render(<App state={state} now={T0} columns={80} rows={24} rateSeries={[]} />);
    await tick();
    const lines = (app.lastFrame() ?? '').split('\n');
    expect(lines.length).toBeLessThanOrEqual(23);
    expect(app.lastFrame()).toContain('cap for credential-number-0: 256');
  });

  it('grows with the pane', async () => {
    const small = render(<App state={busyState()} now={T0} columns={80} rows={24} rateSeries={[]} />);
    const big = render(<App state={busyState()} now={T0} columns={120} rows={50} rateSeries={[]} />);
    await tick();
    const count = (f: string | undefined) => (f ?? '').split('\n').filter((l) => l.includes('credential-number-')).length;
    expect(count(big.lastFrame())).toBeGreaterThan(count(small.lastFrame()));
  });

  it('shows the header facts: proxy, auth, req/s, in-flight/cap', async () => {
    const app = render(<App state={busyState()} now={T0} columns={100} rows={30} rateSeries={[0, 5]} />);
    await tick();
    const frame = app.lastFrame() ?? '';
    expect(frame).toContain('proxy 127.0.0.1:8787');
    expect(frame).toContain('auth on');
    expect(frame).toContain('1234 req/s ▁█');
    expect(frame).toContain('in-flight 200/100000');
  });

  it('shows a credential row with bar, in-flight/cap, queue, cap and counters', async () => {
    const state = dashboardReducer(initialDashboardState, {
      type: 'snapshot',
      seq: 1,
      snapshot: snapshot({ stats: stats({}, [credStats({ in_flight: 4, queued: 1, cap: 8, status_2xx: 120, status_4xx: 2, status_5xx: 1, rejected: 3 })]) }),
    });
    const app = render(<App state={state} now={T0} columns={100} rows={24} rateSeries={[]} />);
    await tick();
    expect(app.lastFrame()).toMatch(/anthropic\s+████░░░░\s+4\/8\s+q1\s+cap 8\s+2xx 120 4xx 2 5xx 1 rej 3/);
  });

  it('shows approval age and time left from the injected clock', async () => {
    const state = dashboardReducer(initialDashboardState, { type: 'snapshot', seq: 1, snapshot: snapshot({ approvals: [approval({ waiters: 8 })] }) });
    const at = (now: number) => render(<App state={state} now={now} columns={100} rows={24} rateSeries={[]} />);
    const early = at(T0 + 12_000);
    const late = at(T0 + 110_000);
    await tick();
    expect(early.lastFrame()).toMatch(/api\.anthropic\.com:443\s+×8 POST\s+\/v1\/messages\s+12s\s+left 1m48s/);
    expect(late.lastFrame()).toMatch(/1m50s\s+left 10s/);
  });
});

describe('PoolsPanel', () => {
  it('counts the cooldown down as the clock ticks and marks the active member', async () => {
    const state = dashboardReducer(initialDashboardState, {
      type: 'snapshot',
      seq: 1,
      snapshot: snapshot({
        pools: [
          pool({
            active: 'bob',
            members: [
              { name: 'alice', healthy: false, cooldown_until: iso(T0 + 60_000), reason: 'rate_limited' },
              { name: 'bob', healthy: true, cooldown_until: null, reason: null },
            ],
          }),
        ],
      }),
    });
    const app = render(<PoolsPanel rows={poolRows(state, T0 + 18_000)} focused height={2} />);
    await tick();
    expect(app.lastFrame()).toContain('alice cooling 42s (rate_limited) · ▶bob ok');
    app.rerender(<PoolsPanel rows={poolRows(state, T0 + 19_000)} focused height={2} />);
    await tick();
    expect(app.lastFrame()).toContain('alice cooling 41s');
  });
});

describe('NumberField', () => {
  it('shows the pre-filled value, bounds and the apply hint', async () => {
    const app = render(<NumberField editor={openEditor({ kind: 'cred-cap', cred: 'anthropic' }, '8')} />);
    await tick();
    expect(app.lastFrame()).toContain('cap for anthropic: 8');
    expect(app.lastFrame()).toContain('(1–256)');
    expect(app.lastFrame()).toContain(APPLY_HINT);
  });

  it('replaces the hint by the inline bounds error', async () => {
    const app = render(<NumberField editor={typeDigits(openEditor({ kind: 'cred-cap', cred: 'anthropic' }, '8'), '300')} />);
    await tick();
    expect(app.lastFrame()).toContain('✗ max_concurrent must be between 1 and 256');
    expect(app.lastFrame()).not.toContain(APPLY_HINT);
  });
});

describe('NO_COLOR', () => {
  it('selects the plain palette when NO_COLOR is set and not empty', () => {
    expect(paletteFor({ NO_COLOR: '1' })).toBe(PLAIN_PALETTE);
    expect(paletteFor({ NO_COLOR: '' })).toBe(COLOR_PALETTE);
    expect(paletteFor({})).toBe(COLOR_PALETTE);
    expect(Object.values(PLAIN_PALETTE).filter((v) => typeof v === 'string')).toEqual([]);
  });

  it('keeps every meaning in text without colour: focus, selection, health, levels', async () => {
    const state = dashboardReducer(
      dashboardReducer(initialDashboardState, {
        type: 'snapshot',
        seq: 1,
        snapshot: snapshot({
          approvals: [approval()],
          pools: [
            pool({
              members: [
                { name: 'alice', healthy: false, cooldown_until: iso(T0 + 9000), reason: '429' },
                { name: 'bob', healthy: false, cooldown_until: null, reason: null },
              ],
            }),
          ],
        }),
      }),
      { type: 'notice', level: 'error', kind: 'leak', message: 'blocked phantom on evil.example', at: T0 },
    );
    const app = render(
      <PaletteContext.Provider value={PLAIN_PALETTE}>
        <App state={state} now={T0} columns={100} rows={24} rateSeries={[]} />
      </PaletteContext.Provider>,
    );
    await tick();
    const frame = app.lastFrame() ?? '';
    expect(frame).not.toMatch(/\u001B\[3\dm/);
    expect(frame).toContain('▶ APPROVALS');
    expect(frame).toContain('› api.anthropic.com:443');
    expect(frame).toContain('alice cooling 9s (429)');
    expect(frame).toContain('bob down');
    expect(frame).toContain('✗ blocked phantom on evil.example');
  });
});
