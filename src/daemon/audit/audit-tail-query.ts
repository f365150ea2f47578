/**
 * The WHERE clause behind `audit.tail` filters. Filtering happens in SQL, before the row limit, so "the last
 * 20 rows for credential X" means 20 rows of X, found by walking back from the newest row.
 */
import { sinceMs } from '../../shared/protocol/audit.js';
import { SluiceError } from '../../shared/protocol/error-codes.js';
import { assertValidGlob, hostMatches } from '../policy/host-glob.js';
import type { Db } from '../store/database.js';

/** The `audit.tail` filters; absent ones do not filter. */
export interface TailFilter {
  /** Credential or pool name; also matches rows naming several credentials (`a,b`). */
  cred?: string | undefined;
  /** A host name or a host glob (`*.openai.com`), case-insensitive. */
  host?: string | undefined;
  /** Agent name (`run --name`): its start/stop rows, and every row naming it once rows carry an agent. */
  agent?: string | undefined;
  /** Exact event name (`request`, `phantom_leak`, `cred_failover`, …). */
  event?: string | undefined;
  /** Only rows from the last `10m`, `2h`, `1d`, … */
  since?: string | undefined;
}

const HOST_FN = 'sluice_host_matches';
const registered = new WeakSet<Db>();
const agentColumn = new WeakMap<Db, boolean>();

/** Builds the clause and its parameters for `filter`, with `nowMs` as the end of `since`. Throws on a bad glob or duration. */
export function tailQuery(db: Db, filter: TailFilter, nowMs: number): { where: string; params: (string | number)[] } {
  const terms: string[] = [];
  const params: (string | number)[] = [];
  if (filter.cred !== undefined) {
    terms.push("(credential = ? OR instr(',' || credential || ',', ',' || ? || ',') > 0)");
    params.push(filter.cred, filter.cred);
  }
  if (filter.event !== undefined) {
    terms.push('event = ?');
    params.push(filter.event);
  }
  if (filter.host !== undefined) {
    const host = filter.host.toLowerCase().replace(/\.$/, '');
    if (/[*?[{!]/.test(host)) {
      assertValidGlob(host, 'host');
      registerHostFunction(db);
      terms.push(`host IS NOT NULL AND ${HOST_FN}(?, host) = 1`);
    } else {
      terms.push('lower(host) = ?');
    }
    params.push(host);
  }
  if (filter.agent !== undefined) {
    // Rows carry no agent column yet: until they do, an agent's rows are its own start and stop rows
    // (detail "NAME (ID)"); once the column exists, every row that names the agent matches.
    const own = "(event IN ('agent_started', 'agent_stopped') AND substr(detail, 1, length(?) + 2) = ? || ' (')";
    terms.push(hasAgentColumn(db) ? `(agent = ? OR ${own})` : own);
    if (hasAgentColumn(db)) params.push(filter.agent);
    params.push(filter.agent, filter.agent);
  }
  if (filter.since !== undefined) {
    const ms = sinceMs(filter.since);
    if (ms === null) throw new SluiceError('invalid_params', `since must be a number and a unit (s, m, h, d), e.g. 10m; got ${JSON.stringify(filter.since)}`);
    // Stored times are ISO-8601 UTC strings of one length, so they compare in time order as text.
    terms.push('ts >= ?');
    params.push(new Date(nowMs - ms).toISOString());
  }
  return { where: terms.length ? `WHERE ${terms.join(' AND ')}` : '', params };
}

function registerHostFunction(db: Db): void {
  if (registered.has(db)) return;
  db.function(HOST_FN, { deterministic: true }, (glob: unknown, host: unknown) =>
    typeof glob === 'string' && typeof host === 'string' && hostMatches(glob, host) ? 1 : 0,
  );
  registered.add(db);
}

function hasAgentColumn(db: Db): boolean {
  let has = agentColumn.get(db);
  if (has === undefined) {
    has = (db.prepare('PRAGMA table_info(audit_log)').all() as { name: string }[]).some((c) => c.name === 'agent');
    agentColumn.set(db, has);
  }
  return has;
}
