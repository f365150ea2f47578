/**
 * The notices panel: the newest notices at the bottom (long ones wrapped), each with its age, a level marker that reads
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
  /** Terminal columns; long notices wrap onto more lines within this width (default 80). */
  width?: number;
}

const AGE_COLUMNS = 8;

/** Lines one notice takes when wrapped at `width` columns. */
export function noticeLines(n: Pick<DashboardNotice, 'message' | 'repeats'>, width: number): number {
  const text = AGE_COLUMNS + 2 + n.message.length + (n.repeats > 1 ? ` ×${n.repeats}`.length : 0);
  return Math.max(1, Math.ceil(text / Math.max(20, width)));
}

/** The newest notices that fit in `height` wrapped lines (always at least the newest one). */
export function visibleNotices(notices: DashboardNotice[], height: number, width: number): DashboardNotice[] {
  const out: DashboardNotice[] = [];
  let used = 0;
  for (let i = notices.length - 1; i >= 0; i--) {
    const lines = noticeLines(notices[i]!, width);
    if (out.length > 0 && used + lines > Math.max(1, height)) break;
    out.unshift(notices[i]!);
    used += lines;
  }
  return out;
}

const MARKER = { info: '·', warn: '!', error: '✗' } as const;

/** The notices panel. */
export function NoticesPanel({ notices, height, now, width = 80 }: NoticesPanelProps) {
  const palette = usePalette();
  const visible = visibleNotices(notices, height, width);
  const color = { info: undefined, warn: palette.warn, error: palette.bad } as const;
  return (
    <Box flexDirection="column">
      <PanelTitle title="Notices" focused={false} hidden={notices.length - visible.length} />
      <Box flexDirection="column" height={height} overflow="hidden">
        {visible.length === 0 ? (
          <Text color={palette.muted}>{'  nothing yet'}</Text>
        ) : (
          visible.map((n) => (
            // Long notices (a failover with its reason, a CLI change) wrap instead of being cut off.
            <Text key={n.id} wrap="wrap">
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
