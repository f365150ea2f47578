/** Two migration files with one number are refused with both names (what a merge of two branches can produce). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { loadMigrations } from '../../../../src/daemon/store/database.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

it('names both files when two migrations share a number', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-mig-'));
  dirs.push(dir);
  for (const f of ['0001_init.sql', '0002_one.sql', '0002_other.sql']) fs.writeFileSync(path.join(dir, f), 'SELECT 1;');
  expect(() => loadMigrations(dir)).toThrow(/two migrations are numbered 0002: (one and other|other and one)/);
});
