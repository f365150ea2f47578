/**
 * Summarises a V8 `.cpuprofile` (written by the daemon under `--cpu-prof`): self time per function and per
 * source file, so the report can say where the proxy spends its CPU.
 */
import fs from 'node:fs';
import path from 'node:path';
import { round } from './util.js';

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  file: string;
  total_ms: number;
  idle_ms: number;
  gc_ms: number;
  top_functions: { fn: string; self_ms: number; pct_of_busy: number }[];
  top_files: { file: string; self_ms: number; pct_of_busy: number }[];
  /** Self time grouped by area (http-mitm-proxy, node:tls, sqlite, sluice daemon, …). */
  areas: { area: string; self_ms: number; pct_of_busy: number }[];
}

function shortUrl(url: string): string {
  if (!url) return '(native)';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm !== -1) return u.slice(nm + 'node_modules/'.length);
  const d = u.indexOf('/dist/');
  if (d !== -1) return u.slice(d + 1);
  return u;
}

function areaOf(url: string, fn: string): string {
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)') return 'program (native, outside JS)';
  const u = shortUrl(url);
  if (u === '(native)') return 'native builtins';
  if (u.startsWith('http-mitm-proxy/')) return 'http-mitm-proxy';
  if (u.startsWith('better-sqlite3/')) return 'better-sqlite3';
  if (u.startsWith('dist/daemon/')) return `sluice ${u.split('/').slice(2, -1).join('/') || 'daemon'}`;
  if (u.startsWith('node:internal/tls') || u.startsWith('node:tls') || u.startsWith('node:_tls')) return 'node tls';
  if (u.startsWith('node:internal/http') || u.startsWith('node:_http') || u.startsWith('node:http')) return 'node http';
  if (u.startsWith('node:internal/streams') || u.startsWith('node:stream')) return 'node streams';
  if (u.startsWith('node:net') || u.startsWith('node:internal/stream_base') || u.startsWith('node:internal/net')) return 'node net';
  if (u.startsWith('node:')) return 'node other';
  return u.split('/')[0] ?? u;
}

export function summarizeProfile(file: string, top = 25): ProfileSummary {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  let idle = 0;
  let gc = 0;
  let busy = 0;
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  const areas = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id)!;
    const fn = n.callFrame.functionName || '(anonymous)';
    if (fn === '(idle)') {
      idle += us;
      continue;
    }
    if (fn === '(garbage collector)') gc += us;
    busy += us;
    const key = `${fn} ${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const f = shortUrl(n.callFrame.url);
    files.set(f, (files.get(f) ?? 0) + us);
    const a = areaOf(n.callFrame.url, fn);
    areas.set(a, (areas.get(a) ?? 0) + us);
  }
  const list = (m: Map<string, number>, k: string, limit: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, us]) => ({ [k]: name, self_ms: round(us / 1000, 1), pct_of_busy: round((100 * us) / busy, 1) }));
  return {
    file: path.resolve(file),
    total_ms: round((prof.endTime - prof.startTime) / 1000, 1),
    idle_ms: round(idle / 1000, 1),
    gc_ms: round(gc / 1000, 1),
    top_functions: list(fns, 'fn', top) as ProfileSummary['top_functions'],
    top_files: list(files, 'file', 15) as ProfileSummary['top_files'],
    areas: list(areas, 'area', 20) as ProfileSummary['areas'],
  };
}
