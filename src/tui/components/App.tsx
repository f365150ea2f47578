/**
 * The dashboard layout, pure: state, `now` and the terminal size in, frame out. Header on top, then the
 * approval queue, credentials, pools and notices, the footer at the bottom; the `?` overlay takes the
 * panels' place. The frame is one row shorter than the terminal (see layout-plan.ts) and fits 80×24.
 */
import { Box } from 'ink';
import { hintsFor } from '../keybindings.js';
import { FIELD_ROWS, frameHeight, planRows } from '../layout-plan.js';
import { keyModeOf } from '../state/command-plan.js';
import type { DashboardState } from '../state/dashboard-state.js';
import { approvalRows, credentialRows, headerView, poolRows } from '../state/selectors.js';
import { ApprovalQueue } from './ApprovalQueue.js';
import { CredentialsPanel } from './CredentialsPanel.js';
import { Footer } from './Footer.js';
import { Header } from './Header.js';
import { HelpOverlay } from './HelpOverlay.js';
import { NoticesPanel } from './NoticesPanel.js';
import { NumberField } from './NumberField.js';
import { PoolsPanel } from './PoolsPanel.js';

/** Props of {@link App}. */
export interface AppProps {
  state: DashboardState;
  /** The clock tick: ages and countdowns are computed against it. */
  now: number;
  columns: number;
  rows: number;
  /** Requests finished per second, oldest first, for the header sparkline. */
  rateSeries: number[];
}

/** The whole dashboard frame. */
export function App({ state, now, columns, rows, rateSeries }: AppProps) {
  const approvals = approvalRows(state, now);
  const credentials = credentialRows(state, now);
  const pools = poolRows(state, now);
  const editor = state.editor;
  const globalField = editor !== null && editor.target.kind === 'global-cap';
  const plan = planRows({
    rows,
    approvals: approvals.length,
    credentials: credentials.length,
    pools: pools.length,
    notices: state.notices.length,
    fieldOpen: editor !== null,
  });
  const height = frameHeight(rows);
  const overlayHeight = Math.max(1, height - 3 - (globalField ? FIELD_ROWS : 0));
  return (
    <Box flexDirection="column" height={height} width={columns} overflow="hidden">
      <Header view={headerView(state)} rateSeries={rateSeries} now={now} />
      {globalField ? <NumberField editor={editor} /> : null}
      {state.helpOpen ? (
        <HelpOverlay height={overlayHeight} />
      ) : (
        <Box flexDirection="column">
          <ApprovalQueue rows={approvals} focused={state.focus === 'approvals'} height={plan.approvals} width={columns} />
          <CredentialsPanel rows={credentials} focused={state.focus === 'credentials'} height={plan.credentials} width={columns} editor={editor} />
          <PoolsPanel rows={pools} focused={state.focus === 'pools'} height={plan.pools} />
          <NoticesPanel notices={state.notices} height={plan.notices} now={now} width={columns} />
        </Box>
      )}
      <Box flexGrow={1} />
      <Footer hints={hintsFor(keyModeOf(state), state.focus)} />
    </Box>
  );
}
