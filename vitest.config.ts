import { defineConfig } from 'vitest/config';

// Default run: unit tests beside the code and the fast end-to-end suites in test/.
// Slow suites live in test/slow and run through `npm run test:slow`.
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['test/slow/**', 'node_modules/**', 'dist/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
