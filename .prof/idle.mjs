import { Effect, Layer, Context } from "effect"
import * as SqliteBackend from "../dist/sqlite/SqliteBackend.js"
import * as Fs from "node:fs"
const dir = Fs.mkdtempSync("/tmp/prof/i-")
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  yield* Layer.build(SqliteBackend.layer({ dataDir: dir }))
  const t0 = process.cpuUsage()
  yield* Effect.sleep("3 seconds")
  const c = process.cpuUsage(t0); console.log("idle 3 s: user", c.user / 1000, "ms sys", c.system / 1000, "ms")
})))
