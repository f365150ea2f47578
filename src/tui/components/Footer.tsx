/** The footer: key hints for what the keys do right now, read from the key table. */
import { Text } from 'ink';
import type { KeyHint } from '../keybindings.js';
import { usePalette } from '../theme.js';

/** Props of {@link Footer}. */
export interface FooterProps {
  hints: KeyHint[];
}

/** One line of key hints, e.g. "a allow  A always  d deny …". */
export function Footer({ hints }: FooterProps) {
  const palette = usePalette();
  return (
    <Text wrap="truncate-end">
      {hints.map((h, i) => (
        <Text key={`${h.keys}-${h.text}`}>
          {i > 0 ? '  ' : ''}
          <Text bold color={palette.accent}>
            {h.keys}
          </Text>
          <Text color={palette.muted}>{` ${h.text}`}</Text>
        </Text>
      ))}
    </Text>
  );
}
