import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import type { CredentialUsage, Headroom } from '../../../src/shared/protocol/usage.js';
import { App } from '../../../src/tui/components/App.js';
import { HelpOverlay } from '../../../src/tui/components/HelpOverlay.js';
import { PoolsPanel } from '../../../src/tui/components/PoolsPanel.js';
import { planCredentialColumns } from '../../../src/tui/credential-columns.js';
import type { DashboardAction } from '../../../src/tui/state/dashboard-actions.js';
import { dashboardReducer } from '../../../src/tui/state/dashboard-reducer.js';
import { initialDashboardState, type DashboardState } from '../../../src/tui/state/dashboard-state.js';
import { credentialRows, poolRows } from '../../../src/tui/state/selectors.js';
import { COLOR_PALETTE, toneColor } from '../../../src/tui/theme.js';
import { credStats, credential, ev, iso, pool, snapshot, stats, T0, tick } from './fixtures.js';

afterEach(() => cleanup());

const win = (remaining: number, limit: number) => ({ remaining, limit, reset_at: iso(T0 + 60_000) });

function headroom(over: Partial<Headroom> = {}): Headroom {
  return { requests: null, tokens: null, input_tokens: null, output_tokens: null, unified: null, fraction_left: null, updated_at: iso(T0), ...over };
}

function usage(name: string, over: Partial<CredentialUsage> = {}): CredentialUsage {
  return {
    name,
    tokens_per_min: 0,
    today: { requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0 },
    budget: { daily_tokens: null, daily_requests: null },
    headroom: null,
    ...over,
  };
}

/** anthropic: 1.2k tok/m, req 37/50 · tok 61%, day 12.3k/50k tok. */
const BUSY = usage('anthropic', {
  tokens_per_min: 1_234,
  today: { requests: 40, input_tokens: 10_000, output_tokens: 2_300, cached_tokens: 0 },
  budget: { daily_tokens: 50_000, daily_requests: null },
  headroom: headroom({ requests: win(37, 50), tokens: win(61_000, 100_000), fraction_left: 0.61 }),
});

function stateWith(names: string[], list: CredentialUsage[] | undefined, ...actions: DashboardAction[]): DashboardState {
  const creds = names.map((name) => credential({ name }));
  const snap = snapshot({
    credentials: creds,
    stats: stats(
      {},
      creds.map((c) => credStats({ name: c.name, in_flight: 4, queued: 1, cap: 8, status_2xx: 120, status_4xx: 2, status_5xx: 1, rejected: 3 })),
    ),
  });
  if (list) snap.usage = list;
  const base = dashboardReducer(initialDashboardState, { type: 'snapshot', seq: 1, snapshot: snap });
  return actions.reduce(dashboardReducer, base);
}

async function frameOf(state: DashboardState, columns: number, rows = 24): Promise<string> {
  const app = render(<App state={state} now={T0} columns={columns} rows={rows} rateSeries={[]} />);
  await tick();
  return app.lastFrame() ?? '';
}

const row = (frame: string, name: string) => frame.split('\n').find((l) => l.includes(` ${name} `)) ?? '';

describe('usage in the dashboard state', () => {
  it('takes usage from the snapshot, one entry per credential', () => {
    const s = stateWith(['anthropic'], [BUSY]);
    expect(s.usage).toEqual([BUSY]);
    expect(credentialRows(s, T0)[0]).toMatchObject({ tokenRate: '1.2k tok/m', budget: { text: 'day 12.3k/50k tok' } });
  });

  it('a daemon without usage (before issue 24) shows nothing new', async () => {
    const s = stateWith(['anthropic'], undefined);
    expect(s.usage).toEqual([]);
    const frame = await frameOf(s, 120);
    expect(frame).toMatch(/anthropic\s+████░░░░\s+4\/8\s+q1\s+cap 8\s+2xx 120 4xx 2 5xx 1 rej 3/);
    expect(frame).not.toContain('tok/m');
    expect(frame).not.toContain('req ');
  });

  it('usage.updated replaces the whole list: a credential it no longer lists drops out', () => {
    const s = stateWith(['anthropic', 'openai'], [BUSY, usage('openai', { tokens_per_min: 500 })], {
      type: 'events',
      at: T0,
      events: [ev(2, 'usage.updated', { credentials: [usage('anthropic', { tokens_per_min: 42 })] })],
    });
    expect(s.usage.map((u) => [u.name, u.tokens_per_min])).toEqual([['anthropic', 42]]);
    const rows = credentialRows(s, T0);
    expect(rows.find((r) => r.name === 'anthropic')?.tokenRate).toBe('42 tok/m');
    expect(rows.find((r) => r.name === 'openai')?.tokenRate).toBeNull();
  });

  it('a removed credential takes its usage with it', () => {
    const s = stateWith(['anthropic', 'openai'], [BUSY, usage('openai', { tokens_per_min: 500 })], {
      type: 'events',
      at: T0,
      events: [ev(2, 'cred.changed', { action: 'removed', name: 'anthropic', credential: null })],
    });
    expect(s.usage.map((u) => u.name)).toEqual(['openai']);
  });

  it('a later snapshot without usage clears it (the daemon was replaced by an older one)', () => {
    const s = dashboardReducer(stateWith(['anthropic'], [BUSY]), { type: 'snapshot', seq: 5, snapshot: snapshot() });
    expect(s.usage).toEqual([]);
  });
});

describe('credential rows with usage', () => {
  it('shows tokens/min, headroom and budget: 1.2k tok/m  req 37/50 · tok 61%  day 12.3k/50k tok', async () => {
    const frame = await frameOf(stateWith(['anthropic'], [BUSY]), 120);
    expect(row(frame, 'anthropic')).toMatch(/4\/8\s+q1\s+cap 8\s+1\.2k tok\/m\s+req 37\/50 · tok 61%\s+day 12\.3k\/50k tok\s+2xx 120/);
  });

  it('gives headroom parts and the budget their tones: yellow below 20 % left, red below 5 %, red once spent', () => {
    const hot = usage('anthropic', {
      tokens_per_min: 10,
      today: { requests: 100, input_tokens: 0, output_tokens: 0, cached_tokens: 0 },
      budget: { daily_tokens: null, daily_requests: 100 },
      headroom: headroom({ requests: win(9, 50), tokens: win(4, 100) }),
    });
    const [r] = credentialRows(stateWith(['anthropic'], [hot]), T0);
    expect(r?.headroom).toEqual([
      { text: 'req 9/50', tone: 'warn' },
      { text: 'tok 4%', tone: 'bad' },
    ]);
    expect(r?.budget).toEqual({ text: 'day 100/100 req', tone: 'bad', spent: true });
    expect([toneColor('warn', COLOR_PALETTE), toneColor('bad', COLOR_PALETTE), toneColor('normal', COLOR_PALETTE)]).toEqual(['yellow', 'red', undefined]);
  });

  it('fits 80 columns: the name yields, then whole columns go (counters, cap) instead of cut numbers', async () => {
    const names = ['anthropic-main-account', 'openai'];
    const list = [{ ...BUSY, name: 'anthropic-main-account' }, usage('openai', { tokens_per_min: 0.5, headroom: headroom({ tokens: win(10, 100) }) })];
    const frame = await frameOf(stateWith(names, list), 80);
    const lines = frame.split('\n');
    expect(lines.length).toBeLessThanOrEqual(23);
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    const main = row(frame, 'anthropic-m…');
    expect(main).toContain('1.2k tok/m');
    expect(main).toContain('req 37/50 · tok 61%');
    expect(main).toContain('day 12.3k/50k tok');
    // Whole columns went instead: the bar, the counters and `cap N` (the cap is in 4/8 already).
    expect(main).toMatch(/anthropic-m… +4\/8 +q1 +1\.2k tok\/m/);
    expect(main).not.toContain('2xx');
    expect(main).not.toContain('cap 8');
    expect(row(frame, 'openai')).toMatch(/<1 tok\/m\s+tok 10%/);
    // Rows line up: the headroom column starts at the same cell in both rows.
    expect(main.indexOf('req 37/50')).toBe(row(frame, 'openai').indexOf('tok 10%'));
  });

  it('the column plan keeps the old row when no usage is known and drops lowest priority first', () => {
    const legacy = credentialRows(stateWith(['anthropic'], undefined), T0);
    expect(planCredentialColumns(legacy, 80)).toMatchObject({ cap: true, counters: true, tokenRate: 0, headroom: 0, budget: 0 });
    const rows = credentialRows(stateWith(['anthropic'], [BUSY]), T0);
    expect(planCredentialColumns(rows, 200)).toMatchObject({ bar: true, cap: true, counters: true, nameWidth: 9 });
    // 80 columns: marker, name 9, in-flight and queue take 25; headroom 21 + budget 19 + tokens/min 12 take 52
    // of the 55 left, so the bar (8), the counters and `cap N` go.
    expect(planCredentialColumns(rows, 80)).toMatchObject({ headroom: 19, budget: 17, tokenRate: 10, bar: false, counters: false, cap: false });
    // 60 columns: 35 left; headroom (21), then tokens/min (12) since the budget (19) no longer fits.
    expect(planCredentialColumns(rows, 60)).toMatchObject({ headroom: 19, budget: 0, budgetNote: false, tokenRate: 10, bar: false });
    // Without a budget, 80 columns keep the bar and `cap N`.
    const noBudget = credentialRows(stateWith(['anthropic'], [{ ...BUSY, budget: { daily_tokens: null, daily_requests: null } }]), T0);
    expect(planCredentialColumns(noBudget, 80)).toMatchObject({ headroom: 19, budget: 0, tokenRate: 10, bar: true, counters: false, cap: true });
  });

  it('says budget spent at the end of the row when the budget column had no room', async () => {
    const spent = usage('anthropic', {
      tokens_per_min: 2_000,
      today: { requests: 100, input_tokens: 0, output_tokens: 0, cached_tokens: 0 },
      budget: { daily_tokens: null, daily_requests: 100 },
      headroom: headroom({ requests: win(37, 50), tokens: win(61, 100) }),
    });
    const rows = credentialRows(stateWith(['anthropic'], [spent]), T0);
    expect(planCredentialColumns(rows, 60)).toMatchObject({ budget: 0, budgetNote: true });
    const frame = await frameOf(stateWith(['anthropic'], [spent]), 60);
    expect(row(frame, 'anthropic')).toMatch(/req 37\/50 · tok 61% +budget spent/);
  });
});

describe('pool rows with usage', () => {
  function poolState(list: CredentialUsage[], over: Parameters<typeof pool>[0] = {}) {
    const s = dashboardReducer(initialDashboardState, { type: 'snapshot', seq: 1, snapshot: snapshot({ pools: [pool(over)], usage: list }) });
    return poolRows(s, T0);
  }

  it("shows each member's headroom in the short form and 'budget spent' past a budget", async () => {
    const rows = poolState([
      usage('alice', { headroom: headroom({ requests: win(37, 50), tokens: win(3, 100) }) }),
      usage('bob', {
        today: { requests: 0, input_tokens: 40_000, output_tokens: 10_000, cached_tokens: 0 },
        budget: { daily_tokens: 50_000, daily_requests: null },
        headroom: headroom({ unified: { status: 'allowed', windows: [{ name: '5h', utilization: 0.39, reset_at: null }] } }),
      }),
    ]);
    expect(rows[0]?.members.map((m) => [m.headroom, m.budgetSpent])).toEqual([
      [
        [
          { text: 'req 37/50', tone: 'normal' },
          { text: 'tok 3%', tone: 'bad' },
        ],
        false,
      ],
      [[{ text: '5h 61%', tone: 'normal' }], true],
    ]);
    const app = render(<PoolsPanel rows={rows} focused height={2} />);
    await tick();
    expect(app.lastFrame()).toContain('▶alice ok [req 37/50 · tok 3%] ·  bob ok [5h 61%] budget spent');
  });

  it('shows rotate <20% and plan-only at the end of the pool line when set, nothing when not', async () => {
    const flagged = render(<PoolsPanel rows={poolState([], { rotate_below: 20, plan_limits_only: true })} focused height={2} />);
    await tick();
    expect(flagged.lastFrame()).toMatch(/codex\s+▶alice ok · {2}bob ok {2}rotate <20% plan-only/);
    const plain = render(<PoolsPanel rows={poolState([], { rotate_below: null, plan_limits_only: false })} focused height={2} />);
    await tick();
    expect(plain.lastFrame()).toMatch(/codex\s+▶alice ok · {2}bob ok/);
    expect(plain.lastFrame()).not.toContain('rotate');
  });

  it('hides the headroom of a cooling member (its countdown says more)', () => {
    const rows = poolState([usage('alice', { headroom: headroom({ requests: win(0, 50) }) })], {
      members: [
        { name: 'alice', healthy: false, cooldown_until: iso(T0 + 30_000), reason: 'headroom low' },
        { name: 'bob', healthy: true, cooldown_until: null, reason: null },
      ],
    });
    expect(rows[0]?.members[0]).toMatchObject({ health: 'cooling', headroom: [] });
  });
});

describe('help overlay', () => {
  it('explains the usage columns within 80 columns', async () => {
    const app = render(<HelpOverlay height={20} />);
    await tick();
    const frame = app.lastFrame() ?? '';
    expect(frame).toContain('tok/m: tokens a minute');
    expect(frame).toContain('rate-limit headroom');
    for (const line of frame.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
  });
});
