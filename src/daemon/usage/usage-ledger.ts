/**
 * What the rest of the daemon may ask of usage accounting (issue 24). The usage service implements it;
 * pools (rotate-below) and budgets read it. Kept as an interface so those can be tested with a fake.
 */
import type { Headroom, UsageTotals } from '../../shared/protocol/usage.js';

/** Read side of usage accounting. All answers are from memory (no database read on the request path). */
export interface UsageLedger {
  /** The latest rate-limit headroom `credential`'s responses reported, or null when none did (or it expired). */
  headroomOf(credential: string): Headroom | null;
  /** `credential`'s totals since the last local midnight (survives restarts: loaded from the hourly buckets). */
  todayOf(credential: string): UsageTotals;
}
