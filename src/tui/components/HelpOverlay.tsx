/**
 * The `?` overlay: every key of the normal key table with its help text, then the number field's keys.
 * Built from the key table, so it cannot drift from what the keys do.
 */
import { Box, Text } from 'ink';
import { fit } from '../display-format.js';
import { bindingsFor } from '../keybindings.js';
import { usePalette } from '../theme.js';

/** What the usage columns mean (issue 24); each line fits 80 columns. */
export const USAGE_HELP: readonly string[] = [
  '  tok/m: tokens a minute (5 min) · req 37/50 · tok 61%: rate-limit headroom',
  '  (yellow <20 %, red <5 %; 5h 61%: subscription window) · day N/M: budget',
];

/** Props of {@link HelpOverlay}. */
export interface HelpOverlayProps {
  height: number;
}

/** The help overlay, in place of the panels. */
export function HelpOverlay({ height }: HelpOverlayProps) {
  const palette = usePalette();
  const field = bindingsFor('field')
    .map((b) => `${b.label} ${b.hint ?? b.help}`)
    .join(' · ');
  return (
    <Box flexDirection="column" height={height}>
      <Text bold color={palette.accent}>
        {'▶ KEYS'}
        <Text color={palette.muted}>{'   (? or esc closes)'}</Text>
      </Text>
      {bindingsFor('normal').map((b) => (
        <Text key={b.command} wrap="truncate-end">
          <Text bold>{`  ${fit(b.label, 10)}`}</Text>
          <Text>{b.help}</Text>
          {b.panel ? <Text color={palette.muted}>{`  [${b.panel}]`}</Text> : null}
        </Text>
      ))}
      <Text wrap="truncate-end">
        <Text bold>{'  number field: '}</Text>
        <Text>{field}</Text>
      </Text>
      <Text wrap="truncate-end" color={palette.muted}>
        {'  a/A/d/D, r, c and w act on the selected row of the focused panel (▶).'}
      </Text>
      {USAGE_HELP.map((line) => (
        <Text key={line} wrap="truncate-end" color={palette.muted}>
          {line}
        </Text>
      ))}
    </Box>
  );
}
