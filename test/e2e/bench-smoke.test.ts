/**
 * CI smoke for `npm run bench`: compiles the bench (tsconfig.bench.json), runs it in `--quick` mode as a
 * child process and checks that it exits 0 and writes a results file with every column that can run here
 * (mitmproxy is usually absent in CI: then its column must be skipped with a reason). No timing assertions.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, ROOT } from '../fakes/daemon-harness.js';

const RUN = path.join(ROOT, 'dist-bench', 'bench', 'run.js');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const LEVELS = ['c1', 'c10', 'c100'] as const;

let dir = '';

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
  if (!fs.existsSync(BIN.daemon)) execFileSync(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'pipe' });
  execFileSync(process.execPath, [TSC, '-p', 'tsconfig.bench.json'], { cwd: ROOT, stdio: 'pipe' });
}, 180_000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run bench --quick', () => {
  // The bench runs once (its quick plan takes ~40 s; the plan belongs to bench/run.ts) and the tests below
  // each check one part of what it wrote, so a failure names the part and no single test carries the run.
  let code: number | null = null;
  let stdout = '';
  let stderr = '';
  // The parsed results file (JSON.parse gives any; each test checks the fields it names).
  let r: any = null;
  beforeAll(async () => {
    const out = path.join(dir, 'quick.json');
    ({ code, stdout, stderr } = await runBench(['--quick', '--out', out]));
    if (fs.existsSync(out)) r = JSON.parse(fs.readFileSync(out, 'utf8'));
  }, 300_000);

  it('exits 0, prints the tables and writes a results file with no errors', () => {
    expect(code, `bench failed:\n${stderr.slice(-4000)}`).toBe(0);
    expect(stdout).toContain('### Throughput and latency');
    expect(stdout).toContain('### Targets');
    expect(r, 'the results file').not.toBeNull();
    expect(r.mode).toBe('quick');
    expect(r.errors).toEqual([]);
  });

  it('has every throughput column that can run here, each with requests, no errors and latencies', () => {
    expect(r.columns).toEqual(expect.arrayContaining(['direct', 'relay', 'sluice']));
    for (const name of r.columns as string[]) {
      for (const lv of LEVELS) {
        const col = r.throughput[name][lv];
        expect(col, `${name} ${lv}`).toBeTruthy();
        expect(col.requests).toBeGreaterThan(0);
        expect(col.errors).toBe(0);
        expect(col.ok, `${name} ${lv} statuses ${JSON.stringify(col.statuses)}`).toBe(col.requests);
        expect(typeof col.latency.p50_ms).toBe('number');
        expect(typeof col.latency.p99_ms).toBe('number');
      }
    }
    if (r.columns.includes('mitmproxy')) {
      for (const lv of LEVELS) expect(typeof r.ratios[lv].sluice_over_mitmproxy_rps).toBe('number');
    } else {
      expect(r.throughput.mitmproxy).toBeNull();
      expect(r.skipped.mitmproxy).toMatch(/\S/);
      expect(stdout).toContain('mitmproxy column skipped');
    }
    for (const lv of LEVELS) expect(typeof r.ratios[lv].sluice_over_direct_rps).toBe('number');
    for (const lv of LEVELS) expect(typeof r.ratios[lv].sluice_over_relay_rps).toBe('number');
    expect(r.added_latency_c1).not.toBeNull();
  });

  it('measured SSE, certificates, RPC and memory', () => {
    expect(r.sse.direct.streams).toBeGreaterThan(0);
    expect(r.sse.sluice.incomplete_streams).toBe(0);
    expect(r.certs.handshake.new_host.n).toBeGreaterThan(0);
    expect(r.certs.first_request.new_host.n).toBeGreaterThan(0);
    expect(r.rpc.idle.n).toBeGreaterThan(0);
    expect(r.memory.idle_rss_mb).toBeGreaterThan(0);
  });

  it('correctness, not timing: every stream opened, every permit came back, one prompt, caps measured, targets judged', () => {
    expect(r.streams.opened).toBe(r.streams.streams);
    expect(r.streams.after.in_flight).toBe(0);
    expect(Object.values(r.streams.after.per_credential_in_flight).every((n) => n === 0)).toBe(true);
    expect(r.approvals[0].prompts).toBe(1);
    expect(r.approvals[0].resolve_reported_waiters).toBe(r.approvals[0].waiters_at_resolve);
    expect(r.caps.off_rps.length).toBeGreaterThan(0);
    expect(r.targets.length).toBeGreaterThan(0);
    for (const t of r.targets) expect([true, false, null]).toContain(t.met);
  });
});
