/**
 * Where the first request to a new host spends its time, phase by phase, through the daemon and direct:
 * TCP connect (+ CONNECT), TLS handshake, request until the whole response. Helper for issue 21's
 * "first request to a new host" figure; prints JSON lines.
 *
 *   node dist-bench/bench/first-probe.js [--bin DAEMON_SCRIPT] [--hosts N]
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { sluiceTarget, startUpstream, UPSTREAM_CA_PEM } from './targets.js';
import { Cleanup, round } from './util.js';

const argv = process.argv.slice(2);
const bin = argv.includes('--bin') ? argv[argv.indexOf('--bin') + 1] : undefined;

function phases(o: { port: number; connectTo?: string; token?: string; host: string; ca: string[] }): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const t = [performance.now()];
    const sock = net.connect(o.port, '127.0.0.1');
    sock.once('error', reject);
    const startTls = (): void => {
      t.push(performance.now());
      const s = tls.connect({ socket: sock, servername: o.host, ca: o.ca });
      s.once('error', reject);
      s.once('secureConnect', () => {
        t.push(performance.now());
        s.write(`GET /v1/messages HTTP/1.1\r\nHost: ${o.host}\r\nx-api-key: none\r\nConnection: close\r\n\r\n`);
        let got = '';
        s.on('data', (c: Buffer) => (got += c.toString('latin1')));
        s.once('end', () => {
          t.push(performance.now());
          s.destroy();
          if (!/^HTTP\/1\.1 200/.test(got)) return reject(new Error(got.split('\r\n')[0]));
          resolve(t.slice(1).map((x, i) => round(x - t[i]!, 2)));
        });
      });
    };
    sock.once('connect', () => {
      if (!o.connectTo) return startTls();
      sock.write(
        `CONNECT ${o.connectTo} HTTP/1.1\r\nHost: ${o.connectTo}\r\nProxy-Authorization: Basic ${Buffer.from(`sluice:${o.token}`).toString('base64')}\r\n\r\n`,
      );
      let head = '';
      const onData = (c: Buffer): void => {
        head += c.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        sock.off('data', onData);
        startTls();
      };
      sock.on('data', onData);
    });
  });
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  try {
    const up = await startUpstream(cleanup, 'process');
    const s = await sluiceTarget(cleanup, { upstreamPort: up.port, extraHosts: [], bin });
    const upCa = UPSTREAM_CA_PEM();
    // Warm-up: one request through, one direct.
    await phases({ port: s.daemon.proxyPort, connectTo: 'api.anthropic.com:443', token: s.token, host: 'api.anthropic.com', ca: [s.caPem] });
    for (const host of ['auth.openai.com', 'chatgpt.com', 'evil.example', 'api.openai.com']) {
      const direct = await phases({ port: up.port, host, ca: [upCa] });
      const fresh = await phases({ port: s.daemon.proxyPort, connectTo: `${host}:443`, token: s.token, host, ca: [s.caPem] });
      const again = await phases({ port: s.daemon.proxyPort, connectTo: `${host}:443`, token: s.token, host, ca: [s.caPem] });
      process.stdout.write(
        JSON.stringify({ host, direct, fresh, again, added: round(fresh.reduce((a, b) => a + b) - direct.reduce((a, b) => a + b), 2) }) + '\n',
      );
    }
  } finally {
    await cleanup.run();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
