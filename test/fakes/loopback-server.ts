/**
 * The lifecycle every fake server in the tests shares: listen on 127.0.0.1 on a free port, remember open
 * connections, and on close destroy them (kept-alive clients would otherwise hold `server.close` open).
 */
import type net from 'node:net';

/** A listening fake server. */
export interface LoopbackServer {
  port: number;
  /** Runs `beforeClose`, destroys every open connection, then closes the server. */
  close(): Promise<void>;
}

/** Starts `server` on 127.0.0.1:0 with connection tracking. */
export async function listenOnLoopback(server: net.Server, beforeClose: () => void = () => {}): Promise<LoopbackServer> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        beforeClose();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
