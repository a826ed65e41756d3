import { defineConfig } from 'vitest/config';

// Slow suites (`npm run test:slow`): 10,000-request fuzzing and the loopback load test.
export default defineConfig({
  test: {
    include: ['test/slow/**/*.test.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
