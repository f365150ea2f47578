/**
 * The keyed audit chain through the built daemon and CLI: a clean log verifies; rows deleted from the end
 * while the daemon is down are reported by `sluicectl audit verify` (exit 1) even after the restarted daemon
 * writes more rows; a database written by the pre-HMAC code is re-anchored at the first start and verify
 * says so; `audit tail` filters in the daemon and fits 100 columns.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { loadMigrations, openDatabase } from '../../src/daemon/store/database.js';
import type { AuditRow } from '../../src/shared/protocol/entities.js';
import { shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { runCli } from '../fakes/reliability-helpers.js';
import { fakeSecret, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';
let upstream: FakeUpstream;
const daemons: TestDaemon[] = [];

beforeAll(async () => {
  upstream = await startFakeUpstream();
});
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
});
afterAll(async () => {
  await upstream?.close();
});

async function launch(home?: string): Promise<TestDaemon> {
  const d = await startDaemon({ upstreamPort: upstream.port, ...(home ? { home } : {}) });
  daemons.push(d);
  return d;
}

async function stop(d: TestDaemon): Promise<void> {
  daemons.splice(daemons.indexOf(d), 1);
  await d.stop();
  expect(d.proc.exitCode).toBe(0);
}

/** The pre-0006 formula, written out: sha256 over the previous hash and the fields. */
function oldFormula(prev: string, row: Record<string, unknown>): string {
  let text = prev;
  for (const f of ['ts', 'event', 'client', 'host', 'port', 'method', 'path', 'verdict', 'rule_id', 'credential', 'status', 'bytes', 'duration_ms', 'detail']) {
    text += '\x1f' + (row[f] === null || row[f] === undefined ? '\x00' : String(row[f]));
  }
  return crypto.createHash('sha256').update(text).digest('hex');
}

describe('audit chain through the built daemon and CLI', () => {
  test('clean log verifies; a tail deleted while stopped is reported after a restart that keeps writing; tail filters and fits 100 columns', async () => {
    const d = await launch();
    const cred = await d.client.call('cred.add', { name: 'work', hosts: [ANT], secret: fakeSecret() });
    await d.client.call('rule.add', { verdict: 'allow', host: ANT });
    for (let i = 0; i < 4; i++) {
      const r = await d.fetch(`https://${ANT}/v1/messages/${i}/${'z'.repeat(120)}/end`, { headers: { 'x-api-key': cred.phantom } });
      expect(r.status).toBe(200);
    }
    await waitFor(async () => (await d.client.call('audit.tail', { n: 10, event: 'request' })).rows.length === 4, 'four request rows');

    const ok = await runCli(['audit', 'verify'], d.socket);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^audit chain ok \(\d+ rows\)/);
    expect(ok.stdout).toMatch(/rows 1–\d+: HMAC chain ok/);

    const tail = await runCli(['audit', 'tail', '-n', '2', '--cred', 'work', '--event', 'request', '--host', '*.anthropic.com'], d.socket);
    expect(tail.code, tail.stderr).toBe(0);
    const lines = tail.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3); // header + the 2 matching rows, though other rows are newer
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
    // The long path is shortened in the middle: method, host and the end of the path stay.
    expect(lines[2]).toContain(`GET ${ANT}/`);
    expect(lines[2]).toMatch(/…z*\/end · completed$/);
    const json = await runCli(['audit', 'tail', '--json', '-n', '1', '--event', 'request', '--since', '1h'], d.socket);
    const rows = (JSON.parse(json.stdout) as { rows: AuditRow[] }).rows;
    expect(rows).toHaveLength(1);
    expect(Object.keys(rows[0]!)).toEqual(expect.arrayContaining(['duration_ms', 'rule_id', 'prev_hash', 'credential']));

    // Stop, delete the last three rows behind the daemon's back, restart: the new daemon keeps writing
    // (daemon rows, a request), and verify still reports the deleted rows by seq.
    await stop(d);
    const db = new Database(path.join(d.home, 'sluice.db'));
    const max = (db.prepare('SELECT max(id) AS m FROM audit_log').get() as { m: number }).m;
    db.prepare('DELETE FROM audit_log WHERE id > ?').run(max - 3);
    db.close();
    const d2 = await launch(d.home);
    expect((await d2.fetch(`https://${ANT}/v1/after`, { headers: { 'x-api-key': cred.phantom } })).status).toBe(200);
    const broken = await runCli(['audit', 'verify'], d2.socket);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toContain(`BROKEN at row ${max - 2}`);
    expect(broken.stdout).toContain(`rows ${max - 2}–${max} missing`);
    const v = await d2.client.call('audit.verify');
    expect(v.problems[0]).toMatchObject({ kind: 'rows_missing', seq: max - 2, to: max });
    expect(d2.logs()).toMatch(/audit log: the signed head ends at row \d+ but the table ends at row \d+/);
  }, 60_000);

  test('a database written by the pre-HMAC code is re-anchored at the first start, and verify says so', async () => {
    const home = shortTempDir();
    fs.chmodSync(home, 0o700);
    const db = openDatabase(
      path.join(home, 'sluice.db'),
      loadMigrations().filter((m) => m.version < 6),
    );
    let prev = '0'.repeat(64);
    for (let i = 1; i <= 4; i++) {
      const row = {
        ts: `2026-11-0${i}T10:00:00.000Z`,
        event: 'request',
        client: '127.0.0.1',
        host: ANT,
        port: 443,
        method: 'POST',
        path: `/old/${i}`,
        verdict: 'allow',
        rule_id: null,
        credential: 'old',
        status: 200,
        bytes: 5,
        duration_ms: 2.25,
        detail: null,
      };
      const hash = oldFormula(prev, row);
      db.prepare(
        `INSERT INTO audit_log (ts, event, client, host, port, method, path, verdict, rule_id, credential, status, bytes, duration_ms, detail, prev_hash, hash)
         VALUES (@ts, @event, @client, @host, @port, @method, @path, @verdict, @rule_id, @credential, @status, @bytes, @duration_ms, @detail, @prev_hash, @hash)`,
      ).run({ ...row, prev_hash: prev, hash });
      prev = hash;
    }
    db.close();

    const d = await launch(home);
    const out = await runCli(['audit', 'verify'], d.socket);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toMatch(/rows 1–4: legacy SHA-256 chain \(unkeyed\), re-anchored at row 4 on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; ok/);
    expect(out.stdout).toMatch(/(rows 5–\d+|row 5): HMAC chain ok/);
    const anchored = await d.client.call('audit.tail', { n: 5, event: 'audit_anchored' });
    expect(anchored.rows).toHaveLength(1);
    expect(anchored.rows[0]!.id).toBe(5);

    // Once only: a second start does not re-anchor, and the chain still verifies.
    await stop(d);
    const d2 = await launch(home);
    expect((await d2.client.call('audit.tail', { n: 5, event: 'audit_anchored' })).rows).toHaveLength(1);
    expect((await d2.client.call('audit.verify')).ok).toBe(true);
  }, 60_000);
});
