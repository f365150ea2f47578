import { defineConfig } from 'vitest/config';

// Unit tests run on the TypeScript sources; integration and e2e tests drive the built binaries in dist/
// (npm test builds first). Integration files spawn daemons, so they get longer timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
