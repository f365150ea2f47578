/**
 * Opens a WebSocket through the sluice proxy the way agents do: CONNECT (with the proxy token), TLS to
 * the target trusting the sluice CA, then the upgrade on that tunnel.
 */
import fs from 'node:fs';
import http from 'node:http';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

/** Opens a CONNECT tunnel to `host:port` through the proxy at `proxyPort`; resolves with the raw socket. */
export function connectTunnel(proxyPort: number, host: string, port: number, token: string | null): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `${host}:${port}` };
    if (token) headers['proxy-authorization'] = `Basic ${Buffer.from(`sluice:${token}`).toString('base64')}`;
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: `${host}:${port}`, headers });
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new Error(`CONNECT answered ${res.statusCode}`));
      } else resolve(socket);
    });
    req.once('error', reject);
    req.end();
  });
}

/** Opens `wss://host/path` through the proxy. The promise settles once the upgrade succeeded or failed. */
export async function openWebSocket(o: {
  proxyPort: number;
  token: string | null;
  caPath: string;
  host: string;
  path: string;
  headers?: Record<string, string>;
}): Promise<{ ws: WebSocket } | { status: number; body: string }> {
  const tunnel = await connectTunnel(o.proxyPort, o.host, 443, o.token);
  const ca = fs.readFileSync(o.caPath);
  const ws = new WebSocket(`wss://${o.host}${o.path}`, {
    headers: o.headers,
    createConnection: () => tls.connect({ socket: tunnel as import('node:net').Socket, servername: o.host, ca }),
  } as ConstructorParameters<typeof WebSocket>[2]);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.once('error', reject);
  });
}

/** The proxy token inside a proxy URL, or null. */
export function tokenOf(proxyUrl: string): string | null {
  return /sluice:([^@]+)@/.exec(proxyUrl)?.[1] ?? null;
}
