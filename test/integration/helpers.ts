/**
 * Small helpers shared by the integration tests: polling, raw proxy/RPC sockets, streaming reads and
 * byte-level secret searches. Everything here talks to loopback only and is bounded by a timeout.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { request, type Dispatcher } from 'undici';
import { UPSTREAM_CA } from '../fakes/fake-upstream.js';
import type { TestDaemon } from '../fakes/daemon-harness.js';
import { sleep, waitFor as sharedWaitFor, within, type WaitForOptions } from '../fakes/wait-for.js';

/**
 * Polls `fn` until it returns a truthy value (returned) or the deadline passes (throws, naming `what` and
 * what the poll last saw). Same helper as `test/fakes/wait-for.ts`; takes either its options object or the
 * older positional form `(fn, what, timeoutMs?, intervalMs?)`.
 */
export function waitFor<T>(fn: () => T | Promise<T>, what: string | WaitForOptions, timeoutMs?: number, intervalMs?: number): Promise<NonNullable<T>> {
  return sharedWaitFor(fn, typeof what === 'string' ? { what, timeoutMs, intervalMs } : what);
}

export { sleep, within };

/** A random alphanumeric string. */
export function randomAlnum(n: number): string {
  const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let s = '';
  for (let i = 0; i < n; i++) s += a[Math.floor(Math.random() * a.length)];
  return s;
}

/** A realistic-looking, unique fake secret with the given provider prefix. */
export function fakeSecret(prefix = 'sk-ant-api03-'): string {
  return `${prefix}REAL${randomAlnum(40)}`;
}

/** `Basic` proxy credentials for the access token. */
export function basicAuth(token: string, user = 'sluice'): string {
  return `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`;
}

/** The access token embedded in a daemon's proxy URL. */
export function tokenOf(d: TestDaemon): string {
  const t = /sluice:([^@]+)@/.exec(d.proxyUrl)?.[1];
  if (!t) throw new Error(`no token in ${d.proxyUrl}`);
  return decodeURIComponent(t);
}

/**
 * Writes `data` to the proxy port and collects what comes back until the head of a response arrived
 * (plus its declared body), the peer closes, or the timeout. Returns the raw text and the status.
 */
export function rawProxy(port: number, data: string | Buffer, timeoutMs = 5000): Promise<{ text: string; status: number | null; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(buf);
      resolve({ text: buf, status: m ? Number(m[1]) : null, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('connect', () => s.write(data));
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      const headEnd = buf.indexOf('\r\n\r\n');
      if (headEnd === -1) return;
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(buf.slice(0, headEnd));
      const bodyLen = cl ? Number(cl[1]) : 0;
      if (buf.length - headEnd - 4 >= bodyLen) finish(false);
    });
    s.on('error', () => finish(true));
    s.on('close', () => finish(true));
  });
}

/** A raw `CONNECT target` with optional proxy credentials; resolves with the proxy's answer. */
export function rawConnect(port: number, target: string, proxyAuthorization?: string): Promise<{ text: string; status: number | null; closed: boolean }> {
  const lines = [`CONNECT ${target} HTTP/1.1`, `Host: ${target}`];
  if (proxyAuthorization) lines.push(`Proxy-Authorization: ${proxyAuthorization}`);
  return rawProxy(port, lines.join('\r\n') + '\r\n\r\n');
}

/**
 * Opens a CONNECT tunnel with the token, does TLS inside it (trusting the sluice CA) and sends `rawRequest`
 * verbatim; resolves with the raw response text (up to the declared content-length).
 */
export function tunnelRaw(d: TestDaemon, host: string, rawRequest: string, timeoutMs = 5000): Promise<string> {
  const caPem = fs.readFileSync(d.caPath, 'utf8');
  return new Promise((resolve, reject) => {
    const s = net.connect(d.proxyPort, '127.0.0.1');
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('tunnelRaw timed out'));
    }, timeoutMs);
    let head = '';
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(head)) {
        clearTimeout(timer);
        s.destroy();
        return reject(new Error(`CONNECT refused: ${head.split('\r\n')[0]}`));
      }
      const t = tls.connect({ socket: s, servername: host, ca: [caPem] }, () => t.write(rawRequest));
      let out = '';
      t.on('data', (b: Buffer) => {
        out += b.toString('latin1');
        const i = out.indexOf('\r\n\r\n');
        if (i === -1) return;
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(out.slice(0, i));
        if (cl && out.length - i - 4 >= Number(cl[1])) {
          clearTimeout(timer);
          t.destroy();
          resolve(out);
        }
      });
      t.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      t.on('close', () => {
        clearTimeout(timer);
        resolve(out);
      });
    };
    s.on('connect', () => s.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\n\r\n`));
    s.on('data', onData);
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** One streamed response: status, headers, and each body chunk with the time it arrived. */
export interface StreamResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  chunks: { at: number; text: string }[];
  endedAt: number;
}

/** Starts a streamed request through `dispatcher`; returns the response object (body not yet read). */
export async function openStream(
  url: string,
  dispatcher: Dispatcher,
  opts: { headers?: Record<string, string>; signal?: AbortSignal; method?: string; body?: string } = {},
) {
  return request(url, { method: (opts.method ?? 'GET') as 'GET', headers: opts.headers, body: opts.body, dispatcher, signal: opts.signal });
}

/** Reads a whole streamed response, timing each chunk. Rejects when the body errors. */
export async function readStream(
  url: string,
  dispatcher: Dispatcher,
  opts: { headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<StreamResult> {
  const res = await openStream(url, dispatcher, opts);
  const chunks: { at: number; text: string }[] = [];
  for await (const c of res.body) chunks.push({ at: Date.now(), text: Buffer.from(c as Buffer).toString('utf8') });
  return { status: res.statusCode, headers: res.headers as StreamResult['headers'], chunks, endedAt: Date.now() };
}

/** Everything the upstream saw in one request, as one string (for "never saw X" checks). */
export function seenText(r: { method: string; path: string; headers: unknown; body: string }): string {
  return `${r.method} ${r.path}\n${JSON.stringify(r.headers)}\n${r.body}`;
}

/** The bytes of the daemon's on-disk state files that could ever hold a secret by mistake. */
export function stateFiles(home: string): { file: string; bytes: Buffer }[] {
  const out: { file: string; bytes: Buffer }[] = [];
  for (const name of ['sluice.db', 'sluice.db-wal', 'sluice.db-shm', 'sluice.db-journal', 'sluiced.log']) {
    const f = path.join(home, name);
    if (fs.existsSync(f)) out.push({ file: name, bytes: fs.readFileSync(f) });
  }
  return out;
}

/** Files in `dir` (recursively) containing `needle` (as UTF-8 bytes). */
export function filesContaining(dir: string, needle: string, skip: (rel: string) => boolean = () => false): string[] {
  const hits: string[] = [];
  const n = Buffer.from(needle, 'utf8');
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const rel = path.relative(dir, p);
      if (skip(rel)) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(n)) hits.push(rel);
    }
  };
  walk(dir);
  return hits;
}

/** SLUICE_RESOLVE entries pointing `host:port` pairs at a local upstream. */
export function resolveSpec(upstreamPort: number, pairs: [string, number][]): string {
  return pairs.map(([h, p]) => `${h}:${p}:127.0.0.1:${upstreamPort}`).join(',');
}

/** The host:port pairs the harness maps by default (the five test hosts on 443). */
export function defaultResolvePairs(): [string, number][] {
  return ['api.anthropic.com', 'api.openai.com', 'auth.openai.com', 'evil.example', 'other.example'].map((h) => [h, 443] as [string, number]);
}

export { UPSTREAM_CA };
