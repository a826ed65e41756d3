import { availableParallelism } from 'node:os';
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
    // Vitest's default in run mode is one worker less than the cores: one file at a time on the
    // 2-core reference machine (314 s measured); two at once took 250 s with a slow suite beside it.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
