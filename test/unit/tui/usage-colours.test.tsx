/**
 * The usage columns' colours as the terminal gets them. Colour output is forced for this file only (chalk
 * reads FORCE_COLOR when it loads, so Ink and the components are imported after setting it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CredentialUsage, Headroom } from '../../../src/shared/protocol/usage.js';
import { credStats, credential, iso, pool, snapshot, stats, T0 } from './fixtures.js';

const previous = process.env.FORCE_COLOR;
let ink: typeof import('ink-testing-library');
let App: typeof import('../../../src/tui/components/App.js').App;
let dashboardReducer: typeof import('../../../src/tui/state/dashboard-reducer.js').dashboardReducer;
let initialDashboardState: typeof import('../../../src/tui/state/dashboard-state.js').initialDashboardState;

beforeAll(async () => {
  process.env.FORCE_COLOR = '1';
  ink = await import('ink-testing-library');
  ({ App } = await import('../../../src/tui/components/App.js'));
  ({ dashboardReducer } = await import('../../../src/tui/state/dashboard-reducer.js'));
  ({ initialDashboardState } = await import('../../../src/tui/state/dashboard-state.js'));
});

afterAll(() => {
  ink.cleanup();
  if (previous === undefined) delete process.env.FORCE_COLOR;
  else process.env.FORCE_COLOR = previous;
});

const RED = '\u001B[31m';
const YELLOW = '\u001B[33m';
const win = (remaining: number, limit: number) => ({ remaining, limit, reset_at: null });

function headroom(over: Partial<Headroom>): Headroom {
  return { requests: null, tokens: null, input_tokens: null, output_tokens: null, unified: null, fraction_left: null, updated_at: iso(T0), ...over };
}

function usage(name: string, over: Partial<CredentialUsage>): CredentialUsage {
  return {
    name,
    tokens_per_min: 100,
    today: { requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0 },
    budget: { daily_tokens: null, daily_requests: null },
    headroom: null,
    ...over,
  };
}

function frame(list: CredentialUsage[]): string {
  const creds = list.map((u) => credential({ name: u.name }));
  const snap = snapshot({
    credentials: creds,
    stats: stats(
      {},
      creds.map((c) => credStats({ name: c.name })),
    ),
    pools: [pool({ active: 'alice', members: list.map((u) => ({ name: u.name, healthy: true, cooldown_until: null, reason: null })) })],
    usage: list,
  });
  const state = dashboardReducer(initialDashboardState, { type: 'snapshot', seq: 1, snapshot: snap });
  return ink.render(<App state={state} now={T0} columns={140} rows={24} rateSeries={[]} />).lastFrame() ?? '';
}

describe('usage colours', () => {
  it('headroom turns yellow below 20 % left and red below 5 %, in credential and pool rows', () => {
    const f = frame([usage('alice', { headroom: headroom({ requests: win(9, 50), tokens: win(4, 100) }) })]);
    // Once in the credentials panel, once in the pools panel.
    expect(f.split(`${YELLOW}req 9/50`).length - 1).toBe(2);
    expect(f.split(`${RED}tok 4%`).length - 1).toBe(2);
  });

  it('healthy headroom keeps the default colour', () => {
    const f = frame([usage('alice', { headroom: headroom({ requests: win(37, 50), tokens: win(61, 100) }) })]);
    expect(f).toContain('req 37/50');
    expect(f).not.toMatch(/\u001B\[3[13]mreq 37\/50/);
    expect(f).not.toMatch(/\u001B\[3[13]mtok 61%/);
  });

  it('a spent budget is red, on the credential row and as budget spent on the pool member', () => {
    const f = frame([
      usage('alice', {
        today: { requests: 100, input_tokens: 0, output_tokens: 0, cached_tokens: 0 },
        budget: { daily_tokens: null, daily_requests: 100 },
      }),
    ]);
    expect(f).toContain(`${RED}  day 100/100 req`);
    expect(f).toContain(`${RED} budget spent`);
  });
});
