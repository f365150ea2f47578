/**
 * The intercepting proxy: http-mitm-proxy configured for sluice. CONNECT requests are checked for the proxy
 * access token before any TLS happens; every HTTPS host gets a leaf certificate from our own CA (minted
 * asynchronously, never by the library's blocking RSA path); all requests run through sluice's pipeline
 * (not the library's forwarding); the library's own error handling and console output are replaced.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
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
import { listenUnixSocket } from './unix-listener.js';

/** How long a TLS handshake may take (Node's TLS server default). */
const TLS_HANDSHAKE_MS = 120_000;

/** How long a new tunnel may stay silent before its first byte (clients send a TLS hello at once). */
const TUNNEL_FIRST_BYTE_MS = 30_000;

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
  private unix: net.Server | null = null;
  private readonly contexts = new Map<string, Promise<void>>();
  private readonly ipContexts = new Map<string, Promise<tls.SecureContext>>();

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
    proxy.onConnect((req, socket, head) => this.onConnect(req, socket, head as Buffer));
    const lib = proxy as unknown as {
      onCertificateRequired: (host: string, cb: (err: Error | null, files: unknown) => void) => void;
      onCertificateMissing: (ctx: { hostname: string }, files: unknown, cb: (err: Error | null, files?: unknown) => void) => void;
      _onError: (kind: string, ctx: IContext | null, err: Error, socket?: Duplex) => void;
      _createHttpsServer: (options: unknown, cb: (port: number, server: import('node:http').Server, wss: unknown) => void) => void;
      _onHttpServerRequest: (isSSL: boolean, req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
    };
    // Every request (plain or from a tunnel) goes to sluice's pipeline, which forwards it itself; the
    // library's per-request context and filter chain are never built (see upstream-leg.ts for why).
    lib._onHttpServerRequest = (isSSL, req, res) => this.d.pipeline.handle(isSSL, req, res);
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
      if (!ctx && kind.endsWith('CLIENT_ERROR') && socket) return answerClientError(err, socket);
      this.d.log.debug('proxy connection error', { kind, err });
    };
    // Every internal TLS server the library creates gets the relay's upgrade handling.
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

  /**
   * Every CONNECT ends here: refused, or tunnelled by sluice itself. The library's callback is never called,
   * so none of its own CONNECT handling (a loopback connection per tunnel, a TLS server per IP) ever runs.
   */
  private onConnect(req: import('node:http').IncomingMessage, socket: Duplex, head: Buffer): void {
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
    const firstByte = guardTunnel(socket as net.Socket, head);
    const host = req.url!.slice(0, req.url!.lastIndexOf(':')).replace(/^\[|\]$/g, '').toLowerCase();
    this.tunnel(req, socket as net.Socket, head, host, firstByte);
  }

  /**
   * Terminates the tunnel in-process. http-mitm-proxy would open a second loopback TCP connection per
   * CONNECT to its internal TLS server and copy every byte through it; handing the client socket straight
   * to that server removes the extra connection and both copies. The CONNECT request is registered under
   * the same key the library uses, so requests on this connection still find it.
   */
  private tunnel(req: import('node:http').IncomingMessage, socket: net.Socket, head: Buffer, host: string, firstByte: () => void): void {
    const lib = this.proxy as unknown as { connectRequests: Record<string, import('node:http').IncomingMessage>; httpsServer?: net.Server; httpServer?: net.Server };
    const key = `${socket.remotePort}:${socket.localPort}`;
    lib.connectRequests[key] = req;
    socket.once('close', () => {
      if (lib.connectRequests[key] === req) delete lib.connectRequests[key];
    });
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const onFirst = (chunk: Buffer) => {
      firstByte();
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === 0x16 && net.isIP(host) && lib.httpsServer) {
        this.terminateIpTls(host, socket, lib.httpsServer as tls.Server);
        return;
      }
      if (chunk[0] === 0x16 && lib.httpsServer) {
        this.ensureContext(host).then(
          // Node's TLS server reads what is already buffered on the socket before its own handle.
          () => lib.httpsServer!.emit('connection', socket),
          () => socket.destroy(),
        );
        return;
      }
      // Plain text inside a tunnel (ws://, http://): the proxy's own HTTP server parses it from this very
      // socket (the library would copy it through a loopback connection to 127.0.0.1, which also fails when the
      // proxy listens on another address). Requests on it find the CONNECT under the key registered above.
      if (!lib.httpServer) return void socket.destroy();
      lib.httpServer.emit('connection', socket);
      socket.resume();
    };
    socket.on('error', () => socket.destroy());
    if (head && head.length > 0) onFirst(head);
    else socket.once('data', onFirst);
  }

  /**
   * TLS for a tunnel to an IP literal. Clients send no SNI for an IP, so the shared SNI server cannot pick its
   * certificate; the library would start a listening TLS server per IP (never closed) and copy every byte
   * through a loopback connection to it. Here the TLS socket is built on the client's own socket with that
   * IP's certificate and, once the handshake is done, handed to the SNI server's HTTP side like any of its own
   * connections (same pipeline, WebSocket relay, header and idle timeouts).
   */
  private terminateIpTls(ip: string, socket: net.Socket, server: tls.Server): void {
    this.ipContext(ip).then(
      (secureContext) => {
        if (socket.destroyed) return;
        // Like Node's TLS server: the TLS socket reads what is already buffered on the raw socket first.
        const secure = new tls.TLSSocket(socket, { isServer: true, secureContext, ALPNProtocols: ['http/1.1'] });
        // Node's TLS server gives a handshake 120 s; so does this one.
        const handshake = setTimeout(() => secure.destroy(), TLS_HANDSHAKE_MS);
        handshake.unref();
        secure.once('close', () => clearTimeout(handshake));
        const onHandshakeError = (): void => {
          secure.destroy();
        };
        secure.on('error', onHandshakeError);
        secure.once('secure', () => {
          clearTimeout(handshake);
          if (secure.destroyed) return;
          // From here on the HTTP server's own error handling answers (e.g. 431 for oversized headers).
          secure.off('error', onHandshakeError);
          server.emit('secureConnection', secure);
        });
      },
      () => socket.destroy(),
    );
  }

  /** The certificate context of IP literal `ip` (minted asynchronously, cached). */
  private ipContext(ip: string): Promise<tls.SecureContext> {
    let p = this.ipContexts.get(ip);
    if (!p) {
      // Bounded: contexts are cheap to rebuild from the leaf cache.
      if (this.ipContexts.size >= 1024) this.ipContexts.clear();
      p = this.d.leafs.get(ip).then((c) => tls.createSecureContext({ key: c.keyPem, cert: c.certPem }));
      this.ipContexts.set(ip, p);
      p.catch(() => this.ipContexts.delete(ip));
    }
    return p;
  }

  /** Adds `host`'s leaf certificate to the SNI server once (minted asynchronously, cached). */
  private async ensureContext(host: string): Promise<void> {
    if (this.contexts.has(host)) return this.contexts.get(host)!;
    const p = this.d.leafs.get(host).then((c) => {
      const lib = this.proxy as unknown as { httpsServer: import('node:tls').Server };
      lib.httpsServer.addContext(host, { key: c.keyPem, cert: c.certPem });
    });
    this.contexts.set(host, p);
    p.catch(() => this.contexts.delete(host));
    return p;
  }

  /**
   * Also accepts proxy clients on the Unix socket `file` (0600; a stale file is replaced): the same server,
   * pipeline and access-token rules as the TCP port. Isolated agents reach the proxy only this way.
   */
  listenUnix(file: string): Promise<void> {
    const http = (this.proxy as unknown as { httpServer: net.Server }).httpServer;
    return listenUnixSocket(file, (socket) => http.emit('connection', socket)).then((s) => {
      this.unix = s;
    });
  }

  /** Stops accepting connections. */
  close(): void {
    if (this.started) this.proxy.close();
    this.unix?.close();
    this.started = false;
  }
}

/** Answers a request Node could not parse (oversized headers, garbage) with 431/400 and closes the connection. */
function answerClientError(err: Error, socket: Duplex): void {
  if (socket.destroyed) return;
  const tooLarge = (err as NodeJS.ErrnoException).code === 'HPE_HEADER_OVERFLOW';
  socket.end(tooLarge ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  socket.once('finish', () => socket.destroy());
}

/**
 * Makes an accepted tunnel close when its client does. The HTTP server accepted the socket half-open
 * capable, and a TLS socket built on it inherits that: a client closing a tunnel before or during the
 * handshake, or without ever sending a request, would leave the descriptor in CLOSE_WAIT for good. Until
 * its first byte a tunnel belongs to no server, so nothing else times it out either: one that stays
 * silent for TUNNEL_FIRST_BYTE_MS is closed. Returns a function to call once the first byte arrived.
 */
function guardTunnel(socket: net.Socket, head: Buffer): () => void {
  socket.allowHalfOpen = false;
  if ((head?.length ?? 0) > 0) return () => {};
  const readAtConnect = socket.bytesRead;
  const timer = setTimeout(() => {
    // bytesRead covers the library's path, which pipes the socket and never tells us of its first byte.
    if (socket.bytesRead === readAtConnect) socket.destroy();
  }, TUNNEL_FIRST_BYTE_MS);
  timer.unref();
  const clear = () => clearTimeout(timer);
  socket.once('close', clear);
  return clear;
}
