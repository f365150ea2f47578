/**
 * One credential row: in-flight/cap bar, queue, `cap N`, tokens per minute, rate-limit headroom, the daily
 * budget, 2xx/4xx/5xx/rejected counters, and a pool cooldown or queue wait when set. Which columns appear
 * and how wide they are is planned for the whole panel (credential-columns.ts), so rows line up. Load and
 * headroom are coloured by meaning and also readable from the numbers.
 */
import { Text } from 'ink';
import type { CredentialColumns } from '../credential-columns.js';
import { BAR_WIDTH, BUDGET_NOTE, countersText } from '../credential-columns.js';
import { fit, fitRight, formatCount, formatDuration, usageBar } from '../display-format.js';
import type { CredentialRow } from '../state/selectors.js';
import { toneColor, usePalette, type Palette } from '../theme.js';
import { partsWidth, type ToneText } from '../usage-format.js';

/** Props of {@link CredentialLine}. */
export interface CredentialLineProps {
  row: CredentialRow;
  /** Selected in the focused panel. */
  marked: boolean;
  columns: CredentialColumns;
}

/** One line of the credentials panel. */
export function CredentialLine({ row: r, marked, columns: col }: CredentialLineProps) {
  const palette = usePalette();
  const load = r.cap > 0 ? r.inFlight / r.cap : 0;
  const loadColor = load >= 1 ? palette.bad : load >= 0.75 || r.queued > 0 ? palette.warn : palette.ok;
  const extra: string[] = [];
  if (r.needsLogin) extra.push('needs login');
  if (r.cooldownLeftMs !== null) extra.push(`cool ${formatDuration(r.cooldownLeftMs)}`);
  if (r.queueTimeoutMs > 0) extra.push(`wait ${r.queueTimeoutMs}ms`);
  return (
    <Text wrap="truncate-end" bold={marked}>
      <Text color={palette.accent}>{marked ? '› ' : '  '}</Text>
      <Text>{fit(r.name, col.nameWidth)} </Text>
      {col.bar ? <Text color={loadColor}>{usageBar(r.inFlight, r.cap, BAR_WIDTH)}</Text> : null}
      <Text color={loadColor}>{fitRight(`${r.inFlight}/${r.cap}`, 8)}</Text>
      <Text color={r.queued > 0 ? palette.warn : undefined}>{fitRight(`q${r.queued}`, 5)}</Text>
      {col.cap ? <Text>{fitRight(`cap ${r.cap}`, 8)}</Text> : null}
      {col.tokenRate > 0 ? <Text>{`  ${fitRight(r.tokenRate ?? '', col.tokenRate)}`}</Text> : null}
      {col.headroom > 0 ? <Parts parts={r.headroom} width={col.headroom} palette={palette} /> : null}
      {col.budget > 0 ? <Text color={r.budget ? toneColor(r.budget.tone, palette) : undefined}>{`  ${fit(r.budget?.text ?? '', col.budget)}`}</Text> : null}
      {col.budgetNote ? <Text color={palette.bad}>{`  ${fit(r.budget?.spent ? BUDGET_NOTE : '', BUDGET_NOTE.length)}`}</Text> : null}
      {col.counters ? <Counters row={r} palette={palette} /> : null}
      {extra.length > 0 ? <Text color={palette.warn}>{`  ${extra.join(' · ')}`}</Text> : null}
    </Text>
  );
}

/** Headroom parts joined with ` · `, each in its tone, padded to the column width. */
function Parts({ parts, width, palette }: { parts: ToneText[]; width: number; palette: Palette }) {
  return (
    <Text>
      {'  '}
      {parts.map((p, i) => (
        <Text key={p.text}>
          {i > 0 ? <Text color={palette.muted}>{' · '}</Text> : null}
          <Text color={toneColor(p.tone, palette)}>{p.text}</Text>
        </Text>
      ))}
      {' '.repeat(Math.max(0, width - partsWidth(parts)))}
    </Text>
  );
}

/** The 2xx/4xx/5xx/rejected counters (see {@link countersText} for their width). */
function Counters({ row: r, palette }: { row: CredentialRow; palette: Palette }) {
  return (
    <Text>
      <Text color={palette.muted}>{'  2xx '}</Text>
      <Text color={palette.ok}>{formatCount(r.ok2xx)}</Text>
      <Text color={palette.muted}>{' 4xx '}</Text>
      <Text color={r.client4xx > 0 ? palette.warn : undefined}>{formatCount(r.client4xx)}</Text>
      <Text color={palette.muted}>{' 5xx '}</Text>
      <Text color={r.server5xx > 0 ? palette.bad : undefined}>{formatCount(r.server5xx)}</Text>
      <Text color={palette.muted}>{' rej '}</Text>
      <Text color={r.rejected > 0 ? palette.bad : undefined}>{formatCount(r.rejected)}</Text>
    </Text>
  );
}
