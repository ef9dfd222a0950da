import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites start real servers on port 0; two cores run them best a few at a time.
    maxWorkers: 2,
    minWorkers: 1
  }
})
