/**
 * One credential row: in-flight/cap bar, queue, `cap N`, 2xx/4xx/5xx/rejected counters, and a pool
 * cooldown or queue wait when set. Load is coloured by meaning and also readable from the numbers.
 */
import { Text } from 'ink';
import { fit, fitRight, formatCount, formatDuration, usageBar } from '../display-format.js';
import type { CredentialRow } from '../state/selectors.js';
import { usePalette } from '../theme.js';

/** Props of {@link CredentialLine}. */
export interface CredentialLineProps {
  row: CredentialRow;
  /** Selected in the focused panel. */
  marked: boolean;
  nameWidth: number;
}

/** One line of the credentials panel. */
export function CredentialLine({ row: r, marked, nameWidth }: CredentialLineProps) {
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
      <Text>{fit(r.name, nameWidth)} </Text>
      <Text color={loadColor}>{usageBar(r.inFlight, r.cap, 8)}</Text>
      <Text color={loadColor}>{fitRight(`${r.inFlight}/${r.cap}`, 8)}</Text>
      <Text color={r.queued > 0 ? palette.warn : undefined}>{fitRight(`q${r.queued}`, 5)}</Text>
      <Text>{fitRight(`cap ${r.cap}`, 8)}</Text>
      <Text color={palette.muted}>{'  2xx '}</Text>
      <Text color={palette.ok}>{formatCount(r.ok2xx)}</Text>
      <Text color={palette.muted}>{' 4xx '}</Text>
      <Text color={r.client4xx > 0 ? palette.warn : undefined}>{formatCount(r.client4xx)}</Text>
      <Text color={palette.muted}>{' 5xx '}</Text>
      <Text color={r.server5xx > 0 ? palette.bad : undefined}>{formatCount(r.server5xx)}</Text>
      <Text color={palette.muted}>{' rej '}</Text>
      <Text color={r.rejected > 0 ? palette.bad : undefined}>{formatCount(r.rejected)}</Text>
      {extra.length > 0 ? <Text color={palette.warn}>{`  ${extra.join(' · ')}`}</Text> : null}
    </Text>
  );
}
