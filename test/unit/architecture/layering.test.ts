/**
 * The layering rules of DESIGN §3, checked on the source text: the TUI and CLI reach the daemon only through
 * src/shared/rpc; shared code imports nothing from daemon/tui/cli; the protocol has no node:* imports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => /\.tsx?$/.test(f)).map((f) => path.join(dir, f));
}

/** Every module specifier imported (statically or dynamically) by a file. */
export function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|import\s*['"]([^'"]+)['"]/g)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

function resolvedInto(file: string, spec: string, area: string): boolean {
  if (!spec.startsWith('.')) return false;
  const abs = path.resolve(path.dirname(file), spec);
  return abs.startsWith(path.join(SRC, area) + path.sep);
}

describe('layering', () => {
  it('src/tui and src/cli never import src/daemon', () => {
    const bad: string[] = [];
    for (const area of ['tui', 'cli']) {
      for (const f of files(path.join(SRC, area))) {
        for (const spec of importsOf(f)) if (resolvedInto(f, spec, 'daemon')) bad.push(`${path.relative(SRC, f)} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('src/shared imports nothing from daemon, tui or cli', () => {
    const bad: string[] = [];
    for (const f of files(path.join(SRC, 'shared'))) {
      for (const spec of importsOf(f)) {
        for (const area of ['daemon', 'tui', 'cli']) if (resolvedInto(f, spec, area)) bad.push(`${path.relative(SRC, f)} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('src/shared/protocol has no node:* imports', () => {
    const bad = files(path.join(SRC, 'shared', 'protocol')).flatMap((f) => importsOf(f).filter((s) => s.startsWith('node:')).map((s) => `${f}: ${s}`));
    expect(bad).toEqual([]);
  });

  it('the check itself sees a forbidden import', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'layering-'));
    const probe = path.join(tmp, 'probe.ts');
    try {
      fs.writeFileSync(probe, "import { Daemon } from '../daemon/wire.js';\nconst x = await import('../daemon/main.js');\n");
      const specs = importsOf(probe);
      expect(specs).toEqual(['../daemon/wire.js', '../daemon/main.js']);
      expect(resolvedInto(path.join(SRC, 'tui', 'probe.ts'), specs[0]!, 'daemon')).toBe(true);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
