/**
 * `sluicectl usage [--by cred|pool|agent|model] [--since 1h|24h|7d]`: requests and tokens from the daemon's
 * hourly usage buckets (RPC `usage.snapshot`), one row per credential, pool, agent or model; then each
 * credential's rate and headroom. `--json` prints the RPC result unchanged.
 */
import type { Argv } from 'yargs';
import type { CredentialUsage, Headroom, UsageSnapshot } from '../../shared/protocol/usage.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { lastString } from '../option-values.js';
import { formatTable } from '../output-table.js';
import { printResult } from '../print-result.js';

const BY = ['cred', 'pool', 'agent', 'model'] as const;
const SINCE = ['1h', '24h', '7d'] as const;

/** Registers `usage`. */
export function usageCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'usage',
    'requests and tokens per credential, pool, agent or model (hourly buckets, kept 90 days)',
    (u) =>
      u
        .option('by', { type: 'string', choices: BY, default: 'cred', coerce: lastString, describe: 'group rows by' })
        .option('since', { type: 'string', choices: SINCE, default: '24h', coerce: lastString, describe: 'period (from the start of that hour)' })
        .example('$0 usage', 'per credential, last 24 hours')
        .example('$0 usage --by model --since 7d', 'per model, last 7 days')
        .example('$0 usage --json', 'the usage.snapshot result'),
    action(async (args) => {
      const by = args.by as (typeof BY)[number];
      const since = args.since as (typeof SINCE)[number];
      printResult(args, await callDaemon(args, 'usage.snapshot', { by, since }), renderUsage);
    }),
  );
}

/** Human lines for a {@link UsageSnapshot}: the grouped totals, then each credential's rate, today and headroom. */
export function renderUsage(s: UsageSnapshot): string[] {
  const lines = [
    `usage by ${s.by}, last ${s.since}`,
    ...formatTable(
      ['KEY', 'REQUESTS', 'INPUT', 'OUTPUT', 'CACHED'],
      s.rows.map((r) => [r.key, r.requests, r.input_tokens, r.output_tokens, r.cached_tokens]),
      '(no usage in this period)',
    ),
  ];
  if (s.credentials.length > 0) {
    lines.push(
      '',
      ...formatTable(
        ['CREDENTIAL', 'TOK/MIN', 'TODAY-REQ', 'TODAY-TOK', 'HEADROOM'],
        s.credentials.map((c) => [c.name, c.tokens_per_min, c.today.requests, c.today.input_tokens + c.today.output_tokens, headroomText(c)]),
      ),
    );
  }
  return lines;
}

/** `req 37/50 · tok 61%` from what the provider last reported (`-` when nothing is known). */
export function headroomText(c: Pick<CredentialUsage, 'headroom'>): string {
  const h: Headroom | null = c.headroom;
  if (!h) return '-';
  const parts: string[] = [];
  if (h.requests) parts.push(`req ${h.requests.remaining}/${h.requests.limit}`);
  const tok = h.tokens ?? h.input_tokens;
  // Rounded down, as the dashboard does: 99.6 % left is not 100 %.
  if (tok && tok.limit > 0) parts.push(`tok ${Math.floor((tok.remaining / tok.limit) * 100)}%`);
  for (const w of h.unified?.windows ?? []) parts.push(`${w.name} ${Math.floor(Math.max(0, 1 - w.utilization) * 100)}%`);
  if (parts.length === 0 && h.fraction_left !== null) parts.push(`${Math.floor(h.fraction_left * 100)}%`);
  return parts.join(' · ') || '-';
}
