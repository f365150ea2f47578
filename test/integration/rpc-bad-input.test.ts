/**
 * Bad input on the RPC socket: every malformed, unknown, mistyped, oversized or out-of-range call gets a
 * JSON-RPC error with a stable code, changes nothing, and leaves the connection, the daemon and other
 * clients healthy. Uses a raw socket so the bytes sent are exactly what a broken or hostile client writes.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectDaemon, RpcError, type DaemonClient } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';

interface RpcReply {
  jsonrpc: string;
  id: number | string | null;
  result?: unknown;
  error?: { code: number; message: string; data?: { code?: string } };
}

/** A raw NDJSON connection: write any bytes, read the replies line by line. */
class RawRpc {
  private buf = '';
  private readonly queue: RpcReply[] = [];
  private readonly waiting: ((r: RpcReply) => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.buf += c.toString('utf8');
      for (let i = this.buf.indexOf('\n'); i !== -1; i = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        if (!line.trim()) continue;
        const msg = JSON.parse(line) as RpcReply;
        const w = this.waiting.shift();
        if (w) w(msg);
        else this.queue.push(msg);
      }
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static open(path: string): Promise<RawRpc> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(new RawRpc(s)));
      s.once('error', reject);
    });
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next reply line (rejects after `timeoutMs`). */
  next(timeoutMs = 5000): Promise<RpcReply> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = this.waiting.indexOf(done);
        if (i !== -1) this.waiting.splice(i, 1);
        reject(new Error('no reply within timeout'));
      }, timeoutMs);
      const done = (r: RpcReply) => {
        clearTimeout(t);
        resolve(r);
      };
      this.waiting.push(done);
    });
  }

  /** Sends one line and returns the next reply. */
  async send(line: string): Promise<RpcReply> {
    this.write(line + '\n');
    return this.next();
  }

  async call(id: number, method: string, params: unknown = {}): Promise<RpcReply> {
    return this.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
  }

  close(): void {
    this.socket.destroy();
  }
}

let d: TestDaemon;
let raw: RawRpc;
let bystander: DaemonClient;
let bystanderEvents = 0;

beforeAll(async () => {
  d = await startDaemon();
  raw = await RawRpc.open(d.socket);
  bystander = await connectDaemon({ socketPath: d.socket, timeoutMs: 5000 });
  await bystander.call('events.subscribe', {});
  bystander.onEvent(() => bystanderEvents++);
});

afterAll(async () => {
  raw?.close();
  bystander?.close();
  await d?.stop();
});

/** The call fails with an RpcError; returns it. */
async function rpcFails(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError);
    return err as RpcError;
  }
  throw new Error('the call succeeded but should have failed');
}

describe('JSON-RPC framing and envelope errors', () => {
  test('malformed JSON → -32700 and the connection keeps working', async () => {
    for (const bad of ['{"jsonrpc":"2.0",', 'not json at all', '{"a":1}}', '\u0000\u0001\u0002\u00ff']) {
      const r = await raw.send(bad);
      expect(r.error?.code, bad).toBe(-32700);
      expect(r.id).toBeNull();
    }
    const ok = await raw.call(1, 'daemon.status');
    expect(ok.error).toBeUndefined();
    expect((ok.result as { pid: number }).pid).toBe(d.proc.pid);
  });

  test('invalid requests (wrong or missing jsonrpc version, non-object, empty batch) → -32600', async () => {
    const cases = [
      JSON.stringify({ jsonrpc: '1.0', id: 2, method: 'daemon.status', params: {} }),
      JSON.stringify({ id: 3, method: 'daemon.status' }),
      '42',
      '"daemon.status"',
      'null',
      '[]',
    ];
    for (const c of cases) {
      const r = await raw.send(c);
      expect(r.error?.code, c).toBe(-32600);
      expect(r.result, c).toBeUndefined();
    }
    expect((await raw.call(5, 'daemon.status')).error).toBeUndefined();
  });

  test('a non-string method makes the request invalid → -32600 (JSON-RPC 2.0 §4: method is a String)', async () => {
    for (const [i, method] of [5, null, { a: 1 }, ['daemon.status']].entries()) {
      const r = await raw.send(JSON.stringify({ jsonrpc: '2.0', id: 50 + i, method }));
      expect(r.error?.code, JSON.stringify(method)).toBe(-32600);
    }
    expect((await raw.call(59, 'daemon.status')).error).toBeUndefined();
  });

  test('unknown method → -32601 with the request id', async () => {
    for (const [i, m] of ['nope.nothing', 'cred.steal', 'constructor', 'toString', '__proto__', 'hasOwnProperty'].entries()) {
      const r = await raw.call(100 + i, m);
      expect(r.error?.code, m).toBe(-32601);
      expect(r.id).toBe(100 + i);
    }
  });

  test('wrong param types → -32602 with data.code invalid_params', async () => {
    const cases: [string, unknown][] = [
      ['cred.add', { name: 'x', hosts: 'api.anthropic.com', secret: 's' }],
      ['cred.add', { name: 5, hosts: ['a.example'], secret: 's' }],
      ['cred.add', { name: 'x', hosts: ['a.example'], secret: 's', max_concurrent: '2' }],
      ['cred.add', { name: 'x', hosts: ['a.example'] }],
      ['audit.tail', { n: 'ten' }],
      ['daemon.status', { unexpected: true }],
      ['approval.resolve', { id: 'ap_x', decision: 'maybe' }],
      ['rule.add', { verdict: 'perhaps', host: 'a.example' }],
      ['limits.set', { global: 'none' }],
      ['cred.remove', [1, 2]],
      ['cred.list', 'string-params'],
    ];
    for (const [i, [m, p]] of cases.entries()) {
      const r = await raw.call(200 + i, m, p);
      expect(r.error?.code, `${m} ${JSON.stringify(p)}`).toBe(-32602);
      expect(r.error?.data?.code, m).toBe('invalid_params');
      expect(r.id).toBe(200 + i);
    }
    expect((await d.client.call('cred.list')).credentials).toEqual([]);
  });

  test('a line over 1 MiB gets an error, creates nothing, and the same connection still works', async () => {
    const big = JSON.stringify({
      jsonrpc: '2.0',
      id: 300,
      method: 'cred.add',
      params: { name: 'big', hosts: ['a.example'], secret: 'A'.repeat(1024 * 1024 + 10) },
    });
    // written in pieces, the way a slow client would send it
    for (let i = 0; i < big.length; i += 256 * 1024) raw.write(big.slice(i, i + 256 * 1024));
    raw.write('\n');
    const r = await raw.next(10_000);
    expect(r.error).toBeDefined();
    expect(r.error!.data?.code).toBe('line_too_long');
    expect(r.result).toBeUndefined();
    const ok = await raw.call(301, 'cred.list');
    expect(ok.error).toBeUndefined();
    expect((ok.result as { credentials: unknown[] }).credentials).toEqual([]);
    expect(raw.closed).toBe(false);
  });
});

describe('domain validation changes nothing', () => {
  test('out-of-range cap on cred.add (0, 300, 2.5) → error mentioning 1 and 256, nothing created', async () => {
    for (const cap of [0, 300, 2.5, -1]) {
      const e = await rpcFails(
        d.client.call('cred.add', {
          name: `cap${String(cap).replace(/\W/g, '')}`,
          hosts: ['api.anthropic.com'],
          secret: 'sk-ant-api03-REALcaptest0123456789',
          max_concurrent: cap,
        }),
      );
      expect(['invalid_params', 'cap_out_of_range']).toContain(e.code);
      if (Number.isInteger(cap)) {
        expect(e.message).toMatch(/\b1\b/);
        expect(e.message).toMatch(/\b256\b/);
      }
      expect(e.message).not.toContain('REALcaptest');
    }
    expect((await d.client.call('cred.list')).credentials).toEqual([]);
  });

  test('out-of-range cap on cred.update and limits.set leaves the existing cap unchanged', async () => {
    await d.client.call('cred.add', { name: 'kept', hosts: ['api.anthropic.com'], secret: 'sk-ant-api03-REALkept0123456789', max_concurrent: 3 });
    for (const cap of [0, 257]) {
      const e1 = await rpcFails(d.client.call('cred.update', { name: 'kept', max_concurrent: cap }));
      expect(e1.message).toMatch(/\b1\b.*\b256\b/);
      const e2 = await rpcFails(d.client.call('limits.set', { cred: 'kept', max_concurrent: cap }));
      expect(e2.message).toMatch(/\b1\b.*\b256\b/);
    }
    const e3 = await rpcFails(d.client.call('limits.set', { global: 0 }));
    expect(['invalid_params', 'cap_out_of_range']).toContain(e3.code);
    const limits = await d.client.call('limits.get');
    expect(limits.global).toBeNull();
    expect(limits.credentials.find((c) => c.name === 'kept')!.max_concurrent).toBe(3);
    await d.client.call('cred.remove', { name: 'kept' });
  });

  test('rule.add with an invalid host, path or port → error, no rule added', async () => {
    const bad: Parameters<DaemonClient['call']>[1][] = [
      { verdict: 'allow', host: 'bad host' },
      { verdict: 'allow', host: '' },
      { verdict: 'allow', host: 'a/b.example' },
      { verdict: 'allow', host: 'x'.repeat(300) },
      { verdict: 'allow', host: 'a.example', port: 70000 },
      { verdict: 'allow', host: 'a.example', path: 'no-leading-slash' },
      { verdict: 'allow', host: 'a.example', method: 'GET /' },
    ];
    for (const p of bad) {
      const e = await rpcFails(d.client.call('rule.add', p as never));
      expect(['invalid_params', 'invalid_glob'], JSON.stringify(p)).toContain(e.code);
    }
    expect((await d.client.call('rule.list')).rules).toEqual([]);
  });

  test('rule.add with an unbalanced glob ([ or {) → invalid_glob, no rule added', async () => {
    // picomatch compiles these without complaint into patterns that match nothing (or only the literal
    // text), so a deny rule written this way would silently never apply.
    const accepted: string[] = [];
    try {
      for (const host of ['api.[anthropic.com', '{evil,bad.example', '*.{a,b.example']) {
        const r = await d.client.call('rule.add', { verdict: 'deny', host }).then(
          () => null,
          (e: unknown) => e as RpcError,
        );
        if (r === null) accepted.push(`host ${host}`);
        else expect(['invalid_glob', 'invalid_params'], host).toContain(r.code);
      }
      for (const path of ['/v1/[messages', '/v1/{a,b']) {
        const r = await d.client.call('rule.add', { verdict: 'deny', host: 'a.example', path }).then(
          () => null,
          (e: unknown) => e as RpcError,
        );
        if (r === null) accepted.push(`path ${path}`);
        else expect(['invalid_glob', 'invalid_params'], path).toContain(r.code);
      }
      expect(accepted, 'globs accepted although unbalanced').toEqual([]);
      expect((await d.client.call('rule.list')).rules).toEqual([]);
    } finally {
      for (const r of (await d.client.call('rule.list')).rules) await d.client.call('rule.remove', { id: r.id });
    }
  });

  test('duplicate credential name → already_exists; unknown names → not_found', async () => {
    await d.client.call('cred.add', { name: 'dup', hosts: ['api.anthropic.com'], secret: 'sk-ant-api03-REALdup0123456789' });
    const e = await rpcFails(d.client.call('cred.add', { name: 'dup', hosts: ['api.openai.com'], secret: 'sk-proj-REALother0123456789' }));
    expect(e.code).toBe('already_exists');
    expect((await rpcFails(d.client.call('cred.remove', { name: 'ghost' }))).code).toBe('not_found');
    expect((await rpcFails(d.client.call('rule.remove', { id: 999 }))).code).toBe('not_found');
    const list = await d.client.call('cred.list');
    expect(list.credentials.map((c) => [c.name, c.hosts])).toEqual([['dup', ['api.anthropic.com']]]);
    await d.client.call('cred.remove', { name: 'dup' });
  });
});

describe('afterwards', () => {
  test('the daemon is healthy and another client was unaffected', async () => {
    expect(d.proc.exitCode).toBeNull();
    expect(bystander.closed).toBe(false);
    const st = await bystander.call('daemon.status');
    expect(st.pid).toBe(d.proc.pid);
    // the bystander's event stream still works: it sees the next change
    const before = bystanderEvents;
    await d.client.call('rule.add', { verdict: 'deny', host: 'blocked.example' });
    await expect.poll(() => bystanderEvents, { timeout: 5000 }).toBeGreaterThan(before);
    expect((await raw.call(900, 'rule.list')).error).toBeUndefined();
    const v = await d.client.call('audit.verify');
    expect(v.ok).toBe(true);
  });
});
