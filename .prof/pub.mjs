import { Effect, Layer, Context } from "effect"
import * as SqliteBackend from "../dist/sqlite/SqliteBackend.js"
import { Hub } from "../dist/backend/Hub.js"
import * as Fs from "node:fs"
const sync = process.argv[2] ?? "full"
const concurrency = Number(process.argv[3] ?? 1)
const dir = Fs.mkdtempSync("/tmp/prof/d-")
const program = Effect.gen(function* () {
  const ctx = yield* Layer.build(SqliteBackend.layer({ dataDir: dir, synchronous: sync, commitWindow: Number(process.env.W ?? 5) }))
  const hub = Context.get(ctx, Hub)
  const N = Number(process.env.N ?? 5000)
  const t0 = process.cpuUsage(); const w0 = Date.now()
  yield* Effect.forEach(Array.from({ length: N }, (_, i) => i), (i) => hub.publish(`room_${i % 200}`, { from: "alice", text: "hello there " + i }), { concurrency })
  const c = process.cpuUsage(t0)
  console.log(`sync=${sync} conc=${concurrency}: user ${(c.user / N).toFixed(1)} µs/msg, sys ${(c.system / N).toFixed(1)} µs/msg, wall ${((Date.now() - w0) * 1000 / N).toFixed(1)} µs/msg`)
})
await Effect.runPromise(Effect.scoped(program))
Fs.rmSync(dir, { recursive: true })
