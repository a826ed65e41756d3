import { defineConfig } from 'vitest/config';

// The slow suites (LeNet-5-sized models, encrypted runs of every operator variant): `npm run test:slow`.
export default defineConfig({
  test: {
    include: ['test/slow/**/*.test.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    pool: 'forks',
  },
});
