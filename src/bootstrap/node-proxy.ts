/**
 * Preloaded into agents' Node processes (`NODE_OPTIONS=--import=…`) by `sluicectl env`/`run`. Node 20's
 * built-in fetch ignores HTTPS_PROXY, so an unmodified SDK script would bypass sluice and never get its
 * key; installing undici's EnvHttpProxyAgent as the global dispatcher routes fetch through the proxy
 * (honouring NO_PROXY). Node's fetch reads the same global dispatcher symbol undici sets.
 *
 * This file runs inside every Node process started under `sluicectl run` (npm, launchers, the agent
 * itself), so it must never break one: undici's "EnvHttpProxyAgent is experimental" warning is kept off
 * the agent's stderr, and if undici cannot be loaded the process goes on with a one-line note instead of
 * dying (its fetch then bypasses sluice, and only ever carries phantoms).
 */

function proxyConfigured(): boolean {
  const env = process.env;
  return Boolean(env.HTTPS_PROXY || env.https_proxy || env.HTTP_PROXY || env.http_proxy);
}

/** Runs `fn` with undici's one-time experimental warning for EnvHttpProxyAgent filtered out. */
function withoutExperimentalWarning<T>(fn: () => T): T {
  const original = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const opts = rest[0];
    const code = typeof opts === 'object' && opts !== null ? (opts as { code?: unknown }).code : rest[1];
    if (code === 'UNDICI-EHPA') return;
    return (original as (...a: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return fn();
  } finally {
    process.emitWarning = original;
  }
}

if (proxyConfigured()) {
  try {
    const { EnvHttpProxyAgent, setGlobalDispatcher } = await import('undici');
    withoutExperimentalWarning(() => setGlobalDispatcher(new EnvHttpProxyAgent()));
  } catch (err) {
    process.stderr.write(
      `sluice: could not route Node's fetch through the proxy (${err instanceof Error ? err.message : String(err)}); fetch will bypass sluice\n`,
    );
  }
}

export {};
