/**
 * Bad input (issue 10), CLI side: every `sluicectl` command with missing or invalid arguments exits 2 with a
 * one-line reason (plain and --json), against a running daemon, and changes nothing on it. One test per
 * command family, so each stays well inside the per-test budget on a busy machine.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectDaemon, type DaemonClient } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import type { FakeUpstream } from '../fakes/fake-upstream.js';
import { startBadInputDaemon, stopBadInputDaemon } from '../fakes/bad-input-daemon.js';
import { listeningTcp, mapLimit, percentile, rssMb, runCli, statsAtRest } from '../fakes/reliability-helpers.js';
import { basicAuth, fakeSecret, openStream, rawProxy, sleep, tokenOf, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';

let upstream: FakeUpstream;
let d: TestDaemon;
let phantom = '';
let disp: ProxyAgent;

beforeAll(async () => {
  ({ upstream, d, phantom, disp } = await startBadInputDaemon());
});

afterAll(() => stopBadInputDaemon({ upstream, d, disp }));

describe('sluicectl: missing or invalid arguments', () => {
  /** Each invocation must exit 2 with exactly one line on stderr and nothing on stdout. */
  const BAD: string[][] = [
    [],
    ['bogus'],
    ['status', '--timeout', 'abc'],
    ['status', '--socket'],
    ['cred'],
    ['cred', 'add'],
    ['cred', 'add', 'x'],
    ['cred', 'add', 'x', '--host'],
    ['cred', 'add', 'bad name!', '--host', 'a.example'],
    ['cred', 'add', 'x', '--host', 'a.example', '--max-concurrent', 'abc'],
    ['cred', 'add', 'x', '--host', 'a.example', '--max-concurrent', '300'],
    ['cred', 'add', 'x', '--host', 'a.example', '--kind', 'weird'],
    ['cred', 'add', 'x', '--host', 'a.example', '--kind', 'oauth'],
    ['cred', 'add', 'x', '--host', 'a.example', '--format', 'no-placeholder'],
    ['cred', 'add', 'x', '--host', 'a.example', '--header', 'bad header'],
    ['cred', 'add', 'x', '--host', 'a.example'], // no secret on stdin
    ['cred', 'update', 'x'],
    ['cred', 'update', 'x', '--max-concurrent', '1.5'],
    ['cred', 'remove', 'bad!'],
    ['pool'],
    ['pool', 'create'],
    ['pool', 'create', 'p'],
    ['pool', 'create', 'p', '--member'],
    ['pool', 'status', 'bad!'],
    ['pool', 'remove'],
    ['rule'],
    ['rule', 'add', 'allow'],
    ['rule', 'add', 'maybe', 'a.example'],
    ['rule', 'add', 'allow', 'a.example', '--port', '99999'],
    ['rule', 'add', 'allow', 'a.example', '--path', 'nopath'],
    ['rule', 'add', 'allow', 'a.example', '--method', 'GE T'],
    ['rule', 'add', 'allow', 'bad host!'],
    ['rule', 'add', 'allow', 'a.example['],
    ['rule', 'remove', 'abc'],
    ['approval'],
    ['approval', 'allow', ''],
    ['approval', 'deny', 'x', '--next'],
    ['limits', 'set'],
    ['limits', 'set', '--global', 'abc'],
    ['limits', 'set', '--max-concurrent', '3'],
    ['limits', 'set', '--cred', 'x'],
    ['limits', 'set', '--cred', 'x', '--max-concurrent', '999'],
    ['audit'],
    ['audit', 'tail', '-n', '0'],
    ['token', 'rotate', 'extra'],
    ['daemon'],
    ['daemon', 'restart'],
    ['env', '--shell', 'tcsh'],
    ['env', '--shell'],
    ['run', '--'],
    ['rpc'],
    ['rpc', 'daemon.status', '{bad'],
    ['watch', '--type', 'bogus'],
    ['doctor', '--bogus'],
  ];

  /** Runs `cases` plain (and every fourth also with --json) and returns what was wrong with them. */
  async function problemsOf(cases: string[][]): Promise<string[]> {
    const results = await mapLimit(cases, 4, async (args, i) => ({
      args,
      plain: await runCli(args, d.socket),
      json: i % 4 === 0 ? await runCli(['--json', ...args], d.socket) : null,
    }));
    const problems: string[] = [];
    for (const { args, plain, json } of results) {
      const name = `sluicectl ${args.map((a) => (a === '' || /\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
      const lines = plain.stderr.split('\n').filter((l) => l.length > 0);
      if (plain.code !== 2) problems.push(`${name}: exit ${plain.code} (${plain.stderr.trim().slice(0, 120) || 'no stderr'})`);
      else if (lines.length !== 1 || !lines[0]!.startsWith('sluicectl: ') || lines[0]!.length < 20)
        problems.push(`${name}: stderr is not one reason line: ${JSON.stringify(plain.stderr)}`);
      else if (plain.stdout !== '') problems.push(`${name}: printed to stdout: ${JSON.stringify(plain.stdout.slice(0, 80))}`);
      if (plain.code === 2 && json) {
        const jl = json.stderr.split('\n').filter((l) => l.length > 0);
        let parsed: { error?: { code?: string; message?: string } } = {};
        try {
          parsed = JSON.parse(jl[0] ?? '');
        } catch {
          // reported below
        }
        // 'usage' for what the CLI catches itself; the daemon's own validation codes for what only it can judge.
        const usageCodes = ['usage', 'invalid_params', 'invalid_glob', 'cap_out_of_range'];
        if (json.code !== 2 || jl.length !== 1 || !usageCodes.includes(parsed.error?.code ?? '') || !parsed.error?.message)
          problems.push(`${name} --json: exit ${json.code}, stderr ${JSON.stringify(json.stderr.slice(0, 120))}`);
      }
    }
    return problems;
  }

  let before: unknown;
  beforeAll(async () => {
    // Sanity: the same binary and socket work for a valid command.
    const ok = await runCli(['status'], d.socket);
    expect(ok.code, ok.stderr).toBe(0);
    before = { creds: await d.client.call('cred.list'), rules: await d.client.call('rule.list'), pools: await d.client.call('pool.list') };
  });

  // One test per command family and at most 8 cases (each case spawns one or two node processes, which
  // on a busy two-core machine takes a second or more apiece), so every test stays inside its budget.
  const groups = new Map<string, string[][]>();
  for (const args of BAD) {
    const family = ['cred', 'pool', 'rule', 'limits', 'approval'].includes(args[0] ?? '') ? args[0]! : 'other';
    let n = 1;
    while ((groups.get(`${family} ${n}`)?.length ?? 0) >= 8) n++;
    groups.set(`${family} ${n}`, [...(groups.get(`${family} ${n}`) ?? []), args]);
  }
  test('the groups cover the whole list', () => {
    expect([...groups.values()].flat()).toEqual(expect.arrayContaining(BAD));
    expect([...groups.values()].flat()).toHaveLength(BAD.length);
  });
  for (const [group, cases] of groups) {
    test(`sluicectl ${group}: each of ${cases.length} bad invocations exits 2 with a one-line reason on stderr (plain and --json)`, async () => {
      expect(await problemsOf(cases)).toEqual([]);
    });
  }

  test('nothing changed on the daemon', async () => {
    expect({ creds: await d.client.call('cred.list'), rules: await d.client.call('rule.list'), pools: await d.client.call('pool.list') }).toEqual(before);
  });
});
