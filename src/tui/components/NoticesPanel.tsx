/**
 * The notices panel: the newest notices at the bottom, each with its age, a level marker that reads
 * without colour ("·" info, "!" warn, "✗" error) and a repeat count when identical notices were folded.
 */
import { Box, Text } from 'ink';
import { fitRight, formatDuration } from '../display-format.js';
import type { DashboardNotice } from '../state/dashboard-state.js';
import { usePalette } from '../theme.js';
import { PanelTitle } from './PanelTitle.js';

/** Props of {@link NoticesPanel}. */
export interface NoticesPanelProps {
  notices: DashboardNotice[];
  height: number;
  now: number;
}

const MARKER = { info: '·', warn: '!', error: '✗' } as const;

/** The notices panel. */
export function NoticesPanel({ notices, height, now }: NoticesPanelProps) {
  const palette = usePalette();
  const visible = notices.slice(-Math.max(1, height));
  const color = { info: undefined, warn: palette.warn, error: palette.bad } as const;
  return (
    <Box flexDirection="column">
      <PanelTitle title="Notices" focused={false} hidden={notices.length - visible.length} />
      <Box flexDirection="column" height={height}>
        {visible.length === 0 ? (
          <Text color={palette.muted}>{'  nothing yet'}</Text>
        ) : (
          visible.map((n) => (
            <Text key={n.id} wrap="truncate-end">
              <Text color={palette.muted}>{fitRight(formatDuration(now - n.at), 7)} </Text>
              <Text color={color[n.level]}>{`${MARKER[n.level]} ${n.message}`}</Text>
              {n.repeats > 1 ? <Text color={palette.muted}>{` ×${n.repeats}`}</Text> : null}
            </Text>
          ))
        )}
      </Box>
    </Box>
  );
}
