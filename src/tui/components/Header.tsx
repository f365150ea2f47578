/**
 * The header: connection state (with "disconnected — reconnecting" when the daemon is gone), daemon
 * version, proxy address and whether proxy auth is on, then requests per second with a sparkline and the
 * global in-flight/cap.
 */
import { Box, Text } from 'ink';
import { formatRate, sparkline } from '../display-format.js';
import { connectionLabel, type HeaderView } from '../state/selectors.js';
import { usePalette } from '../theme.js';

/** Props of {@link Header}. */
export interface HeaderProps {
  view: HeaderView;
  /** Requests finished per second, oldest first (from the rolling rate). */
  rateSeries: number[];
  now: number;
}

/** Two header lines. */
export function Header({ view, rateSeries, now }: HeaderProps) {
  const palette = usePalette();
  const rate = view.requestsPerS ?? 0;
  const cap = view.globalCap === null ? '∞' : String(view.globalCap);
  const atCap = view.globalCap !== null && view.inFlight >= view.globalCap;
  const conn = connectionLabel(view, now);
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Text bold>{'sluice '}</Text>
        <Text color={palette[conn.tone]} bold={conn.tone === 'bad'}>
          {conn.text}
        </Text>
        {view.version ? <Text color={palette.muted}>{`  sluiced ${view.version}`}</Text> : null}
        {view.listen ? <Text>{`  proxy ${view.listen}`}</Text> : null}
        {view.auth === 'on' ? <Text color={palette.ok}>{'  auth on'}</Text> : null}
        {view.auth === 'off' ? <Text color={palette.warn}>{'  auth OFF'}</Text> : null}
      </Text>
      <Text wrap="truncate-end">
        <Text>{`${formatRate(rate)} req/s `}</Text>
        <Text color={palette.accent}>{sparkline(rateSeries)}</Text>
        <Text>{'  in-flight '}</Text>
        <Text color={atCap ? palette.bad : undefined} bold={atCap}>{`${view.inFlight}/${cap}`}</Text>
        <Text color={view.queued > 0 ? palette.warn : undefined}>{`  queued ${view.queued}`}</Text>
        <Text color={view.pending > 0 ? palette.warn : undefined} bold={view.pending > 0}>
          {`  approvals ${view.pending}`}
        </Text>
      </Text>
    </Box>
  );
}
