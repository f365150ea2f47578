/**
 * The inline number field (issue 12): label, the value with a cursor, the accepted bounds, and on the
 * second line either why the value cannot be saved or what saving will do. The pre-filled value shows
 * inverted while it is still "selected" (the first digit replaces it).
 */
import { Box, Text } from 'ink';
import type { EditorState } from '../state/dashboard-state.js';
import { editorBounds, editorLabel, editorProblem } from '../state/number-editor.js';
import { usePalette } from '../theme.js';

/** The hint under a valid value. */
export const APPLY_HINT = 'applies to the next request; in-flight requests keep their slots';

/** Props of {@link NumberField}. */
export interface NumberFieldProps {
  editor: EditorState;
}

/** Two lines: the field, then its error or hint. */
export function NumberField({ editor }: NumberFieldProps) {
  const palette = usePalette();
  const problem = editor.serverError ?? editorProblem(editor);
  const empty = editor.text === '';
  const shown = empty ? (editor.target.kind === 'global-cap' ? 'unlimited' : '') : editor.text;
  return (
    <Box flexDirection="column">
      <Text wrap="truncate-end">
        <Text color={palette.accent}>{'    ✎ '}</Text>
        <Text bold>{`${editorLabel(editor.target)}: `}</Text>
        <Text inverse={editor.pristine && !empty} color={empty ? palette.muted : undefined}>
          {shown}
        </Text>
        <Text color={palette.accent}>{editor.pristine ? '' : '▏'}</Text>
        <Text color={palette.muted}>{`  (${editorBounds(editor.target)})  enter save · esc cancel`}</Text>
      </Text>
      <Text wrap="truncate-end" color={editor.saving ? palette.muted : problem ? palette.bad : palette.muted}>
        {editor.saving ? '      saving…' : problem ? `      ✗ ${problem}` : `      ${APPLY_HINT}`}
      </Text>
    </Box>
  );
}
