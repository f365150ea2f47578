/**
 * The credentials panel: per credential an in-flight/cap bar, the queue, `cap N`, tokens per minute,
 * rate-limit headroom and daily budget (when the daemon reports them), status counters and a pool
 * cooldown if one runs. The number field for `c`/`w` opens right under the selected row.
 */
import { Box, Text } from 'ink';
import { planCredentialColumns } from '../credential-columns.js';
import { windowAround } from '../display-format.js';
import { FIELD_ROWS } from '../layout-plan.js';
import type { EditorState } from '../state/dashboard-state.js';
import type { CredentialRow } from '../state/selectors.js';
import { usePalette } from '../theme.js';
import { CredentialLine } from './CredentialLine.js';
import { NumberField } from './NumberField.js';
import { PanelTitle } from './PanelTitle.js';

/** Props of {@link CredentialsPanel}. */
export interface CredentialsPanelProps {
  rows: CredentialRow[];
  focused: boolean;
  height: number;
  width: number;
  /** The open number field, shown under its credential when it edits one. */
  editor: EditorState | null;
}

/** The credentials panel. */
export function CredentialsPanel({ rows, focused, height, width, editor }: CredentialsPanelProps) {
  const palette = usePalette();
  const selected = rows.findIndex((r) => r.selected);
  const win = windowAround(rows.length, selected, height);
  const visible = rows.slice(win.start, win.end);
  const editing = editor && editor.target.kind !== 'global-cap' ? editor.target.cred : null;
  const columns = planCredentialColumns(rows, width);
  return (
    <Box flexDirection="column">
      <PanelTitle title="Credentials" focused={focused} detail={`${rows.length}`} hidden={rows.length - visible.length} />
      <Box flexDirection="column" height={height + (editing ? FIELD_ROWS : 0)}>
        {rows.length === 0 ? (
          <Text color={palette.muted}>{'  no credentials yet: sluicectl cred add NAME --host HOST'}</Text>
        ) : (
          visible.map((r) => (
            <Box key={r.name} flexDirection="column">
              <CredentialLine row={r} marked={focused && r.selected} columns={columns} />
              {editor && editing === r.name ? <NumberField editor={editor} /> : null}
            </Box>
          ))
        )}
        {editor && editing !== null && !visible.some((r) => r.name === editing) ? <NumberField editor={editor} /> : null}
      </Box>
    </Box>
  );
}
