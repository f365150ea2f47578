/**
 * Issue 24 as a user sees it: the built daemon in front of a fake api.anthropic.com (real TLS, the test CA,
 * `SLUICE_RESOLVE`) that reports usage in JSON and SSE (`message_start` + `message_delta`) and sends
 * `anthropic-ratelimit-requests-*` / `-tokens-*` headers that count down one request per answer per key
 * (test/fakes/usage-provider.ts). Requests go through the proxy with the phantom; then:
 * - `sluicectl usage` (table) and `sluicectl usage --json --by model` show exactly what the fake reported;
 * - the built dashboard, in tmux at 80×24 and at 120×30, shows the credential's tokens per minute and
 *   `req N/M` with the right numbers, and colours a headroom under 20 % yellow and under 5 % red (read
 *   with `capture-pane -e`);
 * - `usage.updated` reaches `sluicectl watch` at most about once a second under a burst of 50 requests.
 *
 * The tests share one daemon and two dashboards and run in order: each builds on the counts of the one
 * before (the fake counts down per key), so the expected numbers are exact.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { UsageRow, UsageSnapshot } from '../../src/shared/protocol/usage.js';
import { BIN, shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { REQUEST_LIMIT, TOKEN_LIMIT, startUsageProvider, type UsagePlan, type UsageProvider } from '../fakes/usage-provider.js';
import { waitFor, within } from '../fakes/wait-for.js';
import { findRow, headerLine, requireTmux, shQuote, TmuxServer, type TmuxPane } from './tmux-driver.js';

const execFileP = promisify(execFile);

const ANT = 'api.anthropic.com';
/** Bound of every wait for the screen, the CLI or the daemon. */
const WAIT_MS = 10_000;

let up: UsageProvider;
let d: TestDaemon;
let tmux: TmuxServer;
/** The same dashboard at the two sizes the brief names. */
const panes: { label: string; pane: TmuxPane }[] = [];
const children: ChildProcess[] = [];
const phantom: Record<string, string> = {};

/** What the fake reported, normalised the way sluice counts it (input includes cache reads and writes). */
interface Totals {
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
}
const byModel = new Map<string, Totals>();
const byCred = new Map<string, Totals>();
/** Answers the fake gave per credential (its rate-limit headers count down by these). */
const answered = new Map<string, number>();

function book(map: Map<string, Totals>, key: string, t: Totals): void {
  const e = map.get(key) ?? { requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0 };
  e.requests += t.requests;
  e.input_tokens += t.input_tokens;
  e.output_tokens += t.output_tokens;
  e.cached_tokens += t.cached_tokens;
  map.set(key, e);
}

/** Sends one Messages request through the proxy with `cred`'s phantom, reads it to the end and books what the fake reports. */
async function message(cred: string, model: string, plan: UsagePlan, opts: { stream?: boolean; gzip?: boolean } = {}): Promise<void> {
  const r = await d.fetch(`https://${ANT}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': phantom[cred]!, 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model, stream: opts.stream, gzip: opts.gzip, plan }),
  });
  expect(r.status, r.text).toBe(200);
  if (opts.stream) expect(r.text).toContain('event: message_delta');
  answered.set(cred, (answered.get(cred) ?? 0) + 1);
  const t = {
    requests: 1,
    input_tokens: plan.input + (plan.cache_creation ?? 0) + (plan.cache_read ?? 0),
    output_tokens: plan.output,
    cached_tokens: plan.cache_read ?? 0,
  };
  book(byModel, model, t);
  book(byCred, cred, t);
}

/** `n` small JSON requests for `cred`, at most `parallel` at a time (below the default cap of 8). */
async function many(cred: string, n: number, parallel: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        next++;
        await message(cred, 'claude-small', { input: 1, output: 1 });
      }
    }),
  );
}

/** The environment for the built sluicectl against the test daemon. */
function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_HOME: d.home };
  delete env.SLUICE_SOCKET;
  return env;
}

/** Runs the built sluicectl; resolves with its stdout (rejects on a non-zero exit). */
async function sluicectl(...args: string[]): Promise<string> {
  const { stdout } = await execFileP(process.execPath, [BIN.cli, ...args], { env: cliEnv(), timeout: WAIT_MS });
  return stdout;
}

/** The `sh -c` line that runs the built dashboard without `CI` (Ink draws nothing with it set). */
function dashboardCommand(): string {
  return `env -u CI -u CONTINUOUS_INTEGRATION -u SLUICE_SOCKET -u NO_COLOR -u FORCE_COLOR SLUICE_HOME=${shQuote(d.home)} ${shQuote(process.execPath)} ${shQuote(BIN.tui)} --no-start; echo "sluice exited with $?"; sleep 300`;
}

/** Expected tokens per minute of a credential: everything was sent inside one five-minute window. */
function tokensPerMin(cred: string): number {
  const t = byCred.get(cred)!;
  return Math.round((t.input_tokens + t.output_tokens) / 5);
}

/** The dashboard's short form of a count (usage-format.ts `formatCompact`), for the expected `tok/m`. */
function compact(n: number): string {
  if (n < 1000) return String(n);
  const k = n / 1000;
  return `${k < 100 ? k.toFixed(1).replace(/\.0$/, '') : Math.round(k)}k`;
}

/** The headroom the fake's headers say after `n` answers to one key, as the dashboard writes it. */
function headroomText(n: number): { req: string; tok: string } {
  return { req: `req ${REQUEST_LIMIT - n}/${REQUEST_LIMIT}`, tok: `tok ${Math.floor(((TOKEN_LIMIT - 1000 * n) / TOKEN_LIMIT) * 100)}%` };
}

/** Foreground colour names of SGR codes (`capture-pane -e` writes 30–37 / 90–97, or 38;5;N). */
const FG: Record<number, string> = { 1: 'red', 3: 'yellow', 2: 'green', 6: 'cyan', 7: 'white', 0: 'black', 4: 'blue', 5: 'magenta' };

/**
 * The foreground colour in force where `needle` starts on the first line of `ansiScreen` that contains it
 * (after the escapes are taken out): `red`, `yellow`, … or `default`. Undefined when no line has it.
 */
function colourAt(ansiScreen: string, needle: string): string | undefined {
  for (const line of ansiScreen.split('\n')) {
    let plain = '';
    const colours: string[] = [];
    let fg = 'default';
    for (let i = 0; i < line.length;) {
      const m = /^\x1b\[([0-9;]*)m/.exec(line.slice(i));
      if (m) {
        const codes = m[1] === '' ? [0] : m[1]!.split(';').map(Number);
        for (let k = 0; k < codes.length; k++) {
          const c = codes[k]!;
          if (c === 0 || c === 39) fg = 'default';
          else if (c >= 30 && c <= 37) fg = FG[c - 30]!;
          else if (c >= 90 && c <= 97) fg = FG[c - 90]!;
          else if (c === 38 && codes[k + 1] === 5) {
            const n = codes[k + 2]!;
            fg = n < 16 ? FG[n % 8]! : `256:${n}`;
            k += 2;
          } else if (c === 38 && codes[k + 1] === 2) {
            fg = `rgb:${codes.slice(k + 2, k + 5).join(',')}`;
            k += 4;
          }
        }
        i += m[0].length;
        continue;
      }
      const esc = /^\x1b[^a-zA-Z]*[a-zA-Z]/.exec(line.slice(i));
      if (esc) {
        i += esc[0].length;
        continue;
      }
      plain += line[i];
      colours.push(fg);
      i++;
    }
    const at = plain.indexOf(needle);
    if (at !== -1) return colours[at];
  }
  return undefined;
}

/** The screen with colours (`capture-pane -e`). */
async function ansiScreen(pane: TmuxPane): Promise<string> {
  return tmux.exec('capture-pane', '-p', '-e', '-t', `=${pane.session}:`);
}

/** The credential row of `cred` on a plain screen, or ''. */
const credRow = (screen: string, cred: string): string => findRow(screen, 'Credentials', cred) ?? '';

beforeAll(async () => {
  requireTmux();
  up = await startUsageProvider();
  d = await startDaemon({ upstreamPort: up.port, home: shortTempDir('slu') });
  await d.client.call('rule.add', { verdict: 'allow', host: ANT });
  for (const name of ['ant', 'burst']) {
    const c = await d.client.call('cred.add', {
      name,
      hosts: [ANT],
      header: 'x-api-key',
      secret: `sk-ant-api03-REAL${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`,
    });
    phantom[name] = c.phantom;
  }
  tmux = new TmuxServer();
  for (const [label, columns, rows] of [
    ['80×24', 80, 24],
    ['120×30', 120, 30],
  ] as const) {
    const pane = await tmux.newSession(`dash${columns}`, dashboardCommand(), columns, rows);
    panes.push({ label, pane });
  }
  for (const { label, pane } of panes) {
    await pane.waitForScreen(
      (s) => headerLine(s).includes('● connected') && credRow(s, 'ant') !== '' && credRow(s, 'burst') !== '',
      `the ${label} dashboard to connect and list both credentials`,
      20_000,
    );
  }
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  tmux?.kill();
  await d?.stop();
  await up?.close();
  if (d) fs.rmSync(d.home, { recursive: true, force: true });
});

describe('usage as a user sees it (issue 24)', () => {
  test('JSON and SSE answers: `sluicectl usage` and `usage --json --by model` total exactly what the fake reported', async () => {
    await message('ant', 'claude-a', { input: 12, output: 34, cache_read: 100, cache_creation: 7 });
    await message('ant', 'claude-a', { input: 5, output: 77, cache_read: 2000 }, { stream: true });
    await message('ant', 'claude-b', { input: 9, output: 13, cache_creation: 50 }, { stream: true, gzip: true });
    // The same numbers spelled out, so a mistake in the bookkeeping above cannot hide one in sluice.
    expect(byModel.get('claude-a')).toEqual({ requests: 2, input_tokens: 2124, output_tokens: 111, cached_tokens: 2100 });
    expect(byModel.get('claude-b')).toEqual({ requests: 1, input_tokens: 59, output_tokens: 13, cached_tokens: 0 });

    // An exchange is counted when its response to the client has closed: poll the CLI until the last lands.
    const json = await waitFor(
      async () => {
        const s = JSON.parse(await sluicectl('usage', '--json', '--by', 'model')) as UsageSnapshot;
        return s.rows.reduce((n, r) => n + r.requests, 0) === 3 ? s : null;
      },
      { what: 'sluicectl usage --json to count the 3 requests', timeoutMs: WAIT_MS, intervalMs: 100 },
    );
    expect(json.by).toBe('model');
    const rows = Object.fromEntries(json.rows.map(({ key, ...t }: UsageRow) => [key, t]));
    expect(rows).toEqual(Object.fromEntries(byModel));
    const ant = json.credentials.find((c) => c.name === 'ant')!;
    expect(ant.today).toEqual(byCred.get('ant'));
    expect(ant.tokens_per_min).toBe(tokensPerMin('ant'));
    expect(ant.headroom?.requests).toMatchObject({ limit: REQUEST_LIMIT, remaining: REQUEST_LIMIT - 3 });
    expect(ant.headroom?.tokens).toMatchObject({ limit: TOKEN_LIMIT, remaining: TOKEN_LIMIT - 3000 });

    const table = (await sluicectl('usage')).split('\n');
    expect(table[0]).toBe('usage by cred, last 24h');
    expect(table[1]).toMatch(/^KEY\s+REQUESTS\s+INPUT\s+OUTPUT\s+CACHED$/);
    const t = byCred.get('ant')!;
    expect(table).toContainEqual(expect.stringMatching(new RegExp(`^ant\\s+3\\s+${t.input_tokens}\\s+${t.output_tokens}\\s+${t.cached_tokens}$`)));
    // The idle credential has no row in the period's totals; the per-credential part shows rate and headroom.
    expect(table.slice(0, table.indexOf('')).some((l) => l.startsWith('burst'))).toBe(false);
    expect(table).toContainEqual(expect.stringMatching(/^CREDENTIAL\s+TOK\/MIN\s+TODAY-REQ\s+TODAY-TOK\s+HEADROOM$/));
    expect(table).toContainEqual(
      expect.stringMatching(new RegExp(`^ant\\s+${tokensPerMin('ant')}\\s+3\\s+${t.input_tokens + t.output_tokens}\\s+req 47/50 · tok 97% · 5h 75%$`)),
    );
  });

  test('the dashboard row shows tokens/min and `req 47/50 · tok 97%` at 80×24 and at 120×30, in the default colour', async () => {
    const rate = `${compact(tokensPerMin('ant'))} tok/m`;
    const h = headroomText(answered.get('ant')!);
    expect(h).toEqual({ req: 'req 47/50', tok: 'tok 97%' });
    for (const { label, pane } of panes) {
      const screen = await pane.waitForScreen(
        (s) => credRow(s, 'ant').includes(rate) && credRow(s, 'ant').includes(`${h.req} · ${h.tok}`),
        `the ${label} ant row to show ${rate} and ${h.req} · ${h.tok}`,
        WAIT_MS,
      );
      // every line fits the pane (nothing wrapped onto a second line)
      const width = label === '80×24' ? 80 : 120;
      for (const line of screen.split('\n')) expect(line.length, line).toBeLessThanOrEqual(width);
      // the idle credential shows no rate and no headroom
      expect(credRow(screen, 'burst')).not.toMatch(/tok\/m|req \d/);
      const ansi = await ansiScreen(pane);
      expect(colourAt(ansi, h.req), `${label}: ${h.req}`).toBe('default');
      expect(colourAt(ansi, h.tok), `${label}: ${h.tok}`).toBe('default');
    }
  });

  test('headroom turns yellow under 20 % (remaining 9 of 50) and red under 5 % (remaining 1 of 50); tok 51% stays default', async () => {
    // Parallel requests may answer out of order, and the dashboard shows the latest answer's headers: so
    // each step ends with one request on its own, whose headers are the last ones seen.
    await many('ant', 40 - answered.get('ant')!, 4);
    await message('ant', 'claude-small', { input: 1, output: 1 });
    expect(answered.get('ant')).toBe(41);
    const yellow = headroomText(41);
    expect(yellow.req).toBe('req 9/50');
    for (const { label, pane } of panes) {
      await pane.waitForScreen((s) => credRow(s, 'ant').includes(yellow.req), `the ${label} ant row to show ${yellow.req}`);
      const ansi = await ansiScreen(pane);
      expect(colourAt(ansi, yellow.req), `${label}: ${yellow.req}`).toBe('yellow');
      expect(colourAt(ansi, yellow.tok), `${label}: ${yellow.tok}`).toBe('default');
    }

    await many('ant', 48 - answered.get('ant')!, 4);
    await message('ant', 'claude-small', { input: 1, output: 1 });
    expect(answered.get('ant')).toBe(49);
    const red = headroomText(49);
    expect(red).toEqual({ req: 'req 1/50', tok: 'tok 51%' });
    const rate = `${compact(tokensPerMin('ant'))} tok/m`;
    for (const { label, pane } of panes) {
      await pane.waitForScreen(
        (s) => credRow(s, 'ant').includes(`${red.req} · ${red.tok}`) && credRow(s, 'ant').includes(rate),
        `the ${label} ant row to show ${red.req} · ${red.tok} and ${rate}`,
      );
      const ansi = await ansiScreen(pane);
      expect(colourAt(ansi, red.req), `${label}: ${red.req}`).toBe('red');
      expect(colourAt(ansi, red.tok), `${label}: ${red.tok}`).toBe('default');
    }
    // the daemon says the same
    const s = await d.client.call('usage.snapshot', {});
    expect(s.credentials.find((c) => c.name === 'ant')?.headroom?.requests?.remaining).toBe(1);
  });

  test('under a burst of 50 requests `sluicectl watch` gets usage.updated at most about once a second', async () => {
    const watch = spawn(process.execPath, [BIN.cli, 'watch', '--type', 'usage.updated', '--snapshot'], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(watch);
    const events: { at: number; requests: number }[] = [];
    let out = '';
    let subscribed = false;
    watch.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      let nl: number;
      while ((nl = out.indexOf('\n')) !== -1) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        const e = JSON.parse(line) as { type: string; credentials?: { name: string; today: { requests: number } }[] };
        if (e.type === 'snapshot') subscribed = true;
        else if (e.type === 'usage.updated') {
          events.push({ at: Date.now(), requests: e.credentials?.find((x) => x.name === 'burst')?.today.requests ?? -1 });
        }
      }
    });
    await waitFor(() => subscribed, { what: 'sluicectl watch to subscribe', timeoutMs: WAIT_MS });

    const started = Date.now();
    await within(many('burst', 50, 8), 20_000, 'the burst of 50 requests');
    const last = await waitFor(() => events.find((e) => e.requests === 50), {
      what: 'a usage.updated with all 50 burst requests',
      timeoutMs: WAIT_MS,
    });
    const elapsed = last.at - started;
    const seen = events.filter((e) => e.at <= last.at);
    // Published at most once a second: n events span at least n − 1 seconds (one more for an event of the
    // previous test that may still have been on its way). Without the coalescing this would be ≥ 100
    // (one per count and one per rate-limit header).
    expect(seen.length, `${seen.length} events in ${elapsed} ms`).toBeLessThanOrEqual(2 + Math.floor(elapsed / 1000));
    expect(seen.length).toBeLessThan(50 / 2);
    expect(seen.length).toBeGreaterThanOrEqual(1);
    watch.kill('SIGTERM');
  });
});
