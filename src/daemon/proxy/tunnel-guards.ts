/**
 * Socket-level safety for CONNECT tunnels: answers to requests Node cannot parse, and the guard that
 * closes tunnels whose client is gone or never speaks. Without them a client hangs on garbage, and the
 * daemon keeps descriptors in CLOSE_WAIT for good.
 */
import type net from 'node:net';
import type { Duplex } from 'node:stream';

/** How long a new tunnel may stay silent before its first byte (clients send a TLS hello at once). */
export const TUNNEL_FIRST_BYTE_MS = 30_000;

/** How long a TLS handshake inside a tunnel may take (Node's TLS server default). */
export const TLS_HANDSHAKE_MS = 120_000;

/**
 * Answers a request Node could not parse (oversized headers → 431, anything else → 400) and closes the
 * connection; a connection that is already broken is just destroyed. Used as the tunnel servers'
 * `clientError` handler, so a client never hangs on a request sluice could not read.
 */
export function answerClientError(err: Error, socket: Duplex): void {
  if (socket.destroyed) return;
  const code = (err as NodeJS.ErrnoException).code;
  if (!socket.writable || code === 'ECONNRESET' || code === 'EPIPE') return void socket.destroy();
  const tooLarge = code === 'HPE_HEADER_OVERFLOW';
  socket.end(
    tooLarge
      ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'
      : 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
  );
  socket.once('finish', () => socket.destroy());
}

/**
 * Makes an accepted tunnel close when its client does. The HTTP server accepted the socket half-open
 * capable, and a TLS socket built on it inherits that: a client closing a tunnel before or during the
 * handshake, or without ever sending a request, would leave the descriptor in CLOSE_WAIT for good. Until
 * its first byte a tunnel belongs to no server, so nothing else times it out either: one that stays
 * silent for TUNNEL_FIRST_BYTE_MS is closed. Returns a function to call once the first byte arrived.
 */
export function guardTunnel(socket: net.Socket, head: Buffer | undefined): () => void {
  socket.allowHalfOpen = false;
  if ((head?.length ?? 0) > 0) return () => {};
  const timer = setTimeout(() => socket.destroy(), TUNNEL_FIRST_BYTE_MS);
  timer.unref();
  const clear = (): void => clearTimeout(timer);
  socket.once('close', clear);
  return clear;
}
