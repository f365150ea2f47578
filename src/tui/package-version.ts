/** The version of the installed sluice package, for `sluice --version`. */
import { readFileSync } from 'node:fs';

/** The `version` of the package.json two levels above the compiled file, or `unknown` when unreadable. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
