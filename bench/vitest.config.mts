// The bench suite's own tests (the root config collects test/ only): npx vitest run --config bench/vitest.config.mts
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: fileURLToPath(new URL('..', import.meta.url)),
    include: ['bench/test/**/*.test.ts'],
    testTimeout: 120_000,
  },
});
