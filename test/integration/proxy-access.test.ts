/**
 * Who may use the proxy, and the daemon's own hygiene: the proxy access token (407 without it, rotation,
 * the SLUICE_PROXY_AUTH=off opt-out, never logged or forwarded), hostile bytes on the proxy port, invalid
 * CONNECT targets, one daemon per home, stale sockets, and owner-only file modes. The daemons that must
 * refuse to start on unsafe directories are in proxy-access-startup.test.ts (split so the slow groups run in
 * parallel).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BIN, shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, UPSTREAM_CA, type FakeUpstream } from '../fakes/fake-upstream.js';
import { basicAuth, defaultResolvePairs, rawConnect, rawProxy, resolveSpec, stateFiles, tokenOf, waitFor } from './helpers.js';
import { listenOnLoopback } from '../fakes/loopback-server.js';

const HOST = 'api.anthropic.com';

/** A plain-HTTP upstream (for absolute-form proxy requests), recording what it saw. */
interface PlainUpstream {
  port: number;
  seen: { url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

async function startPlainUpstream(): Promise<PlainUpstream> {
  const seen: PlainUpstream['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
    res.end('plain');
  });
  const listening = await listenOnLoopback(server);
  return { port: listening.port, seen, close: listening.close };
}

/** Runs the built daemon directly (not through the harness) and waits for it to exit. */
function runDaemonOnce(env: NodeJS.ProcessEnv, timeoutMs = 25_000): Promise<{ code: number | null; stderr: string; stdout: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN.daemon], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    p.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, stderr, stdout, timedOut: signal === 'SIGKILL' });
    });
  });
}

let upstream: FakeUpstream;
let plain: PlainUpstream;
let d: TestDaemon;
let restarted: TestDaemon | null = null;
let phantom = '';

beforeAll(async () => {
  upstream = await startFakeUpstream();
  plain = await startPlainUpstream();
  d = await startDaemon({
    upstreamPort: upstream.port,
    env: { SLUICE_RESOLVE: `${resolveSpec(upstream.port, defaultResolvePairs())},other.example:80:127.0.0.1:${plain.port}` },
  });
  await d.client.call('rule.add', { verdict: 'allow', host: HOST });
  await d.client.call('rule.add', { verdict: 'allow', host: 'other.example' });
  phantom = (await d.client.call('cred.add', { name: 'anthropic', hosts: [HOST], header: 'x-api-key', secret: 'sk-ant-api03-REALaccessTestSecret0123456789' }))
    .phantom;
});

afterAll(async () => {
  await restarted?.stop();
  await d?.stop();
  await plain?.close();
  await upstream?.close();
});

/** The token the daemon currently accepts (after rotations), from `proxy.env`. */
async function currentToken(daemon: TestDaemon): Promise<string> {
  const env = await daemon.client.call('proxy.env');
  return decodeURIComponent(/sluice:([^@]+)@/.exec(env.proxy_url)![1]!);
}

async function auditRows(daemon: TestDaemon, event: string) {
  const t = await daemon.client.call('audit.tail', { n: 1000 });
  return t.rows.filter((r) => r.event === event);
}

describe('proxy access token', () => {
  test('CONNECT without proxy credentials → 407, audit row with the client address, upstream saw nothing', async () => {
    const before = (await auditRows(d, 'proxy_auth_failed')).length;
    const from = upstream.seen.length;
    const r = await rawConnect(d.proxyPort, `${HOST}:443`);
    expect(r.status).toBe(407);
    expect(r.text).toMatch(/proxy-authenticate: basic/i);
    await expect(d.fetch(`https://${HOST}/v1/messages`, { auth: null, headers: { 'x-api-key': phantom } })).rejects.toThrow(/407/);
    const rows = await waitFor(async () => {
      const rs = await auditRows(d, 'proxy_auth_failed');
      return rs.length >= before + 2 ? rs : null;
    }, 'proxy_auth_failed rows');
    expect(rows.at(-1)!.client).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(rows.at(-1)!.status).toBe(407);
    expect(upstream.seen.length).toBe(from);
  });

  test('wrong token → 407 and an audit row; upstream saw nothing', async () => {
    const before = (await auditRows(d, 'proxy_auth_failed')).length;
    const from = upstream.seen.length;
    const wrong = 'x'.repeat(tokenOf(d).length);
    expect((await rawConnect(d.proxyPort, `${HOST}:443`, basicAuth(wrong))).status).toBe(407);
    expect((await rawConnect(d.proxyPort, `${HOST}:443`, basicAuth(tokenOf(d).slice(0, -1)))).status).toBe(407);
    expect((await rawConnect(d.proxyPort, `${HOST}:443`, `Bearer ${tokenOf(d)}`)).status).toBe(407);
    await expect(d.fetch(`https://${HOST}/v1/messages`, { auth: wrong, headers: { 'x-api-key': phantom } })).rejects.toThrow(/407/);
    await waitFor(async () => (await auditRows(d, 'proxy_auth_failed')).length >= before + 4, 'four more proxy_auth_failed rows');
    expect(upstream.seen.length).toBe(from);
  });

  test('correct token → 200 through CONNECT', async () => {
    const ok = await rawConnect(d.proxyPort, `${HOST}:443`, basicAuth(tokenOf(d)));
    expect(ok.status).toBe(200);
    const r = await d.fetch(`https://${HOST}/v1/messages`, { headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(200);
  });

  test('plain HTTP (absolute-form) without the token → 407 and nothing forwarded', async () => {
    const from = plain.seen.length;
    const r = await rawProxy(d.proxyPort, 'GET http://other.example/noauth HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n');
    expect(r.status).toBe(407);
    expect(plain.seen.length).toBe(from);
  });

  test('plain HTTP with the token → 200, and Proxy-Authorization is not forwarded upstream', async () => {
    const from = plain.seen.length;
    const r = await rawProxy(
      d.proxyPort,
      `GET http://other.example/withauth HTTP/1.1\r\nHost: other.example\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\nConnection: close\r\n\r\n`,
    );
    expect(r.status).toBe(200);
    expect(r.text).toContain('plain');
    const seen = plain.seen.slice(from);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['proxy-authorization']).toBeUndefined();
    expect(JSON.stringify(seen[0]!.headers)).not.toContain(tokenOf(d));
  });

  test('the token never appears in logs, the audit table or the DB (raw or base64), nor in HTTPS upstream requests', async () => {
    const token = tokenOf(d);
    // exercise a few more paths that might log it: a failed auth with the right user and a near-miss
    const failedBefore = (await auditRows(d, 'proxy_auth_failed')).length;
    await rawConnect(d.proxyPort, `${HOST}:443`, basicAuth(token + 'x'));
    // The near-miss has been handled (its audit row is written) before the logs and files are read.
    await waitFor(async () => (await auditRows(d, 'proxy_auth_failed')).length > failedBefore, 'the near-miss proxy_auth_failed row');
    const forms = [token, basicAuth(token).slice('Basic '.length)];
    const audit = JSON.stringify(await d.client.call('audit.tail', { n: 10_000 }));
    for (const t of forms) {
      expect(d.logs()).not.toContain(t);
      expect(fs.readFileSync(path.join(d.home, 'sluiced.log'), 'utf8')).not.toContain(t);
      expect(audit).not.toContain(t);
      for (const f of stateFiles(d.home)) expect(f.bytes.includes(Buffer.from(t)), f.file).toBe(false);
      for (const s of upstream.seen) expect(JSON.stringify(s.headers)).not.toContain(t);
    }
    // only the token file holds it (and the RPC proxy.env result, by design)
    expect(fs.readFileSync(path.join(d.home, 'proxy-token'), 'utf8').trim()).toBe(token);
  });

  test('token.rotate: the old token gets 407, the new one from proxy.env works', async () => {
    const old = tokenOf(d);
    expect(await d.client.call('token.rotate')).toEqual({ rotated: true });
    const fresh = await currentToken(d);
    expect(fresh).not.toBe(old);
    expect(fs.readFileSync(path.join(d.home, 'proxy-token'), 'utf8').trim()).toBe(fresh);
    expect(fs.statSync(path.join(d.home, 'proxy-token')).mode & 0o777).toBe(0o600);
    expect((await rawConnect(d.proxyPort, `${HOST}:443`, basicAuth(old))).status).toBe(407);
    await expect(d.fetch(`https://${HOST}/v1/messages`, { auth: old })).rejects.toThrow(/407/);
    expect((await rawConnect(d.proxyPort, `${HOST}:443`, basicAuth(fresh))).status).toBe(200);
    const r = await d.fetch(`https://${HOST}/v1/messages`, { auth: fresh, headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(200);
    const rows = await waitFor(async () => {
      const t = await d.client.call('audit.tail', { n: 100 });
      return t.rows.some((x) => x.event === 'proxy_token_rotated') ? t.rows : null;
    }, 'a proxy_token_rotated audit row');
    expect(JSON.stringify(rows)).not.toContain(fresh);
    expect(d.logs()).not.toContain(fresh);
  });
});

describe('hostile input on the proxy port', () => {
  test('garbage bytes do not kill the daemon; status answers and the proxy still works', async () => {
    const token = await currentToken(d);
    const payloads: (string | Buffer)[] = [
      Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)),
      Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x01, 0x00, 0x00, 0xfb, 0x03, 0x03]),
      '\r\n\r\n\r\n',
      'GET / HTTP/1.1\r\n\r\n',
      `CONNECT ${'a'.repeat(70_000)}:443 HTTP/1.1\r\n\r\n`,
      'HELLO THERE\0\0\0\n',
      `CONNECT ${HOST}:443 HTTP/1.1\r\nProxy-Authorization: ${basicAuth(token)}\r\n\r\n\x00\x01\x02garbage-in-tunnel\r\n\r\n`,
    ];
    for (const p of payloads) await rawProxy(d.proxyPort, p, 1000);
    const st = await d.client.call('daemon.status');
    expect(st.pid).toBe(d.proc.pid);
    expect(d.proc.exitCode).toBeNull();
    const r = await d.fetch(`https://${HOST}/v1/messages`, { auth: token, headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(200);
  });

  test('CONNECT to an invalid target → 400', async () => {
    const token = await currentToken(d);
    for (const target of ['api.anthropic.com', 'api.anthropic.com:0', 'api.anthropic.com:99999', '-bad-.example:443', 'a_b!.example:443', ':443']) {
      const r = await rawConnect(d.proxyPort, target, basicAuth(token));
      expect(r.status, target).toBe(400);
    }
    expect((await d.client.call('daemon.status')).pid).toBe(d.proc.pid);
  });
});

describe('one daemon per home, file modes', () => {
  test('socket 0600, home 0700, CA key 0600, master key and token 0600', () => {
    const mode = (p: string) => fs.statSync(path.join(d.home, p)).mode & 0o777;
    expect(fs.statSync(d.socket).isSocket()).toBe(true);
    expect(mode('sluiced.sock')).toBe(0o600);
    expect(mode('.')).toBe(0o700);
    expect(mode('ca/ca-key.pem')).toBe(0o600);
    expect(mode('master.key')).toBe(0o600);
    expect(mode('proxy-token')).toBe(0o600);
  });

  test('a second daemon on the same home refuses to start with a clear message', async () => {
    const r = await runDaemonOnce({ ...d.env });
    expect(r.timedOut).toBe(false);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/already running/i);
    // and the first one is unharmed
    expect((await d.client.call('daemon.status')).pid).toBe(d.proc.pid);
    expect(fs.existsSync(d.socket)).toBe(true);
  });

  test('SIGKILL leaves a stale socket; the next daemon on that home removes it and starts', async () => {
    await d.kill('SIGKILL');
    expect(fs.existsSync(d.socket)).toBe(true); // the crash really left it behind
    restarted = await startDaemon({ home: d.home, upstreamPort: upstream.port });
    const st = await restarted.client.call('daemon.status');
    expect(st.pid).toBe(restarted.proc.pid);
    expect(fs.statSync(restarted.socket).mode & 0o777).toBe(0o600);
    const r = await restarted.fetch(`https://${HOST}/v1/messages`, { headers: { 'x-api-key': phantom } });
    expect(r.status).toBe(200);
  });
});

describe('SLUICE_PROXY_AUTH=off', () => {
  let open: TestDaemon;
  beforeAll(async () => {
    open = await startDaemon({ upstreamPort: upstream.port, env: { SLUICE_PROXY_AUTH: 'off' } });
    await open.client.call('rule.add', { verdict: 'allow', host: HOST });
  });
  afterAll(async () => {
    await open?.stop();
  });

  test('works without a token and says so in daemon.status and the startup log', async () => {
    expect((await open.client.call('daemon.status')).proxy.auth).toBe('off');
    expect((await (restarted ?? d).client.call('daemon.status')).proxy.auth).toBe('on');
    expect((await rawConnect(open.proxyPort, `${HOST}:443`)).status).toBe(200);
    const r = await open.fetch(`https://${HOST}/v1/messages`, { auth: null });
    expect(r.status).toBe(200);
    await waitFor(() => /"proxy_auth":"off/.test(open.logs()), 'the startup log line saying auth is off');
  });
});
