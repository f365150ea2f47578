/**
 * The layering rules of DESIGN §3 live in eslint.config.js (run by `npm test` as `npm run lint`). These tests
 * prove the rules bite: each forbidden import, linted as if it stood in the file named, is reported, and the
 * allowed ones are not.
 */
import { ESLint } from 'eslint';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

async function violations(filePath: string, code: string): Promise<string[]> {
  const [r] = await eslint.lintText(code, { filePath });
  return r!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('import boundaries (eslint.config.js)', () => {
  it.each([
    ['src/tui/components/App.tsx', "import { Daemon } from '../../daemon/daemon.js';"],
    ['src/cli/commands/cred.ts', "import { CredentialVault } from '../../daemon/vault/credential-vault.js';"],
    ['src/shared/rpc/client.ts', "import { x } from '../../tui/main.js';"],
    ['src/shared/protocol/params.ts', "import fs from 'node:fs';"],
    ['src/daemon/proxy/admission.ts', "import { RpcServer } from '../rpc/rpc-server.js';"],
    ['src/daemon/policy/policy-engine.ts', "import { RulesRepo } from '../store/rules-repo.js';"],
  ])('reports a forbidden import in %s', async (file, code) => {
    expect(await violations(file, code)).toHaveLength(1);
  });

  it.each([
    ['src/tui/components/App.tsx', "import { connectDaemon } from '../../shared/rpc/client.js';"],
    ['src/daemon/proxy/admission.ts', "import type { PolicyEngine } from '../policy/policy-engine.js';"],
    ['src/daemon/rpc/handlers.ts', "import type { RulesRepo } from '../store/rules-repo.js';"],
  ])('allows %s to import what the design allows', async (file, code) => {
    expect(await violations(file, code)).toEqual([]);
  });
});
