/**
 * Test doubles for sluicectl: a fake sluiced that speaks NDJSON JSON-RPC on a temporary Unix socket and
 * records every call, and a runner that executes the compiled CLI as a child process against it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { JSONRPCErrorException, JSONRPCServer } from 'json-rpc-2.0';

/** The compiled CLI; `npm test` builds it first, in development run `npx tsc -p tsconfig.json`. */
export const CLI = fileURLToPath(new URL('../../../dist/cli/main.js', import.meta.url));

/** One connection as a fake handler sees it. */
export interface FakeConnection {
  /** Sends an `event` notification with these params once the current reply has been written. */
  afterReply(fn: () => void): void;
  notify(method: string, params: unknown): void;
  destroy(): void;
}

/** A fake method: receives the params and the connection, returns the result or throws {@link rpcError}. */
export type FakeHandler = (params: Record<string, unknown>, conn: FakeConnection) => unknown;

/** A running fake daemon. */
export interface FakeDaemon {
  socketPath: string;
  calls: { method: string; params: Record<string, unknown> }[];
  callsTo(method: string): Record<string, unknown>[];
  close(): Promise<void>;
}

/** An error the daemon would answer with, carrying the catalogue code in `data.code`. */
export function rpcError(code: string, message: string, rpcCode = -32001): JSONRPCErrorException {
  return new JSONRPCErrorException(message, rpcCode, { code });
}

/** Starts a fake daemon that answers `methods` (anything else is -32601 method not found). */
export async function startFakeDaemon(methods: Record<string, FakeHandler>): Promise<FakeDaemon> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sluicectl-'));
  const socketPath = path.join(dir, 'd.sock');
  if (Buffer.byteLength(socketPath) > 107) throw new Error(`socket path too long for a Unix socket: ${socketPath}`);
  const calls: FakeDaemon['calls'] = [];
  const server = new JSONRPCServer<FakeConnection>({ errorListener: () => undefined });
  for (const [name, handler] of Object.entries(methods)) {
    server.addMethod(name, (params, conn) => {
      const p = (params ?? {}) as Record<string, unknown>;
      calls.push({ method: name, params: p });
      return handler(p, conn);
    });
  }
  const sockets = new Set<net.Socket>();
  const netServer = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const pending: (() => void)[] = [];
    const write = (msg: unknown): void => {
      if (!socket.destroyed) socket.write(JSON.stringify(msg) + '\n');
    };
    const conn: FakeConnection = {
      afterReply: (fn) => pending.push(fn),
      notify: (method, params) => write({ jsonrpc: '2.0', method, params }),
      destroy: () => socket.destroy(),
    };
    const rl = readline.createInterface({ input: socket });
    rl.on('error', () => undefined);
    rl.on('line', (line) => {
      void server.receiveJSON(line, conn).then((response) => {
        if (response) write(response);
        for (const fn of pending.splice(0)) fn();
      });
    });
  });
  await new Promise<void>((resolve) => netServer.listen(socketPath, resolve));
  return {
    socketPath,
    calls,
    callsTo: (method) => calls.filter((c) => c.method === method).map((c) => c.params),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        netServer.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}

/** What a CLI run produced. */
export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options for {@link startCli} / {@link runCli}. */
export interface CliOptions {
  /** Written to stdin, which is then closed; stdin is an empty pipe when absent. */
  stdin?: string;
  env?: Record<string, string | undefined>;
}

/** Starts the compiled CLI; the caller decides when to wait for it (see {@link finished}). */
export function startCli(args: string[], opts: CliOptions = {}): ChildProcess {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p tsconfig.json\` (npm test builds it)`);
  const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_SOCKET: undefined, ...opts.env };
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin!.end(opts.stdin ?? '');
  return child;
}

/** Collects a started CLI's output until it exits. */
export function finished(child: ChildProcess): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs the compiled CLI to completion. */
export function runCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  return finished(startCli(args, opts));
}

/**
 * Resolves once `child`'s stdout has printed at least `n` lines; rejects if it exits first or nothing more
 * arrives within `timeoutMs`, so a missing behaviour fails fast instead of at the suite timeout.
 */
export function linesPrinted(child: ChildProcess, n: number, timeoutMs = 5_000): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`waited ${timeoutMs} ms for ${n} lines, got: ${JSON.stringify(text)}`)), timeoutMs);
    child.stdout!.on('data', (d: Buffer | string) => {
      text += d.toString();
      const lines = text.split('\n').filter((l) => l !== '');
      if (lines.length >= n) {
        clearTimeout(timer);
        resolve(lines);
      }
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      reject(new Error(`CLI exited (${code}) after printing only: ${JSON.stringify(text)}`));
    });
  });
}
