/**
 * The one list of headers that describe a single hop and so never pass through sluice, in either direction:
 * requests going upstream (HTTP and WebSocket upgrades) and responses going back to the client.
 */

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1; `keep-alive`, `proxy-connection` from older practice). Node frames
 * each leg itself. `proxy-*` headers are matched by prefix as well: they talk to sluice (the proxy access
 * token above all) or to the upstream's own proxy, never to the other side.
 */
const HOP_BY_HOP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/**
 * True when header `name` (lower case, as Node gives it) must not be forwarded: a hop-by-hop header, any
 * `proxy-*` header, or one that `named` (the headers a `Connection` header lists; see {@link connectionNamed})
 * declares hop-by-hop.
 */
export function isHopByHop(name: string, named: ReadonlySet<string> | null = null): boolean {
  return HOP_BY_HOP.has(name) || name.startsWith('proxy-') || (named !== null && named.has(name));
}

const NAMES_KEEP_ALIVE: ReadonlySet<string> = new Set(['keep-alive']);
const NAMES_CLOSE: ReadonlySet<string> = new Set(['close']);

/** The header names a `Connection` header lists (null when there is none): those are hop-by-hop too. */
export function connectionNamed(connection: string | string[] | undefined): ReadonlySet<string> | null {
  if (connection === undefined) return null;
  // The two values nearly every request and response carries, without a split and a Set each time.
  if (connection === 'keep-alive' || connection === 'close') return connection === 'close' ? NAMES_CLOSE : NAMES_KEEP_ALIVE;
  const text = Array.isArray(connection) ? connection.join(',') : connection;
  const out = new Set<string>();
  for (const part of text.toLowerCase().split(',')) {
    const n = part.trim();
    if (n) out.add(n);
  }
  return out;
}
