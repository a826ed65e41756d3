import { defineConfig } from 'vitest/config';

// `npm run test:slow`: end-to-end suites that pack and install the package, run every README
// command from a fresh copy, or train for many rounds. Run by .ci/run, not by `npm test`.
export default defineConfig({
  test: {
    include: ['test/slow/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // One file at a time: each spawns its own processes and servers.
    fileParallelism: false,
  },
});
