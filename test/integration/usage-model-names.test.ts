/**
 * A hostile or broken upstream chooses the model name usage is keyed by. Through the built daemon, with real
 * TLS to a fake api.anthropic.com answering Messages JSON (and one SSE stream) whose `model` is 100 KB long,
 * full of control characters and escape sequences, or echoes the real key across the 128-character cut:
 * `usage.snapshot` and `sluicectl usage --by model` show a capped, printable name with no part of the secret,
 * and the daemon keeps serving and counting.
 */
import type http from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { UsageSnapshot } from '../../src/shared/protocol/usage.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import { runCli } from '../fakes/reliability-helpers.js';
import { fakeSecret, waitFor } from './helpers.js';

const HOST = 'api.anthropic.com';
const HUGE = `claude-${'x'.repeat(100 * 1024)}`;
const CONTROL = 'claude\u0000\u001b[2J\u001b]0;pwned\u0007\r\nX: y\u202e';
/** What CONTROL becomes: one `?` per character outside printable ASCII. */
const CONTROL_CLEAN = 'claude??[2J?]0;pwned???X: y?';
/** The echoed key starts 20 characters before the cut: past its `sk-ant-api03-` prefix, into the secret part. */
const ECHO_AT = 128 - 20;

let up: Awaited<ReturnType<typeof startHttpsUpstream>>;
let d: TestDaemon;
let secret = '';
let phantom = '';

/** The model the fake reports for the `model` the client asked for. */
function modelFor(asked: string, key: string): string {
  if (asked === 'huge') return HUGE;
  if (asked === 'control' || asked === 'sse-control') return CONTROL;
  if (asked === 'echo') return `${'p'.repeat(ECHO_AT)}${key}-tail`;
  return asked;
}

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const asked = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model: string }).model;
    const model = modelFor(asked, String(req.headers['x-api-key'] ?? ''));
    if (asked.startsWith('sse-')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const start = { type: 'message_start', message: { id: 'm1', type: 'message', role: 'assistant', model, usage: { input_tokens: 4, output_tokens: 1 } } };
      res.write(`event: message_start\ndata: ${JSON.stringify(start)}\n\n`);
      res.write(
        `event: message_delta\ndata: ${JSON.stringify({ type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 6 } })}\n\n`,
      );
      res.end('event: message_stop\ndata: {"type":"message_stop"}\n\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: 'm1',
        type: 'message',
        role: 'assistant',
        model,
        content: [{ type: 'text', text: 'hi' }],
        usage: { input_tokens: 3, output_tokens: 2 },
      }),
    );
  });
}

beforeAll(async () => {
  up = await startHttpsUpstream(handler);
  d = await startDaemon({ upstreamPort: up.port });
  await d.client.call('rule.add', { verdict: 'allow', host: HOST });
  secret = fakeSecret('sk-ant-api03-');
  phantom = (await d.client.call('cred.add', { name: 'ant', hosts: [HOST], header: 'x-api-key', secret })).phantom;
}, 60_000);

afterAll(async () => {
  await d?.stop();
  await up?.close();
});

async function send(model: string): Promise<void> {
  const r = await d.fetch(`https://${HOST}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': phantom, 'content-type': 'application/json' },
    body: JSON.stringify({ model }),
  });
  expect(r.status).toBe(200);
}

async function byModel(requests: number): Promise<UsageSnapshot> {
  return waitFor(async () => {
    const s = await d.client.call('usage.snapshot', { by: 'model', since: '1h' });
    return s.rows.reduce((n, r) => n + r.requests, 0) === requests ? s : null;
  }, `${requests} requests counted by model`);
}

describe('model names from the upstream', () => {
  test('a 100 KB name, control characters and an echoed key are shown capped and clean; the daemon keeps working', async () => {
    await send('huge');
    await send('control');
    await send('sse-control');
    await send('echo');
    const snap = await byModel(4);
    const keys = snap.rows.map((r) => r.key);
    for (const k of keys) {
      expect(k.length).toBeLessThanOrEqual(128);
      expect(k).toMatch(/^[\x20-\x7e]+$/);
    }
    expect(keys).toContain(HUGE.slice(0, 128));
    // The JSON answer and the SSE stream name the same model: one bucket.
    expect(snap.rows.find((r) => r.key === CONTROL_CLEAN)).toMatchObject({ requests: 2, input_tokens: 3 + 4, output_tokens: 2 + 6 });
    // Masked before the cut: the phantom's start, not the secret's, fills the last 20 characters.
    expect(keys).toContain(`${'p'.repeat(ECHO_AT)}${phantom.slice(0, 20)}`);
    const text = JSON.stringify(snap);
    expect(text).not.toContain(secret.slice(0, 17)); // 'sk-ant-api03-REAL': where the secret part begins
    expect(text).not.toContain('REAL');

    // The CLI draws the same names without passing on a single control character.
    const cli = await runCli(['usage', '--by', 'model', '--since', '1h'], d.socket);
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain('claude??[2J');
    expect(cli.stdout.replaceAll('\n', '')).toMatch(/^[\x20-\x7e]*$/);
    expect(cli.stdout).not.toContain('REAL');

    // Still serving and counting, under a plain name.
    await send('claude-ok');
    const after = await byModel(5);
    expect(after.rows.find((r) => r.key === 'claude-ok')).toMatchObject({ requests: 1, input_tokens: 3, output_tokens: 2 });
    expect((await d.client.call('daemon.status', {})).pid).toBeGreaterThan(0);
  });
});
