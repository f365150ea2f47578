/**
 * The repository root, found by walking up from this file to the first directory that holds both
 * `package.json` and `test/fixtures`. Works from the TypeScript sources (`test/fakes/`, run by vitest) and
 * from a compiled copy (`dist-bench/test/fakes/`, used by `npm run bench`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'test', 'fixtures'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the repository root above ${start}`);
    dir = up;
  }
}

/** Absolute path of the repository root, with a trailing separator. */
export const REPO_ROOT: string = findRoot(path.dirname(fileURLToPath(import.meta.url))) + path.sep;
