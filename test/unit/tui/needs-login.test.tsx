/** Issue 22 #11: a dead OAuth credential reads `needs login` on the dashboard and in `cred list`. */
import { cleanup, render } from 'ink-testing-library';
import { afterEach, describe, expect, it } from 'vitest';
import { credTable } from '../../../src/cli/commands/cred.js';
import { App } from '../../../src/tui/components/App.js';
import { dashboardReducer } from '../../../src/tui/state/dashboard-reducer.js';
import { initialDashboardState } from '../../../src/tui/state/dashboard-state.js';
import { credential, ev, snapshot, T0 } from './fixtures.js';

afterEach(() => cleanup());

describe('needs login', () => {
  it('the dashboard shows it on the credential row, live from cred.changed', () => {
    let s = dashboardReducer(initialDashboardState, { type: 'connected', at: T0 });
    s = dashboardReducer(s, { type: 'snapshot', seq: 1, snapshot: snapshot({ credentials: [credential({ name: 'codex-a', kind: 'oauth' })] }) });
    expect(render(<App state={s} now={T0} columns={120} rows={30} rateSeries={[]} />).lastFrame()).not.toContain('needs login');
    s = dashboardReducer(s, {
      type: 'events',
      at: T0,
      events: [ev(2, 'cred.changed', { action: 'updated', name: 'codex-a', credential: credential({ name: 'codex-a', kind: 'oauth', needs_login: true }) })],
    });
    expect(render(<App state={s} now={T0} columns={120} rows={30} rateSeries={[]} />).lastFrame()).toContain('needs login');
  });

  it('cred list shows it in the KIND column', () => {
    const out = credTable([
      credential({ name: 'codex-a', kind: 'oauth', needs_login: true }),
      credential({ name: 'codex-b', kind: 'oauth', needs_login: false }),
    ]).join('\n');
    expect(out).toMatch(/codex-a\s+oauth \(needs login\)/);
    expect(out).not.toMatch(/codex-b\s+oauth \(needs login\)/);
  });
});
