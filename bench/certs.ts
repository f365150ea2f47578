/**
 * First connection to a new host (the daemon mints a leaf certificate) versus a host whose certificate is
 * cached, versus a direct new TLS connection. Two views:
 *  - handshake: raw CONNECT + TLS handshake with the client, for fresh `*.bench.test` names (the upstream
 *    certificate does not cover them, so no request is sent; the handshake is where minting happens);
 *  - first request: a complete request on a fresh tunnel to names the upstream certificate covers.
 * The daemon's RPC round trip is sampled meanwhile, to show whether certificate work blocks its loop.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { Agent, request } from 'undici';
import type { RpcPinger } from './pinger.js';
import type { SluiceTarget } from './targets.js';
import { UPSTREAM_CA_PEM } from './targets.js';
import { summarize, type Summary } from './util.js';

/** CONNECT through the proxy and complete a TLS handshake for `host`; resolves with the elapsed ms. */
export function connectTls(proxyPort: number, token: string, host: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const sock = net.connect(proxyPort, '127.0.0.1');
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`handshake for ${host} timed out`));
    }, 20_000);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.once('connect', () => {
      sock.write(
        `CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\nProxy-Authorization: Basic ${Buffer.from(`sluice:${token}`).toString('base64')}\r\n\r\n`,
      );
    });
    let head = '';
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      sock.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(head)) {
        clearTimeout(timer);
        sock.destroy();
        return reject(new Error(`CONNECT ${host}: ${head.split('\r\n')[0]}`));
      }
      const t = tls.connect({ socket: sock, servername: host, ca: [ca] });
      t.once('secureConnect', () => {
        clearTimeout(timer);
        const ms = performance.now() - t0;
        t.destroy();
        resolve(ms);
      });
      t.once('error', (e) => {
        clearTimeout(timer);
        t.destroy();
        reject(e);
      });
    };
    sock.on('data', onData);
  });
}

/** A direct new TCP + TLS connection to the fake upstream. */
function directTls(port: number, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const t = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: [ca] });
    t.once('secureConnect', () => {
      const ms = performance.now() - t0;
      t.destroy();
      resolve(ms);
    });
    t.once('error', reject);
  });
}

export interface CertResult {
  handshake: { direct: Summary; new_host: Summary; cached_host: Summary; added_new_vs_direct_p50_ms: number; mint_cost_p50_ms: number };
  /** All burst hosts at once (a saturated loop, not one long block); RPC round trips meanwhile. */
  burst: { hosts: number; wall_ms: number; per_host: Summary; rpc: Summary };
  first_request: {
    direct_new_connection: Summary;
    new_host: Summary;
    cached_host_new_connection: Summary;
    /** Each host's first request minus the direct first request made just before it (paired, as ab.ts does). */
    added_per_host_ms: number[];
    added_new_vs_direct_p50_ms: number;
    added_new_vs_direct_max_ms: number;
    hosts: string[];
  };
  /** The daemon's first certificate ever (includes one-time warm-up), and the RPC round trips meanwhile. */
  cold_first_mint: { handshake_ms: number; rpc: Summary };
  /** daemon.status round trips while minting one new host after another (after the first). */
  rpc_while_minting: Summary;
}

async function fullRequest(dispatcherFactory: () => import('undici').Dispatcher, url: string, headers: Record<string, string>): Promise<number> {
  const d = dispatcherFactory();
  try {
    const t0 = performance.now();
    const res = await request(url, { dispatcher: d, headers });
    await res.body.dump();
    const ms = performance.now() - t0;
    if (res.statusCode !== 200) throw new Error(`${url}: status ${res.statusCode}`);
    return ms;
  } finally {
    await d.destroy().catch(() => {});
  }
}

export async function measureCerts(o: {
  sluice: SluiceTarget;
  upstreamPort: number;
  pinger: RpcPinger;
  coldHost: string;
  sequentialHosts: string[];
  burstHosts: string[];
  firstRequestHosts: string[];
}): Promise<CertResult> {
  const upstreamCa = UPSTREAM_CA_PEM();
  const { sluice } = o;
  const proxyPort = sluice.daemon.proxyPort;
  const direct: number[] = [];
  for (let i = 0; i < Math.max(5, o.sequentialHosts.length); i++) direct.push(await directTls(o.upstreamPort, upstreamCa));

  // The very first certificate the daemon mints also pays one-time costs (lazy compilation of the x509 and
  // ASN.1 code); it is reported on its own so the steady state below is not hidden by it, nor it by them.
  o.pinger.start(2);
  const cold = await connectTls(proxyPort, sluice.token, o.coldHost, sluice.caPem);
  const rpcCold = await o.pinger.stop();
  o.pinger.start(2);
  const fresh: number[] = [];
  const cached: number[] = [];
  for (const h of o.sequentialHosts) {
    fresh.push(await connectTls(proxyPort, sluice.token, h, sluice.caPem));
    cached.push(await connectTls(proxyPort, sluice.token, h, sluice.caPem));
  }
  const rpc = await o.pinger.stop();
  o.pinger.start(2);
  const b0 = performance.now();
  const burst = await Promise.all(o.burstHosts.map((h) => connectTls(proxyPort, sluice.token, h, sluice.caPem)));
  const burstWall = performance.now() - b0;
  const rpcBurst = await o.pinger.stop();

  // Complete first requests on fresh tunnels: direct, then each new host, then the same host again. One
  // request each way first, to a host not measured: the daemon's (and this process's) first proxied request
  // pays one-time costs (compiling the request path, the first upstream connection), reported with the first
  // certificate above rather than mixed into the per-host figures.
  const directAgent = () => new Agent({ connect: { ca: upstreamCa } });
  await fullRequest(directAgent, `https://127.0.0.1:${o.upstreamPort}/v1/messages`, {});
  await fullRequest(sluice.fresh, sluice.url('/v1/messages'), sluice.headers);
  const firstDirect: number[] = [];
  const firstNew: number[] = [];
  const firstCached: number[] = [];
  for (const h of o.firstRequestHosts) {
    firstDirect.push(await fullRequest(directAgent, `https://127.0.0.1:${o.upstreamPort}/v1/messages`, {}));
    firstNew.push(await fullRequest(sluice.fresh, `https://${h}/v1/messages`, {}));
    firstCached.push(await fullRequest(sluice.fresh, `https://${h}/v1/messages`, {}));
  }
  const hs = { direct: summarize(direct), new_host: summarize(fresh), cached_host: summarize(cached) };
  const fr = { direct_new_connection: summarize(firstDirect), new_host: summarize(firstNew), cached_host_new_connection: summarize(firstCached) };
  const added = firstNew.map((ms, i) => round3(ms - firstDirect[i]!));
  return {
    handshake: {
      ...hs,
      added_new_vs_direct_p50_ms: round3(hs.new_host.p50_ms - hs.direct.p50_ms),
      mint_cost_p50_ms: round3(hs.new_host.p50_ms - hs.cached_host.p50_ms),
    },
    burst: { hosts: o.burstHosts.length, wall_ms: round3(burstWall), per_host: summarize(burst), rpc: rpcBurst },
    first_request: {
      ...fr,
      // Paired: a hiccup of the machine that slows both requests of a pair cancels out; one that slows only
      // the request through sluice still counts.
      added_per_host_ms: added,
      added_new_vs_direct_p50_ms: summarize(added).p50_ms,
      added_new_vs_direct_max_ms: Math.max(...added),
      hosts: o.firstRequestHosts,
    },
    cold_first_mint: { handshake_ms: round3(cold), rpc: rpcCold },
    rpc_while_minting: rpc,
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
