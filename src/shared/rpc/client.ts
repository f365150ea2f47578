/**
 * The typed RPC client used by the TUI and sluicectl. One Unix-socket connection, NDJSON framing,
 * JSON-RPC 2.0 via json-rpc-2.0. Requests never hang: they reject when the connection closes or after
 * the per-call timeout. Errors come back as {@link RpcError} with the catalogue's stable `code`.
 */
import net from 'node:net';
import { JSONRPCClient, JSONRPCErrorException, type JSONRPCResponse } from 'json-rpc-2.0';
import { ERRORS, isErrorCode, type ErrorCode } from '../protocol/error-codes.js';
import { EVENT_NOTIFICATION, type SluiceEvent } from '../protocol/events.js';
import { MAX_RPC_LINE_BYTES } from '../protocol/limits.js';
import type { MethodName, ParamsIn } from '../protocol/params.js';
import type { ResultOf } from '../protocol/results.js';
import { LineDecoder } from './line-decoder.js';
import { resolveSocketPath } from './paths.js';

/** An error answered by the daemon, or a transport failure, with a stable catalogue code. */
export class RpcError extends Error {
  constructor(
    readonly code: ErrorCode | string,
    message: string,
    readonly rpcCode: number,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** Options for {@link connectDaemon}. */
export interface ConnectOptions {
  socketPath?: string;
  /** Default per-call timeout in ms (0 = none). */
  timeoutMs?: number;
  /** How long to wait for the connection itself. */
  connectTimeoutMs?: number;
}

/** A live connection to the daemon. */
export interface DaemonClient {
  /** Calls `method` with `params`; resolves with its typed result or rejects with an {@link RpcError}. */
  call<M extends MethodName>(method: M, params?: ParamsIn<M>, opts?: { timeoutMs?: number }): Promise<ResultOf<M>>;
  /** Registers a listener for `event` notifications; returns an unsubscribe function. */
  onEvent(listener: (event: SluiceEvent) => void): () => void;
  /** Registers a listener for the connection closing (for any reason). */
  onClose(listener: () => void): void;
  /** Closes the connection; pending calls reject. */
  close(): void;
  readonly closed: boolean;
}

/** Connects to the daemon socket. Rejects with code `daemon_unreachable` when nothing answers. */
export function connectDaemon(opts: ConnectOptions = {}): Promise<DaemonClient> {
  const socketPath = opts.socketPath ?? resolveSocketPath();
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const timer =
      opts.connectTimeoutMs && opts.connectTimeoutMs > 0
        ? setTimeout(() => {
            socket.destroy();
            reject(unreachable(socketPath, 'timed out'));
          }, opts.connectTimeoutMs)
        : undefined;
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (timer) clearTimeout(timer);
      reject(unreachable(socketPath, err.code ?? err.message));
    });
    socket.once('connect', () => {
      if (timer) clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(new SocketDaemonClient(socket, opts.timeoutMs ?? 30_000));
    });
  });
}

function unreachable(socketPath: string, why: string): RpcError {
  return new RpcError(
    'daemon_unreachable',
    `sluiced is not running (no answer on ${socketPath}: ${why}). Start it with \`sluicectl daemon start\` or \`sluiced\`.`,
    ERRORS.daemon_unreachable.rpc,
  );
}

/** Converts whatever a call rejected with into an {@link RpcError}. */
export function toRpcError(err: unknown): RpcError {
  if (err instanceof RpcError) return err;
  if (err instanceof JSONRPCErrorException) {
    const data = err.data as { code?: unknown } | undefined;
    const code = data && isErrorCode(data.code) ? data.code : rpcCodeName(err.code);
    return new RpcError(code, err.message, err.code, err.data);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new RpcError('internal', message, ERRORS.internal.rpc);
}

function rpcCodeName(code: number): string {
  for (const [name, def] of Object.entries(ERRORS)) if (def.rpc === code) return name;
  if (code === -32601) return 'method_not_found';
  if (code === -32700) return 'parse_error';
  return 'internal';
}

class SocketDaemonClient implements DaemonClient {
  private readonly rpc: JSONRPCClient;
  private readonly listeners = new Set<(e: SluiceEvent) => void>();
  private readonly closeListeners: (() => void)[] = [];
  closed = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly defaultTimeoutMs: number,
  ) {
    this.rpc = new JSONRPCClient((payload: unknown) => {
      if (this.closed) throw new RpcError('daemon_unreachable', 'connection to sluiced is closed', ERRORS.daemon_unreachable.rpc);
      socket.write(JSON.stringify(payload) + '\n');
    });
    const decoder = new LineDecoder(
      MAX_RPC_LINE_BYTES * 16,
      (line) => this.onLine(line),
      () => socket.destroy(),
    );
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.closed = true;
      this.rpc.rejectAllPendingRequests('connection to sluiced closed');
      for (const l of this.closeListeners) l();
    });
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    const m = msg as { method?: unknown; params?: unknown; id?: unknown };
    if (m.method === EVENT_NOTIFICATION && m.params && typeof m.params === 'object') {
      for (const l of this.listeners) l(m.params as SluiceEvent);
      return;
    }
    if ('id' in m && m.id !== null && m.id !== undefined) this.rpc.receive(m as JSONRPCResponse);
  }

  async call<M extends MethodName>(method: M, params?: ParamsIn<M>, opts?: { timeoutMs?: number }): Promise<ResultOf<M>> {
    const timeoutMs = opts?.timeoutMs ?? this.defaultTimeoutMs;
    const requester = timeoutMs > 0 ? this.rpc.timeout(timeoutMs) : this.rpc;
    try {
      return (await requester.request(method, (params ?? {}) as Record<string, unknown>, undefined)) as ResultOf<M>;
    } catch (err) {
      const e = toRpcError(err);
      if (e.rpcCode === 0 && /timeout/i.test(e.message)) {
        throw new RpcError('timeout', `${method} timed out after ${timeoutMs} ms`, ERRORS.timeout.rpc);
      }
      if (this.closed && e.code === 'internal') {
        throw new RpcError('daemon_unreachable', 'connection to sluiced closed', ERRORS.daemon_unreachable.rpc);
      }
      throw e;
    }
  }

  onEvent(listener: (event: SluiceEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }
}
