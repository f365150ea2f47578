/**
 * The pools panel: one row per pool with its members in order. The active member carries "▶", and each
 * member says its health in words ("ok", "cooling 42s", "down") next to its colour, with a live
 * countdown driven by the container's clock.
 */
import { Box, Text } from 'ink';
import { fit, formatDuration, windowAround } from '../display-format.js';
import type { PoolMemberView, PoolRow } from '../state/selectors.js';
import { usePalette, type Palette } from '../theme.js';
import { PanelTitle } from './PanelTitle.js';

/** Props of {@link PoolsPanel}. */
export interface PoolsPanelProps {
  rows: PoolRow[];
  focused: boolean;
  height: number;
}

/** The pools panel. */
export function PoolsPanel({ rows, focused, height }: PoolsPanelProps) {
  const palette = usePalette();
  const selected = rows.findIndex((r) => r.selected);
  const win = windowAround(rows.length, selected, height);
  const visible = rows.slice(win.start, win.end);
  const nameWidth = Math.min(20, Math.max(6, ...rows.map((r) => r.name.length)));
  return (
    <Box flexDirection="column">
      <PanelTitle title="Pools" focused={focused} detail={`${rows.length}`} hidden={rows.length - visible.length} />
      <Box flexDirection="column" height={height}>
        {rows.length === 0 ? (
          <Text color={palette.muted}>{'  no pools: sluicectl pool create NAME --member A --member B'}</Text>
        ) : (
          visible.map((r) => {
            const marked = focused && r.selected;
            return (
              <Text key={r.name} wrap="truncate-end" bold={marked}>
                <Text color={palette.accent}>{marked ? '› ' : '  '}</Text>
                <Text>{fit(r.name, nameWidth)} </Text>
                {r.members.map((m, i) => (
                  <Text key={m.name}>
                    {i > 0 ? <Text color={palette.muted}>{' · '}</Text> : null}
                    <Text color={palette.accent}>{m.active ? '▶' : ' '}</Text>
                    <Text>{m.name} </Text>
                    <Text color={healthColor(m, palette)}>{healthText(m)}</Text>
                  </Text>
                ))}
              </Text>
            );
          })
        )}
      </Box>
    </Box>
  );
}

function healthText(m: PoolMemberView): string {
  if (m.health === 'cooling') {
    const reason = m.reason ? ` (${m.reason})` : '';
    return `cooling ${formatDuration(m.cooldownLeftMs ?? 0)}${reason}`;
  }
  return m.health;
}

function healthColor(m: PoolMemberView, palette: Palette): string | undefined {
  if (m.health === 'ok') return palette.ok;
  return m.health === 'cooling' ? palette.warn : palette.bad;
}
