/**
 * NO_PROXY for agents: loopback never goes through the proxy. Without this, `eval "$(sluicectl env)"`
 * sent `curl https://127.0.0.1:PORT` (a local dev server) to the proxy, where it sat in an approval
 * prompt. The user's own entries are kept, in their order, ahead of the loopback ones.
 */

/** The loopback names every agent environment exempts from the proxy. */
export const LOOPBACK_NO_PROXY: readonly string[] = ['localhost', '127.0.0.1', '::1'];

/**
 * The NO_PROXY value for an environment whose current values are in `base`: every entry of `NO_PROXY`
 * and `no_proxy` (either spelling may be the one a tool reads), then the loopback names, without
 * duplicates (compared case-insensitively). Entries are never dropped, so `doctor` still sees and warns
 * about a user entry that covers a bound host.
 */
export function mergedNoProxy(base: NodeJS.ProcessEnv): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const entry of [base.NO_PROXY ?? '', base.no_proxy ?? '', LOOPBACK_NO_PROXY.join(',')].join(',').split(',')) {
    const e = entry.trim();
    if (e === '' || seen.has(e.toLowerCase())) continue;
    seen.add(e.toLowerCase());
    out.push(e);
  }
  return out.join(',');
}

/** `vars` with NO_PROXY and no_proxy set to {@link mergedNoProxy} of `base` (both spellings, same value). */
export function withNoProxy(vars: Record<string, string>, base: NodeJS.ProcessEnv): Record<string, string> {
  const value = mergedNoProxy(base);
  return { ...vars, NO_PROXY: value, no_proxy: value };
}
