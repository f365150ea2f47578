/**
 * sluice's own proxy listener (DESIGN §4; the pattern mockttp uses). One public `http.Server` takes
 * absolute-form proxy requests and CONNECT. A CONNECT is checked for the proxy access token before any TLS,
 * then its tunnel is terminated in-process on the client's own socket: TLS (first byte 0x16) with a
 * `tls.TLSSocket` whose certificate comes from the leaf cache, handed to one non-listening HTTP server;
 * plain text (ws://, http://) goes to the public server itself. Nothing else listens.
 *
 * Tunnels are identified by their socket object: the raw socket and its TLS socket both map to the CONNECT
 * request in a WeakMap. Never by port numbers: a table keyed by `remotePort:localPort` let a client without
 * the token, bound to another loopback address on the same source port, pass as an authenticated tunnel.
 */
import http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { AuditLog } from '../audit/audit-log.js';
import type { Logger } from '../log.js';
import type { ProxyAuth } from './proxy-auth.js';
import type { RequestPipeline } from './request-pipeline.js';
import { canonicalHost, hostProblem, parseConnectTarget } from './target-syntax.js';
import type { TlsContexts } from './tls-contexts.js';
import { answerClientError, guardTunnel, TLS_HANDSHAKE_MS } from './tunnel-guards.js';
import { listenUnixSocket } from './unix-listener.js';
import type { WebSocketRelay } from './websocket-relay.js';

/** What the proxy server needs. */
export interface ProxyServerDeps {
  pipeline: RequestPipeline;
  auth: ProxyAuth;
  contexts: TlsContexts;
  audit: AuditLog;
  log: Logger;
  /** Handles WebSocket upgrades on every server. */
  relay: WebSocketRelay;
  /**
   * A tunnel to `host:port` was just opened: the upstream connection its first request will need may be
   * opened now (wire.ts decides whether policy lets it), overlapping the client's TLS handshake with sluice.
   */
  warmUpstream?: (host: string, port: number) => void;
}

/** A proxy address that could not be bound (the message names it and says what to do). */
export class ListenError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const CONNECT_407 = 'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="sluice"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';
const CONNECT_400 = 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n';

/** Owns the public listener and the tunnel servers. */
export class ProxyServer {
  /** Raw tunnel sockets and their TLS sockets → the CONNECT request that opened the tunnel. */
  private readonly tunnels = new WeakMap<Duplex, http.IncomingMessage>();
  private readonly server: http.Server;
  /** Never listens: TLS sockets of tunnels are handed to it after their handshake. */
  private readonly tlsServer: http.Server;
  private port = 0;
  private unix: net.Server | null = null;

  constructor(private readonly d: ProxyServerDeps) {
    this.server = http.createServer((req, res) => d.pipeline.handle(false, req, res));
    this.server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onConnect(req, socket as net.Socket, head));
    d.relay.attach(this.server, false);
    this.tlsServer = http.createServer((req, res) => d.pipeline.handle(true, req, res));
    // Requests Node could not parse inside a tunnel (oversized headers, garbage) get 431/400, never silence.
    this.tlsServer.on('clientError', answerClientError);
    // Nested CONNECT inside TLS is not a thing sluice proxies.
    this.tlsServer.on('connect', (_req: http.IncomingMessage, socket: Duplex) => socket.end(CONNECT_400));
    d.relay.attach(this.tlsServer, true);
    // Node starts the header/request timeout checks of an HTTP server when it starts listening; this one
    // never does, so start them the same way (public event, no internals).
    this.tlsServer.emit('listening');
  }

  /** The CONNECT request a tunnelled connection (raw or TLS socket) came through; undefined for others. */
  connectRequestOf(socket: Duplex): http.IncomingMessage | undefined {
    return this.tunnels.get(socket);
  }

  /** The one port this proxy listens on (requests aimed at it are loops). */
  ports(): number[] {
    return this.port > 0 ? [this.port] : [];
  }

  /**
   * Starts listening on `host:port` (0 = any free port); resolves with the bound address. Rejects with a
   * {@link ListenError} naming the address when it cannot be bound (e.g. already in use).
   */
  start(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => reject(listenError(err, host, port));
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (err) => this.d.log.error('proxy listener error', { err }));
        const addr = this.server.address() as net.AddressInfo;
        this.port = addr.port;
        resolve({ host: addr.address, port: addr.port });
      });
    });
  }

  /**
   * Also accepts proxy clients on the Unix socket `file` (0600; a stale socket file is replaced): its
   * connections go to the public server, so the pipeline and the access-token rules are the same as on the
   * TCP port. Isolated agents (`sluicectl run --isolate`) reach the proxy only this way.
   */
  async listenUnix(file: string): Promise<void> {
    this.unix = await listenUnixSocket(file, (socket) => this.server.emit('connection', socket));
  }

  /** Stops accepting connections and closes idle ones; requests in flight finish on their own. */
  close(): void {
    this.unix?.close();
    if (this.server.listening) this.server.close();
    this.server.closeIdleConnections();
    this.tlsServer.close();
    this.tlsServer.closeIdleConnections();
  }

  /** Every CONNECT: refused (407 before any TLS, 400 for a bad target), or tunnelled in-process. */
  private onConnect(req: http.IncomingMessage, socket: net.Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (!this.d.auth.check(req.headers['proxy-authorization'])) {
      const client = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
      this.d.audit.append({ event: 'proxy_auth_failed', client, host: req.url ?? null, method: 'CONNECT', status: 407 });
      socket.end(CONNECT_407);
      return;
    }
    const target = parseConnectTarget(req.url);
    if (!target) {
      // Say why (e.g. an IPv4 address spelled `127.1`: use 127.0.0.1), in printable ASCII only.
      const raw = req.url ?? '';
      const reason = hostProblem(raw.slice(0, Math.max(0, raw.lastIndexOf(':'))) || raw).replace(/[^\x20-\x7e]/g, '');
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nX-Sluice-Reason: invalid_host\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason)}\r\nConnection: close\r\n\r\n${reason}`,
      );
      return;
    }
    const firstByte = guardTunnel(socket, head);
    // Canonical (no trailing dot, lower case, dotted-quad IPv4), unbracketed for the certificate's IP SAN.
    const host = target.host.replace(/^\[|\]$/g, '');
    this.tunnels.set(socket, req);
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    // Start on the host's certificate and TLS context now (cached; a plain tunnel just leaves it warm): the
    // ~2 ms they take on a new host then overlap the 200 reaching the client and its ClientHello coming back.
    // A failure is reported when the TLS handshake asks again.
    this.d.contexts.get(host).catch(() => {});
    // And on the upstream connection the first request will need (wire.ts decides whether policy lets it);
    // a tunnel to port 80 nearly always carries plain text (ws://, http://), which needs no TLS connection.
    if (target.port !== 80) this.d.warmUpstream?.(target.host, target.port);
    const onFirst = (chunk: Buffer): void => {
      firstByte();
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === 0x16) return this.terminateTls(req, socket, host);
      // Plain text inside a tunnel (ws://, http://): the public server parses it from this very socket; its
      // requests find the CONNECT through the socket object.
      this.server.emit('connection', socket);
      socket.resume();
    };
    if (head && head.length > 0) onFirst(head);
    else socket.once('data', onFirst);
  }

  /**
   * TLS inside a tunnel, on the client's own socket. The CONNECT host's context is the default, so IP
   * literals and clients that send no SNI get a certificate for what they connected to; a client naming a
   * host in SNI gets that host's certificate. Once the handshake is done the TLS socket joins the tunnel
   * HTTP server like a connection of its own (pipeline, WebSocket relay, header and request timeouts).
   */
  private terminateTls(req: http.IncomingMessage, socket: net.Socket, host: string): void {
    this.d.contexts.get(host).then(
      (secureContext) => {
        if (socket.destroyed) return;
        // The TLS socket reads what is already buffered on the raw socket (the unshifted hello) first.
        const secure = new tls.TLSSocket(socket, {
          isServer: true,
          secureContext,
          ALPNProtocols: ['http/1.1'],
          SNICallback: (servername, cb) => this.sniContext(servername, host, secureContext, cb),
        });
        this.tunnels.set(secure, req);
        const handshake = setTimeout(() => secure.destroy(), TLS_HANDSHAKE_MS);
        handshake.unref();
        const onHandshakeError = (): void => void secure.destroy();
        secure.on('error', onHandshakeError);
        secure.once('close', () => clearTimeout(handshake));
        secure.once('secure', () => {
          clearTimeout(handshake);
          if (secure.destroyed) return;
          // From here on the HTTP server's own error handling answers (e.g. 431 for oversized headers).
          secure.off('error', onHandshakeError);
          this.tlsServer.emit('connection', secure);
        });
      },
      (err: unknown) => {
        this.d.log.warn('could not make a certificate for a tunnel', { host, err });
        socket.destroy();
      },
    );
  }

  /** The context for the SNI name `servername` (the tunnel's own context when it names the CONNECT host). */
  private sniContext(servername: string, connectHost: string, own: tls.SecureContext, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void {
    const name = canonicalHost(servername)?.replace(/^\[|\]$/g, '');
    if (!name || name === connectHost) return cb(null, own);
    this.d.contexts.get(name).then(
      (ctx) => cb(null, ctx),
      (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
    );
  }
}

/** A clear, one-line error for a listen failure. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): ListenError {
  const addr = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const code = err.code ?? 'error';
  if (code === 'EADDRINUSE') {
    const any = `${host.includes(':') ? `[${host}]` : host}:0`;
    return new ListenError(
      `cannot listen on the proxy address (EADDRINUSE): ${addr} is already in use by another process; set SLUICE_PROXY_LISTEN=${any} for any free port, or another host:port, or stop what holds it`,
      code,
    );
  }
  if (code === 'EACCES') return new ListenError(`cannot listen on ${addr}: permission denied (EACCES); use a port above 1023 in SLUICE_PROXY_LISTEN`, code);
  if (code === 'EADDRNOTAVAIL')
    return new ListenError(
      `cannot listen on ${addr}: no such local address (EADDRNOTAVAIL); set SLUICE_PROXY_LISTEN to a local address such as 127.0.0.1:8787`,
      code,
    );
  return new ListenError(`cannot listen on ${addr} (${code}); set SLUICE_PROXY_LISTEN to another address`, code);
}
