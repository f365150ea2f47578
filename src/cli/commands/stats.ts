/** `sluicectl stats`: live counters per credential plus the global line, from `stats.snapshot`. */
import type { Argv } from 'yargs';
import type { StatsSnapshot } from '../../shared/protocol/entities.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { formatTable } from '../output-table.js';
import { printResult } from '../print-result.js';

/** Registers `stats`. */
export function statsCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'stats',
    'in-flight, queued and status counters per credential',
    (s) => s.example('$0 stats', 'one row per credential').example('$0 stats --json', 'the stats.snapshot result'),
    action(async (args) => {
      printResult(args, await callDaemon(args, 'stats.snapshot'), renderStats);
    }),
  );
}

/** Human lines for a {@link StatsSnapshot}: the global line, then one row per credential. */
export function renderStats(s: StatsSnapshot): string[] {
  const g = s.global;
  return [
    `global  in-flight ${g.in_flight}/${g.cap ?? 'unlimited'}  requests ${g.requests_total} ` + `(${g.requests_per_s.toFixed(1)}/s)  rejected ${g.rejected}`,
    ...formatTable(
      ['NAME', 'IN-FLIGHT', 'QUEUED', '2XX', '4XX', '5XX', 'REJECTED'],
      s.credentials.map((c) => [c.name, `${c.in_flight}/${c.cap}`, c.queued, c.status_2xx, c.status_4xx, c.status_5xx, c.rejected]),
      '(no credentials)',
    ),
  ];
}
