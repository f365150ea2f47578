/**
 * The RPC transport: JSON-RPC 2.0 as NDJSON over a Unix socket (0600 inside a 0700 directory). Every line
 * gets an answer or a JSON-RPC error and never takes the connection or the daemon down. Subscribers have a
 * bounded outbound queue: a client that stops reading loses events (and is told so with a `gap` event once
 * it drains) instead of slowing the proxy or growing memory.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { JSONRPCServer, createJSONRPCErrorResponse, type JSONRPCRequest } from 'json-rpc-2.0';
import { ERRORS } from '../../shared/protocol/error-codes.js';
import { EVENT_NOTIFICATION, type EventPayloads, type EventType } from '../../shared/protocol/events.js';
import { MAX_RPC_LINE_BYTES } from '../../shared/protocol/limits.js';
import { LineDecoder } from '../../shared/rpc/line-decoder.js';
import type { Logger } from '../log.js';

/** Bytes a subscriber may have unread before events to it are dropped. */
const MAX_PENDING_BYTES = 1024 * 1024;

/** One client connection. */
export class RpcConnection {
  private seq = 0;
  private dropped = 0;
  private types: Set<string> | null = null;
  subscribed = false;

  constructor(readonly socket: net.Socket) {
    socket.on('drain', () => this.flushGap());
  }

  /** Writes one message unless the socket is gone. */
  send(msg: unknown): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(JSON.stringify(msg) + '\n');
  }

  /** Starts (or restarts) the event stream; returns the seq the snapshot corresponds to. */
  subscribe(types: string[] | undefined): number {
    this.subscribed = true;
    this.types = types && types.length > 0 ? new Set(types) : null;
    this.dropped = 0;
    return this.seq;
  }

  /** Sends an event if subscribed and wanted; drops it (counting) when the client is not reading. */
  event<K extends EventType>(type: K, payload: EventPayloads[K]): void {
    if (!this.subscribed || (this.types && !this.types.has(type))) return;
    if (this.socket.writableLength > MAX_PENDING_BYTES) {
      this.dropped++;
      return;
    }
    this.flushGap();
    this.send({ jsonrpc: '2.0', method: EVENT_NOTIFICATION, params: { seq: ++this.seq, type, ...payload } });
  }

  private flushGap(): void {
    if (this.dropped === 0 || this.socket.writableLength > MAX_PENDING_BYTES) return;
    const dropped = this.dropped;
    this.dropped = 0;
    // The gap event itself takes a seq after a jump, so a client sees the gap either way.
    this.seq += dropped;
    this.send({ jsonrpc: '2.0', method: EVENT_NOTIFICATION, params: { seq: ++this.seq, type: 'gap', dropped } });
  }
}

/** Thrown when another daemon already answers on the socket. */
export class AlreadyRunningError extends Error {}

/** Listens on the socket and feeds lines to the JSON-RPC server. */
export class RpcServer {
  private server: net.Server | null = null;
  readonly connections = new Set<RpcConnection>();

  constructor(
    private readonly rpc: JSONRPCServer<RpcConnection>,
    private readonly log: Logger,
  ) {}

  /** Listens on `socketPath`, removing a stale socket only after a connect to it is refused. */
  async listen(socketPath: string): Promise<void> {
    fs.mkdirSync(path.dirname(socketPath), { recursive: true, mode: 0o700 });
    const server = net.createServer((s) => this.accept(s));
    server.maxConnections = 1024;
    try {
      await listenOn(server, socketPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      if (await answers(socketPath)) throw new AlreadyRunningError(`another sluiced is already running on ${socketPath}`);
      fs.unlinkSync(socketPath);
      await listenOn(server, socketPath);
    }
    fs.chmodSync(socketPath, 0o600);
    this.server = server;
  }

  private accept(socket: net.Socket): void {
    const conn = new RpcConnection(socket);
    this.connections.add(conn);
    const decoder = new LineDecoder(
      MAX_RPC_LINE_BYTES,
      (line) => this.onLine(conn, line),
      () =>
        conn.send(
          createJSONRPCErrorResponse(null, ERRORS.line_too_long.rpc, `request line longer than ${MAX_RPC_LINE_BYTES} bytes`, { code: 'line_too_long' }),
        ),
    );
    socket.on('data', (c: Buffer) => decoder.push(c));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.connections.delete(conn));
  }

  private onLine(conn: RpcConnection, line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      conn.send(createJSONRPCErrorResponse(null, -32700, 'Parse error: the line is not valid JSON'));
      return;
    }
    if (Array.isArray(msg) && msg.length === 0) {
      conn.send(createJSONRPCErrorResponse(null, -32600, 'Invalid Request: empty batch'));
      return;
    }
    for (const m of Array.isArray(msg) ? msg : [msg]) {
      // JSON-RPC 2.0 requires a string method; the library would answer "method not found" instead.
      if (!m || typeof m !== 'object' || ('method' in m && typeof (m as { method: unknown }).method !== 'string')) {
        const id = m && typeof m === 'object' && 'id' in m ? ((m as { id: unknown }).id as number | string | null) : null;
        conn.send(createJSONRPCErrorResponse(id ?? null, -32600, 'Invalid Request: method must be a string'));
        return;
      }
    }
    this.rpc.receive(msg as JSONRPCRequest, conn).then(
      (response) => {
        if (response !== null) conn.send(response);
      },
      (err: unknown) => {
        const id = msg && typeof msg === 'object' && 'id' in msg ? ((msg as { id: unknown }).id as number | string | null) : null;
        this.log.warn('rpc request could not be handled', { err });
        conn.send(createJSONRPCErrorResponse(id ?? null, -32600, 'Invalid Request'));
      },
    );
  }

  /** Sends an event to every subscribed connection. */
  broadcast<K extends EventType>(type: K, payload: EventPayloads[K]): void {
    for (const c of this.connections) c.event(type, payload);
  }

  /** True when some connection is subscribed to events. */
  get hasSubscribers(): boolean {
    for (const c of this.connections) if (c.subscribed) return true;
    return false;
  }

  /** Stops listening and closes every connection. */
  close(): void {
    this.server?.close();
    for (const c of this.connections) c.socket.destroy();
    this.server = null;
  }
}

function listenOn(server: net.Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(socketPath);
  });
}

/** True when something accepts connections on `socketPath`. */
export function answers(socketPath: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    const t = setTimeout(() => {
      s.destroy();
      resolve(true);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}
