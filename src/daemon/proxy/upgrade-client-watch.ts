/**
 * Watches the client socket of a WebSocket upgrade while sluice decides about it (admission, which may wait
 * for a human, then the upstream connect). Node hands an upgrade's socket over with nobody reading it, so a
 * client that closes or half-closes meanwhile goes unnoticed until sluice next touches the socket: an approval
 * prompt keeps counting a waiter that is gone, and a human approves a dead request. The watch reads the socket
 * so its end shows, and keeps every byte it read: {@link UpgradeClientWatch.release} hands them back after the
 * upgrade's `head`, so nothing the client sent is lost.
 */
import type { Duplex } from 'node:stream';

/** How many bytes a watch keeps; past that it stops reading (the kernel then holds the rest, as before). */
export const MAX_WATCH_BUFFERED = 64 * 1024;

/** A watch on one upgrade's client socket. */
export interface UpgradeClientWatch {
  /**
   * Stops watching (idempotent) and returns `head` followed by every byte the watch read, in order; the socket
   * is left as Node handed it over (nobody reading), so whoever takes it next (ws) reads on from there.
   */
  release(head: Buffer): Buffer;
}

/**
 * Starts watching `socket`. A close (reset, destroy, TLS close) shows as the socket's own `close` event; a
 * half-close (FIN) destroys the socket, so it shows the same way: a client that stopped sending cannot be
 * accepted anyway (ws refuses a socket that is no longer readable), and nobody would ever close its side.
 * At most `maxBuffered` bytes are read; beyond that the watch stops reading and the client's leaving is
 * noticed only when the upgrade is answered.
 */
export function watchUpgradeClient(socket: Duplex, maxBuffered = MAX_WATCH_BUFFERED): UpgradeClientWatch {
  const chunks: Buffer[] = [];
  let size = 0;
  let released = false;
  const onReadable = (): void => {
    while (size < maxBuffered) {
      const c = socket.read() as Buffer | null;
      if (c === null) break;
      chunks.push(c);
      size += c.length;
    }
  };
  const onEnd = (): void => {
    socket.destroy();
  };
  socket.on('readable', onReadable);
  socket.on('end', onEnd);
  return {
    release(head) {
      if (released) return head;
      released = true;
      // Without a 'readable' listener the stream goes back to "nobody reading" (flowing null) on the next
      // tick, or resumes for a 'data' listener added meanwhile: ws's own reader then gets the rest.
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      if (chunks.length === 0) return head;
      const out = Buffer.concat([head, ...chunks]);
      chunks.length = 0;
      return out;
    },
  };
}
