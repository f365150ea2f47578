// ESLint holds the layering rules of DESIGN §3, so a forbidden import fails `npm test` instead of a review.
// Only import boundaries are enforced here; layout is Prettier's job (`npm run format`).
import tseslint from 'typescript-eslint';

/** A `no-restricted-imports` rule forbidding `groups`, with one message. */
const forbid = (groups, message) => ['error', { patterns: [{ group: groups, message }] }];

export default tseslint.config(
  { ignores: ['dist/**', 'dist-bench/**', 'node_modules/**', 'test/clients/**', 'bench/results/**'] },
  {
    files: ['**/*.ts', '**/*.tsx'],
    languageOptions: { parser: tseslint.parser },
  },
  {
    files: ['src/tui/**', 'src/cli/**'],
    rules: { 'no-restricted-imports': forbid(['**/daemon/**', '**/daemon'], 'src/tui and src/cli reach the daemon only through src/shared/rpc (DESIGN §3).') },
  },
  {
    files: ['src/shared/**'],
    rules: { 'no-restricted-imports': forbid(['**/daemon/**', '**/tui/**', '**/cli/**'], 'src/shared imports nothing from daemon, tui or cli (DESIGN §3).') },
  },
  {
    files: ['src/shared/protocol/**'],
    rules: {
      'no-restricted-imports': forbid(
        ['node:*', '**/daemon/**', '**/tui/**', '**/cli/**'],
        'src/shared/protocol is platform-neutral: no node:* imports, nothing from daemon, tui or cli (DESIGN §3).',
      ),
    },
  },
  {
    files: ['src/daemon/proxy/**'],
    rules: {
      'no-restricted-imports': forbid(
        ['../rpc/**', '**/daemon/rpc/**'],
        'the proxy knows nothing of rpc/: everything reaches the UI through the event bus (DESIGN §3).',
      ),
    },
  },
  {
    files: ['src/daemon/policy/**'],
    rules: { 'no-restricted-imports': forbid(['../store/**', '**/daemon/store/**'], 'policy is pure: it never imports the store (DESIGN §3).') },
  },
);
