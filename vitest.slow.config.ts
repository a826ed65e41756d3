import { defineConfig } from 'vitest/config';

// Slow suites (`npm run test:slow`): full-size runs that the default suite keeps small.
export default defineConfig({
  test: {
    include: ['test/slow/**/*.test.ts'],
    testTimeout: 900_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
