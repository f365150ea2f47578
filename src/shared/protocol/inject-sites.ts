/**
 * Injection sites: where in a request a credential's phantom may be swapped for the real secret. Shared by
 * the daemon (store, proxy), the CLI (`--inject`) and the RPC validators so every edge accepts the same
 * values and stores them in one order (the migration's CHECK lists exactly those orderings).
 */

/** The places a phantom can appear in a request. */
export const INJECT_SITES = ['header', 'query', 'body', 'path'] as const;

/** One injection site. */
export type InjectSite = (typeof INJECT_SITES)[number];

/** Where a new credential's secret goes unless told otherwise: request headers only. */
export const DEFAULT_INJECT: readonly InjectSite[] = ['header'];

/** True when `s` names a site. */
export function isInjectSite(s: string): s is InjectSite {
  return (INJECT_SITES as readonly string[]).includes(s);
}

/** `sites` without duplicates, in the canonical order (header, query, body, path). */
export function canonicalSites(sites: readonly InjectSite[]): InjectSite[] {
  return INJECT_SITES.filter((s) => sites.includes(s));
}

/**
 * Parses a comma list such as `header,query` (spaces allowed). Returns the sites in canonical order, or a
 * user-facing reason naming the bad entry.
 */
export function parseInjectList(text: string): InjectSite[] | { problem: string } {
  const parts = text
    .split(',')
    .map((p) => p.trim().toLowerCase())
    .filter(Boolean);
  if (parts.length === 0) return { problem: `--inject needs at least one of ${INJECT_SITES.join(', ')}` };
  for (const p of parts)
    if (!isInjectSite(p)) return { problem: `--inject: unknown site ${JSON.stringify(p)}; use any of ${INJECT_SITES.join(', ')} (comma separated)` };
  return canonicalSites(parts as InjectSite[]);
}
