/**
 * A panel's one-line title. The focused panel is marked with "▶" and upper case as well as colour, so
 * where the keys go is visible without colour.
 */
import { Text } from 'ink';
import { usePalette } from '../theme.js';

/** Props of {@link PanelTitle}. */
export interface PanelTitleProps {
  title: string;
  focused: boolean;
  /** Text after the title, e.g. "2 pending". */
  detail?: string;
  /** Rows not shown for lack of space (0 = all shown). */
  hidden?: number;
}

/** The title line of a panel. */
export function PanelTitle({ title, focused, detail, hidden = 0 }: PanelTitleProps) {
  const palette = usePalette();
  const more = hidden > 0 ? `  (+${hidden} more, ↑/↓ to scroll)` : '';
  return (
    <Text wrap="truncate-end">
      <Text bold={focused} color={focused ? palette.accent : palette.muted}>
        {focused ? `▶ ${title.toUpperCase()}` : `  ${title}`}
      </Text>
      {detail ? <Text color={palette.muted}>{`  ${detail}`}</Text> : null}
      <Text color={palette.muted}>{more}</Text>
    </Text>
  );
}
