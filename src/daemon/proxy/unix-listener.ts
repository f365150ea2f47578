/**
 * A Unix-socket listener whose connections are handed to another server (the proxy's HTTP server), so a
 * client on the socket goes through exactly the same pipeline as one on the TCP port. The socket file is
 * owner-only (0600) from the moment it exists: it is created under a umask of 077.
 */
import fs from 'node:fs';
import net from 'node:net';

/** Listens on `file` (removing a stale socket file first) and calls `onConnection` for each client. */
export function listenUnixSocket(file: string, onConnection: (socket: net.Socket) => void): Promise<net.Server> {
  try {
    if (fs.lstatSync(file).isSocket()) fs.unlinkSync(file);
  } catch {
    // absent: nothing to remove
  }
  const server = net.createServer(onConnection);
  return new Promise((resolve, reject) => {
    const old = process.umask(0o077);
    server.once('error', (err) => {
      process.umask(old);
      reject(err);
    });
    server.listen(file, () => {
      process.umask(old);
      fs.chmodSync(file, 0o600);
      resolve(server);
    });
  });
}
