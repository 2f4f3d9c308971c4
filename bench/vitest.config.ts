// `npx vitest run --config bench/vitest.config.ts`: the checks that belong to the bench's changes
// (the hot path in src/dns/responder.ts), apart from `npm test`'s suite.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['bench/**/*.test.ts'], testTimeout: 60_000 },
});
