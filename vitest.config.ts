import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // On a machine without squid, unbound, dig, ... one line says what is missing and that
    // `bash .ci/run` installs it, before any test fails on `spawn squid ENOENT`.
    globalSetup: ['test/global-setup.ts'],
    // Integration tests bind fixed loopback addresses (127.0.0.11:3128, ...) like pools in a
    // cluster, so test files run one at a time; each file is quick.
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
