/**
 * The container's clock: the current time, refreshed every `intervalMs`. Components get `now` as a
 * prop and stay pure; this is the only place that ticks.
 */
import { useEffect, useState } from 'react';

/** Returns `now()`, re-read every `intervalMs` (1 s by default: ages and countdowns show whole seconds). */
export function useClock(now: () => number, intervalMs = 1000): number {
  const [time, setTime] = useState(now);
  useEffect(() => {
    const id = setInterval(() => setTime(now()), intervalMs);
    return () => clearInterval(id);
  }, [now, intervalMs]);
  return time;
}
