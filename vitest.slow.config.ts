import { defineConfig } from 'vitest/config';

// Slow suites (`npm run test:slow`, run by .ci/run): 10,000-request fuzzing, the loopback load
// test, real-size key generation, long runs.
export default defineConfig({
  test: {
    include: ['test/slow/**/*.test.ts'],
    testTimeout: 3_600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
