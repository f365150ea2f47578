/**
 * TLS server contexts for tunnels, one per host (named host or IP literal), built from the leaf-certificate
 * cache. Building a SecureContext parses the key and chain; doing it once per host (not per connection)
 * keeps a kept-alive agent's new connections cheap. Bounded by an LRU: host names come from clients.
 */
import tls from 'node:tls';
import { Lru } from '../ca/lru.js';
import type { LeafCertCache } from '../ca/leaf-certs.js';

/** Per-host SecureContexts for terminating tunnels. */
export class TlsContexts {
  private readonly cache: Lru<string, Promise<tls.SecureContext>>;

  constructor(
    private readonly leafs: LeafCertCache,
    capacity: number,
  ) {
    this.cache = new Lru(capacity);
  }

  /** Number of hosts with a cached context (at most the capacity). */
  get size(): number {
    return this.cache.size;
  }

  /** The context for `host` (lower-case, no brackets), minted on first use; concurrent callers share one. */
  get(host: string): Promise<tls.SecureContext> {
    let p = this.cache.get(host);
    if (!p) {
      const made = this.leafs.get(host).then((c) => tls.createSecureContext({ key: c.keyPem, cert: c.certPem, minVersion: 'TLSv1.2' }));
      p = made;
      this.cache.set(host, made);
      made.catch(() => this.cache.deleteIf(host, made));
    }
    return p;
  }
}
