/**
 * The approval queue: one row per destination (host:port) with its waiter count, the first request's
 * method and path, its age and the time left before it is denied. The selected row of the focused panel
 * is the one `a`/`A`/`d`/`D` answer.
 */
import { Box, Text } from 'ink';
import { fit, fitRight, formatDuration, windowAround } from '../display-format.js';
import type { ApprovalRow } from '../state/selectors.js';
import { usePalette } from '../theme.js';
import { PanelTitle } from './PanelTitle.js';

/** Props of {@link ApprovalQueue}. */
export interface ApprovalQueueProps {
  rows: ApprovalRow[];
  focused: boolean;
  /** Content rows available. */
  height: number;
  width: number;
}

/** Less time than this left shows as urgent. */
const URGENT_MS = 15_000;

const ANSWERING: Record<string, string> = {
  allow_once: 'allowing…',
  always_allow: 'allowing…',
  deny: 'denying…',
  always_deny: 'denying…',
};

/** The approval queue panel. */
export function ApprovalQueue({ rows, focused, height, width }: ApprovalQueueProps) {
  const palette = usePalette();
  const selected = rows.findIndex((r) => r.selected);
  const win = windowAround(rows.length, selected, height);
  const visible = rows.slice(win.start, win.end);
  const waiting = rows.reduce((n, r) => n + r.waiters, 0);
  const detail = rows.length === 0 ? 'none pending' : `${rows.length} pending, ${waiting} request${waiting === 1 ? '' : 's'} waiting`;
  // Fixed columns: marker 2, waiters 7, method 8, age 7, time left 12, one spare.
  const free = Math.max(20, width - 37);
  const targetWidth = Math.min(Math.max(12, ...rows.map((r) => r.target.length)), Math.floor(free * 0.55));
  const pathWidth = free - targetWidth;
  return (
    <Box flexDirection="column">
      <PanelTitle title="Approvals" focused={focused} detail={detail} hidden={rows.length - visible.length} />
      <Box flexDirection="column" height={height}>
        {rows.length === 0 ? (
          <Text color={palette.muted}>{'  no destination is waiting for an answer'}</Text>
        ) : (
          visible.map((r) => {
            const marked = focused && r.selected;
            const urgent = r.leftMs < URGENT_MS;
            const left = r.answering ? fit(ANSWERING[r.answering] ?? '…', 12) : fitRight(`left ${formatDuration(r.leftMs)}`, 12);
            return (
              <Text key={r.id} wrap="truncate-end" bold={marked}>
                <Text color={palette.accent}>{marked ? '› ' : '  '}</Text>
                <Text color={palette.warn}>{fit(r.target, targetWidth)}</Text>
                <Text>{fitRight(`×${r.waiters}`, 6)} </Text>
                <Text>{fit(r.method, 7)} </Text>
                <Text>{fit(r.path, pathWidth)}</Text>
                <Text color={palette.muted}>{fitRight(formatDuration(r.ageMs), 7)}</Text>
                <Text color={urgent ? palette.bad : undefined}>{left}</Text>
              </Text>
            );
          })
        )}
      </Box>
    </Box>
  );
}
