/**
 * Which member of a pool serves the next request. Sticky: the current member stays while healthy; when it
 * cools, the next healthy member after it (wrapping) takes over; when every member cools, the one that
 * recovers first serves (never fail hard) and the caller is told all were cooling.
 */
import type { MemberHealth } from './member-health.js';

/** The choice and whether it had to fall back to a cooling member. */
export interface ActiveChoice {
  member: string;
  allCooling: boolean;
}

/** Picks the active member. `members` is in pool order and must not be empty. */
export function chooseActive(members: readonly string[], current: string | null, health: MemberHealth): ActiveChoice {
  const start = current !== null && members.includes(current) ? members.indexOf(current) : 0;
  for (let i = 0; i < members.length; i++) {
    const m = members[(start + i) % members.length]!;
    if (health.isHealthy(m)) return { member: m, allCooling: false };
  }
  let best = members[start]!;
  let bestUntil = Infinity;
  for (const m of members) {
    const until = health.get(m)?.until ?? 0;
    if (until < bestUntil) {
      best = m;
      bestUntil = until;
    }
  }
  return { member: best, allCooling: true };
}
