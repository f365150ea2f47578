/** Issue 22 #6: the dashboard drops a pool when the daemon says it was removed. */
import { describe, expect, it } from 'vitest';
import { dashboardReducer } from '../../../src/tui/state/dashboard-reducer.js';
import { initialDashboardState } from '../../../src/tui/state/dashboard-state.js';
import { ev, pool, snapshot, T0 } from './fixtures.js';

describe('pool.changed with removed: true', () => {
  it('removes the pool from the dashboard', () => {
    let s = dashboardReducer(initialDashboardState, { type: 'connected', at: T0 });
    s = dashboardReducer(s, { type: 'snapshot', seq: 10, snapshot: snapshot({ pools: [pool(), pool({ name: 'other' })] }) });
    s = dashboardReducer(s, { type: 'events', events: [ev(11, 'pool.changed', { pool: pool(), removed: true })], at: T0 + 1000 });
    expect(s.pools.map((p) => p.name)).toEqual(['other']);
  });
});
