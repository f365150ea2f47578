/**
 * Upstream connection pooling and addressing. One keep-alive agent per scheme, TLS always verified against
 * the system roots plus `SLUICE_UPSTREAM_CA`; `SLUICE_RESOLVE` changes only where we connect, while SNI,
 * the Host header and the certificate check keep using the real host name.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { ResolveOverride } from '../config.js';
import { UpstreamPool } from './upstream-pool.js';

/** Keep-alive connections for upstream traffic. */
export interface UpstreamAgents {
  /** Proxied HTTP requests (undici; see upstream-pool.ts). */
  pool: UpstreamPool;
  /** Node agents for what speaks through `https.request` and `ws`: token refreshes, WebSocket upgrades. */
  http: http.Agent;
  https: https.Agent;
  /** The CA list used to verify upstreams (system roots + extra). */
  ca: string[];
  /**
   * One TLS context holding that CA list. Passing `ca` per connection makes Node parse ~150 root
   * certificates for every new upstream connection (~20 ms of blocked event loop each); a shared context
   * is parsed once.
   */
  secureContext: tls.SecureContext;
  destroy(): void;
}

/**
 * An https.Agent whose pool key is only where it connects (host, port, local address, family, SNI name).
 * Node's key adds some twenty TLS options, which sluice never varies per request (every connection uses
 * the one shared context), and building that string for every request showed in profiles. The SNI name
 * stays in the key: a connection verified for one host is never reused for another at the same address.
 */
class UpstreamHttpsAgent extends https.Agent {
  override getName(options: https.RequestOptions = {}): string {
    const sni = options.servername && options.servername !== options.host ? options.servername : '';
    return `${options.host ?? 'localhost'}:${options.port ?? ''}:${options.localAddress ?? ''}:${options.family ?? ''}:${sni}`;
  }
}

/**
 * Builds the agents and the pool (`connectTimeoutMs`: a new proxied connection's TCP + TLS limit). Throws
 * when the extra CA file cannot be read.
 */
export function createUpstreamAgents(extraCaPath: string | null, connectTimeoutMs = 10_000): UpstreamAgents {
  const ca = [...tls.rootCertificates];
  if (extraCaPath) ca.push(fs.readFileSync(extraCaPath, 'utf8'));
  const common = { keepAlive: true, keepAliveMsecs: 15_000, maxFreeSockets: 256, scheduling: 'lifo' as const };
  const httpAgent = new http.Agent(common);
  const secureContext = tls.createSecureContext({ ca, minVersion: 'TLSv1.2' });
  const httpsAgent = new UpstreamHttpsAgent({ ...common, secureContext, rejectUnauthorized: true });
  const pool = new UpstreamPool({ secureContext, connectTimeoutMs });
  return {
    pool,
    http: httpAgent,
    https: httpsAgent,
    ca,
    secureContext,
    destroy() {
      pool.destroy();
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/** Where to connect for `host:port`: the override when one matches, else the host itself. */
export function connectTarget(
  overrides: readonly ResolveOverride[],
  host: string,
  port: number,
): { host: string; port: number; servername: string | undefined } {
  const h = host.toLowerCase();
  const o = overrides.find((x) => x.host === h && x.port === port);
  // A name starting with a letter and without ':' is never an IP literal (and skips net.isIP's regexes).
  const servername = /^[a-z][^:]*$/i.test(host) || net.isIP(host) === 0 ? host : undefined;
  return o ? { host: o.addr, port: o.addrPort, servername } : { host, port, servername };
}
