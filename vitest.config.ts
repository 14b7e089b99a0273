import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // bench/test checks the benchmark tooling itself (encoders, result checks), not speed.
    include: ['test/**/*.test.ts', 'bench/test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration tests boot whole guests; two at a time fits the 2-core machines we run on.
    maxWorkers: 2,
  },
});
