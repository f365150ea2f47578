/**
 * The intercepting proxy: http-mitm-proxy configured for sluice. CONNECT requests are checked for the proxy
 * access token before any TLS happens; every HTTPS host gets a leaf certificate from our own CA (minted
 * asynchronously, never by the library's blocking RSA path); all requests run through the pipeline; the
 * library's own error handling and console output are replaced.
 */
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { Proxy as MitmProxy, type IContext } from 'http-mitm-proxy';
import type { AuditLog } from '../audit/audit-log.js';
import type { LeafCertCache } from '../ca/leaf-certs.js';
import type { Logger } from '../log.js';
import type { ProxyAuth } from './proxy-auth.js';
import type { RequestPipeline } from './request-pipeline.js';
import type { UpstreamAgents } from './upstream-agents.js';
import type { WebSocketRelay } from './websocket-relay.js';
import { validConnectTarget } from './target-syntax.js';

/** What the proxy server needs. */
export interface MitmServerDeps {
  pipeline: RequestPipeline;
  auth: ProxyAuth;
  leafs: LeafCertCache;
  audit: AuditLog;
  log: Logger;
  agents: UpstreamAgents;
  /** A private directory for the library's own (unused) CA files. */
  internalDir: string;
  /** Handles WebSocket upgrades (replaces the library's accept-everything handling). */
  relay: WebSocketRelay;
}

/** Owns the http-mitm-proxy instance. */
export class MitmServer {
  private readonly proxy = new MitmProxy();
  private started = false;

  constructor(private readonly d: MitmServerDeps) {}

  /** The CONNECT request a tunnelled connection came through (keyed like the library keys it). */
  connectRequestOf(socket: Duplex): import('node:http').IncomingMessage | undefined {
    const s = socket as net.Socket;
    return (this.proxy as unknown as { connectRequests: Record<string, import('node:http').IncomingMessage> }).connectRequests[`${s.remotePort}:${s.localPort}`];
  }

  /** The ports this proxy listens on (the public one and the internal TLS one). */
  ports(): number[] {
    const p = this.proxy as unknown as { httpPort?: number; httpsPort?: number };
    return [p.httpPort, p.httpsPort].filter((x): x is number => typeof x === 'number' && x > 0);
  }

  /** Starts listening on `host:port` (0 = any free port); resolves with the bound address. */
  start(host: string, port: number): Promise<{ host: string; port: number }> {
    fs.mkdirSync(this.d.internalDir, { recursive: true, mode: 0o700 });
    const proxy = this.proxy;
    proxy.onConnect((req, socket, _head, cb) => this.onConnect(req, socket, cb));
    proxy.onRequest((ctx, cb) => this.d.pipeline.handle(ctx, cb));
    const lib = proxy as unknown as {
      onCertificateRequired: (host: string, cb: (err: Error | null, files: unknown) => void) => void;
      onCertificateMissing: (ctx: { hostname: string }, files: unknown, cb: (err: Error | null, files?: unknown) => void) => void;
      _onError: (kind: string, ctx: IContext | null, err: Error, socket?: Duplex) => void;
      _createHttpsServer: (options: unknown, cb: (port: number, server: import('node:http').Server, wss: unknown) => void) => void;
    };
    const nowhere = path.join(this.d.internalDir, 'never-written');
    // Point the library at files that never exist so it always asks onCertificateMissing, which mints from
    // our CA in memory; nothing per-host is ever written to disk.
    lib.onCertificateRequired = (hostname, cb) => cb(null, { keyFile: `${nowhere}/k`, certFile: `${nowhere}/c`, hosts: [hostname] });
    lib.onCertificateMissing = (ctx, _files, cb) => {
      this.d.leafs.get(ctx.hostname).then(
        (c) => cb(null, { certFileData: c.certPem, keyFileData: c.keyPem, hosts: [ctx.hostname] }),
        (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
      );
    };
    lib._onError = (kind, ctx, err, socket) => {
      // A request Node could not even parse (oversized headers, garbage) inside a TLS tunnel reaches only
      // the server's clientError: answer it and close, or the client hangs.
      if (!ctx && kind.endsWith('CLIENT_ERROR') && socket && !socket.destroyed) {
        const tooLarge = (err as NodeJS.ErrnoException).code === 'HPE_HEADER_OVERFLOW';
        socket.end(tooLarge ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        socket.once('finish', () => socket.destroy());
        return;
      }
      this.d.pipeline.onError(ctx, err, kind);
    };
    // Every internal TLS server (the SNI one and any per-IP one) gets the relay's upgrade handling.
    const createHttpsServer = lib._createHttpsServer.bind(proxy);
    lib._createHttpsServer = (options, cb) =>
      createHttpsServer(options, (port, server, wss) => {
        this.d.relay.attach(server, true);
        cb(port, server, wss);
      });
    return new Promise((resolve, reject) => {
      const onListenError = (err: Error) => reject(err);
      proxy.listen(
        {
          host,
          port,
          keepAlive: true,
          forceSNI: true,
          sslCaDir: this.d.internalDir,
          httpAgent: this.d.agents.http,
          httpsAgent: this.d.agents.https,
        },
        (err) => {
          if (err) return reject(err);
          this.started = true;
          const server = (proxy as unknown as { httpServer: import('node:http').Server }).httpServer;
          server.off('error', onListenError);
          this.d.relay.attach(server, false);
          const addr = server.address() as net.AddressInfo;
          resolve({ host: addr.address, port: addr.port });
        },
      );
      (proxy as unknown as { httpServer?: net.Server }).httpServer?.once('error', onListenError);
    });
  }

  private onConnect(req: import('node:http').IncomingMessage, socket: Duplex, cb: (err?: Error | null) => void): void {
    const client = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    if (!this.d.auth.check(req.headers['proxy-authorization'])) {
      this.d.audit.append({ event: 'proxy_auth_failed', client, host: req.url ?? null, method: 'CONNECT', status: 407 });
      socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="sluice"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    if (!validConnectTarget(req.url)) {
      socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    cb();
  }

  /** Stops accepting connections. */
  close(): void {
    if (this.started) this.proxy.close();
    this.started = false;
  }
}
