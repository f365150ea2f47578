/**
 * The practical floor for a Node MITM proxy, as a bench column: CONNECT, TLS termination with one fixed
 * certificate, keep-alive forwarding to the upstream, and nothing else — no access token, policy, credentials,
 * caps, audit or per-host certificates. sluice's throughput, p99 and CPU per request are judged against it.
 *
 *   node dist-bench/bench/min-relay.js UPSTREAM_PORT
 *
 * Runs in its own process (like the daemon). Writes `{"port":N}` on one stdout line once listening; exits
 * when its stdin closes or on SIGTERM.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { REPO_ROOT } from '../test/fakes/repo-root.js';

const upstreamPort = Number(process.argv[2]);
if (!Number.isInteger(upstreamPort) || upstreamPort <= 0) {
  process.stderr.write('usage: min-relay.js UPSTREAM_PORT\n');
  process.exit(2);
}
const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');
// The upstream's own certificate covers the provider names and 127.0.0.1; the client trusts the test CA.
const secureContext = tls.createSecureContext({
  key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')),
  cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')),
});
const agent = new https.Agent({ keepAlive: true, maxSockets: Infinity, ca: fs.readFileSync(path.join(TLS_DIR, 'upstream-ca.pem')) });

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function forward(req: http.IncomingMessage, res: http.ServerResponse): void {
  const headers: http.OutgoingHttpHeaders = {};
  for (const k in req.headers) if (!HOP.has(k)) headers[k] = req.headers[k];
  const host = String(req.headers.host ?? '').replace(/:\d+$/, '');
  const up = https.request({ host: '127.0.0.1', port: upstreamPort, servername: host || undefined, method: req.method, path: req.url, headers, agent }, (r) => {
    const out: http.OutgoingHttpHeaders = {};
    for (const k in r.headers) if (!HOP.has(k)) out[k] = r.headers[k];
    res.writeHead(r.statusCode ?? 502, out);
    r.pipe(res);
  });
  up.on('error', () => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  res.on('close', () => up.destroy());
  req.pipe(up);
}

const inner = http.createServer({ keepAlive: true }, forward);
const outer = http.createServer(forward);
outer.on('connect', (_req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) socket.unshift(head);
  const secure = new tls.TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
  secure.on('error', () => secure.destroy());
  inner.emit('connection', secure);
});
outer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (outer.address() as net.AddressInfo).port })}\n`);
});
const stop = (): void => process.exit(0);
process.once('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
