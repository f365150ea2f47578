/**
 * The pools panel: one row per pool with its members in order, then its options (`rotate <20%`,
 * `plan-only`; last, because they are settings while the members' state changes, so a narrow pane cuts
 * them first). The active member carries "▶", and each member says its health in words ("ok",
 * "cooling 42s", "down") next to its colour, with a live countdown driven by the container's clock, then
 * its rate-limit headroom in brackets (same short form and colours as the credentials panel) and
 * `budget spent` once it is past a daily budget.
 */
import { Box, Text } from 'ink';
import { fit, formatDuration, windowAround } from '../display-format.js';
import type { PoolMemberView, PoolRow } from '../state/selectors.js';
import { toneColor, usePalette, type Palette } from '../theme.js';
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
                    <MemberUsage member={m} palette={palette} />
                  </Text>
                ))}
                {r.flags.length > 0 ? <Text color={palette.muted}>{`  ${r.flags.join(' ')}`}</Text> : null}
              </Text>
            );
          })
        )}
      </Box>
    </Box>
  );
}

/** ` [req 37/50 · tok 61%]` and ` budget spent`, each only when there is something to say. */
function MemberUsage({ member: m, palette }: { member: PoolMemberView; palette: Palette }) {
  return (
    <Text>
      {m.headroom.length > 0 ? (
        <Text>
          <Text color={palette.muted}>{' ['}</Text>
          {m.headroom.map((p, i) => (
            <Text key={p.text}>
              {i > 0 ? <Text color={palette.muted}>{' · '}</Text> : null}
              <Text color={toneColor(p.tone, palette)}>{p.text}</Text>
            </Text>
          ))}
          <Text color={palette.muted}>{']'}</Text>
        </Text>
      ) : null}
      {m.budgetSpent ? <Text color={palette.bad}>{' budget spent'}</Text> : null}
    </Text>
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
